"""The ``compare`` run: several ``train`` runs side by side (table, JSON and a plot)."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from captum_certified.cli._checks import check_count, check_examples, check_model_on_data
from captum_certified.cli._config import ConfigError
from captum_certified.cli._run_folder import claim, locked, read_text, save_figure, write_text
from captum_certified.cli._sources import check_model_named
from captum_certified.cli._train import load_trained

COLUMNS = (
    "run",
    "loss",
    "accuracy",
    "topk",
    "kendall",
    "attack_success",
    "n_attacked",
    "certified",
    "seconds_per_epoch",
)


def _certified_overlap(model, x, y, radii, k, nt_samples, stdevs, seed) -> list[float]:
    """Mean certified top-K overlap of SparseSmoothGrad (sparsity 0.2) at each radius, over
    the correctly classified examples of ``x`` (the class explained is the label)."""
    from captum_certified.attr import SparseSmoothGrad

    with torch.no_grad():
        correct = model(x).argmax(1) == y
    x, y = x[correct], y[correct]
    if len(x) == 0:
        return [math.nan] * len(radii)
    ssg = SparseSmoothGrad(model, sparsity=0.2)
    _, cert = ssg.attribute(
        x,
        target=y,
        nt_samples=nt_samples,
        nt_samples_batch_size=256,
        stdevs=stdevs,
        generator=torch.Generator().manual_seed(seed),
        return_certificate=True,
    )
    curve = cert.overlap_curve(k, torch.tensor(radii, dtype=torch.float64))
    return curve.mean(dim=0).tolist()


def run_compare(
    runs: list[Path],
    out: Path,
    *,
    n_examples: int = 100,
    radius: float = 0.3,
    step_num: int = 20,
    step_size: float = 0.03,
    num_restarts: int = 1,
    n_steps: int = 16,
    k: float = 0.125,
    radii: list[float] | None = None,
    nt_samples: int = 1024,
    noise_scale: float = 0.5,
    seed: int = 0,
    model: list[str] | None = None,
    progress: bool = True,
    echo=print,
) -> list[dict]:
    """Evaluate every run on the same test examples and write ``compare.{tsv,json,png}``.

    A run whose model is a ``module:callable`` is evaluated only when ``model`` names it
    (a run folder is data; the command line decides what code runs). ``out`` must be a new
    or empty folder or an earlier ``compare`` output."""
    from captum_certified.cli._digits import load_digits_split
    from captum_certified.cli._train import train_split
    from captum_certified.train import attribution_robustness_eval

    radii = [0.1, 0.2] if radii is None else list(radii)
    if n_examples < 1 or step_num < 1 or num_restarts < 1 or n_steps < 2 or nt_samples < 1:
        raise ConfigError(
            "--n-examples, --step-num, --num-restarts, --nt-samples must be >= 1 and --n-steps >= 2"
        )
    if not (radius > 0 and step_size > 0 and noise_scale > 0 and 0 < k):
        raise ConfigError("--radius, --step-size, --noise-scale and --k must be > 0")
    kk = int(k) if k >= 1 else float(k)
    claim(out, "compare", create=False)
    for run in runs:
        recorded = run / "train_config.json"
        if recorded.is_file():
            try:
                spec = json.loads(read_text(recorded)).get("model", "digits")
            except (ValueError, AttributeError):
                spec = "digits"
            check_model_named(str(spec), model, str(recorded))
    # every run is loaded and checked before the first (slow) evaluation
    loaded = []
    for run in runs:
        net, config = load_trained(run)
        if config.data == "digits":
            _, _, x, y = load_digits_split(seed=0)
        else:
            _, _, x, y = train_split(config.data, config.seed, config.image_size)
        d, shape = check_examples(x)
        check_count(kk, d, "--k", shape)
        check_model_on_data(net, x, y, torch.device("cpu"))
        loaded.append((run, net, config, x[:n_examples], y[:n_examples]))
    rows = []
    iterator: Any = loaded
    if progress:
        from tqdm import tqdm

        iterator = tqdm(loaded, desc="compare", unit="run", file=sys.stderr)
    for run, net, config, x, y in iterator:
        started = time.perf_counter()
        robust = attribution_robustness_eval(
            net,
            x,
            y,
            radius=radius,
            step_size=step_size,
            step_num=step_num,
            num_restarts=num_restarts,
            k_eval=kk,
            n_steps=n_steps,
            generator=torch.Generator().manual_seed(seed),
        )
        certified = _certified_overlap(net, x, y, radii, kk, nt_samples, noise_scale, seed)
        history = json.loads(read_text(run / "history.json"))
        rows.append(
            {
                "run": str(run),
                "loss": config.loss,
                "accuracy": robust["accuracy"],
                "topk": robust["topk"],
                "topk_std": robust["topk_std"],
                "kendall": robust["kendall"],
                "attack_success": robust["success_rate"],
                "n_attacked": robust["n_attacked"],
                "certified": dict(zip([str(r) for r in radii], certified)),
                "seconds_per_epoch": sum(h["seconds"] for h in history) / len(history),
                "eval_seconds": time.perf_counter() - started,
            }
        )
    claim(out, "compare")
    with locked(out):
        write_text(out / "compare.json", json.dumps(rows, indent=2) + "\n")
        write_text(out / "compare.tsv", format_table(rows, radii, sep="\t") + "\n")
        plot = _plot(rows, radii, out / "compare.png", legend(radius, k, noise_scale))
    echo(format_table(rows, radii))
    echo(legend(radius, k, noise_scale))
    if plot:
        echo(f"plot: {plot}")
    return rows


def legend(radius: float, k: float, noise_scale: float) -> str:
    """What each column of the table and each bar group of ``compare.png`` means."""
    kk = f"{int(k)}" if k >= 1 else f"{k:g} of the features"
    return (
        f"accuracy: clean test accuracy. topk: top-k intersection (k = {kk}) of the "
        f"IntegratedGradients map (channels summed) before and after Ghorbani et al.'s top-k "
        f"attack in an l_inf ball of radius {radius:g} (1: the attack moved nothing). "
        f"kendall: Kendall's tau between those two maps. success: share of the correctly "
        f"classified examples for which the attack found a perturbation keeping the label (topk "
        f"and kendall average over those). cert@r: certified top-K overlap of SparseSmoothGrad "
        f"(sigma = {noise_scale:g}) at l2 radius r, a lower bound for any perturbation."
    )


def format_table(rows: list[dict], radii: list[float], sep: str = "  ") -> str:
    head = ["loss", "accuracy", "topk", "kendall", "success"]
    head += [f"cert@{r:g}" for r in radii] + ["s/epoch", "run"]
    lines = [sep.join(f"{h:>11}" if sep == "  " else h for h in head)]
    for r in rows:
        cells = [r["loss"], r["accuracy"], r["topk"], r["kendall"], r["attack_success"]]
        cells += [r["certified"][str(x)] for x in radii] + [r["seconds_per_epoch"], r["run"]]
        text = [c if isinstance(c, str) else f"{c:.4f}" for c in cells]
        lines.append(sep.join(f"{t:>11}" if sep == "  " else t for t in text))
    return "\n".join(lines)


def _plot(rows: list[dict], radii: list[float], path: Path, note: str = "") -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - optional dependency
        return None
    fig = compare_figure(rows, radii, note)
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return path


def compare_figure(rows: list[dict], radii: list[float], note: str = "") -> Any:
    """The bar chart of ``compare.png``: every metric in [0, 1] (higher is more robust or more
    accurate), one bar per run, the legend of the metrics below."""
    import textwrap

    import matplotlib.pyplot as plt

    metrics = ["accuracy", "topk", "kendall"] + [f"cert@{r:g}" for r in radii]
    fig, ax = plt.subplots(figsize=(1.6 * len(metrics) + 2, 3.5))
    width = 0.8 / max(len(rows), 1)
    for i, r in enumerate(rows):
        values = [r["accuracy"], r["topk"], r["kendall"]] + [r["certified"][str(x)] for x in radii]
        ax.bar([j + i * width for j in range(len(metrics))], values, width, label=r["loss"])
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(metrics))], metrics)
    ax.set_ylim(0, 1)
    ax.set_ylabel("value (higher is better)")
    ax.legend(fontsize=8)
    ax.set_title("robust-attribution training: side by side")
    wrapped = textwrap.fill(note, 140)
    lines = wrapped.count("\n") + 1
    fig.set_size_inches(fig.get_size_inches()[0], 3.5 + 0.14 * lines)
    fig.text(0.01, 0.01, wrapped, fontsize=6, va="bottom")
    fig.tight_layout(rect=(0, 0.03 + 0.14 * lines / fig.get_size_inches()[1], 1, 1))
    return fig
