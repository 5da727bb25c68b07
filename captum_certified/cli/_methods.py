"""How each method certifies one example for the command line."""

from __future__ import annotations

import torch
from torch import nn

from captum_certified._utils.validation import resolve_count
from captum_certified.attr import SparseSmoothGrad
from captum_certified.cli._config import RunConfig


def certify_example(
    model: nn.Module, x: torch.Tensor, label: int, config: RunConfig, index: int
) -> dict:
    """Certify one example (batch of one); returns the prediction and per-radius values."""
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + index)
    with torch.no_grad():
        predicted = int(model(x).argmax(dim=1).item())
    target: object = {"label": label, "predicted": predicted}.get(config.target, "noisy_argmax")
    sparsity = _count_or_fraction(config.sparsity)
    k = _count_or_fraction(config.k)
    ssg = SparseSmoothGrad(model, sparsity=sparsity)
    _, cert = ssg.attribute(
        x,
        target=target,
        nt_samples=config.nt_samples,
        nt_samples_batch_size=config.nt_samples_batch_size,
        stdevs=config.stdevs,
        return_certificate=True,
        alpha=config.alpha,
        bound=None if config.bound == "auto" else config.bound,
        generator=generator,
    )
    radii = torch.tensor(config.radii, dtype=torch.float64)
    curve = cert.overlap_curve(k, radii)[0]
    k_count = resolve_count(k, cert.num_features, "k")
    return {
        "predicted": predicted,
        "metric": "topk_overlap",
        "certified": curve.tolist(),
        "certified_count": [round(v * k_count) for v in curve.tolist()],
        "k_count": k_count,
        "radius_at_half": float(cert.certified_radius(k, 0.5)[0]),
    }


def _count_or_fraction(value: float) -> int | float:
    return int(value) if value >= 1 else float(value)
