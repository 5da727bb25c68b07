"""Per-coordinate Hölder bounds and Li et al.'s pairwise bound for Rényi-close laws."""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import Tensor

from captum_certified._utils.validation import check_orders

# Elements of one (rows, pairs, orders) intermediate; bounds memory at large d.
_CHUNK_ELEMENTS = 1 << 22


def holder_bounds(q: Tensor, epsilons: Tensor, orders: Tensor) -> tuple[Tensor, Tensor]:
    r"""Per-coordinate Hölder bounds on a [0, 1]-valued smoothed coordinate after a shift.

    If ``q = E h(x + eps)`` with ``h`` in [0, 1] and the noise laws at ``x`` and ``x'`` are
    within Rényi divergence ``epsilon_a`` in both directions for every order ``a``, then (the
    Bernoulli mechanism "output 1 with probability ``h``" is post-processing)::

        q' >= exp(-epsilon_a) * q^(a / (a - 1))        q' <= (exp(epsilon_a) * q)^((a - 1) / a)

    All orders hold at once, so the lower bound is the maximum over orders and the upper bound
    the minimum (capped at 1).

    Args:
        q (Tensor): Values in [0, 1], shape ``(bsz, m)``.
        epsilons (Tensor): ``epsilon_a`` per example and order, shape ``(bsz, A)``.
        orders (Tensor): Orders ``a > 1``, shape ``(A,)``.

    Returns:
        tuple[Tensor, Tensor]: ``(lower, upper)``, float64 of shape ``(bsz, m)``.

    Examples::

        >>> from captum_certified.certify import rdp_orders
        >>> from captum_certified.noise import GaussianNoise
        >>> a = rdp_orders()
        >>> eps = GaussianNoise().rdp_epsilon(a, 0.3, 1.0)
        >>> lo, _ = holder_bounds(torch.tensor([[0.8]]), eps, a)
        >>> round(lo.item(), 3)
        0.626
    """
    return _holder(q, epsilons, orders, "lower"), _holder(q, epsilons, orders, "upper")


def _holder(q: Tensor, epsilons: Tensor, orders: Tensor, side: str) -> Tensor:
    q = q.to(torch.float64).clamp(0.0, 1.0)
    orders = check_orders(orders).to(q.device)
    eps = epsilons.to(device=q.device, dtype=torch.float64)
    log_q = torch.log(q)  # -inf at 0: lower bound 0, upper bound 0
    out = torch.empty_like(q)
    for rows, cols in _chunks(q.shape[0], q.shape[1], orders.numel()):
        lq = log_q[rows, cols].unsqueeze(-1)
        e = eps[rows].unsqueeze(1)
        if side == "lower":
            out[rows, cols] = torch.exp((-e + orders / (orders - 1.0) * lq).amax(-1))
        else:
            log_hi = (orders - 1.0) / orders * (e + lq)
            # an infinite epsilon (infinite radius) constrains nothing, even where q = 0
            log_hi = torch.where(torch.isposinf(e), torch.zeros_like(log_hi), log_hi).amin(-1)
            out[rows, cols] = torch.exp(log_hi.clamp(max=0.0))
    return out


def pairwise_rdp_bound(p_a: Tensor | float, p_b: Tensor | float, orders: Tensor | float) -> Tensor:
    r"""Li et al.'s pairwise bound ``B_a(p_a, p_b) = min{D_a(Q || P) : Q_b >= Q_a}``.

    For entries ``p_a > p_b`` of a distribution ``P`` (``p_a + p_b <= 1``)::

        B_a = -log(1 - p_a - p_b + 2 M_(1-a)(p_a, p_b)),   M_s(x, y) = ((x^s + y^s) / 2)^(1/s)

    (the minimizer sets ``Q_a = Q_b`` and keeps the rest proportional to ``P``). The power mean
    is evaluated in log space, so tiny masses and large orders neither overflow nor round to a
    bound that is too large. Where ``p_a <= p_b`` the constraint already holds and ``B = 0``.
    ``B`` increases in ``p_a`` and decreases in ``p_b``.

    Args:
        p_a (Tensor or float): The larger mass.
        p_b (Tensor or float): The smaller mass (broadcast against ``p_a`` and ``orders``).
        orders (Tensor or float): Orders ``a > 1``.

    Returns:
        Tensor: float64 bound (broadcast shape).
    """
    p_a = torch.as_tensor(p_a, dtype=torch.float64)
    p_b = torch.as_tensor(p_b, dtype=torch.float64)
    a = torch.as_tensor(orders, dtype=torch.float64)
    if (p_a < 0).any() or (p_b < 0).any() or (p_a + p_b > 1 + 1e-12).any():
        raise ValueError("`p_a`, `p_b` must be non-negative masses with p_a + p_b <= 1")
    with torch.no_grad():
        la = torch.log(p_a) * (1.0 - a)  # +inf where p = 0
        lb = torch.log(p_b) * (1.0 - a)
        log_mean = (torch.logaddexp(la, lb) - math.log(2.0)) / (1.0 - a)
        gap = p_a + p_b - 2.0 * torch.exp(log_mean)
        value = -torch.log1p(-gap.clamp(min=0.0, max=1.0))
    return torch.where(p_a > p_b, value, torch.zeros_like(value))


def _chunks(rows: int, cols: int, depth: int) -> Iterator[tuple[slice, slice]]:
    """Yield (row slice, col slice) blocks with at most ``_CHUNK_ELEMENTS`` * depth elements."""
    per_row = max(1, cols) * max(1, depth)
    if per_row <= _CHUNK_ELEMENTS:
        step = max(1, _CHUNK_ELEMENTS // per_row)
        for r in range(0, rows, step):
            yield slice(r, r + step), slice(None)
    else:
        col_step = max(1, _CHUNK_ELEMENTS // max(1, depth))
        for r in range(rows):
            for c in range(0, cols, col_step):
                yield slice(r, r + 1), slice(c, c + col_step)
