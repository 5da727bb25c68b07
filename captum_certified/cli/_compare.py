"""The ``compare`` run: several ``train`` runs side by side (table, JSON and a plot)."""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch

from captum_certified.cli._config import ConfigError
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
    progress: bool = True,
    echo=print,
) -> list[dict]:
    """Evaluate every run on the same test examples and write ``compare.{tsv,json,png}``."""
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
    rows = []
    iterator = runs
    if progress:
        from tqdm import tqdm

        iterator = tqdm(runs, desc="compare", unit="run", file=sys.stderr)
    for run in iterator:
        model, config = load_trained(run)
        if config.data == "digits":
            _, _, x, y = load_digits_split(seed=0)
        else:
            _, _, x, y = train_split(config.data, config.seed)
        x, y = x[:n_examples], y[:n_examples]
        started = time.perf_counter()
        robust = attribution_robustness_eval(
            model,
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
        certified = _certified_overlap(model, x, y, radii, kk, nt_samples, noise_scale, seed)
        history = json.loads((run / "history.json").read_text())
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
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(rows, indent=2) + "\n")
    (out / "compare.tsv").write_text(format_table(rows, radii, sep="\t") + "\n")
    echo(format_table(rows, radii))
    plot = _plot(rows, radii, out / "compare.png")
    if plot:
        echo(f"plot: {plot}")
    return rows


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


def _plot(rows: list[dict], radii: list[float], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - optional dependency
        return None
    metrics = ["accuracy", "topk", "kendall"] + [f"cert@{r:g}" for r in radii]
    fig, ax = plt.subplots(figsize=(1.6 * len(metrics) + 2, 3.5))
    width = 0.8 / max(len(rows), 1)
    for i, r in enumerate(rows):
        values = [r["accuracy"], r["topk"], r["kendall"]] + [r["certified"][str(x)] for x in radii]
        ax.bar([j + i * width for j in range(len(metrics))], values, width, label=r["loss"])
    ax.set_xticks([j + 0.4 - width / 2 for j in range(len(metrics))], metrics)
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    ax.set_title("robust-attribution training: side by side")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
