"""Summaries and plots of a results file."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from captum_certified.cli._results import COLUMNS, parse_rows
from captum_certified.cli._run_folder import save_figure

#: Where the command line's parameter guide lives (printed in hints).
PARAMETER_GUIDE = "docs/cli.rst, section 'Choosing parameters'"
#: The one explanation of a near-zero certified overlap at radius 0, word for word in the
#: ``certify`` hint, docs/cli.rst and docs/parameters.rst (a test checks all three); measured by
#: ``benchmarks/parameter_sweep.py --radius-zero``.
RADIUS_ZERO_ADVICE = (
    "the confidence band of the n samples cannot separate the top-K from the features just "
    "outside it: raise --nt-samples (4x the samples halves the band) or ask about a larger --k, "
    "past the features the map cannot tell apart"
)


def summarize(results: Path, level: float = 0.5, norm: str = "l2") -> dict:
    """Per-radius mean / median certified value, accuracy and time per example.

    A run of several sparsities (a ``sparsity`` column) gets the shared entries (metric,
    examples, accuracy, time) and ``settings``: per sparsity, in the order of the file, its
    ``sparsity``, the ``alpha`` of its certificates and its own per-radius summary.
    """
    rows = parse_rows(results.read_text())
    if not rows:
        raise ValueError(f"{results} holds no results")
    if "sparsity" not in rows[0]:
        return _summary(rows, level, norm)
    by_setting: dict[tuple[type, float], list[dict]] = {}
    for row in rows:
        by_setting.setdefault((type(row["sparsity"]), row["sparsity"]), []).append(row)
    settings = [
        {
            "sparsity": group[0]["sparsity"],
            "alpha": group[0]["alpha"],
            **_summary(group, level, norm),
        }
        for group in by_setting.values()
    ]
    shared = ("metric", "level", "norm", "n_examples", "accuracy", "seconds_per_example")
    return {
        **{key: settings[0][key] for key in shared},
        "alpha": sum(s["alpha"] for s in settings),
        "settings": settings,
    }


def _summary(rows: list[dict], level: float, norm: str) -> dict:
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
    if "settings" in summary:
        settings = summary["settings"]
        lines = [_examples_line(summary)]
        lines.append(
            f"{len(settings)} sparsities from one sampling pass, each certificate at alpha "
            f"{settings[0]['alpha']:.4g}: all {len(settings)} hold together with probability "
            f">= {1 - summary['alpha']:.4g} (union bound)"
        )
        for setting in settings:
            lines.append(f"sparsity {setting['sparsity']}:")
            lines.extend("  " + line for line in _summary_lines(setting)[1:])
        return "\n".join(lines)
    return "\n".join(_summary_lines(summary))


def _examples_line(summary: dict) -> str:
    return (
        f"examples: {summary['n_examples']}   clean accuracy: {summary['accuracy']:.3f}   "
        f"time per example: {summary['seconds_per_example']:.3f} s"
    )


def _summary_lines(summary: dict) -> list[str]:
    name = {
        "topk_overlap": "certified top-K overlap",
        "cosine_lower_bound": "certified cosine similarity",
    }.get(summary["metric"], summary["metric"])
    lines = [
        _examples_line(summary),
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
    return lines


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError:
        return None
    return plt


def run_context(config: Any, n_examples: int | None = None) -> str:
    """One line naming what a plot shows: method, noise, K, sigma, n, alpha, examples, data."""
    if config is None:
        return ""
    scale = {"l2_ball": "R", "laplace": "b"}.get(config.noise, "sigma")
    k = f"K={config.k}" if config.method != "uniform" else "cosine"
    examples = f"{n_examples} examples, " if n_examples is not None else ""
    sparsities = getattr(config, "sparsities", [])
    alpha = f"alpha={config.alpha:g}"
    if len(sparsities) > 1:  # several sparsities: named, with the alpha split
        k += f", sparsity {', '.join(map(str, sparsities))}"
        alpha += f" (/{len(sparsities)} each)"
    return (
        f"{config.method} ({config.noise}), {k}, {scale}={config.scale:g}, n={config.nt_samples}, "
        f"{alpha}, {examples}data={config.data}, model={config.model}"
    )


def wrap_context(context: str, width: int = 100) -> str:
    """``context`` broken into lines of at most ``width`` characters (a long ``--model`` or
    ``--data`` spec must not run off the figure)."""
    import textwrap

    return "\n".join(textwrap.wrap(context, width, break_long_words=True))


def topk_panel(saved_map: Any, k_count: int) -> tuple[Any, str]:
    """What was certified, for the heatmap figure: the top ``k_count`` of **all** features of
    the map (channels included, as the certificate counts them) and the panel's title.

    For a colour map each pixel shows how many of its channels are in the top-K (0 to C), so
    the panel holds exactly ``k_count`` feature-channels, not the top-K of a channel sum.
    """
    import torch

    flat = saved_map.flatten()
    mask = torch.zeros(flat.numel())
    if k_count:
        mask[flat.topk(min(k_count, flat.numel())).indices] = 1.0
    mask = mask.reshape(saved_map.shape)
    title = f"top-K: {k_count} of {flat.numel()} features"
    if saved_map.dim() == 3 and saved_map.shape[0] > 1:
        return mask.sum(0), f"{title}\n(channels per pixel in it, 0-{saved_map.shape[0]})"
    return (mask[0] if saved_map.dim() == 3 else mask), title


def plot_summary(summary: dict, path: Path, config: Any = None) -> Path | None:
    """Write a PNG of the certified value vs radius; None if matplotlib is missing.

    The title names the run (method, K, noise scale, samples, alpha, examples, data); a note
    explains why the value at radius 0 is below 1 (the Monte-Carlo confidence band). A run of
    several sparsities gets one median curve (and 25-75 % band) per sparsity.
    """
    if "settings" in summary:
        lines = []
        for setting in summary["settings"]:
            label = f"sparsity {setting['sparsity']}"
            lines.append((setting["median"], {"marker": "o", "label": f"{label}, median"}))
        return _radius_plot(
            {**summary, "radii": summary["settings"][0]["radii"]},
            path,
            config,
            lines,
            xlabel=f"{summary['norm']} radius",
            ylabel="certified top-K overlap",
            title="Certified robustness",
            note="Each sparsity's certificates hold with probability 1 - alpha/m, all m together "
            "with probability 1 - alpha;\nbelow 1 at radius 0: the Monte-Carlo confidence band "
            "(more samples n narrow it).",
            bands=[(s["q25"], s["q75"]) for s in summary["settings"]],
        )
    return _radius_plot(
        summary,
        path,
        config,
        [
            (summary["median"], {"marker": "o", "label": "median"}),
            (summary["mean"], {"linestyle": "--", "label": "mean"}),
        ],
        xlabel=f"{summary['norm']} radius",
        ylabel="certified top-K overlap"
        if summary["metric"] == "topk_overlap"
        else "certified cosine similarity",
        title="Certified robustness",
        note="Below 1 at radius 0: the certificate holds with probability 1 - alpha for the "
        "expected map,\nso it pays for the Monte-Carlo confidence band (more samples n narrow "
        "it).",
        band=True,
    )


def plot_attack(summary: dict, path: Path, config: Any = None) -> Path | None:
    """Attacked vs certified top-K overlap per radius (``attack.png``)."""
    return _radius_plot(
        summary,
        path,
        config,
        [
            (summary["certified"], {"marker": "o", "label": "certified (lower bound)"}),
            (summary["empirical"], {"marker": "s", "label": "attacked (l2 attack)"}),
        ],
        xlabel="l2 radius",
        ylabel="top-K overlap (mean over examples)",
        title="Attacked vs certified overlap",
        note="The attacked overlap is an upper bound on the worst case, the certified one a "
        "lower bound;\nthe truth lies between them (up to Monte-Carlo error of the attacked "
        "maps).",
    )


def _radius_plot(
    summary: dict,
    path: Path,
    config: Any,
    lines: list[tuple[Any, dict]],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    note: str,
    band: bool = False,
    bands: list[tuple[Any, Any]] | None = None,
) -> Path | None:
    """Curves over ``summary["radii"]`` in [0, 1], titled with the run, a note below
    (``bands``: one 25-75 % band per curve, in the curve's colour)."""
    plt = _pyplot()
    if plt is None:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=120)
    if band:
        ax.fill_between(
            summary["radii"], summary["q25"], summary["q75"], alpha=0.25, label="25-75 %"
        )
    for i, (values, style) in enumerate(lines):
        (line,) = ax.plot(summary["radii"], values, **style)
        if bands is not None:
            lo, hi = bands[i]
            ax.fill_between(summary["radii"], lo, hi, alpha=0.15, color=line.get_color())
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_ylim(-0.02, 1.02)
    ax.grid(alpha=0.3)
    ax.legend()
    context = wrap_context(run_context(config, summary["n_examples"]))
    ax.set_title(f"{title}\n{context}" if context else title, fontsize=7)
    fig.text(0.01, 0.01, note, fontsize=6)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    save_figure(fig, path)
    plt.close(fig)
    return path


