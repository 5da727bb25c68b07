"""Test oracles: exact (slow) references the certificates are checked against.

Imported by tests as ``from _oracles import ...`` (pytest's ``pythonpath`` is ``tests``).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from torch import Tensor

from captum_certified.certify import RDPTopKCertificate


def scan_ranks(
    cert: RDPTopKCertificate,
    k: int | float,
    radius: float | Tensor,
    norm: str | float | None = None,
    method: str | None = None,
) -> Tensor:
    """Every rank's condition of an RDP certificate, ``(bsz, K)`` bool (unopposed ranks True).

    The full scan that ``certified_count``'s binary search must agree with.
    """
    count = cert._count(k)
    lower_i, upper_i, unopposed = cert._pairs(count)
    ok = cert._condition(
        lower_i,
        upper_i,
        cert._per_example(radius),
        cert._norm(norm),
        cert._check_method(method),
    )
    return ok | unopposed.to(ok.device)


def renyi_divergence(q: np.ndarray, p: np.ndarray, order: float) -> float:
    r"""``D_a(Q || P) = log(sum_i q_i^a p_i^(1-a)) / (a - 1)`` of two categorical laws (numpy).

    Args:
        q (ndarray): First distribution.
        p (ndarray): Second distribution.
        order (float): ``a > 1``.

    Returns:
        float: the divergence (``inf`` if ``q`` puts mass where ``p`` has none).
    """
    q = np.asarray(q, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(q > 0, np.exp(order * np.log(q) + (1.0 - order) * np.log(p)), 0.0)
    return float(np.log(terms.sum()) / (order - 1.0))


def joint_rdp_bound(
    p_a: Any, p_b: Any, order: float, rest: float | None = None, return_minimizer: bool = False
) -> Any:
    r"""Exact ``min{D_a(Q || P) : min_B Q >= max_A Q}`` by water-filling (numpy, one order).

    The joint bound (docs/derivations.rst): if at least ``k0`` members ``A`` of the top-k were
    overtaken by ``k0`` outsiders ``B``, then every ``Q_b >= Q_a``. For a level ``t`` the
    optimum is ``Q_a = min(c p_a, t)``, ``Q_b = max(c p_b, t)`` and ``Q = c p`` on the rest,
    with ``c`` fixed by ``sum Q = 1`` (KKT); the value is convex in ``t`` and minimized by a
    golden-section search. **Do not** replace it by the "equalizing" shortcut that sets all
    ``2 k0`` entries equal: that value can exceed the true minimum (at ``a = 8``,
    ``P = (0.2, 0.2 | 0.19, 0.001 | 0.409)``: 0.8822 vs 0.5067) and is not a certificate.

    This function is exact but is not used by ``RDPTopKCertificate``: applying it with a
    confidence band also needs a worst-set and a band-monotonicity argument that are only
    checked numerically. It is a test oracle.

    Args:
        p_a (array-like): Masses of ``A`` (they must fall to at most the level).
        p_b (array-like): Masses of ``B`` (they must rise to at least the level).
        order (float): Rényi order ``a > 1``.
        rest (float, optional): Mass of all other cells; None uses
                    ``1 - sum(p_a) - sum(p_b)``. Default: None
        return_minimizer (bool, optional): Also return the minimizing ``Q`` as one array
                    ``(Q_A, Q_B, Q_rest)`` (the rest merged into one cell; spread it in
                    proportion to ``P``). Default: False

    Returns:
        float: the minimum divergence (and the minimizer if ``return_minimizer``).
    """
    pa = np.asarray(p_a, dtype=np.float64).reshape(-1)
    pb = np.asarray(p_b, dtype=np.float64).reshape(-1)
    if order <= 1:
        raise ValueError("`order` must be > 1")
    r = 1.0 - pa.sum() - pb.sum() if rest is None else float(rest)
    if r < -1e-12 or (pa < 0).any() or (pb < 0).any():
        raise ValueError("masses must be non-negative and sum to at most 1")
    r = max(r, 0.0)
    p_all = np.concatenate([pa, pb, [r]])

    def total(c: np.ndarray | float, t: float) -> np.ndarray:
        c = np.asarray(c, dtype=np.float64)[..., None]
        return np.minimum(c * pa, t).sum(-1) + np.maximum(c * pb, t).sum(-1) + c[..., 0] * r

    def q_of(t: float) -> np.ndarray | None:
        # sum Q is piecewise linear and non-decreasing in c, with kinks at t / p: solve exactly
        if total(0.0, t) > 1.0:
            return None
        with np.errstate(divide="ignore"):
            kinks = np.concatenate([[0.0], t / pa[pa > 0], t / pb[pb > 0]])
        kinks = np.unique(kinks[np.isfinite(kinks)])
        values = total(kinks, t)
        above = np.flatnonzero(values >= 1.0)
        if above.size:
            j = int(above[0])
            if j == 0:
                c = kinks[0]
            else:
                c0, c1, v0, v1 = kinks[j - 1], kinks[j], values[j - 1], values[j]
                c = c0 + (1.0 - v0) * (c1 - c0) / (v1 - v0)
        else:
            slope = pb.sum() + r  # past the last kink only B and the rest grow
            if slope <= 0:
                return None
            c = kinks[-1] + (1.0 - values[-1]) / slope
        return np.concatenate([np.minimum(c * pa, t), np.maximum(c * pb, t), [c * r]])

    def value(t: float) -> float:
        q = q_of(t)
        if q is None:
            return math.inf
        return renyi_divergence(q / q.sum(), p_all, order)

    t_max = 1.0 / max(1, pb.size)
    lo, hi = 0.0, t_max
    ratio = (math.sqrt(5.0) - 1.0) / 2.0
    x1, x2 = hi - ratio * (hi - lo), lo + ratio * (hi - lo)
    f1, f2 = value(x1), value(x2)
    for _ in range(90):  # 0.618^90 ~ 1e-19 of the bracket
        if f1 <= f2:
            hi, x2, f2 = x2, x1, f1
            x1 = hi - ratio * (hi - lo)
            f1 = value(x1)
        else:
            lo, x1, f1 = x1, x2, f2
            x2 = lo + ratio * (hi - lo)
            f2 = value(x2)
    best_t = min((f1, x1), (f2, x2), (value(0.0), 0.0), (value(t_max), t_max))[1]
    best = value(best_t)
    if not return_minimizer:
        return best
    q = q_of(best_t)
    return best, (None if q is None else q / q.sum())
