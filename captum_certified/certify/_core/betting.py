"""Betting (capital-process) bounds for the mean of [0, 1]-valued samples, valid at all times."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from captum_certified._utils.validation import check_positive_int, check_probability

#: Largest bet ``lambda`` of the grid; bets stay below 1 so every capital factor is positive.
MAX_BET = 0.95
#: Ratio between consecutive bets of the grid.
GRID_RATIO = 1.35
#: Root-finding steps for the band ends (Illinois with a bisection step every fourth).
ITERATIONS = 16


def betting_grid(horizon: int, num_features: int, alpha: float) -> Tensor:
    r"""The fixed grid of bets ``lambda_j`` mixed by the betting bounds.

    From ``sqrt(2 log(2 d / alpha) / (horizon / 4))`` (the bet that is best at ``horizon``
    samples for the largest variance ``1/4``) up to ``0.95``, in steps of a factor ``1.35``.
    It depends only on ``horizon``, ``d`` and ``alpha``, never on the samples, which is what
    makes the mixture a martingale.

    Args:
        horizon (int): Sample size the band should be tightest around (the largest one for a
                    confidence sequence).
        num_features (int): Number of coordinates ``d`` covered simultaneously.
        alpha (float): Failure probability.

    Returns:
        Tensor: the bets, float64, increasing.

    Examples::

        >>> betting_grid(4096, 784, 0.05).shape
        torch.Size([8])
    """
    horizon = check_positive_int(horizon, "horizon")
    num_features = check_positive_int(num_features, "num_features")
    alpha = check_probability(alpha, "alpha")
    level = math.log(2 * num_features / alpha)
    low = min(MAX_BET, math.sqrt(8.0 * level / horizon))
    steps = max(0, math.ceil(math.log(MAX_BET / low) / math.log(GRID_RATIO)))
    return torch.tensor(
        [low * GRID_RATIO**i for i in range(steps)] + [MAX_BET], dtype=torch.float64
    )


def _psi_ratio(u: Tensor) -> Tensor:
    """An upper bound on ``psi(u) / u^2``, ``psi(u) = -log(1 - u) - u``, for ``u`` in [0, 1).

    ``psi(u) / u^2 = sum_{k >= 2} u^(k-2) / k``; below ``u = 0.01`` the series is cut after two
    terms and the rest bounded by ``u^2 / (4 (1 - u))``; above, the direct formula (relative
    error below ``1e-13`` there) is inflated by ``1e-12``.
    """
    series = 0.5 + u / 3.0 + u.square() / (4.0 * (1.0 - u))
    safe = u.clamp(min=1e-2)
    direct = (-torch.log1p(-safe) - safe) / safe.square() * (1.0 + 1e-12)
    return torch.where(u < 1e-2, series, direct)


def log_capital_lower_bound(
    bets: Tensor, n: Tensor, mean: Tensor, m2: Tensor | None, m: Tensor
) -> Tensor:
    r"""A lower bound on ``log prod_i (1 + lambda (X_i - m))`` for each bet of ``bets``.

    The samples ``X_1..X_n`` in [0, 1] enter only through their mean and centred second moment
    ``m2 = sum_i (X_i - mean)^2``. Two per-sample bounds of ``log(1 + lambda y)``,
    ``y = X - m``, both valid, the larger is taken:

    - *chord*: ``log(1 + lambda (X - m))`` is concave in ``X``, so it is at least
      ``(1 - X) log(1 - lambda m) + X log(1 + lambda (1 - m))`` (exact for binary samples);
    - *quadratic*: ``(lambda y - log(1 + lambda y)) / y^2`` is non-increasing in ``y`` and
      ``y >= -m``, so ``log(1 + lambda y) >= lambda y - psi(lambda m) y^2 / m^2``.

    Args:
        bets (Tensor): ``(J,)`` bets in (0, 1).
        n (Tensor): Samples, broadcast against ``mean``.
        mean (Tensor): Sample means in [0, 1].
        m2 (Tensor, optional): Centred second moments; None uses the chord bound only.
        m (Tensor): Candidate means in [0, 1] (broadcast against ``mean``).

    Returns:
        Tensor: float64 bounds of shape ``(*mean.shape, J)``.
    """
    lam = bets.to(mean.device)
    mean_ = mean.unsqueeze(-1)
    m_ = m.unsqueeze(-1)
    n_ = n.unsqueeze(-1) if isinstance(n, Tensor) and n.dim() else n
    chord = n_ * (
        torch.xlogy(mean_, 1.0 + lam * (1.0 - m_)) + (1.0 - mean_) * torch.log1p(-lam * m_)
    )
    if m2 is None:
        return chord
    spread = m2.unsqueeze(-1) + n_ * (mean_ - m_).square()  # sum_i (X_i - m)^2
    quad = lam * n_ * (mean_ - m_) - lam.square() * _psi_ratio(lam * m_) * spread
    return torch.maximum(chord, quad)


def betting_lower_bound(
    mean: Tensor,
    m2: Tensor | None,
    n: Tensor | int,
    level: float,
    bets: Tensor,
    iterations: int = ITERATIONS,
) -> Tensor:
    r"""Largest ``m`` found by bisection at which the mixed capital reaches ``exp(level)``.

    The mixture ``(1/J) sum_j prod_i (1 + lambda_j (X_i - m))`` is non-increasing in ``m``, so
    reaching ``exp(level)`` at ``m`` rejects every smaller mean too. The bisection keeps its
    lower end rejected (or 0), so the answer is a rejected point: rounding can only lower it.

    Args:
        mean (Tensor): Sample means in [0, 1].
        m2 (Tensor, optional): Centred second moments (None: chord bound only).
        n (Tensor or int): Samples behind each mean.
        level (float): ``log(1 / a)`` for a one-sided failure probability ``a``.
        bets (Tensor): The grid of bets (``betting_grid``).
        iterations (int, optional): Bisection steps. Default: 16

    Returns:
        Tensor: float64 lower bounds, ``<= mean``.
    """
    mean = mean.to(torch.float64).clamp(0.0, 1.0)
    n_t = torch.as_tensor(n, dtype=torch.float64, device=mean.device)
    log_weight = -math.log(bets.numel())
    # float64 rounding of the sums is far below this margin (it only makes the test stricter)
    margin = 1e-6 + 1e-12 * float(n_t.max())

    def excess(m: Tensor) -> Tensor:  # >= 0 exactly where m is rejected
        bound = log_capital_lower_bound(bets, n_t, mean, m2, m)
        return torch.logsumexp(bound, dim=-1) + log_weight - (level + margin)

    # Illinois (modified regula falsi) on a bracket [lo, hi] with lo rejected or 0 and hi not
    # rejected; only points tested as rejected ever become lo, so the answer is sound whatever
    # the convergence. hi = mean is never rejected: there every capital bound is <= 0.
    # a first guess twice Hoeffding's half-width below the mean narrows the bracket
    guess = (mean - 2.0 * torch.sqrt(level / (2.0 * n_t))).clamp(min=0.0)
    g_guess = excess(guess)
    zero = torch.zeros_like(mean)
    g_zero = excess(zero)
    inside = g_guess >= 0
    lo = torch.where(inside, guess, zero)
    g_lo = torch.where(inside, g_guess, g_zero)
    hi = torch.where(inside, mean, guess)
    g_hi = torch.where(inside, excess(mean), g_guess).clamp(max=-margin)
    hi = torch.where(g_lo >= 0, hi, lo)  # nothing rejected at 0: the bound is 0
    last = torch.zeros_like(mean, dtype=torch.int8)
    for step in range(iterations):
        if step % 4 == 3:  # a bisection step every fourth: guaranteed progress
            mid = 0.5 * (lo + hi)
        else:
            mid = (lo * g_hi - hi * g_lo) / (g_hi - g_lo)
            mid = torch.where(torch.isfinite(mid), mid, 0.5 * (lo + hi))
            mid = torch.minimum(torch.maximum(mid, lo), hi)
        g_mid = excess(mid)
        ok = g_mid >= 0
        lo, g_lo = torch.where(ok, mid, lo), torch.where(ok, g_mid, g_lo)
        hi, g_hi = torch.where(ok, hi, mid), torch.where(ok, g_hi, g_mid)
        # Illinois: halve the stale end's value when the same end moved twice in a row
        side = torch.where(ok, 1, -1).to(torch.int8)
        g_hi = torch.where(ok & (last == 1), 0.5 * g_hi, g_hi)
        g_lo = torch.where(~ok & (last == -1), 0.5 * g_lo, g_lo)
        last = side
    return lo


def betting_band(
    mean: Tensor,
    n: Tensor | int,
    alpha: float,
    *,
    variance: Tensor | None = None,
    horizon: int | None = None,
) -> tuple[Tensor, Tensor]:
    r"""Simultaneous betting band for the expectation of a [0, 1]-valued map.

    For each coordinate and each side, the capital of a bettor who mixes the bets of
    ``betting_grid`` (Waudby-Smith and Ramdas, JRSS-B 2024) is a nonnegative martingale
    at the true mean; by Ville's inequality it ever reaches ``2 d / alpha`` with probability
    at most ``alpha / (2 d)``, and a union bound over the ``2 d`` tails makes the band
    simultaneous. It is a confidence *sequence*: it holds at every sample size at once, so it
    stays valid at a data-dependent stopping time. With ``variance`` the capital is bounded
    below through the second moment too, so the band adapts to the variance (the KL band
    assumes the Bernoulli worst case); without it the band needs only the means and is exact
    for binary maps. See :doc:`/certificates` for the proof.

    Args:
        mean (Tensor): Sample means of shape ``(bsz, d)`` (values in [0, 1]).
        n (int or Tensor): Samples behind each mean (an int, or ``(bsz, 1)``).
        alpha (float): Failure probability per example.
        variance (Tensor, optional): Population variances (divisor ``n``) of the samples,
                    shape ``(bsz, d)``; None bounds through the means only. Default: None
        horizon (int, optional): Sample size the band should be tightest around; None uses
                    ``n`` (an int). Default: None

    Returns:
        tuple[Tensor, Tensor]: ``(lower, upper)`` in float64, within [0, 1].

    Examples::

        >>> mean = torch.tensor([[0.02, 0.5]])
        >>> lo, up = betting_band(mean, 4096, 0.05, variance=torch.tensor([[0.001, 0.01]]))
        >>> [round(v, 4) for v in up[0].tolist()]
        [0.0228, 0.5057]
    """
    alpha = check_probability(alpha, "alpha")
    if isinstance(n, Tensor):
        if horizon is None:
            raise ValueError("`horizon` is needed when `n` is a tensor")
        if (n < 1).any():
            raise ValueError("`n` must be at least 1")
    else:
        n = check_positive_int(n, "n")
        horizon = n if horizon is None else horizon
    horizon = check_positive_int(horizon, "horizon")
    mean = mean.to(torch.float64).clamp(0.0, 1.0)
    d = mean.shape[-1]
    bets = betting_grid(horizon, d, alpha)
    level = math.log(2 * d / alpha)
    m2 = None
    if variance is not None:
        if variance.shape != mean.shape:
            raise ValueError(
                f"`variance` must have the shape of `mean` {tuple(mean.shape)}, "
                f"got {tuple(variance.shape)}"
            )
        n_t = torch.as_tensor(n, dtype=torch.float64, device=mean.device)
        m2 = variance.to(torch.float64).clamp(min=0.0) * n_t
    lower = betting_lower_bound(mean, m2, n, level, bets)
    flipped = betting_lower_bound(1.0 - mean, m2, n, level, bets)
    upper = torch.nextafter(1.0 - flipped, torch.full_like(flipped, 2.0)).clamp(max=1.0)
    return lower, upper