def plot_maps(folder: Path, path: Path, config: Any = None) -> Path | None:
    """A heatmap figure of the saved examples: input, smoothed map, its top-K."""
    plt = _pyplot()
    files = sorted(folder.glob("example-*.pt"), key=lambda p: int(p.stem.split("-")[1]))
    if plt is None or not files:
        return None
    import torch

    examples = [torch.load(f, weights_only=True) for f in files]
    if "maps" in examples[0]:  # several sparsities: each one's smoothed map
        return _plot_setting_maps(plt, examples, path, config)
    fig, axes = plt.subplots(len(examples), 3, figsize=(6.4, 2.2 * len(examples)), dpi=120)
    axes = [axes] if len(examples) == 1 else axes
    for row, ex in zip(axes, examples):
        image = _image(ex)
        heat = ex["map"].float().abs()
        top, top_title = topk_panel(heat, int(ex["k_count"]))
        colour = heat.dim() == 3 and heat.shape[0] > 1
        heat = heat.sum(0) if heat.dim() == 3 else heat
        panels = (
            (image, f"input #{ex['index']} (label {ex['label']})", "gray"),
            (heat, "smoothed map" + (" (channels summed)" if colour else ""), "viridis"),
            (top, top_title, "gray"),
        )
        for ax, (data, title, cmap) in zip(row, panels):
            ax.imshow((data.clamp(0, 1) if data is image else data).tolist(), cmap=cmap)
            ax.set_title(title, fontsize=7)
            ax.axis("off")
    return _finish(plt, fig, path, config)


