"""Per-feature certified radii from a confidence band (Anani et al., 2025)."""

from __future__ import annotations

import torch
from torch import Tensor

from captum_certified._utils.validation import check_probability
from captum_certified.certify._core.topk_rule import quantile_gap


def feature_radii(
    lower: Tensor, upper: Tensor, scale: Tensor | float, threshold: float = 0.5
) -> tuple[Tensor, Tensor]:
    r"""Per-feature certified l2 radii of a Gaussian-smoothed [0, 1] map, and their side.

    For ``p_j(x) = E s_j(x + eps)``, ``eps ~ N(0, sigma^2 I)``, ``Phi^-1(p_j)`` is
    ``1/sigma``-Lipschitz, so from a band ``lower_j <= p_j(x) <= upper_j``:

    - if ``lower_j > tau``, then ``p_j(x + delta) > tau`` for every
      ``||delta||_2 < sigma (Phi^-1(lower_j) - Phi^-1(tau))`` (certified *important*, +1);
    - if ``upper_j < tau``, then ``p_j(x + delta) < tau`` for every
      ``||delta||_2 < sigma (Phi^-1(tau) - Phi^-1(upper_j))`` (certified *unimportant*, -1);
      for ``tau = 1/2`` this is ``sigma Phi^-1(1 - upper_j)``;
    - otherwise nothing is certified (abstain: side 0, radius 0).

    Both radii are exact for a half-space indicator ``s_j``.

    Args:
        lower (Tensor): Lower band, shape ``(bsz, d)``.
        upper (Tensor): Upper band, shape ``(bsz, d)``.
        scale (Tensor or float): Noise standard deviation ``sigma``, a float or ``(bsz,)``.
        threshold (float, optional): ``tau`` in (0, 1). Default: 0.5

    Returns:
        tuple[Tensor, Tensor]: ``(radius, side)``: float64 radii ``>= 0`` (``inf`` where
        ``lower = 1`` or ``upper = 0``) and int8 sides in {+1, -1, 0}, both ``(bsz, d)``.

    Examples::

        >>> r, side = feature_radii(torch.tensor([[0.75]]), torch.tensor([[0.9]]), 0.25)
        >>> round(r.item(), 4), side.item()
        (0.1686, 1)
    """
    tau = check_probability(threshold, "threshold")
    lower = lower.to(torch.float64)
    upper = upper.to(torch.float64)
    sigma = torch.as_tensor(scale, dtype=torch.float64, device=lower.device)
    if sigma.dim() == 1:
        sigma = sigma.unsqueeze(-1)
    tau_t = torch.tensor(tau, dtype=torch.float64, device=lower.device)
    important = lower > tau
    unimportant = upper < tau
    up = sigma * quantile_gap(lower, tau_t, torch.special.ndtri)
    down = sigma * quantile_gap(tau_t, upper, torch.special.ndtri)
    zero = torch.zeros((), dtype=torch.float64, device=lower.device)
    radius = torch.where(important, up, torch.where(unimportant, down, zero))
    # ndtri rounding can give a tiny negative value just past tau: never certify it
    radius = radius.clamp(min=0.0)
    side = important.to(torch.int8) - unimportant.to(torch.int8)
    side = torch.where(radius > 0, side, torch.zeros_like(side))
    return radius, side
