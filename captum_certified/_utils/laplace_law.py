"""The standard Laplace law's quantile function (shared by the Laplace noise and its bounds)."""

from __future__ import annotations

import torch
from torch import Tensor


def laplace_icdf(q: Tensor | float) -> Tensor:
    r"""Quantile function of the standard Laplace law, ``F^-1(0) = -inf`` and ``F^-1(1) = inf``.

    ``F^-1(q) = log(2 q)`` for ``q < 1/2`` and ``-log(2 (1 - q))`` otherwise.

    Args:
        q (Tensor or float): Probabilities in [0, 1] (clamped).

    Returns:
        Tensor: float64 quantiles.
    """
    q = torch.as_tensor(q, dtype=torch.float64).clamp(0.0, 1.0)
    with torch.no_grad():
        low = torch.log(2.0 * q)
        high = -torch.log(2.0 * (1.0 - q))
    return torch.where(q < 0.5, low, high)
