"""Cost of ``captum-certified attack`` per example on the embedded digits default.

Certifies ``--n-examples`` test digits with the default settings (into a temporary folder,
or ``--run``), then runs the default ``attack`` on them in this process under cProfile and
prints: wall and process-CPU seconds per example, where the time goes (guide gradients on
the surrogate, scoring iterates on the original model, label checks, the final
``--eval-samples`` re-estimates) and the attacked top-K overlap per radius (compare it
before/after a change on the same examples: a faster attack must not be a weaker one).

    python benchmarks/bench_attack_cost.py [--n-examples 3] [--threads 1] [--run DIR]

``--threads`` sets ``torch.set_num_threads`` for the attack (0: leave torch's default, which
is what the command line used before it recorded a thread count). On a machine whose cores
are shared with other jobs prefer the CPU column.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import shutil
import tempfile
import time
from pathlib import Path

import torch

from captum_certified.cli._main import main

STAGES = {
    "guide gradients (surrogate, create_graph)": "loss_gradient",
    "scoring iterates (original model, n_eval)": "objective_strength",
    "label checks": "keeps_label",
    "random starts": "search_start",
    "final re-estimates (--eval-samples)": "_estimate",
}


def _cumulative(stats: pstats.Stats, name: str) -> float:
    total = 0.0
    for (_, _, func), (_, _, _, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        if func == name:
            total += cum
    return total


def run(n_examples: int, threads: int, run_dir: Path | None) -> None:
    tmp = None
    if run_dir is None:
        tmp = Path(tempfile.mkdtemp(prefix="bench_attack_"))
        run_dir = tmp / "run"
    try:
        if not (run_dir / "results.tsv").exists():
            code = main(
                ["certify", "--out", str(run_dir), "--n-examples", str(n_examples), "--no-progress"]
            )
            assert code == 0
        attack_file = run_dir / "attack.tsv"
        for stale in (attack_file, run_dir / "parts" / "attack-0.tsv"):
            if stale.exists():
                stale.unlink()
        before = torch.get_num_threads()
        if threads:
            torch.set_num_threads(threads)
        profiler = cProfile.Profile()
        wall, cpu = time.perf_counter(), time.process_time()
        profiler.enable()
        args = ["attack", str(run_dir), "--n-examples", str(n_examples), "--no-progress"]
        code = main(args)
        profiler.disable()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        torch.set_num_threads(before)
        assert code == 0
        stats = pstats.Stats(profiler)
        print(
            f"\nthreads set before the attack: {threads or before} (since issue 15 the command "
            f"sets the run's --threads itself)   examples: {n_examples}   "
            f"wall: {wall / n_examples:.2f} s/example   cpu: {cpu / n_examples:.2f} s/example"
        )
        print("where the time goes (cumulative, profiled wall time):")
        total = stats.total_tt  # type: ignore[attr-defined]
        for label, func in STAGES.items():
            seconds = _cumulative(stats, func)
            print(f"  {label:45s} {seconds / n_examples:7.2f} s/example  {seconds / total:6.1%}")
        summary = json.loads((run_dir / "attack_summary.json").read_text())
        print("attacked top-K overlap per radius (mean over the examples):")
        print("  " + " ".join(f"{r:6.2f}" for r in summary["radii"]))
        print("  " + " ".join(f"{e:6.3f}" for e in summary["empirical"]))
        print(f"  mean over radii: {sum(summary['empirical']) / len(summary['empirical']):.4f}")
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-examples", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--run", type=Path, default=None, help="reuse a certify run folder")
    options = parser.parse_args()
    run(options.n_examples, options.threads, options.run)
