"""The noise-scale arguments (``stdevs`` / ``noise_scale``) and their per-input tensors."""

from __future__ import annotations

from dataclasses import dataclass
from numbers import Real
from typing import Any

import torch
from torch import Tensor

from captum_certified._utils.validation import check_bool, check_broadcasts, warn_deprecated
from captum_certified.noise import GaussianNoise, NoiseDistribution


class _CaptumDefault(float):
    """A float equal to Captum's default ``stdevs=1.0`` that is recognisably not passed.

    ``NoiseTunnel.attribute`` keeps Captum's signature (``stdevs=1.0``); this lets the engine
    tell the default from an explicit ``stdevs``, which must not be combined with
    ``noise_scale``.
    """

    def __repr__(self) -> str:
        return "1.0"


#: The default of ``CertifiedWrapper.attribute``'s ``stdevs`` (equal to Captum's 1.0).
STDEVS_DEFAULT: float = _CaptumDefault(1.0)


@dataclass(frozen=True)
class ScaleArgument:
    """The noise scale a call asked for, and the names its errors should use."""

    value: Any
    relative: bool
    name: str  # "stdevs" or "noise_scale"

    @property
    def relative_name(self) -> str:
        return f"relative_{self.name}"


def resolve_scale_argument(
    noise: NoiseDistribution,
    *,
    stdevs: Any,
    noise_scale: Any,
    relative_stdevs: bool,
    relative_noise_scale: bool,
    default: Any,
) -> ScaleArgument:
    """Which of ``stdevs`` / ``noise_scale`` a call passed, checked against the noise.

    ``stdevs`` is Captum's name, the standard deviation of Gaussian noise; ``noise_scale`` is
    the native scale of any noise (equal to ``stdevs`` for Gaussian noise). At most one may be
    given (``stdevs`` is "not given" when None or :data:`STDEVS_DEFAULT`); with neither,
    ``default`` is the noise scale. The relative flag must follow the scale's name.
    ``stdevs`` with non-Gaussian noise is deprecated: it keeps its old meaning (the native
    scale) for one release, with a ``DeprecationWarning``.
    """
    check_bool(relative_stdevs, "relative_stdevs")
    check_bool(relative_noise_scale, "relative_noise_scale")
    stdevs_given = stdevs is not None and stdevs is not STDEVS_DEFAULT
    if stdevs_given and noise_scale is not None:
        raise ValueError(
            "pass one of `stdevs` (the standard deviation of Gaussian noise) and "
            "`noise_scale` (the native scale of any noise), not both"
        )
    if noise_scale is not None or (not stdevs_given and relative_noise_scale):
        if relative_stdevs:
            raise ValueError(
                "`relative_stdevs` goes with `stdevs`; with `noise_scale` pass "
                "`relative_noise_scale=True`"
            )
        value = default if noise_scale is None else noise_scale
        return ScaleArgument(value, relative_noise_scale, "noise_scale")
    if relative_noise_scale:
        raise ValueError(
            "`relative_noise_scale` goes with `noise_scale`; with `stdevs` pass "
            "`relative_stdevs=True`"
        )
    if not stdevs_given:
        return ScaleArgument(default, relative_stdevs, "stdevs")
    if not isinstance(noise, GaussianNoise):
        warn_deprecated(
            f"`stdevs` with {noise.name!r} noise is deprecated: pass `noise_scale` (the noise's "
            "native scale, which `stdevs` means here for one more release) and, for "
            "`relative_stdevs`, `relative_noise_scale`. `stdevs` will mean the standard "
            "deviation of the noise."
        )
    return ScaleArgument(stdevs, relative_stdevs, "stdevs")


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
