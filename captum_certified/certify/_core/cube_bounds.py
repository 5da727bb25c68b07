"""Total-variation bounds of shifted uniform cube noise and the pair radius they give."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from captum_certified._utils.norms import parse_norm
from captum_certified._utils.validation import check_feature_count, check_radius


def cube_tv_bound(
    radius: Tensor | float,
    r: Tensor | float,
    num_features: int,
    norm: str | float = "l1",
) -> Tensor:
    r"""Largest total variation between ``U[-r, r]^N`` and its shift by ``||delta||_p <= radius``.

    For one shift ``TV = 1 - prod_i (1 - |delta_i| / (2 r))_+`` (the mass of one cube outside
    the other). Its supremum over the ball is

    - l1: ``min(1, radius / (2 r))`` (union bound ``1 - prod(1 - a_i) <= sum a_i``, attained on
      one coordinate) -- exact;
    - l_inf: ``1 - (1 - radius / (2 r))_+^N`` (every ``|delta_i| = radius``) -- exact;
    - other ``p``: the smaller of the l1 bound at ``N^(1 - 1/p) radius`` and the l_inf bound at
      ``radius`` (both valid: ``||delta||_1 <= N^(1-1/p) ||delta||_p`` and
      ``||delta||_inf <= ||delta||_p``) -- an upper bound.

    Args:
        radius (Tensor or float): Radius ``>= 0`` (broadcast against ``r``).
        r (Tensor or float): Half-width of the cube, ``> 0``.
        num_features (int): ``N``, the number of perturbed input features.
        norm (str or float, optional): Perturbation norm. Default: "l1"

    Returns:
        Tensor: float64 bound in [0, 1].

    Examples::

        >>> cube_tv_bound(0.01, 0.1, 100, "l1").item()
        0.05
        >>> round(cube_tv_bound(4 / 255 / 8, 4 / 255, 3072, "linf").item(), 6)   # vacuous
        1.0
    """
    p = parse_norm(norm)
    radius = check_radius(radius)
    r = torch.as_tensor(r, dtype=torch.float64)
    num_features = check_feature_count(num_features, "num_features")
    inv_p = 0.0 if math.isinf(p) else 1.0 / p
    l1 = (radius * float(num_features) ** (1.0 - inv_p) / (2.0 * r)).clamp(max=1.0)
    a = (radius / (2.0 * r)).clamp(max=1.0)
    linf = -torch.expm1(float(num_features) * torch.log1p(-a))
    return torch.minimum(l1, linf).clamp(0.0, 1.0)


def cube_pair_radius(gap: Tensor, r: Tensor, num_features: int, norm: str | float) -> Tensor:
    r"""Largest radius below which ``2 TV(radius) < gap`` (see :func:`cube_tv_bound`).

    ``R_p = max(r gap N^(1/p - 1), 2 r (1 - (1 - gap / 2)^(1/N)))``: the l1 route and the
    l_inf route, each inverted in closed form. ``-inf`` where ``gap <= 0``.

    Args:
        gap (Tensor): ``L_(i) - U_(2K-i+1)``, any shape.
        r (Tensor): Cube half-width, broadcast against ``gap``.
        num_features (int): ``N``.
        norm (str or float): Perturbation norm.

    Returns:
        Tensor: float64 radii.
    """
    p = parse_norm(norm)
    inv_p = 0.0 if math.isinf(p) else 1.0 / p
    gap = gap.to(torch.float64)
    half = (gap / 2.0).clamp(0.0, 1.0)
    r = r.to(gap)
    l1_route = r * gap * float(num_features) ** (inv_p - 1.0)
    linf_route = -2.0 * r * torch.expm1(torch.log1p(-half) / float(num_features))
    radii = torch.maximum(l1_route, linf_route)
    return torch.where(gap > 0, radii, torch.full_like(radii, -math.inf))
