"""Simultaneous confidence bands for the expected map from Monte-Carlo samples."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor

from captum_certified._utils.validation import check_positive_int, check_probability


def hoeffding_error(num_features: int, n: int, alpha: float) -> float:
    r"""Half-width of the simultaneous Hoeffding band of Levine et al.

    ``err = sqrt(ln(2 d / alpha) / (2 n))``: with probability at least ``1 - alpha`` every one
    of the ``d`` coordinates of a mean of ``n`` i.i.d. [0, 1]-valued samples lies within ``err``
    of its expectation (Hoeffding per coordinate and tail, Bonferroni over ``2 d`` tails).

    Args:
        num_features (int): Number of coordinates ``d`` covered simultaneously.
        n (int): Number of Monte-Carlo samples.
        alpha (float): Failure probability ``1 - eta``.

    Returns:
        float: the half-width ``err``.

    Examples::

        >>> round(hoeffding_error(150528, 8192, 0.05), 5)
        0.03087
    """
    num_features = check_positive_int(num_features, "num_features")
    n = check_positive_int(n, "n")
    alpha = check_probability(alpha, "alpha")
    return math.sqrt(math.log(2 * num_features / alpha) / (2 * n))


def hoeffding_band(mean: Tensor, n: int, alpha: float) -> tuple[Tensor, Tensor]:
    r"""Simultaneous Hoeffding band for the expectation of a [0, 1]-valued map.

    Valid for any [0, 1]-valued per-sample map (binary or not). The band covers all ``d``
    coordinates of one example at once with probability at least ``1 - alpha``.

    Args:
        mean (Tensor): Sample means of shape ``(bsz, d)`` (values in [0, 1]).
        n (int): Number of samples behind each mean.
        alpha (float): Failure probability per example.

    Returns:
        tuple[Tensor, Tensor]: ``(lower, upper)`` in float64, clamped to [0, 1].
    """
    err = hoeffding_error(mean.shape[-1], n, alpha)
    mean = mean.to(torch.float64)
    return (mean - err).clamp(0.0, 1.0), (mean + err).clamp(0.0, 1.0)


def clopper_pearson_band(counts: Tensor, n: int, alpha: float) -> tuple[Tensor, Tensor]:
    r"""Simultaneous exact (Clopper-Pearson) band for binary maps.

    Each coordinate count ``k_j ~ Bin(n, p_j)`` gets one-sided exact bounds at level
    ``alpha / (2 d)`` per tail (Bonferroni over the ``2 d`` tails), so with probability at least
    ``1 - alpha`` the band contains all ``d`` coordinates of ``p`` at once. It is tighter than
    Hoeffding everywhere, and much tighter near 0 and 1.

    Args:
        counts (Tensor): Integer-valued counts of shape ``(bsz, d)`` in ``0..n``.
        n (int): Number of samples.
        alpha (float): Failure probability per example.

    Returns:
        tuple[Tensor, Tensor]: ``(lower, upper)`` in float64.
    """
    n = check_positive_int(n, "n")
    alpha = check_probability(alpha, "alpha")
    counts = counts.to(torch.float64)
    rounded = counts.round()
    if (rounded != counts).any() or (counts < 0).any() or (counts > n).any():
        raise ValueError("`counts` must be integers in 0..n (binary per-sample maps)")
    tail = alpha / (2 * counts.shape[-1])
    # Counts take at most n + 1 values: evaluate the quantiles once per distinct value.
    values, inverse = torch.unique(rounded, return_inverse=True)
    k = values.cpu().numpy()
    from scipy import stats  # imported here: scipy.stats costs ~1 s at import time

    with np.errstate(all="ignore"):
        lower = np.where(k > 0, stats.beta.ppf(tail, k, n - k + 1), 0.0)
        upper = np.where(k < n, stats.beta.isf(tail, k + 1, n - k), 1.0)
    lower_t = torch.as_tensor(lower, dtype=torch.float64, device=counts.device)
    upper_t = torch.as_tensor(upper, dtype=torch.float64, device=counts.device)
    return lower_t[inverse], upper_t[inverse]


def bernoulli_kl(m: Tensor, p: Tensor) -> Tensor:
    r"""``kl(m, p) = m log(m / p) + (1 - m) log((1 - m) / (1 - p))``, float64, ``0 log 0 = 0``.

    Args:
        m (Tensor): First mean in [0, 1].
        p (Tensor): Second mean in [0, 1] (broadcast against ``m``).

    Returns:
        Tensor: the Bernoulli Kullback-Leibler divergence (``inf`` where ``p`` is 0 or 1 and
        ``m`` is not).
    """
    m = torch.as_tensor(m, dtype=torch.float64)
    p = torch.as_tensor(p, dtype=torch.float64)
    return (
        torch.xlogy(m, m)
        - torch.xlogy(m, p)
        + torch.xlogy(1.0 - m, 1.0 - m)
        - torch.xlogy(1.0 - m, 1.0 - p)
    )


def kl_band(mean: Tensor, n: int, alpha: float, iterations: int = 64) -> tuple[Tensor, Tensor]:
    r"""Simultaneous Bernoulli-KL (Chernoff) band for the expectation of a [0, 1]-valued map.

    For the mean ``m`` of ``n`` i.i.d. samples with values in [0, 1] and expectation ``p``,
    ``P(m >= p + t) <= exp(-n kl(p + t, p))`` and ``P(m <= p - t) <= exp(-n kl(p - t, p))``
    (Hoeffding 1963, Theorem 1: ``E e^(l X) <= 1 - p + p e^l`` for ``X`` in [0, 1] by convexity,
    so Bernoulli is the worst case of the Chernoff bound). Each coordinate gets
    ``U = max{p >= m : kl(m, p) <= log(2 d / alpha) / n}`` and
    ``L = min{p <= m : kl(m, p) <= log(2 d / alpha) / n}`` (Bonferroni over the ``2 d`` tails),
    found by bisection and rounded outwards. By Pinsker's inequality
    (``kl(m, p) >= 2 (p - m)^2``) it is never wider than :func:`hoeffding_band`, and much narrower
    near 0 and 1. Valid for any [0, 1]-valued per-sample map; for binary maps
    :func:`clopper_pearson_band` is tighter.

    Args:
        mean (Tensor): Sample means of shape ``(bsz, d)`` (values in [0, 1]).
        n (int): Number of samples behind each mean.
        alpha (float): Failure probability per example.
        iterations (int, optional): Bisection steps (64 reaches float64 resolution).
                    Default: 64

    Returns:
        tuple[Tensor, Tensor]: ``(lower, upper)`` in float64, within [0, 1].

    Examples::

        >>> lo, up = kl_band(torch.tensor([[0.02, 0.5]]), 1000, 0.05)
        >>> [round(v, 4) for v in up[0].tolist()]
        [0.036, 0.5467]
    """
    n = check_positive_int(n, "n")
    alpha = check_probability(alpha, "alpha")
    mean = mean.to(torch.float64).clamp(0.0, 1.0)
    level = math.log(2 * mean.shape[-1] / alpha) / n
    inside = torch.zeros_like(mean)

    def solve(lo: Tensor, hi: Tensor, lo_feasible: bool) -> tuple[Tensor, Tensor]:
        # kl(m, .) is monotone on [lo, hi]; keep the feasible end feasible
        for _ in range(iterations):
            mid = 0.5 * (lo + hi)
            ok = bernoulli_kl(mean, mid) <= level
            if lo_feasible:
                lo, hi = torch.where(ok, mid, lo), torch.where(ok, hi, mid)
            else:
                lo, hi = torch.where(ok, lo, mid), torch.where(ok, mid, hi)
        return lo, hi

    _, upper = solve(mean, torch.ones_like(mean), lo_feasible=True)
    lower, _ = solve(inside, mean, lo_feasible=False)
    # upper/lower are the infeasible ends of the brackets (or 0/1): outside the true root.
    # Pinsker makes the Hoeffding ends no tighter, so taking them guards only against rounding.
    err = hoeffding_error(mean.shape[-1], n, alpha)
    upper = torch.minimum(upper, (mean + err).clamp(0.0, 1.0))
    lower = torch.maximum(lower, (mean - err).clamp(0.0, 1.0))
    return lower, upper
