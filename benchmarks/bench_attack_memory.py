"""Peak memory of an attack on SparseSmoothGrad as ``n_guide`` grows (issue 11 done-criterion).

``AttributionPGD(model, "sparse_smoothgrad", softplus_beta=10)`` (or, with ``--attack
manipulation``, ``ExplanationManipulation(model, "sparse_smoothgrad")`` with its softplus
``beta_growth``, toward a fixed random target map) on the SmallCNN of
``_harness`` (1x28x28, random seeded weights), batch 1, ``step_num`` steps, with
``nt_samples_batch_size`` fixed: the attack direction is accumulated chunk by chunk over
replayed noise and the evaluation map is streamed, so the peak RSS should not grow with
``n_guide`` (``n_eval = n_guide``). Each configuration runs in a fresh process (glibc told to
return freed memory at once, see ``_harness``); ``peak MiB`` is the RSS high-water mark of the
second ``perturb`` call above the RSS before it.

Usage::

    python benchmarks/bench_attack_memory.py                     # n_guide 256 and 4096
    python benchmarks/bench_attack_memory.py --n-guide 256 1024 4096 --chunk 64 --step-num 1
    python benchmarks/bench_attack_memory.py --attack manipulation

Run it with ``PYTHONPATH=<checkout>`` to measure a checkout other than the installed one.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import torch

from captum_certified.robust import AttributionPGD, ExplanationManipulation

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _harness import PeakRSS, build, git_revision, run_worker  # noqa: E402


def attack_once(spec: dict) -> None:
    model, x, y = build("SmallCNN", spec["batch"])
    explainer_kwargs = {
        "n_guide": spec["n_guide"],
        "stdevs": 0.25,
        "sparsity": 0.1,
        # --legacy: a checkout from before the sampling core (no chunking option)
        **({} if spec["legacy"] else {"nt_samples_batch_size": spec["chunk"]}),
    }
    if spec.get("attack") == "manipulation":
        manipulation = ExplanationManipulation(
            model,
            "sparse_smoothgrad",
            lower_bound=0.0,
            upper_bound=1.0,
            explainer_kwargs=explainer_kwargs,
        )
        target_map = torch.rand(x.shape, generator=torch.Generator().manual_seed(2))
        manipulation.perturb(
            x,
            step_size=1e-3,
            step_num=spec["steps"],
            target=y,
            target_map=target_map,
            generator=torch.Generator().manual_seed(0),
        )
        return
    attack = AttributionPGD(
        model,
        "sparse_smoothgrad",
        objective="topk",
        k=0.1,
        lower_bound=0.0,
        upper_bound=1.0,
        softplus_beta=10.0,
        explainer_kwargs=explainer_kwargs,
    )
    attack.perturb(
        x,
        1.0,
        0.25,
        spec["steps"],
        target=y,
        norm="L2",
        generator=torch.Generator().manual_seed(0),
    )


def memory_worker(spec: dict) -> dict:
    torch.set_num_threads(spec["threads"])
    with PeakRSS() as cold:
        attack_once(spec)
    with PeakRSS() as warm:
        t0 = time.perf_counter()
        attack_once(spec)
        seconds = time.perf_counter() - t0
    return {"peak_mib": warm.mib, "cold_mib": cold.mib, "seconds": seconds}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--attack", choices=["pgd", "manipulation"], default="pgd")
    parser.add_argument("--n-guide", type=int, nargs="+", default=[256, 4096])
    parser.add_argument("--chunk", type=int, default=64, help="nt_samples_batch_size")
    parser.add_argument("--step-num", type=int, default=1)
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--legacy", action="store_true", help="package without the chunk option (baseline)"
    )
    parser.add_argument("--memory-worker", type=str, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_worker is not None:
        print(json.dumps(memory_worker(json.loads(args.memory_worker))))
        return
    print(f"# {git_revision()}; torch {torch.__version__}; threads {args.threads}")
    name = "AttributionPGD" if args.attack == "pgd" else "ExplanationManipulation"
    print(f"# {name} sparse_smoothgrad, SmallCNN, batch {args.batch}, step_num {args.step_num}")
    print(f"{'n_guide':>8} {'chunk':>6} {'peak MiB':>9} {'cold MiB':>9} {'seconds':>8}")
    peaks = []
    for n in args.n_guide:
        spec = {
            "n_guide": n,
            "chunk": args.chunk,
            "steps": args.step_num,
            "batch": args.batch,
            "threads": args.threads,
            "legacy": args.legacy,
            "attack": args.attack,
        }
        out = run_worker(__file__, spec)
        if out is None:
            print(f"{n:>8} {args.chunk:>6} {'failed':>9}")
            continue
        peaks.append(out["peak_mib"])
        print(
            f"{n:>8} {args.chunk:>6} {out['peak_mib']:>9.1f} {out['cold_mib']:>9.1f} "
            f"{out['seconds']:>8.1f}"
        )
    if len(peaks) >= 2 and peaks[0] > 0:
        print(f"# peak at largest / smallest n_guide: {peaks[-1] / peaks[0]:.3f}")


if __name__ == "__main__":
    main()
