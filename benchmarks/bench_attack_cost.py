"""Cost and strength of ``captum-certified attack`` per example.

Certifies ``--n-examples`` test examples with the default ``certify`` settings (into a
temporary folder, or ``--run``), then runs ``attack`` on them in this process once per
``--settings`` entry and prints, for each: wall and process-CPU seconds per example, where the
time goes (guide gradients on the surrogate, scoring iterates on the original model, label
checks, the final ``--eval-samples`` re-estimates) and the attacked top-K overlap per radius.
All settings attack the same examples of the same run, so their overlaps compare the attacks'
strength directly (lower is stronger; a faster attack must not be a weaker one).

Two models:

* ``digits``: the embedded default (DigitsCNN, 1x8x8, d = 64);
* ``cnn32``: a CNN of the size a tutorial trains on 3x32x32 images (two 3x3 convolutions with
  16 and 32 channels, max pooling, a linear head; 25,578 parameters, d = 3072), trained here
  for 4 epochs on scikit-learn's digits upsampled to 3x32x32 (no download).

    python benchmarks/bench_attack_cost.py --model cnn32 --n-examples 4 --threads 1 \\
        --settings "steps=20 restarts=2 guide=64 eval=2048" default

A setting is ``default`` (the command's defaults) or ``key=value`` pairs over ``steps``,
``restarts``, ``guide``, ``eval`` (the options ``--step-num``, ``--num-restarts``,
``--guide-samples``, ``--eval-samples``). ``--threads`` sets ``torch.set_num_threads`` (the
command then sets the run's recorded ``--threads``, 1 by default). On a machine whose cores are
shared with other jobs, read the CPU column.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from captum_certified.cli._main import main

STAGES = {
    "guide gradients (surrogate, create_graph)": "loss_gradient",
    "scoring iterates (original model, n_eval)": "objective_strength",
    "label checks": "keeps_label",
    "random starts": "search_start",
    "final re-estimates (--eval-samples)": "_estimate",
}
OPTIONS = {"steps": "--step-num", "restarts": "--num-restarts", "guide": "--guide-samples"}
OPTIONS["eval"] = "--eval-samples"

CNN32 = """
from pathlib import Path

import torch
from torch import nn


def build():
    return nn.Sequential(
        nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 8 * 8, 10),
    )


def factory():
    model = build()
    weights = Path(__file__).with_name("cnn32.pt")
    model.load_state_dict(torch.load(weights, weights_only=True))
    return model
"""


def make_cnn32(folder: Path) -> list[str]:
    """Train the 3x32x32 CNN, write ``cnn32.py``, its weights and the test tensors to
    ``folder``; returns the ``certify`` options that use them."""
    from captum_certified.cli import load_digits_split

    (folder / "cnn32.py").write_text(CNN32)
    namespace: dict = {}
    exec(CNN32, namespace)  # noqa: S102 - our own source, written above

    def to32(x: torch.Tensor) -> torch.Tensor:
        return nn.functional.interpolate(x, size=(32, 32), mode="bilinear").repeat(1, 3, 1, 1)

    x_train, y_train, x_test, y_test = load_digits_split(seed=0)
    x_train, x_test = to32(x_train), to32(x_test)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = namespace["build"]()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    order = torch.Generator().manual_seed(0)
    for _ in range(4):
        for idx in torch.randperm(len(x_train), generator=order).split(64):
            loss = nn.functional.cross_entropy(model(x_train[idx]), y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        accuracy = (model(x_test).argmax(1) == y_test).float().mean().item()
    print(f"cnn32: test accuracy {accuracy:.3f}")
    torch.save(model.state_dict(), folder / "cnn32.pt")
    torch.save((x_test, y_test), folder / "data32.pt")
    return ["--model", "cnn32:factory", "--data", f"tensors:{folder / 'data32.pt'}"]


def _cumulative(stats: pstats.Stats, name: str) -> float:
    total = 0.0
    for (_, _, func), (_, _, _, cum, _) in stats.stats.items():  # type: ignore[attr-defined]
        if func == name:
            total += cum
    return total


def _setting_args(setting: str) -> list[str]:
    if setting == "default":
        return []
    args = []
    for pair in setting.split():
        key, _, value = pair.partition("=")
        if key not in OPTIONS:
            raise SystemExit(f"unknown setting {key!r}: use {sorted(OPTIONS)}")
        args += [OPTIONS[key], value]
    return args


def attack_once(run_dir: Path, n_examples: int, threads: int, setting: str) -> dict:
    for stale in (run_dir / "attack.tsv", run_dir / "parts" / "attack-0.tsv"):
        if stale.exists():
            stale.unlink()
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    profiler = cProfile.Profile()
    wall, cpu = time.perf_counter(), time.process_time()
    profiler.enable()
    args = ["attack", str(run_dir), "--n-examples", str(n_examples), "--no-progress"]
    code = main(args + _setting_args(setting))
    profiler.disable()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    torch.set_num_threads(before)
    assert code == 0
    summary = json.loads((run_dir / "attack_summary.json").read_text())
    stats = pstats.Stats(profiler)
    total = stats.total_tt  # type: ignore[attr-defined]
    print(f"\n== attack setting: {setting}")
    print(f"wall: {wall / n_examples:.2f} s/example   cpu: {cpu / n_examples:.2f} s/example")
    print("where the time goes (cumulative, profiled wall time; nested stages overlap):")
    for label, func in STAGES.items():
        seconds = _cumulative(stats, func)
        print(f"  {label:45s} {seconds / n_examples:7.2f} s/example  {seconds / total:6.1%}")
    print("attacked top-K overlap per radius (mean over the examples):")
    print("  " + " ".join(f"{r:6.3f}" for r in summary["radii"]))
    print("  " + " ".join(f"{e:6.3f}" for e in summary["empirical"]))
    mean = sum(summary["empirical"]) / len(summary["empirical"])
    print(f"  mean over radii: {mean:.4f}")
    return {"setting": setting, "cpu": cpu / n_examples, "wall": wall / n_examples, "mean": mean}


def run(model: str, n_examples: int, threads: int, run_dir: Path | None, settings: list[str]):
    tmp = Path(tempfile.mkdtemp(prefix="bench_attack_"))
    cwd = os.getcwd()
    try:
        certify_args: list[str] = []
        if model == "cnn32":
            certify_args = make_cnn32(tmp)
            os.chdir(tmp)  # `--model cnn32:factory` is found in the current folder
        if run_dir is None:
            run_dir = tmp / "run"
        run_dir = run_dir.resolve() if run_dir.is_absolute() else Path(cwd) / run_dir
        if not (run_dir / "results.tsv").exists():
            args = ["certify", "--out", str(run_dir), "--n-examples", str(n_examples)]
            assert main(args + certify_args + ["--no-progress"]) == 0
        rows = [attack_once(run_dir, n_examples, threads, s) for s in settings]
        print(f"\nsummary ({model}, {n_examples} examples, same examples for every setting):")
        print(f"  {'cpu s/ex':>9} {'wall s/ex':>9} {'mean attacked overlap':>22}  setting")
        for r in rows:
            print(f"  {r['cpu']:9.2f} {r['wall']:9.2f} {r['mean']:22.4f}  {r['setting']}")
    finally:
        os.chdir(cwd)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--model", choices=["digits", "cnn32"], default="digits")
    parser.add_argument("--n-examples", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--run", type=Path, default=None, help="reuse a certify run folder")
    parser.add_argument("--settings", nargs="+", default=["default"])
    options = parser.parse_args()
    sys.exit(run(options.model, options.n_examples, options.threads, options.run, options.settings))
