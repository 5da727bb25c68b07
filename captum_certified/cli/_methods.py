"""How each method certifies one example for the command line."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from captum_certified._utils.validation import resolve_count
from captum_certified.attr import RenyiRobustSmooth, SparseSmoothGrad, UniformSmoothedAttribution
from captum_certified.cli._config import RunConfig
from captum_certified.noise import GaussianNoise, resolve_noise

#: What the ``certified`` column holds for each method.
METRICS = {
    "sparse_smoothgrad": "topk_overlap",
    "renyi": "topk_overlap",
    "uniform": "cosine_lower_bound",
}


def _noise(config: RunConfig) -> dict[str, Any]:
    """The run's noise object and its scale under the engine's name for it."""
    noise = resolve_noise(config.noise)
    return {
        "noise": noise,
        "stdevs" if isinstance(noise, GaussianNoise) else "noise_scale": config.scale,
    }


def certify_example(
    model: nn.Module, x: torch.Tensor, label: int, config: RunConfig, index: int
) -> dict:
    """Certify one example (batch of one); returns the prediction and per-radius values.

    Each example draws its noise from its own generator seeded with
    ``seed * 1000003 + index``, so results do not depend on sharding or resumption.
    """
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + index)
    with torch.no_grad():
        logits = model(x)
    if not bool(torch.isfinite(logits).all()):
        from captum_certified.cli._config import ConfigError

        raise ConfigError(
            f"--model returns NaN or infinite scores on example {index}; its prediction "
            "and attributions would be meaningless"
        )
    predicted = int(logits.argmax(dim=1).item())
    target: object = {"label": label, "predicted": predicted}.get(config.target, "noisy_argmax")
    sparsity, k = config.sparsity, config.k  # int: a count, float: a fraction (validated)
    radii = torch.tensor(config.radii, dtype=torch.float64)
    common: dict[str, Any] = dict(
        target=target,
        nt_samples=config.nt_samples,
        nt_samples_batch_size=config.nt_samples_batch_size,
        return_certificate=True,
        alpha=config.alpha,
        generator=generator,
    )
    bound = None if config.bound == "auto" else config.bound
    cert: Any  # the certificate type depends on the method
    if config.method == "uniform":
        attr, cert = UniformSmoothedAttribution(model).attribute(x, **_noise(config), **common)
        curve = [float(cert.cosine_lower_bound(r)[0]) for r in config.radii]
        return {
            "map": attr.detach(),
            "predicted": predicted,
            "metric": METRICS["uniform"],
            "certified": curve,
            "certified_count": [0] * len(config.radii),
            "k_count": 0,
            "radius_at_level": float(cert.certified_radius(min_cosine=config.level)[0]),
        }
    if config.method == "renyi":
        explainer = RenyiRobustSmooth(model, sparsity=sparsity)
        attr, cert = explainer.attribute(x, **_noise(config), bound=bound, **common)
        curve = cert.overlap_curve(k, radii, norm=config.norm)[0]
        radius_at_level = cert.certified_radius(k, config.level, norm=config.norm)
    elif config.certificate == "feature":
        from pathlib import Path

        from captum_certified.cli._feature_map import certify_features, plot_feature_map

        assert not isinstance(config.radii, str)  # resolved before the run starts
        result, tri = certify_features(
            SparseSmoothGrad(model, sparsity=sparsity),
            x,
            config.radii,
            config.level,
            stdevs=config.scale,
            bound=bound,
            **common,
        )
        path = Path(config.out) / "feature_maps" / f"example-{index:05d}.png"
        plot_feature_map(x[0], tri, path, title=f"certified at r={config.radii[0]:g}")
        return {"predicted": predicted, **result}
    else:
        attr, cert = SparseSmoothGrad(model, sparsity=sparsity).attribute(
            x, stdevs=config.scale, bound=bound, **common
        )
        curve = cert.overlap_curve(k, radii)[0]
        radius_at_level = cert.certified_radius(k, config.level)
    k_count = resolve_count(k, cert.num_features, "k")
    return {
        "map": attr.detach(),
        "predicted": predicted,
        "metric": METRICS[config.method],
        "certified": curve.tolist(),
        "certified_count": [round(v * k_count) for v in curve.tolist()],
        "k_count": k_count,
        "radius_at_level": float(radius_at_level[0]),
    }
