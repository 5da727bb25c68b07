"""The noise-scale arguments (``stdevs`` / ``noise_scale``) and their per-input tensors."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Any

import torch
from torch import Tensor

from captum_certified._utils.validation import check_bool, check_broadcasts
from captum_certified.noise import GaussianNoise, NoiseDistribution


@dataclass(frozen=True)
class ScaleArgument:
    """The noise scale a call asked for, and the names its errors should use."""

    value: Any
    relative: bool
    name: str  # "stdevs" or "noise_scale"

    @property
    def relative_name(self) -> str:
        return f"relative_{self.name}"


def _is_default(value: Any, default: Any) -> bool:
    if value is default:
        return True
    numbers = all(isinstance(v, Real) and not isinstance(v, bool) for v in (value, default))
    return numbers and float(value) == float(default)


def resolve_scale_argument(
    noise: NoiseDistribution,
    *,
    stdevs: Any,
    stdevs_default: Any,
    noise_scale: Any,
    relative_stdevs: bool,
    relative_noise_scale: bool,
) -> ScaleArgument:
    """The scale argument that applies to ``noise``; the other one is refused.

    Gaussian noise takes ``stdevs`` (its standard deviation, Captum's name) and
    ``relative_stdevs``. Every other noise takes ``noise_scale`` (its native scale) and
    ``relative_noise_scale``; ``stdevs`` must then keep its default (``stdevs_default``, the
    signature's), and ``noise_scale=None`` means that same number.

    Raises:
        TypeError: for the name (or relative flag) that does not apply to ``noise``.
    """
    check_bool(relative_stdevs, "relative_stdevs")
    check_bool(relative_noise_scale, "relative_noise_scale")
    family = type(noise).__name__
    if isinstance(noise, GaussianNoise):
        if noise_scale is not None or relative_noise_scale:
            raise TypeError(
                "Gaussian noise takes `stdevs` (its standard deviation, Captum's name) and "
                "`relative_stdevs`; `noise_scale` and `relative_noise_scale` are the native "
                "scale of a non-Gaussian noise"
            )
        return ScaleArgument(stdevs, relative_stdevs, "stdevs")
    if not _is_default(stdevs, stdevs_default) or relative_stdevs:
        raise TypeError(
            f"{family} takes `noise_scale` (its native scale) and `relative_noise_scale`; "
            "`stdevs` and `relative_stdevs` are the standard deviation of Gaussian noise only"
        )
    value = stdevs if noise_scale is None else noise_scale
    return ScaleArgument(value, relative_noise_scale, "noise_scale")


def _one_scale(value: Any, x: Tensor, relative: bool, name: str, allow_zero: bool) -> Tensor:
    if isinstance(value, bool):
        raise TypeError(f"`{name}` must be a float, an int or a tensor, got bool")
    if isinstance(value, Real):
        scale = torch.tensor(float(value), dtype=x.dtype, device=x.device)
    elif isinstance(value, Tensor):
        scale = value.detach().to(dtype=x.dtype, device=x.device)
    else:
        raise TypeError(f"`{name}` must be a float, an int or a tensor, got {type(value).__name__}")
    if allow_zero:
        if not torch.isfinite(scale).all() or (scale < 0).any():
            raise ValueError(f"`{name}` must be finite and >= 0")
    elif not torch.isfinite(scale).all() or (scale <= 0).any():
        raise ValueError(f"`{name}` must be finite and > 0")
    check_broadcasts(scale, x, f"`{name}`")
    if scale.dim() == x.dim() and scale.shape[0] not in (1, x.shape[0]):
        raise ValueError(f"`{name}` has batch size {scale.shape[0]}, inputs have {x.shape[0]}")
    if relative:
        # zennit / SmoothGrad-paper convention: a fraction of each example's value range
        flat = x.detach().reshape(x.shape[0], -1)
        span = (flat.max(dim=1).values - flat.min(dim=1).values).reshape(
            (-1,) + (1,) * (x.dim() - 1)
        )
        if (span <= 0).any():
            raise ValueError(
                f"relative `{name}` needs inputs with a non-constant range per example"
            )
        scale = scale * span
    return scale


def parse_scales(
    value: Any,
    inputs: tuple[Tensor, ...],
    *,
    relative: bool = False,
    name: str = "stdevs",
    allow_zero: bool = False,
) -> tuple[Tensor, ...]:
    """One scale tensor per input, each broadcastable to that input's shape.

    Accepts a float or int (shared), a tensor broadcastable to the input (per-example,
    per-channel or per-feature scales), or a tuple of those with one entry per input.
    With ``allow_zero`` a scale may be 0 (no noise there, as NoiseTunnel allows); a
    certificate then needs :func:`check_certifiable_scales`.
    """
    if isinstance(value, tuple):
        if len(value) != len(inputs):
            raise ValueError(f"`{name}` has {len(value)} entries for {len(inputs)} input tensors")
        return tuple(_one_scale(v, x, relative, name, allow_zero) for v, x in zip(value, inputs))
    return tuple(_one_scale(value, x, relative, name, allow_zero) for x in inputs)


def check_certifiable_scales(
    scales: tuple[Tensor, ...], inputs: tuple[Tensor, ...], name: str = "stdevs"
) -> None:
    """Refuse a certificate when any feature of any example gets zero noise.

    Smoothing certificates bound how fast the smoothed map can change, which needs noise of
    positive scale in every direction; with a zero scale the map is not smoothed there.
    """
    if (smallest_scale(scales, inputs) <= 0).any():
        raise ValueError(
            f"`{name}` must be > 0 in every feature with return_certificate=True: a "
            "certificate needs noise of positive scale (sigma > 0) in every input feature; "
            f"`{name}` = 0 gives plain, uncertified smoothing only"
        )


def expand_scale(scale: Tensor, x: Tensor, n: int) -> Tensor:
    """Expand a scale to the repeat-interleaved noisy batch (per-example scales repeat)."""
    if scale.dim() == x.dim() and scale.shape[0] == x.shape[0] and x.shape[0] > 1:
        return scale.repeat_interleave(n, dim=0)
    return scale


def smallest_scale(scales: tuple[Tensor, ...], inputs: tuple[Tensor, ...]) -> Tensor:
    """Per-example smallest scale over all inputs and features, shape ``(bsz,)`` float64.

    Certificates for anisotropic noise are driven by the smallest scale (for Gaussian noise,
    ``N(0, Sigma)`` with ``Sigma >= sigma_min^2 I`` is at least as smooth in every direction).
    """
    batch = inputs[0].shape[0]
    per_input = [
        s.to(torch.float64).expand_as(x).reshape(batch, -1).min(dim=1).values
        for s, x in zip(scales, inputs)
    ]
    return torch.stack(per_input).min(dim=0).values
