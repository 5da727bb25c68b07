"""Rényi divergence curves of the noise laws under a shift, per l_p norm.

Notation: ``orders`` are Rényi orders ``a > 1`` (the failure probability of a certificate is
called ``alpha`` elsewhere), ``N`` the number of input features perturbed, ``rho`` a radius.
``epsilon_a(rho)`` bounds the Rényi divergence of order ``a`` between the noise laws centred at
``x`` and at ``x + delta`` (both directions) for every ``||delta||_p <= rho``; by
post-processing it bounds the divergence between the smoothed output distributions as well.
Each noise class exposes its curve as ``rdp_epsilon``; the certificates only call that method.
"""

from __future__ import annotations

import torch
from torch import Tensor

from captum_certified._utils.norms import convert_radius, norm_name, parse_norm
from captum_certified._utils.validation import check_orders, check_radius


def gaussian_rdp(orders: Tensor, l2_radius: Tensor | float, sigma: Tensor | float) -> Tensor:
    r"""Rényi divergence of order ``a`` between ``N(0, sigma^2 I)`` and ``N(delta, sigma^2 I)``.

    ``epsilon_a = a * ||delta||_2^2 / (2 sigma^2)``, exact and symmetric.

    Args:
        orders (Tensor): Rényi orders ``a > 1``, any shape broadcasting with the others.
        l2_radius (Tensor or float): ``||delta||_2``.
        sigma (Tensor or float): Standard deviation.

    Returns:
        Tensor: float64 epsilons (broadcast shape).
    """
    orders = torch.as_tensor(orders, dtype=torch.float64)
    rho = torch.as_tensor(l2_radius, dtype=torch.float64)
    sigma = torch.as_tensor(sigma, dtype=torch.float64)
    return orders * (rho / sigma).square() / 2.0


def laplace_rdp(orders: Tensor, l1_radius: Tensor | float, scale: Tensor | float) -> Tensor:
    r"""Mironov's Rényi divergence of order ``a`` between ``Laplace(0, b)`` and ``Laplace(t, b)``.

    With ``s = t / b`` (Mironov, "Rényi Differential Privacy", arXiv 1702.07476, Prop. 6)::

        epsilon_a = 1/(a-1) * log( a/(2a-1) * exp((a-1) s) + (a-1)/(2a-1) * exp(-a s) )

    evaluated with ``logaddexp`` (the plain form overflows for large ``a s``). It is symmetric
    in the two laws, 0 at 0, increasing and convex in ``s``, hence superadditive: for i.i.d.
    Laplace noise on ``N`` coordinates the divergence ``sum_i epsilon_a(|delta_i|)`` is at most
    ``epsilon_a(||delta||_1)``, so ``l1_radius`` may be the l1 norm of a whole perturbation.

    Args:
        orders (Tensor): Rényi orders ``a > 1``.
        l1_radius (Tensor or float): ``|t|`` (or ``||delta||_1``), ``>= 0``.
        scale (Tensor or float): Laplace scale ``b > 0``.

    Returns:
        Tensor: float64 epsilons (broadcast shape).
    """
    a = torch.as_tensor(orders, dtype=torch.float64)
    s = torch.as_tensor(l1_radius, dtype=torch.float64) / torch.as_tensor(
        scale, dtype=torch.float64
    )
    log_w1 = torch.log(a / (2.0 * a - 1.0))
    log_w2 = torch.log((a - 1.0) / (2.0 * a - 1.0))
    value = torch.logaddexp(log_w1 + (a - 1.0) * s, log_w2 - a * s) / (a - 1.0)
    # exactly 0 at s = 0, and never negative from rounding
    return torch.where(s > 0, value.clamp_min(0.0), torch.zeros_like(value))


