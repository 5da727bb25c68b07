"""Exact l1 bounds for Laplace-smoothed [0, 1] functions (Teng et al. 2020)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from captum_certified._utils.laplace_law import laplace_icdf
from captum_certified.certify._core.topk_rule import quantile_gap, quantile_shift


def laplace_cdf(z: Tensor | float) -> Tensor:
    r"""CDF of the standard Laplace law (scale 1): ``F(z) = e^z / 2`` for ``z < 0``, else
    ``1 - e^-z / 2``.

    Args:
        z (Tensor or float): Points, any shape.

    Returns:
        Tensor: float64 values in [0, 1].
    """
    z = torch.as_tensor(z, dtype=torch.float64)
    half = 0.5 * torch.exp(-z.abs())
    return torch.where(z < 0, half, 1.0 - half)


def _shift(p: Tensor | float, radius: Tensor | float, scale: Tensor | float, sign: float) -> Tensor:
    return quantile_shift(p, radius, scale, sign, laplace_cdf, laplace_icdf)


def laplace_lower_bound(p: Tensor | float, radius: Tensor | float, scale: Tensor | float) -> Tensor:
    r"""Smallest value of a Laplace-smoothed [0, 1] function after an l1 shift (exact).

    If ``h: R^N -> [0, 1]`` and ``hbar(x) = E h(x + eps)`` with ``eps`` i.i.d.
    ``Laplace(0, b)`` per coordinate, then ``F^-1(hbar)`` is ``1/b``-Lipschitz for the l1 norm
    (``F`` the standard Laplace CDF), so for ``||delta||_1 <= radius``::

        hbar(x + delta) >= F(F^-1(hbar(x)) - radius / b)

    (Teng et al., "l1 adversarial robustness certificates: a randomized smoothing approach",
    2020; proof in :doc:`/certificates`). The bound is attained by a half-space
    ``h(z) = 1{z_1 > c}`` and a shift along ``-e_1``. ``p = 0`` gives 0.

    Args:
        p (Tensor or float): Value(s) of ``hbar(x)`` in [0, 1].
        radius (Tensor or float): l1 radius (broadcast against ``p``).
        scale (Tensor or float): Laplace scale ``b`` (broadcast against ``p``).

    Returns:
        Tensor: the lower bound, float64.

    Examples::

        >>> round(laplace_lower_bound(0.8, 0.3, 1.0).item(), 4)
        0.73
    """
    return _shift(p, radius, scale, -1.0)


def laplace_upper_bound(p: Tensor | float, radius: Tensor | float, scale: Tensor | float) -> Tensor:
    r"""Largest value of a Laplace-smoothed [0, 1] function after an l1 shift (exact).

    ``hbar(x + delta) <= F(F^-1(hbar(x)) + radius / b)``; ``p = 1`` gives 1. See
    :func:`laplace_lower_bound`.

    Args:
        p (Tensor or float): Value(s) of ``hbar(x)`` in [0, 1].
        radius (Tensor or float): l1 radius.
        scale (Tensor or float): Laplace scale ``b``.

    Returns:
        Tensor: the upper bound, float64.
    """
    return _shift(p, radius, scale, 1.0)


def laplace_pair_radius(p_a: Tensor | float, p_b: Tensor | float, scale: Tensor | float) -> Tensor:
    r"""Largest l1 radius below which ``hbar_a > hbar_b`` is certified for Laplace smoothing.

    ``R = (b / 2) (F^-1(p_a) - F^-1(p_b))``: for ``||delta||_1 < R`` the lower bound of
    :func:`laplace_lower_bound` on ``p_a`` exceeds the upper bound on ``p_b``. Where
    ``p_a <= p_b`` (or ``p_a = 0``, ``p_b = 1``) nothing is certified and ``R = -inf``.

    Args:
        p_a (Tensor or float): Lower bound on the larger coordinate.
        p_b (Tensor or float): Upper bound on the smaller coordinate.
        scale (Tensor or float): Laplace scale ``b``.

    Returns:
        Tensor: float64 radius (``-inf`` where nothing is certified).

    Examples::

        >>> round(laplace_pair_radius(0.8, 0.3, 1.0).item(), 4)
        0.7136
    """
    gap = quantile_gap(p_a, p_b, laplace_icdf)
    gap = torch.where(gap > 0, gap, torch.full_like(gap, -math.inf))
    return 0.5 * torch.as_tensor(scale, dtype=torch.float64) * gap
