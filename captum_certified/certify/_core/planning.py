"""What a Gaussian top-K certificate can at best give, for planning sigma and n."""

from __future__ import annotations

import math

from captum_certified._utils.validation import (
    check_positive_float,
    check_positive_int,
    check_probability,
    resolve_count,
)
from captum_certified.certify._core.certificate import needed_rank

_BOUNDS = ("clopper_pearson", "kl", "hoeffding")


def _best_band_endpoint(n: int, num_features: int, alpha: float, bound: str) -> float:
    """The largest lower band endpoint any map can get (every sample equal to 1).

    Clopper-Pearson with ``n`` successes of ``n`` and the Bernoulli-KL band at mean 1 have the
    same exact endpoint ``(alpha / (2 d))^(1/n)`` (``kl(1, p) = -log p``); the KL band's
    bisection rounds outwards, so it never exceeds it.
    """
    if bound in ("clopper_pearson", "kl"):
        return (alpha / (2 * num_features)) ** (1.0 / n)
    return max(0.0, 1.0 - math.sqrt(math.log(2 * num_features / alpha) / (2 * n)))


def _check_bound(bound: str) -> str:
    if bound not in _BOUNDS:
        raise ValueError(f"`bound` must be one of {_BOUNDS}, got {bound!r}")
    return bound


def radius_upper_bound(
    sigma: float,
    n: int,
    num_features: int,
    alpha: float = 0.05,
    bound: str = "clopper_pearson",
    *,
    k: int | float | None = None,
    overlap: float = 1.0,
) -> float:
    r"""The largest l2 radius a Gaussian top-K certificate can certify, for any model.

    The certified radius of rank ``i`` is
    ``R_i = (sigma / 2) (Phi^-1(L_(i)) - Phi^-1(U_(2K-i+1)))`` (Levine et al.'s rule on the
    band ``L <= gbar <= U``). No band endpoint can exceed ``p_max``, the lower bound obtained
    when all ``n`` samples agree (``(alpha / (2 d))^(1/n)`` for Clopper-Pearson,
    ``1 - sqrt(ln(2 d / alpha) / (2 n))`` for Hoeffding), nor fall below ``1 - p_max``, so

    .. math:: R_i \le \sigma\, \Phi^{-1}(p_{\max}).

    This is a ceiling set by ``sigma``, ``n``, ``d`` and ``alpha`` alone, for every rank that has
    an opponent: a model whose map never changes under the noise reaches it; real models reach
    a fraction of it (the parameter guide measures how much). Use it to rule out settings: if
    the ceiling is below the radius you need, no model can be certified there with these
    ``sigma`` and ``n``.

    One exception, for any model: when ``2K > d`` the ``2K - d`` highest ranks have no
    opponent (every top-K set shares them), so an overlap of at most ``(2K - d) / K`` is
    certified at every radius (``certified_radius`` answers ``inf``). Pass ``k`` (and
    ``overlap``) to get that answer here too; without ``k`` the ceiling is that of the paired
    ranks.

    Args:
        sigma (float): Absolute noise standard deviation (the smallest one, for anisotropic
                    noise).
        n (int): Number of noise samples.
        num_features (int): ``d``, the number of features of the map (the band covers them
                    all).
        alpha (float, optional): Failure probability of the certificate. Default: 0.05
        bound (str, optional): The band used: ``"clopper_pearson"`` (binary maps),
                    ``"kl"`` (the default for other [0, 1] maps; the same ceiling) or
                    ``"hoeffding"``. Default: "clopper_pearson"
        k (int or float, optional): Top-K size (count or fraction of ``d``); None: the
                    ceiling of the paired ranks. Default: None
        overlap (float, optional): Required top-K overlap in (0, 1], used with ``k``.
                    Default: 1.0

    Returns:
        float: the ceiling on the certified radius (0 when nothing can be certified, ``inf``
        when ``k`` is given and the overlap is carried by unopposed ranks).

    Examples::

        >>> round(radius_upper_bound(0.5, 2048, 64), 3)
        1.334
        >>> radius_upper_bound(0.5, 2048, 64, k=40, overlap=0.4)   # 16 ranks are unopposed
        inf
    """
    sigma = check_positive_float(sigma, "sigma")
    n = check_positive_int(n, "n")
    num_features = check_positive_int(num_features, "num_features")
    alpha = check_probability(alpha, "alpha")
    bound = _check_bound(bound)
    if k is not None:
        count = resolve_count(k, num_features, "k")
        if needed_rank(overlap, count) <= 2 * count - num_features:
            return math.inf
    p_max = _best_band_endpoint(n, num_features, alpha, bound)
    if p_max <= 0.5:
        return 0.0
    from scipy.stats import norm  # imported on first use (start-up time)

    return sigma * float(norm.ppf(p_max))


def min_samples_for_radius(
    radius: float,
    sigma: float,
    num_features: int,
    alpha: float = 0.05,
    bound: str = "clopper_pearson",
) -> int:
    r"""The smallest ``n`` for which :func:`radius_upper_bound` exceeds ``radius``.

    A necessary condition, not a sufficient one: with fewer samples no model can be certified
    at ``radius``; with this many, only a model whose map never changes under the noise would
    be. The measured radii of the parameter guide show how far real models are from the
    ceiling (on the digits CNN, the radius at overlap 0.5 is about a fifth of it).

    Args:
        radius (float): Target l2 radius (> 0).
        sigma (float): Absolute noise standard deviation.
        num_features (int): ``d``, the number of features of the map.
        alpha (float, optional): Failure probability of the certificate. Default: 0.05
        bound (str, optional): ``"clopper_pearson"``, ``"kl"`` or ``"hoeffding"``.
                    Default: "clopper_pearson"

    Returns:
        int: the smallest number of samples for which the ceiling is above ``radius``.

    Examples::

        >>> min_samples_for_radius(1.0, 0.5, 64)
        342
    """
    radius = check_positive_float(radius, "radius")
    sigma = check_positive_float(sigma, "sigma")
    num_features = check_positive_int(num_features, "num_features")
    alpha = check_probability(alpha, "alpha")
    bound = _check_bound(bound)
    from scipy.stats import norm  # imported on first use (start-up time)

    # Need p_max(n) > q := Phi(radius / sigma).
    if bound in ("clopper_pearson", "kl"):
        # (alpha / 2d)^(1/n) > q  <=>  n > ln(alpha / 2d) / ln(q)
        log_q = float(norm.logcdf(radius / sigma))
        if log_q == 0.0:
            raise ValueError(
                f"`radius` / `sigma` = {radius / sigma:g} is too large to be certified with "
                "any number of samples in double precision"
            )
        n = math.floor(math.log(alpha / (2 * num_features)) / log_q) + 1
    else:
        # 1 - sqrt(ln(2d/alpha) / 2n) > q  <=>  n > ln(2d/alpha) / (2 (1 - q)^2)
        tail = float(norm.sf(radius / sigma))
        if tail == 0.0:
            raise ValueError(
                f"`radius` / `sigma` = {radius / sigma:g} is too large to be certified with "
                "any number of samples in double precision"
            )
        n = math.floor(math.log(2 * num_features / alpha) / (2 * tail**2)) + 1
    # Guard against rounding at the boundary: step until the ceiling is strictly above.
    while radius_upper_bound(sigma, n, num_features, alpha, bound) <= radius:
        n += 1
    while n > 1 and radius_upper_bound(sigma, n - 1, num_features, alpha, bound) > radius:
        n -= 1
    return n
