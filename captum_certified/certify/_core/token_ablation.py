"""Token-ablation smoothing (Levine and Feizi, AAAI 2020) for attributions: the l0 rule.

Private: measured in ``benchmarks/bench_token_ablation.py`` and derived in
``docs/certificates.rst`` ("Token ablation"); not part of the public API (see there why).

Each noisy copy keeps ``k`` of the ``d`` positions, drawn uniformly among the ``C(d, k)``
subsets ``S``, and masks the rest; a per-sample map ``s(x_S, S)`` in [0, 1]^d sees only the
kept tokens. The *conditional* smoothed map is ``g_i(x) = E[s_i | i in S]``.
"""

from __future__ import annotations

from math import comb

import numpy as np
import torch
from torch import Tensor


def unconditional_delta(d: int, k: int, rho: int) -> float:
    """``P(S meets R)`` for ``|R| = rho``: the total-variation bound of the unconditional map."""
    _check(d, k, rho)
    return 1.0 - comb(d - rho, k) / comb(d, k)


def conditional_delta(d: int, k: int, rho: int) -> float:
    """``P(S meets R | i in S)`` for ``i`` outside ``R``, ``|R| = rho``: how far an unchanged
    position's conditional map can move (``1 - C(d-1-rho, k-1) / C(d-1, k-1)``)."""
    _check(d, k, rho)
    if k == 0:
        return 0.0
    return 1.0 - comb(d - 1 - rho, k - 1) / comb(d - 1, k - 1)


def _check(d: int, k: int, rho: int) -> None:
    if not (0 <= k <= d and 0 <= rho <= d):
        raise ValueError(f"need 0 <= k <= d and 0 <= rho <= d, got d={d}, k={k}, rho={rho}")


def kept_guaranteed(a: np.ndarray, b: np.ndarray, slots: int) -> int:
    """Fewest members of ``A`` in the top-``slots`` of ``A`` and ``B`` together.

    ``a`` are lower bounds of ``A``'s values sorted descending, ``b`` upper bounds of ``B``'s
    sorted descending; ties go against ``A``. At least ``m`` members of ``A`` stay iff
    ``a[m-1] > b[slots-m]`` (``b`` beyond its end counts as minus infinity); exact when the
    bounds are attainable.
    """
    m = 0
    for cand in range(1, min(len(a), slots) + 1):
        j = slots - cand  # index of B's (slots - cand + 1)-th largest
        if j < len(b) and not a[cand - 1] > b[j]:
            break
        m = cand
    return m


def ablation_topk_kept(lower: Tensor, upper: Tensor, k_top: int, delta: float, rho: int) -> Tensor:
    r"""Certified number of the top-``k_top`` positions of ``g`` kept under ``rho`` changed tokens.

    On the band event ``lower <= g(x) <= upper``: an unchanged position's value at ``x'`` lies
    in ``[g_i - delta, g_i + delta]`` (``delta`` = :func:`conditional_delta`), a changed one
    anywhere in [0, 1]. The adversary changes ``r1`` top-K members (lost) and ``r2`` outsiders
    (pushed to 1, taking ``r2`` of the K places), ``r1 + r2 <= rho``; the worst choice removes
    the ``r1`` members with the largest lower bounds and the ``r2`` outsiders with the smallest
    upper bounds. The rest is the sorted pigeonhole rule with ``K - r2`` places. Returns the
    minimum over ``(r1, r2)`` of the members kept, per example.

    Args:
        lower, upper: ``(bsz, d)`` simultaneous band of ``g(x)``.
        k_top: K.
        delta: per-coordinate move of unchanged positions.
        rho: tokens changed.
    """
    lo = torch.sort(lower.double(), dim=1, descending=True).values.numpy()
    hi = torch.sort(upper.double(), dim=1, descending=True).values.numpy()
    d = lo.shape[1]
    if not 1 <= k_top <= d:
        raise ValueError(f"`k_top` must be in 1..{d}, got {k_top}")
    out = []
    for row_lo, row_hi in zip(lo, hi):
        a_all = np.clip(row_lo[:k_top] - delta, 0.0, 1.0)
        b_all = np.clip(row_hi[k_top:] + delta, 0.0, 1.0)
        worst = k_top
        for r1 in range(0, min(rho, k_top) + 1):
            for r2 in range(0, min(rho - r1, d - k_top, k_top) + 1):
                a = a_all[r1:]
                b = b_all[: len(b_all) - r2]
                worst = min(worst, kept_guaranteed(a, b, k_top - r2))
        out.append(worst)
    return torch.tensor(out)


def conditional_band(counts: Tensor, trials: Tensor, alpha: float) -> tuple[Tensor, Tensor]:
    r"""Clopper-Pearson band of ``g_i`` from ``counts[i]`` ones in ``trials[i]`` samples that
    kept ``i`` (Bonferroni over the ``2d`` tails). Given which samples kept ``i``, those samples'
    maps are i.i.d. draws of ``s_i`` under ``S ~ uniform | i in S``, so the exact binomial
    bounds apply with ``trials[i]``; no trial: the band is [0, 1]."""
    from scipy import stats

    c = counts.double().numpy()
    n = trials.double().numpy()
    tail = alpha / (2 * c.shape[-1])
    with np.errstate(all="ignore"):
        lower = np.where(c > 0, stats.beta.ppf(tail, c, n - c + 1), 0.0)
        upper = np.where(c < n, stats.beta.isf(tail, c + 1, n - c), 1.0)
    lower = np.where(n > 0, np.nan_to_num(lower, nan=0.0), 0.0)
    upper = np.where(n > 0, np.nan_to_num(upper, nan=1.0), 1.0)
    return torch.from_numpy(lower), torch.from_numpy(upper)
