"""Cost of one training step of each robust-attribution loss, as a ratio to a natural step.

On the embedded digits CNN (batch 64, the settings of ``captum-certified train``), each loss
runs in a fresh subprocess: one warm-up step, then the best of ``--repeats`` steps (wall and
process CPU time) and the peak RSS of a step above the RSS before it (the kernel's high-water
mark, reset through ``/proc/self/clear_refs``; glibc is told to return freed memory at once).

    python benchmarks/bench_train.py            # all losses, ~2 min on 2 idle cores
    python benchmarks/bench_train.py --repeats 5 --losses natural ssr
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

LOSSES = ("natural", "ig_norm", "ig_sum_norm", "sarkar", "ssr", "art")


def _kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(field)


def worker(loss: str, repeats: int, batch: int) -> dict:
    import torch

    from captum_certified.cli._train import TrainConfig, build_loss, new_model, train_split

    torch.set_num_threads(1)
    x, y, _, _ = train_split("digits", 0)
    x, y = x[:batch], y[:batch]
    config = TrainConfig(loss=loss).validate()
    model = new_model("digits", 0)
    loss_fn = build_loss(config, torch.Generator().manual_seed(1))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step() -> None:
        value = loss_fn(model, x, y)
        opt.zero_grad()
        value.backward()
        opt.step()

    step()  # warm-up
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        step()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    before = _kib("VmRSS")
    step()
    peak = (_kib("VmHWM") - before) / 1024
    return {"loss": loss, "wall": min(walls), "cpu": min(cpus), "peak_mib": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--losses", nargs="+", default=list(LOSSES), choices=LOSSES)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.repeats, args.batch)))
        return
    env = dict(
        os.environ,
        OMP_NUM_THREADS="1",
        MALLOC_MMAP_THRESHOLD_=str(65536),
        MALLOC_TRIM_THRESHOLD_="0",
    )
    losses = list(dict.fromkeys(["natural", *args.losses]))
    rows = []
    for loss in losses:
        cmd = [
            sys.executable,
            __file__,
            "--worker",
            loss,
            "--repeats",
            str(args.repeats),
            "--batch",
            str(args.batch),
        ]
        out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    base = rows[0]
    print(
        f"{'loss':>12} {'wall ms':>9} {'x natural':>9} {'cpu ms':>9} {'x natural':>9} "
        f"{'peak MiB':>9}"
    )
    for r in rows:
        print(
            f"{r['loss']:>12} {1e3 * r['wall']:9.1f} {r['wall'] / base['wall']:9.1f} "
            f"{1e3 * r['cpu']:9.1f} {r['cpu'] / base['cpu']:9.1f} {r['peak_mib']:9.1f}"
        )


if __name__ == "__main__":
    main()
