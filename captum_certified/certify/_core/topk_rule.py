"""The sorted pigeonhole rule that turns per-coordinate bands into a top-K overlap."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor


def paired_order_statistics(lower: Tensor, upper: Tensor, k: int) -> tuple[Tensor, Tensor, Tensor]:
    r"""Pair the i-th largest lower bound with the (2K - i + 1)-th largest upper bound.

    Lower and upper bounds are sorted *separately* (descending). On the band event
    ``lower <= p <= upper`` element-wise, order statistics are dominated the same way, so any
    rule that compares ``L_(i)`` with ``U_(2K-i+1)`` through increasing functions is sound
    for the true map, whatever the band widths (pairing by the estimate's ranks is not).

    Args:
        lower (Tensor): Lower bounds, shape ``(bsz, d)``.
        upper (Tensor): Upper bounds, shape ``(bsz, d)``.
        k (int): Top-K size, ``1 <= k <= d``.

    Returns:
        tuple[Tensor, Tensor, Tensor]: ``(lower_i, upper_i, unopposed)`` of shapes
        ``(bsz, k)``, ``(bsz, k)`` and ``(k,)``. ``unopposed[i - 1]`` is True when
        ``2K - i + 1 > d``: two K-subsets of d features share at least ``2K - d`` members, so
        those ranks are kept by every perturbation (their ``upper_i`` is a placeholder 0).
    """
    d = lower.shape[-1]
    lower_sorted = lower.sort(dim=-1, descending=True).values
    upper_sorted = upper.sort(dim=-1, descending=True).values
    ranks = torch.arange(1, k + 1, device=lower.device)
    partner = 2 * k - ranks + 1  # 1-indexed rank of the outsider paired with rank i
    unopposed = partner > d
    partner_idx = (partner.clamp(max=d) - 1).expand(lower.shape[0], k)
    upper_i = upper_sorted.gather(-1, partner_idx).masked_fill(unopposed, 0.0)
    return lower_sorted[:, :k], upper_i, unopposed


def quantile_gap(
    lower: Tensor | float, upper: Tensor | float, icdf: Callable[[Tensor], Tensor]
) -> Tensor:
    r"""``F^-1(lower) - F^-1(upper)``, the one copy of the quantile (Phi) rule's gap.

    For a noise whose quantile transform ``F^-1(hbar)`` of every smoothed [0, 1] function is
    ``1/scale``-Lipschitz (``F = Phi`` for Gaussian noise in l2, the Laplace CDF in l1; see
    :doc:`/certificates`), a pair with ``lower`` bounding the larger coordinate and ``upper``
    the smaller stays ordered for every shift below ``scale * gap / 2``. Where the gap is
    undefined (``-inf - (-inf)`` or ``inf - inf``: a zero lower bound or a unit upper bound)
    nothing is certified: ``-inf``, never NaN.

    Args:
        lower (Tensor or float): Lower bounds (float64 is used).
        upper (Tensor or float): Upper bounds (broadcast against ``lower``).
        icdf (callable): Quantile function of the unit noise law.

    Returns:
        Tensor: float64 gaps.
    """
    lower = torch.as_tensor(lower, dtype=torch.float64)
    upper = torch.as_tensor(upper, dtype=torch.float64)
    gap = icdf(lower) - icdf(upper)
    return torch.where(torch.isnan(gap), torch.full_like(gap, -math.inf), gap)


def quantile_shift(
    p: Tensor | float,
    radius: Tensor | float,
    scale: Tensor | float,
    sign: float,
    cdf: Callable[[Tensor], Tensor],
    icdf: Callable[[Tensor], Tensor],
) -> Tensor:
    """``F(F^-1(p) + sign * radius / scale)``: the per-coordinate bound of the quantile rule
    (lower for ``sign = -1``, upper for ``+1``), float64; ``p`` is clamped to [0, 1]."""
    p = torch.as_tensor(p, dtype=torch.float64)
    a = torch.as_tensor(radius, dtype=torch.float64) / torch.as_tensor(scale, dtype=torch.float64)
    return cdf(icdf(p.clamp(0.0, 1.0)) + sign * a)


def radius_below(boundary: Tensor) -> Tensor:
    """The certified radius for rank radii ``boundary`` (certified strictly below them).

    One float64 step below a finite positive boundary, so the radius returned is attained;
    ``inf`` stays ``inf`` and a boundary ``<= 0`` certifies nothing (0).
    """
    below = torch.nextafter(boundary, torch.zeros_like(boundary))
    below = torch.where(torch.isinf(boundary), boundary, below)
    return torch.where(boundary > 0, below, torch.zeros_like(boundary))


def kept_count(rank_radii: Tensor, radius: Tensor) -> Tensor:
    """Ranks kept at a ``(bsz,)`` radius: those whose radius exceeds it, or is ``+inf``."""
    radius = radius.to(rank_radii.device).reshape(-1, 1)
    return ((rank_radii > radius) | torch.isposinf(rank_radii)).sum(dim=-1)


def kept_curve(rank_radii: Tensor, grid: Tensor) -> Tensor:
    """Ranks kept at each radius of a 1-D ``grid``: ``(bsz, len(grid))`` counts (one sort of
    the ranks serves the whole curve)."""
    per_rank = rank_radii.unsqueeze(1)
    kept = (per_rank > grid.to(per_rank.device).view(1, -1, 1)) | torch.isposinf(per_rank)
    return kept.sum(-1)
