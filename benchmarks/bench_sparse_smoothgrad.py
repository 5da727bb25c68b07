"""Speed and peak-memory benchmark of SparseSmoothGrad (with and without certificate).

Compares, on the same model, input, sample count ``n`` and ``nt_samples_batch_size`` ``b``:

- ``grad``        hand-written batched input gradient: per chunk, repeat the input ``b`` times,
                  add ``randn * sigma``, one forward, ``autograd.grad`` of the gathered target
                  logits, accumulate ``|grad|`` (the minimal same-work computation);
- ``grad+topk``   the same plus a top-tau binarization (``topk`` + ``scatter``) of each
                  sample's ``|grad|`` and a count, i.e. a hand-written Sparsified SmoothGrad
                  without certificate;
- ``NoiseTunnel`` Captum's ``NoiseTunnel(Saliency(model))`` smoothgrad;
- ``SSG``         ``SparseSmoothGrad(model, sparsity=0.1).attribute(...)``;
- ``SSG+cert``    the same with ``return_certificate=True`` (Clopper-Pearson band).

Models (random seeded weights, eval mode): a small CNN on 1x28x28 (n = 1024, b in {64, 256})
and a ResNet-18 defined below (BasicBlock [2, 2, 2, 2], 1000 classes, 3x224x224, n = 64,
b in {8, 32}). torchvision is not needed.

Time: one warm-up call per method, then the best of ``--repeats`` calls, methods interleaved
round-robin; both wall-clock and process CPU time are reported (on a shared or loaded machine
the CPU-time column is the steadier one; ``--threads 1`` steadies it further).

Peak memory: every (model, method, config) runs in a fresh subprocess of this script with
glibc told to mmap every allocation >= 64 KiB and return freed memory at once, so the RSS
follows the live tensors. After building the model and a batch-1 forward/backward warm-up the
process calls the method twice; before each call it trims the heap and resets the kernel's
RSS high-water mark (``/proc/self/clear_refs``). ``peak MiB`` is ``VmHWM - VmRSS`` of the
second call (steady state); ``cold MiB`` the same for the first call, one-time lazy imports
included (falls back to ``ru_maxrss`` where ``/proc`` is unavailable). A last table gives the
steady-state peak at several ``n`` with a fixed ``b``: it should not grow with ``nt_samples``.

Usage::

    python benchmarks/bench_sparse_smoothgrad.py            # full run (~10 min on 2 cores)
    python benchmarks/bench_sparse_smoothgrad.py --quick    # reduced run (~2-3 min)
    python benchmarks/bench_sparse_smoothgrad.py --threads 1 --json rows.json

The cost of each stage per chunk (steadier on a busy machine): ``bench_ssg_stages.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass

import torch
from captum.attr import NoiseTunnel, Saliency
from torch import Tensor, nn

from captum_certified.attr import SparseSmoothGrad

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import PeakRSS, best_interleaved, build, environment, run_worker  # noqa: E402

SIGMA = 0.25
SPARSITY = 0.1
ALPHA = 0.05
METHODS = ("grad", "grad+topk", "NoiseTunnel", "SSG", "SSG+cert")


# --------------------------------------------------------------------------------------------
# Methods: each is (model, x, y, n, b) -> attribution map of x's shape
# --------------------------------------------------------------------------------------------


def hand_written(
    model: nn.Module, x: Tensor, y: Tensor, n: int, b: int, *, topk: bool = False
) -> Tensor:
    gen = torch.Generator().manual_seed(0)
    bsz = x.shape[0]
    d = x[0].numel()
    k = int(SPARSITY * d + 1e-9)
    acc = torch.zeros(bsz, d, dtype=torch.float64 if topk else x.dtype)
    done = 0
    while done < n:
        c = min(b, n - done)
        with torch.no_grad():
            z = (
                x.repeat_interleave(c, 0)
                + torch.randn((bsz * c,) + x.shape[1:], generator=gen) * SIGMA
            )
        z.requires_grad_(True)
        out = model(z)
        sel = out.gather(1, y.repeat_interleave(c).unsqueeze(1)).sum()
        (grad,) = torch.autograd.grad(sel, z)
        with torch.no_grad():
            g = grad.abs().reshape(bsz * c, d)
            if topk:
                idx = g.topk(k, dim=1, sorted=False).indices
                g = torch.zeros_like(g).scatter_(1, idx, 1.0)
                acc += g.reshape(bsz, c, d).sum(1, dtype=torch.float64)
            else:
                acc += g.reshape(bsz, c, d).sum(1)
        done += c
    return (acc / n).to(x.dtype).reshape(x.shape)


def noise_tunnel(model: nn.Module, x: Tensor, y: Tensor, n: int, b: int) -> Tensor:
    torch.manual_seed(0)  # NoiseTunnel draws from the global RNG
    nt = NoiseTunnel(Saliency(model))
    return nt.attribute(
        x, nt_type="smoothgrad", nt_samples=n, nt_samples_batch_size=b, stdevs=SIGMA, target=y
    )


def sparse_smoothgrad(
    model: nn.Module, x: Tensor, y: Tensor, n: int, b: int, *, cert: bool = False
) -> Tensor:
    ssg = SparseSmoothGrad(model, sparsity=SPARSITY)
    out = ssg.attribute(
        x,
        target=y,
        nt_samples=n,
        nt_samples_batch_size=b,
        stdevs=SIGMA,
        return_certificate=cert,
        alpha=ALPHA,
        generator=torch.Generator().manual_seed(0),
    )
    return out[0] if cert else out


def run_method(name: str, model: nn.Module, x: Tensor, y: Tensor, n: int, b: int) -> Tensor:
    if name == "grad":
        return hand_written(model, x, y, n, b)
    if name == "grad+topk":
        return hand_written(model, x, y, n, b, topk=True)
    if name == "NoiseTunnel":
        return noise_tunnel(model, x, y, n, b)
    if name == "SSG":
        return sparse_smoothgrad(model, x, y, n, b)
    if name == "SSG+cert":
        return sparse_smoothgrad(model, x, y, n, b, cert=True)
    raise ValueError(name)


def memory_worker(spec: dict) -> dict:
    if spec.get("threads"):
        torch.set_num_threads(spec["threads"])
    model, x, y = build(spec["model"], spec["batch"])
    # warm-up: load kernels, start the autograd engine and the thread pool
    z = x[:1].clone().requires_grad_(True)
    torch.autograd.grad(model(z)[:, 0].sum(), z)
    del z
    # cold: the first call in the process (includes one-time lazy imports and caches)
    with PeakRSS() as cold:
        t0 = time.perf_counter()
        run_method(spec["method"], model, x, y, spec["n"], spec["b"])
        t_cold = time.perf_counter() - t0
    # steady state: a second, identical call
    with PeakRSS() as warm:
        t0 = time.perf_counter()
        run_method(spec["method"], model, x, y, spec["n"], spec["b"])
        t_warm = time.perf_counter() - t0
    return {
        "peak_mib": warm.mib,
        "cold_mib": cold.mib,
        "cold_extra_s": t_cold - t_warm,
        "exact": warm.exact,
    }


def measure_memory(
    model: str, batch: int, method: str, n: int, b: int, threads: int | None
) -> tuple[float, float, float]:
    """Steady-state peak MiB, first-call peak MiB and first-call extra seconds, in a fresh
    process."""
    spec = {"model": model, "batch": batch, "method": method, "n": n, "b": b, "threads": threads}
    out = run_worker(__file__, spec)
    if out is None:
        return float("nan"), float("nan"), float("nan")
    return float(out["peak_mib"]), float(out["cold_mib"]), float(out["cold_extra_s"])


# --------------------------------------------------------------------------------------------
# Benchmark driver
# --------------------------------------------------------------------------------------------


@dataclass
class Row:
    model: str
    batch: int
    n: int
    b: int
    method: str
    wall_s: float
    cpu_s: float
    peak_mib: float = float("nan")
    cold_mib: float = float("nan")
    cold_extra_s: float = float("nan")


def time_config(model_name: str, batch: int, n: int, b: int, repeats: int) -> list[Row]:
    """Best-of-``repeats`` wall and CPU time per method, methods interleaved round-robin."""
    model, x, y = build(model_name, batch)
    outputs = {m: run_method(m, model, x, y, n, b) for m in METHODS}
    walls, cpus = best_interleaved(
        [lambda m=m: run_method(m, model, x, y, n, b) for m in METHODS], repeats
    )
    wall, cpu = dict(zip(METHODS, walls)), dict(zip(METHODS, cpus))
    # sanity: the hand-written top-k map is SparseSmoothGrad's map (same noise), up to ties
    diff = (outputs["grad+topk"] - outputs["SSG"]).abs().max().item()
    print(
        f"  timed {model_name} bsz={batch} n={n} b={b} (best of {repeats}); "
        f"max|grad+topk - SSG| = {diff:.1e}",
        flush=True,
    )
    return [Row(model_name, batch, n, b, m, wall[m], cpu[m]) for m in METHODS]


def print_table(rows: list[Row]) -> None:
    header = (
        f"{'model':<9} {'bsz':>3} {'n':>5} {'b':>4}  {'method':<11} {'wall s':>7} {'/grad':>6} "
        f"{'/NT':>5} {'cpu s':>7} {'/grad':>6} {'/NT':>5} {'peak MiB':>8} {'cold MiB':>8} "
        f"{'cold +s':>7}"
    )
    print(header)
    print("-" * len(header))
    groups: dict[tuple, dict[str, Row]] = {}
    for r in rows:
        groups.setdefault((r.model, r.batch, r.n, r.b), {})[r.method] = r
    for by_method in groups.values():
        g, nt = by_method["grad"], by_method["NoiseTunnel"]
        for m in METHODS:
            r = by_method[m]
            print(
                f"{r.model:<9} {r.batch:>3} {r.n:>5} {r.b:>4}  {m:<11} {r.wall_s:>7.3f} "
                f"{r.wall_s / g.wall_s:>6.2f} {r.wall_s / nt.wall_s:>5.2f} {r.cpu_s:>7.3f} "
                f"{r.cpu_s / g.cpu_s:>6.2f} {r.cpu_s / nt.cpu_s:>5.2f} {r.peak_mib:>8.1f} "
                f"{r.cold_mib:>8.1f} {r.cold_extra_s:>7.2f}"
            )
        s = by_method["SSG+cert"]
        verdict = [
            ("<= 1.10 x grad", s.wall_s <= 1.10 * g.wall_s, s.cpu_s <= 1.10 * g.cpu_s),
            ("<= NoiseTunnel", s.wall_s <= nt.wall_s, s.cpu_s <= nt.cpu_s),
        ]
        print(
            "  SSG+cert "
            + "; ".join(
                f"{name}: wall {'yes' if w else 'NO'}, cpu {'yes' if c else 'NO'}"
                for name, w, c in verdict
            )
        )
        print()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="reduced configurations")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory subprocesses")
    parser.add_argument("--repeats", type=int, default=None, help="timed calls per method")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)"
    )
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    parser.add_argument("--memory-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.memory_worker is not None:
        print(json.dumps(memory_worker(json.loads(args.memory_worker))))
        return
    if args.threads:
        torch.set_num_threads(args.threads)
    print(environment())
    if args.quick:
        # (model, batch, n, nt_samples_batch_sizes, repeats)
        configs = [
            ("SmallCNN", 1, 256, (64, 256), args.repeats or 5),
            ("ResNet-18", 1, 16, (8, 16), args.repeats or 1),
        ]
        flat_ns, flat_b = (256, 1024), 64
    else:
        configs = [
            ("SmallCNN", 1, 1024, (64, 256), args.repeats or 20),
            ("SmallCNN", 4, 1024, (64, 256), args.repeats or 5),
            ("ResNet-18", 1, 64, (8, 32), args.repeats or 2),
        ]
        flat_ns, flat_b = (256, 1024, 4096), 64

    print(
        f"sigma = {SIGMA}, sparsity = {SPARSITY}, alpha = {ALPHA}. Times: best of the timed "
        "calls after 1 warm-up (wall and process CPU time). peak MiB: RSS high-water mark "
        "above the RSS before the call, second call in a fresh process; cold MiB: the same "
        "for the first call (one-time lazy imports included); cold +s: its extra seconds."
    )
    t_start = time.perf_counter()
    rows: list[Row] = []
    for model_name, batch, n, bs, repeats in configs:
        for b in bs:
            rows.extend(time_config(model_name, batch, n, b, repeats))
    if not args.no_memory:
        for r in rows:
            r.peak_mib, r.cold_mib, r.cold_extra_s = measure_memory(
                r.model, r.batch, r.method, r.n, r.b, args.threads
            )
        print("  memory measured", flush=True)
    print()
    print_table(rows)

    if not args.no_memory:
        flat_methods = ("grad", "NoiseTunnel", "SSG+cert")
        print(
            f"Peak MiB vs nt_samples (SmallCNN, bsz=1, nt_samples_batch_size={flat_b}, "
            "steady state):"
        )
        print(f"{'n':>6}  " + "  ".join(f"{m:>11}" for m in flat_methods))
        for n in flat_ns:
            peaks = [
                measure_memory("SmallCNN", 1, m, n, flat_b, args.threads)[0] for m in flat_methods
            ]
            print(f"{n:>6}  " + "  ".join(f"{p:>11.1f}" for p in peaks))
    print(f"\ntotal wall time {time.perf_counter() - t_start:.0f} s")
    if args.json:
        with open(args.json, "w") as f:
            json.dump([asdict(r) for r in rows], f, indent=1)


if __name__ == "__main__":
    main()
