"""Volume terms, McDiarmid error and inversions of the cosine certificate (certificates.rst §9).

Reference values are computed here independently (numpy Monte Carlo, the large-d normal
approximation, the textbook form of the incomplete beta) or quoted from certificates.rst §9 "Scale".
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import special

from captum_certified.certify import (
    CosineCertificate,
    CubeCosineCertificate,
    ball_difference_bound,
    cube_difference_bound,
    mcdiarmid_error,
)
from captum_certified.certify._core.cosine_bounds import ball_nonoverlap

# 5 standard deviations: a correct formula fails one check with probability < 6e-7 (normal
# approximation of the binomial, fine at these n), so all ~30 Monte-Carlo checks below pass
# together with probability > 0.9999; a formula wrong by 1 % of the volume fails them.
Z = 5.0


def _uniform_ball(n: int, d: int, rng: np.random.Generator) -> np.ndarray:
    g = rng.standard_normal((n, d))
    return g / np.linalg.norm(g, axis=1, keepdims=True) * rng.random((n, 1)) ** (1.0 / d)


@pytest.mark.parametrize(
    "d, ratios",
    [
        (2, [0.1, 0.5, 1.0, 1.9]),
        (5, [0.1, 0.5, 1.0, 1.5]),
        (20, [0.05, 0.2, 0.5, 1.0]),
        (100, [0.02, 0.1, 0.3, 0.6]),
    ],
)
def test_ball_volume_term_matches_monte_carlo(d, ratios):
    # Fraction of the points of B(0, r) that are *not* in B(delta, r): a binomial proportion.
    n, r = 100_000, 1.0
    rng = np.random.default_rng(1000 + d)
    u = _uniform_ball(n, d, rng) * r
    direction = rng.standard_normal(d)
    direction /= np.linalg.norm(direction)
    for ratio in ratios:
        t = ratio * r
        outside = np.linalg.norm(u - t * direction, axis=1) > r
        p_hat = outside.mean()
        p = float(ball_nonoverlap(t, r, d))
        tol = Z * math.sqrt(max(p * (1 - p), 1e-6) / n)
        assert abs(p_hat - p) <= tol, (d, ratio, p_hat, p)
        # Delta = 2 M * fraction
        assert float(ball_difference_bound(t, r, d, norm_bound=3.0)) == pytest.approx(6 * p)


@pytest.mark.parametrize("d", [1, 2, 7, 3072, 150528])
def test_ball_volume_term_limits(d):
    r = 0.7
    assert float(ball_difference_bound(0.0, r, d)) == 0.0
    assert float(ball_difference_bound(2 * r, r, d)) == 2.0
    assert float(ball_difference_bound(5 * r, r, d, norm_bound=0.5)) == 1.0
    # t -> 0: linear in t (the cap volume vanishes like t), never negative, never NaN
    tiny = torch.tensor([1e-15, 1e-12, 1e-9]) * r
    vals = ball_nonoverlap(tiny, r, d)
    assert torch.all(vals > 0) and torch.all(vals < 1e-5)
    assert float(vals[1] / vals[0]) == pytest.approx(1e3, rel=1e-6)
    # increasing in t up to 2r, where it reaches 1
    grid = torch.linspace(0, 2 * r, 2001, dtype=torch.float64)
    vals = ball_nonoverlap(grid, r, d)
    assert torch.all(torch.diff(vals) >= 0) and float(vals[-1]) == 1.0
    assert not torch.isnan(vals).any()


@pytest.mark.parametrize(
    "d, ratio, rel",
    [
        # the approximation 2 Phi(t sqrt(d) / (2r)) - 1 has relative error O(1/d) here
        (3072, 1e-12, 1e-3),
        (3072, 1e-3, 1e-3),
        (3072, 1e-2, 1e-3),
        (3072, 2e-2, 1e-3),
        (150528, 1e-12, 1e-4),
        (150528, 1e-6, 1e-4),
        (150528, 1e-3, 1e-4),
        (150528, 5e-3, 1e-4),
    ],
)
def test_ball_volume_term_large_d_is_stable(d, ratio, rel):
    exact = float(ball_nonoverlap(ratio, 1.0, d))
    approx = 2 * special.ndtr(ratio * math.sqrt(d) / 2) - 1
    assert exact == pytest.approx(approx, rel=rel)
    # The textbook form 1 - I_{1 - s}((d+1)/2, 1/2) agrees where it is accurate, and cancels
    # to exactly 0 for t << r (which is why the package evaluates I_s(1/2, (d+1)/2)).
    naive = 1 - special.betainc((d + 1) / 2, 0.5, 1 - ratio**2 / 4)
    if ratio >= 1e-3:
        assert exact == pytest.approx(naive, rel=1e-8)
    if ratio <= 1e-12:
        assert naive == 0.0 and exact > 0.0


def test_algorithms_scale_numbers():
    # certificates.rst §9 "Scale": M = 1, r = 1.
    d = 3072
    assert round(float(ball_difference_bound(0.001, 1.0, d)), 3) == 0.044
    assert round(float(ball_difference_bound(0.01, 1.0, d)), 3) == 0.437
    assert round(float(ball_difference_bound(0.02, 1.0, d)), 3) == 0.841
    assert round(float(ball_difference_bound(0.001, 1.0, 150528)), 2) == 0.31
    # d = 3072, A = 0.5, c* = 0.8: t_max = 0.0068
    cert = _cert([0.5], r=1.0, d=d)
    assert round(float(cert.certified_radius(0.8)[0]), 4) == 0.0068


def test_mcdiarmid_numbers():
    # certificates.rst §9 "Monte Carlo": eta = 0.999 (alpha = 0.001), M = 1
    assert round(mcdiarmid_error(1000, 0.001), 3) == 0.149
    assert round(mcdiarmid_error(10000, 0.001), 3) == 0.047
    assert mcdiarmid_error(100, 0.05, norm_bound=2.0) == pytest.approx(
        2.0 / 10 * (1 + math.sqrt(2 * math.log(20)))
    )


# ------------------------------------------------------------------------------------------------
# Cube
# ------------------------------------------------------------------------------------------------


def test_cube_bound_is_vacuous_at_the_paper_radius():
    # CIFAR-10, r = 4/255, eps = 1/255: 2M (1 - (7/8)^3072) = 2M in double precision.
    assert float(cube_difference_bound(1 / 255, 4 / 255, 3072)) == 2.0
    assert float(cube_difference_bound(1 / 255, 4 / 255, 3072, norm_bound=0.5)) == 1.0
    # even eps = 1e-4 is vacuous for every practical purpose there
    assert float(cube_difference_bound(1e-4, 4 / 255, 3072)) > 1.9998
    # non-trivial only when r ~ d * eps: 1 - (1 - 1/(2d))^d -> 1 - exp(-1/2)
    assert float(cube_difference_bound(1.0, 3072.0, 3072)) == pytest.approx(
        2 * (1 - math.exp(-0.5)), rel=1e-4
    )
    assert float(cube_difference_bound(0.0, 1.0, 10)) == 0.0
    assert float(cube_difference_bound(2.0, 1.0, 10)) == 2.0
    # tiny eps at large d: no cancellation (d eps / (2r) to first order)
    assert float(cube_difference_bound(1e-12, 1.0, 150528)) == pytest.approx(
        2 * 150528 * 1e-12 / 2, rel=1e-6
    )


@pytest.mark.parametrize("d", [1, 3, 6])
def test_cube_volume_term_matches_monte_carlo(d):
    # Fraction of U[-r, r]^d outside the cube shifted by delta (||delta||_inf = eps); the
    # worst delta for a given eps has every coordinate at +-eps, where the bound is exact.
    n, r = 100_000, 1.0
    rng = np.random.default_rng(2000 + d)
    u = rng.uniform(-r, r, size=(n, d))
    for eps in (0.05, 0.3, 1.0):
        delta = eps * rng.choice([-1.0, 1.0], size=d)
        outside = (np.abs(u - delta) > r).any(axis=1)
        p = float(cube_difference_bound(eps, r, d)) / 2
        tol = Z * math.sqrt(max(p * (1 - p), 1e-6) / n)
        assert abs(outside.mean() - p) <= tol


# ------------------------------------------------------------------------------------------------
# Inversions
# ------------------------------------------------------------------------------------------------


def _cert(norms, r=1.0, d=64, cls=CosineCertificate, **kw):
    norms = torch.as_tensor(norms, dtype=torch.float64)
    kw.setdefault("mc_error", 0.0)
    return cls(norms, scale=torch.full_like(norms, r), input_dim=d, norm_bound=1.0, n=100,
               alpha=0.05, **kw)  # fmt: skip


@pytest.mark.parametrize("cls", [CosineCertificate, CubeCosineCertificate])
@pytest.mark.parametrize("d", [2, 64, 3072, 150528])
@pytest.mark.parametrize("c", [0.0, 0.3, 0.8, 0.99])
def test_inversions_round_trip(cls, d, c):
    a = torch.tensor([0.05, 0.4, 0.9, 1.0], dtype=torch.float64)
    r = 0.37
    cert = _cert(a, r=r, d=d, cls=cls)
    t = cert.certified_radius(c)
    assert torch.all(t > 0) and torch.all(torch.isfinite(t))
    # Delta(t_max) = A sqrt(1 - c^2), and the bound at t_max is exactly c (never below)
    delta = cert.difference_bound(t)
    target = a * math.sqrt(1 - c**2)
    assert torch.all(delta <= target)
    torch.testing.assert_close(delta, target, rtol=1e-9, atol=0)
    cos = cert.cosine_lower_bound(t)
    if c > 0:
        assert torch.all(cos >= c)
        torch.testing.assert_close(cos, torch.full_like(cos, c), rtol=1e-6, atol=0)
    else:  # at c = 0, Delta(t_max) = A: the strict rule certifies nothing at t_max itself
        assert torch.all(cos >= 0)
    # slightly beyond t_max the target is no longer certified (the inverse is tight)
    assert torch.all(cert.cosine_lower_bound(t * (1 + 1e-6)) < max(c, 1e-300))
    # the inverse formulation: at the perturbation t_max, the minimum radius is r
    r_min = cert.min_smoothing_radius(t, c)
    torch.testing.assert_close(r_min, torch.full_like(r_min, r), rtol=1e-9, atol=0)
    assert torch.all(r_min >= r * (1 - 1e-12))


def test_ball_inverse_matches_the_algorithms_formula():
    # x* = betaincinv((d+1)/2, 1/2, 1 - beta*), t_max = 2 r sqrt(1 - x*)  (accurate at this d)
    d, r, a, c = 3072, 2.0, 0.7, 0.6
    beta = a * math.sqrt(1 - c**2) / 2
    x_star = special.betaincinv((d + 1) / 2, 0.5, 1 - beta)
    expected = 2 * r * math.sqrt(1 - x_star)
    got = float(_cert([a], r=r, d=d).certified_radius(c)[0])
    assert got == pytest.approx(expected, rel=1e-7)
    assert float(_cert([a], r=r, d=d).min_smoothing_radius(expected, c)[0]) == pytest.approx(
        r, rel=1e-7
    )


def test_cosine_bound_formula_and_vacuous_cases():
    cert = _cert([0.8, 0.0, 0.3], r=1.0, d=20, mc_error=0.1)
    torch.testing.assert_close(cert.norm_lower, torch.tensor([0.7, 0.0, 0.2], dtype=torch.float64))
    t = 0.05
    delta = float(ball_difference_bound(t, 1.0, 20))
    cos = cert.cosine_lower_bound(t)
    assert float(cos[0]) == pytest.approx(math.sqrt(1 - (delta / 0.7) ** 2))
    assert float(cos[1]) == 0.0  # A_lo = 0: vacuous
    # where Delta >= A_lo the answer is 0, never NaN
    big = cert.cosine_lower_bound(torch.tensor([1.0, 1.0, 1.0]))
    assert torch.equal(big, torch.zeros(3, dtype=torch.float64))
    assert torch.equal(cert.cosine_lower_bound(math.inf), torch.zeros(3, dtype=torch.float64))
    assert cert.cosine_lower_bound(0.0).tolist() == [1.0, 0.0, 1.0]
    radius = cert.certified_radius(0.5)
    assert float(radius[1]) == 0.0 and float(radius[0]) > float(radius[2]) > 0
    assert math.isinf(float(cert.min_smoothing_radius(0.1, 0.5)[1]))
    assert float(cert.min_smoothing_radius(0.0, 0.5)[1]) == 0.0
    # per-example radius queries
    per = cert.cosine_lower_bound(torch.tensor([0.0, 0.1, 0.2]))
    assert float(per[0]) == 1.0 and float(per[1]) == 0.0
    # McDiarmid by default, with the norm tolerance folded into M
    auto = CosineCertificate(torch.tensor([0.8]), scale=torch.tensor([1.0]), input_dim=20,
                             norm_bound=2.0, n=400, alpha=0.01, norm_tolerance=1e-6)  # fmt: skip
    assert auto.mc_error == pytest.approx(mcdiarmid_error(400, 0.01, 2.0 * (1 + 1e-6)))
    assert auto.bound == "mcdiarmid" and auto.norm == "l2" and auto.noise == "l2_ball"


def test_bound_grows_with_dimension_and_shrinks_with_radius():
    # Delta depends on t / r only and grows with d: the bound needs r >> t sqrt(d)
    ds = [2, 10, 100, 1000, 10000]
    vals = [float(ball_nonoverlap(0.01, 1.0, d)) for d in ds]
    assert vals == sorted(vals)
    assert float(ball_nonoverlap(0.02, 2.0, 500)) == pytest.approx(
        float(ball_nonoverlap(0.01, 1.0, 500)), rel=1e-12
    )
