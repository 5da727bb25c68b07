"""The Gaussian Phi-bounds on toy [0, 1]-valued functions (certificates.rst §5).

For h: R^d -> [0, 1] and hbar(x) = E h(x + eps), eps ~ N(0, sigma^2 I), every ||delta||_2 <= rho
gives lo_a(hbar(x)) <= hbar(x + delta) <= hi_a(hbar(x)) with a = rho / sigma. A half-space
indicator attains both (checked analytically); other functions are checked by Monte Carlo.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from captum_certified.certify import gaussian_lower_bound, gaussian_upper_bound

DIMS = (1, 2, 10)


def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm()


# ----------------------------------------------------------------------------------------------
# Half-space: analytic hbar(x) = Phi((w.x - b) / (sigma ||w||))
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("d", DIMS)
def test_half_space_attains_bounds(d):
    gen = torch.Generator().manual_seed(d)
    for _ in range(50):
        w = torch.randn(d, generator=gen, dtype=torch.float64)
        x = torch.randn(d, generator=gen, dtype=torch.float64)
        sigma = float(torch.empty(1).uniform_(0.1, 2.0, generator=gen))
        # keep t = (w.x - b) / (sigma ||w||) in [-3, 3] so p is not within rounding of 0 or 1
        t = float(torch.empty(1).uniform_(-3.0, 3.0, generator=gen))
        b = float(w @ x) - t * sigma * float(w.norm())
        radius = float(torch.empty(1).uniform_(0.0, 2.0, generator=gen)) * sigma

        def hbar(z, w=w, b=b, sigma=sigma):
            return float(stats.norm.cdf((float(w @ z) - b) / (sigma * float(w.norm()))))

        p = hbar(x)
        up = float(gaussian_upper_bound(p, radius, sigma))
        low = float(gaussian_lower_bound(p, radius, sigma))
        # Tolerance 1e-12: Phi^-1(Phi(t)) loses at most ~eps / phi(3) ~ 2.5e-14 in t for
        # |t| <= 3, and Phi is 0.4-Lipschitz, so the two sides agree to ~1e-14.
        assert up == pytest.approx(hbar(x + radius * _unit(w)), abs=1e-12)
        assert low == pytest.approx(hbar(x - radius * _unit(w)), abs=1e-12)
        for _ in range(10):
            u = _unit(torch.randn(d, generator=gen, dtype=torch.float64))
            inside = hbar(x + radius * u)
            assert low - 1e-12 <= inside <= up + 1e-12


def test_bounds_edge_values():
    # hi_a(1) = 1, lo_a(0) = 0, and a = 0 is the identity; the bounds are monotone in p and a.
    assert float(gaussian_lower_bound(0.0, 1.0, 1.0)) == 0.0
    assert float(gaussian_upper_bound(1.0, 1.0, 1.0)) == 1.0
    assert float(gaussian_lower_bound(1.0, 1.0, 1.0)) == 1.0
    assert float(gaussian_upper_bound(0.0, 1.0, 1.0)) == 0.0
    p = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)
    assert torch.allclose(gaussian_lower_bound(p, 0.0, 1.0), p, atol=1e-15)
    assert torch.all(torch.diff(gaussian_lower_bound(p, 0.3, 1.0)) >= 0)
    assert torch.all(gaussian_lower_bound(p, 0.6, 1.0) <= gaussian_lower_bound(p, 0.3, 1.0))
    assert torch.all(gaussian_upper_bound(p, 0.6, 1.0) >= gaussian_upper_bound(p, 0.3, 1.0))
    # radius and sigma only enter through radius / sigma; tensors broadcast
    assert torch.allclose(
        gaussian_upper_bound(p, torch.tensor(0.6), torch.tensor(2.0)),
        gaussian_upper_bound(p, 0.3, 1.0),
        atol=1e-15,
    )
    assert gaussian_lower_bound(p, 0.3, 1.0).dtype == torch.float64


# ----------------------------------------------------------------------------------------------
# Monte Carlo
# ----------------------------------------------------------------------------------------------

N_MC = 10**6
CHUNK = 250_000
SIGMA = 0.5
RADIUS = 0.3  # a = 0.6
Z_MARGIN = 5.0


def mc_mean(h, x: torch.Tensor, seed: int, n: int = N_MC) -> torch.Tensor:
    """Estimate E h(x + eps) (vector-valued h allowed) with a fixed-seed torch.Generator."""
    # float32 samples for speed (the sampled function differs from the float64 one by a rounding
    # of z, irrelevant at standard errors ~5e-4); sums in float64.
    gen = torch.Generator().manual_seed(seed)
    x32 = x.to(torch.float32)
    total = torch.zeros((), dtype=torch.float64)
    for start in range(0, n, CHUNK):
        m = min(CHUNK, n - start)
        eps = torch.randn(m, x.shape[0], generator=gen, dtype=torch.float32) * SIGMA
        total = total + h(x32 + eps).sum(0, dtype=torch.float64)
    return total / n


def std_err(p: torch.Tensor, n: int = N_MC) -> torch.Tensor:
    # Standard error of a mean of [0, 1] values: sqrt(Var / n) <= sqrt(p (1 - p) / n) (a [0,1]
    # variable with mean p has variance <= p (1 - p)). Floor the variance at 10 / n so that an
    # estimate of 0 or 1 still gets a margin: 5 * sqrt(10) / n ~ 1.6e-5 exceeds the one-sided
    # 1 - 3e-7 exact upper limit 15 / n for a zero count.
    return torch.sqrt(torch.clamp(p * (1 - p), min=10.0 / n) / n)


def assert_within_bounds(p_x: torch.Tensor, p_shift: torch.Tensor, radius: float = RADIUS):
    """lo(p_x) <= p_shift <= hi(p_x), each estimate widened by Z_MARGIN standard errors.

    The estimates come from independent generators. Since lo and hi are increasing, the check
    uses hi at the upper end of p_x's margin (and lo at the lower end), so no delta method is
    needed near 0 or 1. Per comparison the false-alarm rate is below P(Z > 5) = 2.9e-7.
    """
    se_x, se_s = std_err(p_x), std_err(p_shift)
    hi = gaussian_upper_bound((p_x + Z_MARGIN * se_x).clamp(0, 1), radius, SIGMA)
    lo = gaussian_lower_bound((p_x - Z_MARGIN * se_x).clamp(0, 1), radius, SIGMA)
    assert torch.all(p_shift - Z_MARGIN * se_s <= hi), (p_x, p_shift, hi)
    assert torch.all(p_shift + Z_MARGIN * se_s >= lo), (p_x, p_shift, lo)


def directions(d: int, gen: torch.Generator, special: torch.Tensor) -> list[torch.Tensor]:
    """The adversarial-ish direction, its opposite, and one random direction (unit vectors)."""
    u = _unit(special.to(torch.float64))
    return [u, -u, _unit(torch.randn(d, generator=gen, dtype=torch.float64))]


@pytest.mark.parametrize("d", DIMS)
def test_monte_carlo_half_space_is_tight(d):
    # Validates the Monte-Carlo harness: along w the estimate must sit on the bound (within
    # 5 standard errors of the difference), and a wrong bound with radius / 2 must be rejected.
    gen = torch.Generator().manual_seed(10 + d)
    w = torch.randn(d, generator=gen, dtype=torch.float64)
    x = torch.zeros(d, dtype=torch.float64)
    b = 0.2 * SIGMA * float(w.norm())  # hbar(x) = Phi(-0.2) ~ 0.42

    def h(z):
        return z @ w.to(z.dtype) > b

    p_x = mc_mean(h, x, seed=1)
    p_up = mc_mean(h, x + RADIUS * _unit(w), seed=2)
    assert float(p_x) == pytest.approx(stats.norm.cdf(-0.2), abs=Z_MARGIN * float(std_err(p_x)))
    assert_within_bounds(p_x, p_up)
    # exact value Phi(-0.2 + 0.6); the bound evaluated at the estimate p_x moves by
    # hi'(p) * se_x <= 1.2 * se_x, so combine both errors (independent) for the tolerance
    slack = float(gaussian_upper_bound(p_x, RADIUS, SIGMA) - p_up)
    tol = Z_MARGIN * math.sqrt(float(std_err(p_up)) ** 2 + (1.2 * float(std_err(p_x))) ** 2)
    assert abs(slack) <= tol
    wrong = float(gaussian_upper_bound(p_x + Z_MARGIN * std_err(p_x), RADIUS / 2, SIGMA))
    assert float(p_up - Z_MARGIN * std_err(p_up)) > wrong  # the harness catches a too-tight bound


@pytest.mark.slow
@pytest.mark.parametrize("d", DIMS)
def test_monte_carlo_ball_indicator(d):
    gen = torch.Generator().manual_seed(20 + d)
    centre = torch.zeros(d, dtype=torch.float64)
    r = SIGMA * math.sqrt(d) * 1.2
    x = _unit(torch.randn(d, generator=gen, dtype=torch.float64)) * r  # on the sphere

    def h(z):
        return (z - centre.to(z.dtype)).norm(dim=-1) <= r

    p_x = mc_mean(h, x, seed=3)
    assert 0.05 < float(p_x) < 0.95
    for i, u in enumerate(directions(d, gen, centre - x)):
        assert_within_bounds(p_x, mc_mean(h, x + RADIUS * u, seed=100 + i))


@pytest.mark.slow
@pytest.mark.parametrize("d", DIMS)
def test_monte_carlo_sigmoid_of_linear(d):
    gen = torch.Generator().manual_seed(30 + d)
    w = torch.randn(d, generator=gen, dtype=torch.float64)
    x = torch.randn(d, generator=gen, dtype=torch.float64) * 0.3
    b = float(w @ x) + 0.1

    def h(z):
        # steep sigmoid: close to the half-space, so close to the bound along +-w
        return torch.sigmoid(8.0 * (z @ w.to(z.dtype) - b) / float(w.norm()))

    p_x = mc_mean(h, x, seed=4)
    for i, u in enumerate(directions(d, gen, w)):
        assert_within_bounds(p_x, mc_mean(h, x + RADIUS * u, seed=200 + i))


@pytest.mark.slow
@pytest.mark.parametrize("d", DIMS)
def test_monte_carlo_binary_top_tau(d):
    # h(z) = 1[i in T_{tau m}(|A z|)], a [0,1]^m-valued binary map (m = 12, tau = 0.25).
    gen = torch.Generator().manual_seed(40 + d)
    m, top = 12, 3
    a_mat = torch.randn(m, d, generator=gen, dtype=torch.float64)
    x = torch.randn(d, generator=gen, dtype=torch.float64) * 0.5

    def h(z):
        scores = (z @ a_mat.T.to(z.dtype)).abs()
        idx = scores.topk(top, dim=-1).indices
        return torch.zeros_like(scores).scatter_(-1, idx, 1.0)  # ties have probability 0

    p_x = mc_mean(h, x, seed=5)
    assert float(p_x.sum()) == pytest.approx(top, abs=1e-9)  # exactly `top` ones per sample
    # adversarial-ish: push the row whose coordinate is closest to 1/2 further out
    j = int((p_x - 0.5).abs().argmin())
    push = a_mat[j] * torch.sign(a_mat[j] @ x)
    for i, u in enumerate(directions(d, gen, push)):
        assert_within_bounds(p_x, mc_mean(h, x + RADIUS * u, seed=300 + i))


def test_monte_carlo_margin_is_not_vacuous():
    # 5 standard errors at n = 1e6 are at most 5 * 0.5 / 1000 = 2.5e-3, far below the bound's
    # own movement hi(0.5) - 0.5 = Phi(0.6) - 0.5 = 0.226 at a = 0.6.
    half = torch.tensor(0.5, dtype=torch.float64)
    assert float(Z_MARGIN * std_err(half)) <= 2.5e-3
    assert float(gaussian_upper_bound(half, RADIUS, SIGMA)) - 0.5 > 0.2
    assert np.isclose(float(gaussian_upper_bound(half, RADIUS, SIGMA)), stats.norm.cdf(0.6))