def gaussian_rdp_epsilon(
    orders: Tensor,
    radius: Tensor | float,
    sigma: Tensor | float,
    *,
    norm: str | float = "l2",
    num_features: int | None = None,
) -> Tensor:
    r"""RDP epsilon of ``N(0, sigma^2 I)`` smoothing for every ``||delta||_p <= radius``.

    ``a * rho_2^2 / (2 sigma^2)`` with the l2 radius ``rho_2`` from :func:`convert_radius`:
    ``rho_2 = rho_p`` for ``p <= 2`` and ``N^(1/2 - 1/p) rho_p`` for ``p > 2``
    (``sqrt(N) rho_inf``). Each is the exact supremum of ``||delta||_2`` over the l_p ball, so
    the epsilon is the exact supremum of the noise divergence.

    Args:
        orders (Tensor): Rényi orders, shape ``(A,)``.
        radius (Tensor or float): Scalar or ``(bsz,)`` radius in ``norm``.
        sigma (Tensor or float): Scalar or ``(bsz,)`` standard deviation.
        norm (str or float, optional): Perturbation norm. Default: "l2"
        num_features (int, optional): ``N`` (needed for ``p > 2``). Default: None

    Returns:
        Tensor: float64, shape ``(bsz, A)`` (``(1, A)`` for scalar radius and sigma).
    """
    orders = check_orders(orders)
    rho = convert_radius(radius, norm, 2.0, num_features).reshape(-1, 1)
    sigma = torch.as_tensor(sigma, dtype=torch.float64).reshape(-1, 1)
    return gaussian_rdp(orders.reshape(1, -1), rho, sigma)


def laplace_rdp_epsilon(
    orders: Tensor,
    radius: Tensor | float,
    scale: Tensor | float,
    *,
    norm: str | float = "l1",
    num_features: int | None = None,
) -> Tensor:
    r"""RDP epsilon of i.i.d. ``Laplace(0, b)`` smoothing for every ``||delta||_p <= radius``.

    The noise divergence is ``sum_i f_a(|delta_i| / b)`` with ``f_a`` Mironov's 1-D epsilon
    (:func:`laplace_rdp`, ``b = 1``). Three upper bounds on its supremum over the l_p ball are
    valid and the smallest is returned:

    1. **l1 route** (the standard one): ``f_a(rho_1 / b)`` with ``rho_1 = N^(1 - 1/p) rho_p``
       (:func:`convert_radius`), by superadditivity of ``f_a``. Exact for ``p = 1``.
    2. **l_inf route**: ``N f_a(rho_inf / b)`` with ``rho_inf <= rho_p``, since every
       ``|delta_i| <= rho_inf`` and ``f_a`` is increasing. Exact for ``p = inf``, and at most
       the l1 route there (superadditivity).
    3. **zCDP route**: ``a rho_2^2 / (2 b^2)``. A shift by ``t`` makes the Laplace law
       ``(t/b)``-DP, and ``eps``-DP implies ``f_a <= a eps^2 / 2`` for all ``a > 1`` (Bun and
       Steinke, "Concentrated Differential Privacy", arXiv 1605.02065, Prop. 3.3); summing over
       coordinates gives the Gaussian formula with ``sigma = b``. It wins for l2 and for
       large ``N``.

    Args:
        orders (Tensor): Rényi orders, shape ``(A,)``.
        radius (Tensor or float): Scalar or ``(bsz,)`` radius in ``norm``.
        scale (Tensor or float): Scalar or ``(bsz,)`` Laplace scale ``b``.
        norm (str or float, optional): Perturbation norm. Default: "l1"
        num_features (int, optional): ``N``. Without it only the zCDP route is used for
                    ``1 < p <= 2``, and ``p > 2`` raises ``ValueError``. Default: None

    Returns:
        Tensor: float64, shape ``(bsz, A)``.
    """
    orders = check_orders(orders).reshape(1, -1)
    p = parse_norm(norm)
    b = torch.as_tensor(scale, dtype=torch.float64).reshape(-1, 1)
    if p == 1.0:
        return laplace_rdp(orders, check_radius(radius).reshape(-1, 1), b)
    if num_features is None and p > 2.0:
        raise ValueError(
            f"the Laplace epsilon for an {norm_name(p)} radius needs `num_features` (the number "
            "of perturbed input features)"
        )
    # zCDP route (needs N only for p > 2)
    rho2 = convert_radius(radius, p, 2.0, num_features).reshape(-1, 1)
    eps = gaussian_rdp(orders, rho2, b)
    if num_features is not None:
        rho1 = convert_radius(radius, p, 1.0, num_features).reshape(-1, 1)
        eps = torch.minimum(eps, laplace_rdp(orders, rho1, b))
        rho_inf = check_radius(radius).reshape(-1, 1)
        eps = torch.minimum(eps, float(num_features) * laplace_rdp(orders, rho_inf, b))
    return eps
