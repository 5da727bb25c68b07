"""The sorted pigeonhole rule that turns per-coordinate bands into a top-K overlap."""

from __future__ import annotations

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
