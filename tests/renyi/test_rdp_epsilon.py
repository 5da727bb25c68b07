"""RDP epsilons of the noise families against numerical integration, and norm conversions.

The Rényi divergence of order a between two 1-D laws is ``log(int p^a q^(1-a)) / (a - 1)``;
we integrate it with ``scipy.integrate.quad`` (independently of the closed forms) and compare.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import integrate

from captum_certified._utils.norms import parse_norm
from captum_certified.certify import convert_radius, rdp_epsilon, rdp_orders
from captum_certified.noise import GaussianNoise, UniformCubeNoise
from captum_certified.noise._core.renyi import (
    gaussian_rdp,
    gaussian_rdp_epsilon,
    laplace_rdp,
    laplace_rdp_epsilon,
)


def renyi_1d(logpdf_p, logpdf_q, order: float, lo: float, hi: float, points=()) -> float:
    """D_order(P || Q) of two 1-D densities by quadrature of exp(a log p + (1 - a) log q).

    The integrand is divided by its largest value at ``points`` (the mode, or the kinks) so
    that large orders do not overflow; the factor is added back in log space.
    """

    def log_integrand(x):
        return order * logpdf_p(x) + (1.0 - order) * logpdf_q(x)

    top = max(log_integrand(x) for x in points)
    value, _ = integrate.quad(
        lambda x: math.exp(log_integrand(x) - top),
        lo,
        hi,
        points=list(points),
        limit=400,
        epsabs=0,
        epsrel=1e-12,
    )
    return (top + math.log(value)) / (order - 1.0)


def normal_logpdf(mean: float, sd: float):
    return lambda x: -0.5 * ((x - mean) / sd) ** 2 - math.log(sd * math.sqrt(2 * math.pi))


def laplace_logpdf(loc: float, b: float):
    return lambda x: -abs(x - loc) / b - math.log(2 * b)


ORDERS = [1.01, 1.5, 2.0, 5.0, 20.0, 100.0]


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("shift", [0.05, 0.5, 2.0])
def test_gaussian_epsilon_matches_quadrature(order, shift):
    sigma = 0.7
    rho = shift * sigma
    p, q = normal_logpdf(0.0, sigma), normal_logpdf(rho, sigma)
    # the integrand is a Gaussian bump centred at (1 - a) rho (for D(P||Q)) of width sigma
    centre = (1.0 - order) * rho
    lo, hi = centre - 40 * sigma, centre + 40 * sigma
    expected = gaussian_rdp(torch.tensor(order), rho, sigma).item()
    assert renyi_1d(p, q, order, lo, hi, [centre]) == pytest.approx(expected, rel=1e-7, abs=1e-12)
    centre = order * rho  # reverse direction: bump at a * rho
    got = renyi_1d(q, p, order, centre - 40 * sigma, centre + 40 * sigma, [centre])
    assert got == pytest.approx(expected, rel=1e-7, abs=1e-12)


@pytest.mark.parametrize("order", ORDERS)
@pytest.mark.parametrize("shift", [0.01, 0.3, 1.0, 4.0])
def test_laplace_epsilon_matches_quadrature(order, shift):
    b = 0.4
    t = shift * b
    p, q = laplace_logpdf(0.0, b), laplace_logpdf(t, b)
    expected = laplace_rdp(torch.tensor(order), t, b).item()
    # piecewise exponential with kinks at 0 and t; both tails decay like exp(-|x| / b)
    lo, hi = -80 * b, t + 80 * b
    assert renyi_1d(p, q, order, lo, hi, [0.0, t]) == pytest.approx(expected, rel=1e-7, abs=1e-13)
    # symmetric: Laplace(0, b) vs Laplace(t, b) is a reflection of the reverse pair
    assert renyi_1d(q, p, order, lo, hi, [0.0, t]) == pytest.approx(expected, rel=1e-7, abs=1e-13)


def test_laplace_epsilon_is_stable_where_the_plain_form_overflows():
    orders = rdp_orders()
    eps = laplace_rdp(orders, 50.0, 0.01)  # (a - 1) * t / b up to 2.5e6
    assert torch.isfinite(eps).all()
    # for large s the closed form tends to s + log(a / (2a - 1)) / (a - 1) (never above s)
    s = 5000.0
    asymptote = s + torch.log(orders / (2 * orders - 1)) / (orders - 1)
    torch.testing.assert_close(eps, asymptote, rtol=1e-12, atol=1e-9)
    assert (eps <= s).all()
    assert laplace_rdp(orders, 0.0, 1.0).eq(0).all()
    assert (laplace_rdp(orders, 1e-9, 1.0) >= 0).all()


def test_laplace_epsilon_properties():
    orders = rdp_orders()
    s = torch.linspace(0, 30, 601, dtype=torch.float64)
    eps = laplace_rdp(orders[:, None], s[None, :], 1.0)
    diffs = eps.diff(dim=1)
    assert (diffs >= -1e-15).all()  # increasing in the shift
    assert (diffs.diff(dim=1) >= -1e-12).all()  # convex in the shift
    assert (eps.diff(dim=0) >= -1e-12).all()  # increasing in the order
    # D_a <= D_inf = s, and the zCDP bound of pure DP: D_a <= a s^2 / 2 (Bun and Steinke)
    assert (eps <= s + 1e-12).all()
    assert (eps <= orders[:, None] * s.square() / 2 + 1e-12).all()


def test_laplace_superadditivity_spot_checks():
    rng = np.random.default_rng(0)
    orders = rdp_orders(40)
    for _ in range(200):
        n = int(rng.integers(2, 20))
        delta = rng.exponential(rng.uniform(0.01, 3.0), n) * rng.choice([-1, 1], n)
        b = float(rng.uniform(0.1, 2.0))
        per_coordinate = laplace_rdp(orders[:, None], torch.tensor(np.abs(delta)), b).sum(1)
        joint = laplace_rdp(orders, float(np.abs(delta).sum()), b)
        assert (per_coordinate <= joint * (1 + 1e-12) + 1e-14).all()
        # pairwise form f(u) + f(v) <= f(u + v)
        u, v = rng.uniform(0, 10, 2)
        assert (
            laplace_rdp(orders, u, 1.0) + laplace_rdp(orders, v, 1.0)
            <= laplace_rdp(orders, u + v, 1.0) + 1e-12
        ).all()


# ------------------------------------------------------------------------------------------------
# Norms
# ------------------------------------------------------------------------------------------------


def test_parse_norm():
    assert parse_norm("l1") == 1.0 and parse_norm("L2") == 2.0
    assert parse_norm("linf") == math.inf and parse_norm("inf") == math.inf
    assert parse_norm("l_inf") == math.inf and parse_norm(math.inf) == math.inf
    assert parse_norm(3) == 3.0 and parse_norm("l3.5") == 3.5 and parse_norm(1.0) == 1.0
    for bad in ("l0.5", 0.5, 0, -1, "lfoo", "cosine", float("nan")):
        with pytest.raises(ValueError, match="norm"):
            parse_norm(bad)
    for bad in (None, True, [2]):
        with pytest.raises(TypeError, match="norm"):
            parse_norm(bad)


NORMS = [1.0, 1.5, 2.0, 3.0, 7.0, math.inf]


def _lp(v: np.ndarray, p: float) -> float:
    return float(np.abs(v).max()) if math.isinf(p) else float((np.abs(v) ** p).sum() ** (1 / p))


@pytest.mark.parametrize("p", NORMS)
@pytest.mark.parametrize("q", NORMS)
def test_convert_radius_is_the_supremum(p, q):
    rng = np.random.default_rng(1)
    n = 37
    bound = convert_radius(1.0, p, q, n).item()
    for _ in range(200):
        v = rng.standard_normal(n) * (rng.uniform(size=n) < rng.uniform(0.05, 1.0))
        if not v.any():
            continue
        v /= _lp(v, p)
        assert _lp(v, q) <= bound * (1 + 1e-12)
    # attained by a constant vector (q < p) or a one-hot vector (q >= p)
    extremal = np.ones(n) if q < p else np.eye(n)[0]
    extremal /= _lp(extremal, p)
    assert _lp(extremal, q) == pytest.approx(bound, rel=1e-12)


def test_convert_radius_examples_and_errors():
    assert convert_radius(1 / 255, "linf", "l2", 150528).item() == pytest.approx(1.5215, abs=1e-4)
    assert convert_radius(0.5, "l2", "l1", 64).item() == pytest.approx(4.0)
    assert convert_radius(0.5, "l1", "l2").item() == 0.5  # no N needed when q >= p
    with pytest.raises(ValueError, match="num_features"):
        convert_radius(0.5, "linf", "l2")
    with pytest.raises(ValueError, match="radius"):
        convert_radius(-1.0, "l2", "l1", 4)
    with pytest.raises(ValueError, match="radius"):
        convert_radius(float("nan"), "l2", "l1", 4)


def test_gaussian_epsilon_per_norm():
    orders = rdp_orders(10)
    n, sigma, rho = 64, 0.5, 0.1
    base = orders * rho**2 / (2 * sigma**2)
    for norm in ("l1", 1.5, "l2"):
        torch.testing.assert_close(gaussian_rdp_epsilon(orders, rho, sigma, norm=norm)[0], base)
    torch.testing.assert_close(
        gaussian_rdp_epsilon(orders, rho, sigma, norm="linf", num_features=n)[0], base * n
    )
    torch.testing.assert_close(
        gaussian_rdp_epsilon(orders, rho, sigma, norm=4, num_features=n)[0], base * n**0.5
    )
    with pytest.raises(ValueError, match="num_features"):
        gaussian_rdp_epsilon(orders, rho, sigma, norm="linf")
    # per-example radii and scales broadcast to (bsz, orders)
    eps = rdp_epsilon(GaussianNoise(), orders, torch.tensor([0.1, 0.2]), torch.tensor([0.5, 1.0]))
    assert eps.shape == (2, 10)
    torch.testing.assert_close(eps[0], base)
    torch.testing.assert_close(eps[1], base)
    with pytest.raises(ValueError, match="Rényi"):
        rdp_epsilon(UniformCubeNoise(), orders, 0.1, 1.0)
    # the noise object answers for itself; a name is refused (TypeError naming `noise`)
    torch.testing.assert_close(
        GaussianNoise().rdp_epsilon(orders, torch.tensor([0.1, 0.2]), torch.tensor([0.5, 1.0])),
        eps,
    )
    with pytest.raises(TypeError, match="`noise`"):
        rdp_epsilon("gaussian", orders, torch.tensor([0.1, 0.2]), torch.tensor([0.5, 1.0]))


@pytest.mark.parametrize("p", NORMS)
def test_laplace_epsilon_per_norm_is_sound(p):
    # sup over ||delta||_p <= rho of sum_i f(|delta_i| / b) never exceeds the returned epsilon
    rng = np.random.default_rng(2)
    orders = rdp_orders(50)
    n, b = 16, 0.5
    for rho in (0.01, 0.3, 3.0):
        eps = laplace_rdp_epsilon(orders, rho, b, norm=p, num_features=n)[0]
        candidates = [np.eye(n)[0], np.ones(n), np.r_[np.ones(4), np.zeros(n - 4)]]
        candidates += [rng.standard_normal(n) for _ in range(100)]
        for v in candidates:
            v = rho * v / _lp(v, p)
            actual = laplace_rdp(orders[:, None], torch.tensor(np.abs(v)), b).sum(1)
            assert (actual <= eps * (1 + 1e-10) + 1e-14).all()
        # l1 and l_inf are exact (one-hot / constant vector attain them)
        if p == 1.0:
            torch.testing.assert_close(eps, laplace_rdp(orders, rho, b))
        if math.isinf(p):
            torch.testing.assert_close(eps, n * laplace_rdp(orders, rho, b))


def test_laplace_routes():
    orders = rdp_orders(50)
    n, b, rho = 64, 0.5, 0.2
    l1_route = laplace_rdp(orders, rho * n**0.5, b)
    zcdp = orders * rho**2 / (2 * b**2)
    got = laplace_rdp_epsilon(orders, rho, b, norm="l2", num_features=n)[0]
    torch.testing.assert_close(
        got, torch.minimum(l1_route, torch.minimum(zcdp, n * laplace_rdp(orders, rho, b)))
    )
    # without N only the zCDP route is available for 1 < p <= 2; p > 2 needs N
    torch.testing.assert_close(laplace_rdp_epsilon(orders, rho, b, norm="l2")[0], zcdp)
    with pytest.raises(ValueError, match="num_features"):
        laplace_rdp_epsilon(orders, rho, b, norm="linf")
    # the l_inf route is far better than converting l_inf to l1 (N * rho)
    linf = laplace_rdp_epsilon(orders, 0.05, b, norm="linf", num_features=n)[0]
    assert (linf < laplace_rdp(orders, 0.05 * n, b)).all()