def _finish(plt: Any, fig: Any, path: Path, config: Any) -> Path:
    """The run's context as the title, then the figure written (link-safe) and closed."""
    fig.suptitle(wrap_context(run_context(config), 90), fontsize=6)
    fig.tight_layout()
    save_figure(fig, path)
    plt.close(fig)
    return path


def _image(ex: dict) -> Any:
    """A saved example's input as an image array (channels last, or 2-d for one channel)."""
    image = ex["input"].float()
    image = image.permute(1, 2, 0) if image.dim() == 3 and image.shape[0] in (3, 4) else image
    return image[0] if image.dim() == 3 and image.shape[0] == 1 else image


def _plot_setting_maps(plt: Any, examples: list[dict], path: Path, config: Any) -> Path:
    """Input and each sparsity's smoothed map, one row per saved example."""
    m = len(examples[0]["sparsity"])
    fig, axes = plt.subplots(
        len(examples), m + 1, figsize=(2.2 * (m + 1), 2.2 * len(examples)), dpi=120, squeeze=False
    )
    for row, ex in zip(axes, examples):
        image = _image(ex)
        row[0].imshow(image.clamp(0, 1).tolist(), cmap="gray")
        row[0].set_title(f"input #{ex['index']} (label {ex['label']})", fontsize=7)
        for ax, sparsity, heat in zip(row[1:], ex["sparsity"], ex["maps"]):
            heat = heat.float().abs()
            heat = heat.sum(0) if heat.dim() == 3 else heat
            ax.imshow(heat.tolist(), cmap="viridis")
            ax.set_title(f"smoothed map, sparsity {sparsity}", fontsize=7)
        for ax in row:
            ax.axis("off")
    return _finish(plt, fig, path, config)


def low_certification_hint(summary: dict, config: Any, num_features: int | None = None) -> str:
    """A one-line hint when almost nothing is certified ("" otherwise); for several
    sparsities, the hint of the first one that needs it, naming it."""
    if "settings" in summary:
        for setting in summary["settings"]:
            hint = low_certification_hint(setting, config, num_features)
            if hint:
                return f"{hint} (sparsity {setting['sparsity']})"
        return ""
    radii, mean = summary["radii"], summary["mean"]
    at_zero = mean[0] if radii and radii[0] == 0 else None
    positive = [(r, m) for r, m in zip(radii, mean) if r > 0]
    if at_zero is not None and at_zero < 0.2:
        d = f" of {num_features} features" if num_features else ""
        return (
            f"hint: almost nothing is certified even at radius 0 (mean {at_zero:.3f}, "
            f"n={config.nt_samples}, K={config.k}{d}): {RADIUS_ZERO_ADVICE}; see {PARAMETER_GUIDE}"
        )
    if positive and positive[0][1] < 0.05:
        return (
            f"hint: almost nothing is certified at the smallest positive radius "
            f"{positive[0][0]:g} (mean {positive[0][1]:.3f}): the radii are large for noise "
            f"scale {config.scale:g}; "
            f"raise --noise-scale or use smaller --radii (default: auto); see {PARAMETER_GUIDE}"
        )
    return ""


__all__ = [
    "COLUMNS",
    "format_summary",
    "low_certification_hint",
    "plot_attack",
    "plot_maps",
    "plot_summary",
    "summarize",
    "topk_panel",
    "wrap_context",
]
