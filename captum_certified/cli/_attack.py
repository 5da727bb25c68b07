"""The ``attack`` run: empirical top-K overlap under Levine et al.'s l2 attack, next to the
certified overlap of a finished ``certify`` run."""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

import torch

from captum_certified.attr import SparseSmoothGrad
from captum_certified.cli._config import ConfigError, RunConfig
from captum_certified.cli._results import (
    ATTACK_COLUMNS,
    append_example,
    clean_part_file,
    format_rows,
    parse_rows,
)
from captum_certified.cli._sources import load_data, load_model
from captum_certified.metrics import topk_intersection
from captum_certified.robust import AttributionL2Attack


def _count_or_fraction(value: float) -> int | float:
    return int(value) if value >= 1 else float(value)


def run_attack(
    run: Path,
    *,
    n_examples: int = 10,
    step_num: int = 20,
    num_restarts: int = 2,
    n_guide: int = 64,
    eval_samples: int = 2048,
    box: tuple[float, float] | None = None,
    softplus_beta: float = 10.0,
    progress: bool = True,
    echo=print,
) -> dict:
    """Attack the first ``n_examples`` examples of a certify run at each positive radius.

    For every radius the attack (on a Softplus(``softplus_beta``) copy of the model, whose
    second derivatives do not vanish, through a Monte-Carlo guide of
    ``n_guide`` samples) tries to move the smoothed map's top-K; the attacked and the clean
    maps are then re-estimated with ``eval_samples`` fresh samples and their top-K overlap is
    recorded next to the certified one. Empirical overlaps are Monte-Carlo point estimates:
    the certificate speaks about expected maps, so a small shortfall can be sampling error.
    """
    config_file = run / "config.toml"
    results_file = run / "results.tsv"
    if not config_file.exists() or not results_file.exists():
        raise ConfigError(f"{run} is not a finished certify run (no config.toml / results.tsv)")
    config = RunConfig.load(config_file).validate()
    if config.method != "sparse_smoothgrad":
        raise ConfigError("attack supports runs of --method sparse_smoothgrad (l2) for now")
    for name, value in (
        ("--n-examples", n_examples),
        ("--steps", step_num),
        ("--restarts", num_restarts),
        ("--guide-samples", n_guide),
        ("--eval-samples", eval_samples),
    ):
        if value < 1:
            raise ConfigError(f"{name} must be >= 1")
    certified = {}
    for row in parse_rows(results_file.read_text()):
        certified[(row["index"], row["radius"])] = row["certified"]
    radii = [r for r in config.radii if r > 0]
    if not radii:
        raise ConfigError("the run has no positive radius to attack")
    indices = sorted({i for i, _ in certified})[:n_examples]
    model = load_model(config.model, seed=config.seed)
    x_all, y_all = load_data(config.data, config.image_size)
    sparsity, k = _count_or_fraction(config.sparsity), _count_or_fraction(config.k)
    lower, upper = box if box is not None else (float("-inf"), float("inf"))

    part = run / "parts" / "attack-0.tsv"
    part.parent.mkdir(exist_ok=True)
    done = clean_part_file(part, len(radii), ATTACK_COLUMNS)
    todo = [i for i in indices if i not in done]
    iterator = todo
    if progress:
        from tqdm import tqdm

        iterator = tqdm(todo, desc="attack", unit="example", file=sys.stderr)
    ssg = SparseSmoothGrad(model, sparsity=sparsity)
    for index in iterator:
        started = time.perf_counter()
        x = x_all[index : index + 1]
        label = int(y_all[index])
        with torch.no_grad():
            predicted = int(model(x).argmax(1))
        target = label if config.target == "label" else predicted
        seed = config.seed * 1_000_003 + index

        clean_map = _estimate(ssg, x, target, config, eval_samples, seed)
        rows = []
        for j, radius in enumerate(radii):
            attack = AttributionL2Attack(
                model,
                explainer="sparse_smoothgrad",
                k=k,
                lower_bound=lower,
                upper_bound=upper,
                explainer_kwargs={
                    "stdevs": config.stdevs,
                    "sparsity": sparsity,
                    "n_guide": n_guide,
                },
                softplus_beta=softplus_beta,
            )
            x_adv, report = attack.perturb(
                x,
                radius=radius,
                step_num=step_num,
                target=target,
                num_restarts=num_restarts,
                generator=torch.Generator().manual_seed(seed),
                return_report=True,
            )
            attacked_map = _estimate(
                ssg, x_adv, target, config, eval_samples, seed + 7919 * (1 + j)
            )
            empirical = topk_intersection(clean_map, attacked_map, k=k)
            rows.append(
                {
                    "index": index,
                    "label": label,
                    "radius": radius,
                    "certified": certified.get((index, radius), float("nan")),
                    "empirical": float(empirical[0]),
                    "attack_norm": float((x_adv - x).norm()),
                    "label_kept": int(bool(report.label_kept[0])),
                    "seconds": time.perf_counter() - started,
                }
            )
        append_example(part, rows, ATTACK_COLUMNS)
    rows = [r for r in parse_rows(part.read_text(), ATTACK_COLUMNS) if r["index"] in indices]
    (run / "attack.tsv").write_text(
        "\t".join(ATTACK_COLUMNS)
        + "\n"
        + format_rows(sorted(rows, key=lambda r: (r["index"], r["radius"])), ATTACK_COLUMNS)
    )
    summary = summarize_attack(run / "attack.tsv")
    (run / "attack_summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    echo(format_attack_summary(summary))
    return summary


def _estimate(
    ssg: SparseSmoothGrad,
    inputs: torch.Tensor,
    target: int,
    config: RunConfig,
    n: int,
    seed: int,
) -> torch.Tensor:
    """The smoothed map re-estimated with ``n`` fresh samples from a seeded generator."""
    return ssg.attribute(
        inputs,
        target=target,
        nt_samples=n,
        nt_samples_batch_size=config.nt_samples_batch_size,
        stdevs=config.stdevs,
        generator=torch.Generator().manual_seed(seed),
    )


def summarize_attack(path: Path) -> dict:
    rows = parse_rows(path.read_text(), ATTACK_COLUMNS)
    radii = sorted({r["radius"] for r in rows})
    by = {r: [row for row in rows if row["radius"] == r] for r in radii}
    return {
        "n_examples": len({r["index"] for r in rows}),
        "radii": radii,
        "certified": [statistics.fmean(x["certified"] for x in by[r]) for r in radii],
        "empirical": [statistics.fmean(x["empirical"] for x in by[r]) for r in radii],
        "below_certified": [sum(x["empirical"] < x["certified"] for x in by[r]) for r in radii],
        "label_kept": sum(r["label_kept"] for r in rows) / len(rows),
    }


def format_attack_summary(summary: dict) -> str:
    lines = [
        f"attacked examples: {summary['n_examples']}   label kept: {summary['label_kept']:.0%}",
        "top-K overlap under the l2 attack (mean over examples):",
        f"  {'radius':>8}  {'certified':>9}  {'attacked':>8}  {'attacked<certified':>18}",
    ]
    for r, c, e, b in zip(
        summary["radii"], summary["certified"], summary["empirical"], summary["below_certified"]
    ):
        lines.append(f"  {r:8.3f}  {c:9.3f}  {e:8.3f}  {b:18d}")
    lines.append(
        "(attacked values are Monte-Carlo estimates of the smoothed maps; the certificate bounds "
        "the expected maps, so it must sit below them up to sampling error)"
    )
    return "\n".join(lines)
