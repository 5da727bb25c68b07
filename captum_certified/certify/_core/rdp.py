"""The grid of Rényi orders and the RDP epsilon of a noise object.

The Rényi curves themselves belong to the noise laws
(:meth:`~captum_certified.noise.NoiseDistribution.rdp_epsilon`, formulas in
:doc:`/certificates`); this module only fixes the grid of orders a certificate optimises over.
"""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch import Tensor

from captum_certified.certify._core.certificate import noise_object
from captum_certified.noise import NoiseDistribution

#: Default grid of Rényi orders: 200 log-spaced values in [1.01, 500].
DEFAULT_ORDERS = (1.01, 500.0, 200)


def rdp_orders(num: int = 200, low: float = 1.01, high: float = 500.0) -> Tensor:
    r"""Log-spaced grid of Rényi orders ``a > 1`` (float64).

    A certificate may take the best order of a grid fixed in advance: every order's
    divergence bound holds at once, so the choice costs no failure probability.

    Args:
        num (int, optional): Number of orders. Default: 200
        low (float, optional): Smallest order, ``> 1``. Default: 1.01
        high (float, optional): Largest order, ``>= low``. Default: 500.0

    Returns:
        Tensor: shape ``(num,)``, increasing.
    """
    if isinstance(num, bool) or not isinstance(num, int) or num < 1:
        raise ValueError(f"`num` must be a positive int, got {num!r}")
    if not (isinstance(low, Real) and isinstance(high, Real)) or not 1.0 < low <= high:
        raise ValueError(f"orders need 1 < low <= high, got low={low!r}, high={high!r}")
    if not math.isfinite(high):
        raise ValueError("`high` must be finite")
    return torch.logspace(math.log10(low), math.log10(high), num, dtype=torch.float64)


def rdp_epsilon(
    noise: NoiseDistribution,
    orders: Tensor,
    radius: Tensor | float,
    scale: Tensor | float,
    *,
    norm: str | float | None = None,
    num_features: int | None = None,
) -> Tensor:
    r"""RDP epsilon of a noise for an l_p ball: ``noise.rdp_epsilon(...)``.

    Args:
        noise (NoiseDistribution): The noise (an object; a name is a ``TypeError``).
        orders (Tensor): Rényi orders ``(A,)``.
        radius (Tensor or float): Scalar or ``(bsz,)``.
        scale (Tensor or float): Scalar or ``(bsz,)`` (sigma for Gaussian, b for Laplace).
        norm (str or float, optional): Perturbation norm; None is the noise's
                    ``native_norm``. Default: None
        num_features (int, optional): Number of perturbed input features. Default: None

    Returns:
        Tensor: float64, shape ``(bsz, A)``.
    """
    noise = noise_object(noise)
    return noise.rdp_epsilon(orders, radius, scale, norm=norm, num_features=num_features)
