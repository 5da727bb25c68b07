"""Phi-bounds for Gaussian smoothing of [0, 1]-valued functions."""

from __future__ import annotations

import torch
from torch import Tensor

from captum_certified.certify._core.topk_rule import quantile_shift


def _shift(p: Tensor | float, radius: Tensor | float, sigma: Tensor | float, sign: float) -> Tensor:
    return quantile_shift(p, radius, sigma, sign, torch.special.ndtr, torch.special.ndtri)


def gaussian_lower_bound(
    p: Tensor | float, radius: Tensor | float, sigma: Tensor | float
) -> Tensor:
    r"""Smallest possible value of a Gaussian-smoothed [0, 1] function after an l2 shift.

    If ``h: R^d -> [0, 1]`` and ``hbar(x) = E h(x + eps)``, ``eps ~ N(0, sigma^2 I)``, then
    ``Phi^-1(hbar)`` is ``1/sigma``-Lipschitz, so for ``||delta||_2 <= radius``
    ``hbar(x + delta) >= Phi(Phi^-1(hbar(x)) - radius / sigma)``. The bound is attained by a
    half-space indicator. ``p = 0`` gives 0.

    Args:
        p (Tensor or float): Value(s) of ``hbar(x)`` in [0, 1].
        radius (Tensor or float): l2 radius (broadcast against ``p``).
        sigma (Tensor or float): Noise standard deviation (broadcast against ``p``).

    Returns:
        Tensor: the lower bound, float64.

    Examples::

        >>> round(gaussian_lower_bound(0.8, 0.3, 1.0).item(), 3)
        0.706
    """
    return _shift(p, radius, sigma, -1.0)


def gaussian_upper_bound(
    p: Tensor | float, radius: Tensor | float, sigma: Tensor | float
) -> Tensor:
    r"""Largest possible value of a Gaussian-smoothed [0, 1] function after an l2 shift.

    ``hbar(x + delta) <= Phi(Phi^-1(hbar(x)) + radius / sigma)``; ``p = 1`` gives 1. See
    :func:`gaussian_lower_bound`.

    Args:
        p (Tensor or float): Value(s) of ``hbar(x)`` in [0, 1].
        radius (Tensor or float): l2 radius.
        sigma (Tensor or float): Noise standard deviation.

    Returns:
        Tensor: the upper bound, float64.
    """
    return _shift(p, radius, sigma, 1.0)
