"""Gradient-safe kernels of the robustness metrics, shared with the attacks.

The metric functions and the metric objects of :mod:`captum_certified.metrics` call these
kernels; the kernels call nothing in the metrics (one direction: kernel <- metric). The
attacks' objectives (:mod:`captum_certified.robust`) use the same kernels with a graph, so an
attack optimizes exactly what the metric measures. No argument checks beyond the map
conventions: callers pass formatted tensors.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

import torch
from torch import Tensor

__all__ = [
    "NORMALIZE_CHOICES",
    "PRESETS",
    "REDUCE_CHOICES",
    "center_kernel",
    "centers",
    "com_shift",
    "cosine_flat",
    "flatten_cat",
    "resolve_conventions",
    "topk_overlap_count",
]

REDUCE_CHOICES = ("sum_abs", "mean_abs", "abs", None)
NORMALIZE_CHOICES = ("sum_to_hw", "sum_to_one", None)


def _preset(reduce_channels: str | None, normalize: str | None) -> Mapping[str, str | None]:
    return MappingProxyType({"reduce_channels": reduce_channels, "normalize": normalize})


#: Named evaluation protocols (read-only): protocol -> {"reduce_channels", "normalize"}. See
#: :func:`preprocess_attributions` and ``docs/metrics.rst`` for the table.
PRESETS: Mapping[str, Mapping[str, str | None]] = MappingProxyType(
    {
        "ghorbani": _preset("sum_abs", "sum_to_hw"),
        "rar": _preset("sum_abs", "sum_to_hw"),
        "art": _preset("mean_abs", "sum_to_hw"),
        "ssr": _preset("sum_abs", "sum_to_hw"),
        "levine": _preset("abs", None),
        "dombrowski": _preset("sum_abs", "sum_to_one"),
    }
)


def resolve_conventions(
    reduce_channels: str | None, normalize: str | None, protocol: str | None
) -> tuple[str | None, str | None]:
    """Return the (reduce_channels, normalize) pair actually used, validating all three."""
    if protocol is not None:
        if not isinstance(protocol, str) or protocol not in PRESETS:
            raise ValueError(f"protocol must be one of {sorted(PRESETS)} or None, got {protocol!r}")
        preset = PRESETS[protocol]
        for name, value in (("reduce_channels", reduce_channels), ("normalize", normalize)):
            if value is not None and value != preset[name]:
                raise ValueError(
                    f"protocol={protocol!r} sets {name}={preset[name]!r}; leave {name} as None "
                    f"or pass {preset[name]!r} (got {value!r})"
                )
        reduce_channels, normalize = preset["reduce_channels"], preset["normalize"]
    if reduce_channels not in REDUCE_CHOICES:
        raise ValueError(
            f"reduce_channels must be one of {REDUCE_CHOICES}, got {reduce_channels!r}"
        )
    if normalize not in NORMALIZE_CHOICES:
        raise ValueError(f"normalize must be one of {NORMALIZE_CHOICES}, got {normalize!r}")
    return reduce_channels, normalize


def flatten_cat(maps: tuple[Tensor, ...]) -> Tensor:
    bsz = maps[0].shape[0]
    if len(maps) == 1:
        return maps[0].reshape(bsz, -1)
    dtype = maps[0].dtype
    for m in maps[1:]:
        dtype = torch.promote_types(dtype, m.dtype)
    return torch.cat([m.reshape(bsz, -1).to(dtype) for m in maps], dim=1)


def center_kernel(s: Tensor, min_total: float = 0.0) -> Tensor:
    """(bsz, 2) centers (row, column) of non-negative (bsz, H, W) maps in ``s``'s dtype.

    The gradient-safe kernel shared by the metric (float64, no graph) and the attack
    objective (differentiable). The total mass is clamped below at ``min_total``: 0 gives NaN
    for an all-zero map; a positive floor keeps the objective finite.
    """
    _, h, w = s.shape
    total = s.sum(dim=(1, 2))
    if min_total > 0:
        total = total.clamp_min(min_total)
    rows = torch.arange(h, dtype=s.dtype, device=s.device)
    cols = torch.arange(w, dtype=s.dtype, device=s.device)
    ci = (s.sum(dim=2) * rows).sum(dim=1) / total
    cj = (s.sum(dim=1) * cols).sum(dim=1) / total
    return torch.stack([ci, cj], dim=1)


def centers(s: Tensor, round_centers: bool) -> Tensor:
    """(bsz, 2) centers (row, column) of non-negative (bsz, H, W) maps, float64."""
    c = center_kernel(s.to(torch.float64))  # NaN for an all-zero map
    if round_centers:
        # Ghorbani et al.'s code: .astype(int) of non-negative centers. The 1e-9 keeps a center
        # that is an integer in exact arithmetic (e.g. 3) but computed as 2.9999999999999996
        # after a normalisation from flooring to the pixel below.
        c = torch.floor(c + 1e-9)
    return c


def com_shift(ca: Tensor, cb: Tensor) -> Tensor:
    return torch.linalg.vector_norm(ca - cb, dim=1)


def cosine_flat(fa: Tensor, fb: Tensor) -> Tensor:
    """Cosine similarity of each row pair, computed in float64; NaN for a zero row."""
    a = fa.to(torch.float64)
    b = fb.to(torch.float64)
    num = (a * b).sum(dim=1)
    den = torch.linalg.vector_norm(a, dim=1) * torch.linalg.vector_norm(b, dim=1)
    cos = num / den
    return torch.where(den > 0, cos.clamp(-1.0, 1.0), torch.full_like(cos, float("nan")))


def topk_overlap_count(mask_a: Tensor, mask_b: Tensor, count: int) -> Tensor:
    """``|T_k(a) & T_k(b)| / k`` per row, float64, from two boolean top-``count`` masks."""
    return (mask_a & mask_b).sum(dim=1).to(torch.float64) / count
