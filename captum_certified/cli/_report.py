"""Summaries and plots of a results file."""

from __future__ import annotations

import statistics
from pathlib import Path

from captum_certified.cli._results import COLUMNS, parse_rows


def summarize(results: Path, level: float = 0.5, norm: str = "l2") -> dict:
    """Per-radius mean / median certified value, accuracy and time per example."""
    rows = parse_rows(results.read_text())
    if not rows:
        raise ValueError(f"{results} holds no results")
    by_radius: dict[float, list[float]] = {}
    examples: dict[int, dict] = {}
    for row in rows:
        by_radius.setdefault(row["radius"], []).append(row["certified"])
        examples.setdefault(row["index"], row)
    per_example = list(examples.values())
    return {
        "metric": rows[0]["metric"],
        "level": level,
        "norm": norm,
        "n_examples": len(per_example),
        "accuracy": sum(r["correct"] for r in per_example) / len(per_example),
        "seconds_per_example": sum(r["seconds"] for r in per_example) / len(per_example),
        "median_radius_at_level": statistics.median(r["radius_at_level"] for r in per_example),
        "radii": sorted(by_radius),
        "mean": [statistics.fmean(by_radius[r]) for r in sorted(by_radius)],
        "median": [statistics.median(by_radius[r]) for r in sorted(by_radius)],
        "q25": [_quantile(by_radius[r], 0.25) for r in sorted(by_radius)],
        "q75": [_quantile(by_radius[r], 0.75) for r in sorted(by_radius)],
    }


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def format_summary(summary: dict) -> str:
    name = {
        "topk_overlap": "certified top-K overlap",
        "cosine_lower_bound": "certified cosine similarity",
    }.get(summary["metric"], summary["metric"])
    lines = [
        f"examples: {summary['n_examples']}   clean accuracy: {summary['accuracy']:.3f}   "
        f"time per example: {summary['seconds_per_example']:.3f} s",
        f"{name} vs {summary['norm']} radius (mean / median / 25-75 %):",
        f"  {'radius':>8}  {'mean':>6}  {'median':>6}  {'q25':>6}  {'q75':>6}",
    ]
    for r, mean, med, q25, q75 in zip(
        summary["radii"], summary["mean"], summary["median"], summary["q25"], summary["q75"]
    ):
        lines.append(f"  {r:8.3f}  {mean:6.3f}  {med:6.3f}  {q25:6.3f}  {q75:6.3f}")
    what = "overlap" if summary["metric"] == "topk_overlap" else "cosine"
    lines.append(
        f"median certified radius at {what} >= {summary['level']}: "
        f"{summary['median_radius_at_level']:.3f}"
    )
    return "\n".join(lines)


def plot_summary(summary: dict, path: Path) -> Path | None:
    """Write a PNG of the certified value vs radius; None if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.5), dpi=120)
    ax.fill_between(summary["radii"], summary["q25"], summary["q75"], alpha=0.25, label="25-75 %")
    ax.plot(summary["radii"], summary["median"], marker="o", label="median")
    ax.plot(summary["radii"], summary["mean"], linestyle="--", label="mean")
    ax.set_xlabel(f"{summary['norm']} radius")
    ax.set_ylabel(
        "certified top-K overlap"
        if summary["metric"] == "topk_overlap"
        else "certified cosine similarity"
    )
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path


__all__ = ["COLUMNS", "format_summary", "plot_summary", "summarize"]
