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
    sparsity = config.sparsities[0]  # int: a count, float: a fraction (validated)
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
    if len(config.sparsities) > 1:
        settings = _certify_settings(model, x, config, bound, common, radii)
        return {"predicted": predicted, "settings": settings}
    if x.is_floating_point() and config.method == "uniform":
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
    if x.is_floating_point() and config.certificate == "feature":
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
    # sparse_smoothgrad, renyi, or token ids (noise at the embedding, per-token top-K)
    attr, cert = _explainer(model, x, config, sparsity).attribute(
        x, **_method_noise(config), bound=bound, **common
    )
    return {"predicted": predicted, **_topk_result(attr, cert, config, radii)}


def _method_noise(config: RunConfig) -> dict[str, Any]:
    """The noise arguments of the top-K methods: renyi's noise object and scale, else
    Gaussian ``stdevs``."""
    return _noise(config) if config.method == "renyi" else {"stdevs": config.scale}


def _topk_result(attr: torch.Tensor, cert: Any, config: RunConfig, radii: torch.Tensor) -> dict:
    """What a top-K certificate answers for the run: the overlap curve at ``radii`` (as a
    fraction and a count of the top K) and the radius at ``config.level``."""
    norm = {"norm": config.norm} if config.method == "renyi" else {}
    curve = cert.overlap_curve(config.k, radii, **norm)[0].tolist()
    k_count = resolve_count(config.k, cert.num_features, "k")
    return {
        "map": attr.detach(),
        "metric": METRICS[config.method],
        "certified": curve,
        "certified_count": [round(v * k_count) for v in curve],
        "k_count": k_count,
        "radius_at_level": float(cert.certified_radius(config.k, config.level, **norm)[0]),
    }


def _certify_settings(
    model: nn.Module,
    x: torch.Tensor,
    config: RunConfig,
    bound: Any,
    common: dict[str, Any],
    radii: torch.Tensor,
) -> list[dict]:
    """Every sparsity of ``config`` from one sampling pass
    (:meth:`~captum_certified.attr.CertifiedWrapper.attribute_settings`), each certificate at
    ``alpha / m``; per sparsity what :func:`certify_example` returns for it alone, with its
    ``sparsity`` and ``alpha``. Equal, setting by setting, to runs of one sparsity each at
    ``alpha / m`` (the same generator draws the same noise)."""
    explainers = [_explainer(model, x, config, s) for s in config.sparsities]
    call = {key: v for key, v in common.items() if key not in ("alpha", "return_certificate")}
    alpha = config.setting_alpha
    answers = explainers[0].attribute_settings(
        x,
        [e.transform for e in explainers],
        alpha=alpha,
        bound=bound,
        **_method_noise(config),
        **call,
    )
    return [
        {"sparsity": sparsity, "alpha": alpha, **_topk_result(attr, cert, config, radii)}
        for sparsity, (attr, cert) in zip(config.sparsities, answers)
    ]


def _explainer(model: nn.Module, x: torch.Tensor, config: RunConfig, sparsity: Any) -> Any:
    """The explainer of one sparsity (its ``transform`` is that sparsity's setting)."""
    if not x.is_floating_point():
        return _token_explainer(model, config, sparsity)
    if config.method == "renyi":
        return RenyiRobustSmooth(model, sparsity=sparsity)
    return SparseSmoothGrad(model, sparsity=sparsity)


def text_noise_layer(model: nn.Module) -> nn.Module:
    """The module whose output gets the noise for token-id inputs: the model's input
    embedding (``get_input_embeddings()``), or its only ``nn.Embedding``."""
    from captum_certified.cli._config import ConfigError

    getter = getattr(model, "get_input_embeddings", None)
    if callable(getter) and isinstance(getter(), nn.Module):
        return getter()
    found = [m for m in model.modules() if isinstance(m, nn.Embedding)]
    if len(found) != 1:
        raise ConfigError(
            f"--data holds token ids, so the noise goes to the model's embedding; --model has "
            f"{len(found)} nn.Embedding modules (give it one, or a get_input_embeddings())"
        )
    return found[0]


def _token_explainer(model: nn.Module, config: RunConfig, sparsity: Any) -> Any:
    """Noise at the embedding, the top ``sparsity`` tokens by the l2 norm of the gradient."""
    from captum.attr import Saliency

    from captum_certified.attr import CertifiedWrapper
    from captum_certified.cli._config import ConfigError
    from captum_certified.transforms import Compose, TokenReduce, TopKBinarize

    if config.method != "sparse_smoothgrad" or config.certificate == "feature":
        raise ConfigError(
            "--data with token ids supports --method sparse_smoothgrad with the top-K "
            "certificate (noise at the embedding, per-token top-K)"
        )
    layer = text_noise_layer(model)
    transform = Compose(TokenReduce("l2"), TopKBinarize(sparsity))
    return CertifiedWrapper(Saliency(model), noise_layer=layer, transform=transform)
