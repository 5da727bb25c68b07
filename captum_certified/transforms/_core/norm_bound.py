"""Per-sample maps with a bounded l2 norm (what the uniform-smoothing cosine certificate needs)."""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch import Tensor

from captum_certified.transforms._core.base import AttributionTransform


def _shrink(dtype: torch.dtype) -> float:
    # Rounding a float64 vector of norm M to ``dtype`` can raise its norm by a factor of up to
    # 1 + u (u = eps / 2, round to nearest); scaling by 1 - eps first keeps it <= M exactly.
    return 1.0 - torch.finfo(dtype).eps


class L2BoundedTransform(AttributionTransform):
    r"""Base class of per-sample maps whose rows have l2 norm at most ``norm_bound``.

    The cosine certificates of uniform smoothing
    (:class:`~captum_certified.certify.CosineCertifier`) accept exactly the transforms that
    declare a finite ``norm_bound`` ``M`` and check every chunk against it. Values are signed,
    so ``kind`` is ``"real"`` (the top-K certificates, which need [0, 1] values, reject them).

    Attributes:
        norm_bound (float): ``M`` with ``||h||_2 <= M`` for every output row.
    """

    kind = "real"
    norm_bound: float = 1.0


class UnitL2Normalize(L2BoundedTransform):
    r"""Scale each sample's map to unit l2 norm: ``h = a / ||a||_2`` (``norm_bound = 1``).

    The norm is taken over all features of a sample (all tuple inputs together). A zero map
    stays zero. The division is done in float64 and the result is multiplied by
    ``1 - torch.finfo(dtype).eps`` before casting back to the input dtype, so that rounding can
    never push a row's norm above 1 (in float32 the norm is ``1 - 1.2e-7``).
    """

    norm_bound = 1.0

    def __call__(self, attributions: Tensor) -> Tensor:
        a = attributions.to(torch.float64)
        norm = a.norm(dim=1, keepdim=True)
        safe = torch.where(norm > 0, norm, torch.ones_like(norm))
        out = a * (_shrink(attributions.dtype) / safe)
        return out.to(attributions.dtype)


class L2NormClip(L2BoundedTransform):
    r"""Clip each sample's map to l2 norm at most ``max_norm``: ``h = a * min(1, M / ||a||_2)``.

    Rows already inside the ball are returned unchanged; longer rows are scaled onto it (in
    float64, times ``1 - torch.finfo(dtype).eps`` so that rounding keeps the norm ``<= M``).

    Args:
        max_norm (float): The bound ``M > 0``, in the units of the attribution.
    """

    def __init__(self, max_norm: float) -> None:
        if isinstance(max_norm, bool) or not isinstance(max_norm, Real):
            raise TypeError(f"`max_norm` must be a positive float, got {type(max_norm).__name__}")
        max_norm = float(max_norm)
        if not math.isfinite(max_norm) or max_norm <= 0:
            raise ValueError(f"`max_norm` must be finite and > 0, got {max_norm}")
        self.norm_bound = max_norm

    def __call__(self, attributions: Tensor) -> Tensor:
        a = attributions.to(torch.float64)
        norm = a.norm(dim=1, keepdim=True)
        over = norm > self.norm_bound
        factor = torch.where(
            over,
            self.norm_bound * _shrink(attributions.dtype) / torch.where(over, norm, 1.0),
            torch.ones_like(norm),
        )
        return torch.where(over, a * factor, a).to(attributions.dtype)

    def __repr__(self) -> str:
        return f"L2NormClip(max_norm={self.norm_bound})"
