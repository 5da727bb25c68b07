"""Teng et al.'s exact l1 rule for Laplace smoothing (docs/certificates.rst, section 1).

- closed forms against scipy's Laplace law;
- the exact Neyman-Pearson adversary on a 2-D grid (every [0, 1] function, any delta with
  ||delta||_1 = rho) never goes below the bound, and reaches it for a one-coordinate shift;
  a rule claiming 25 % more radius is beaten (negative control);
- Monte Carlo on half-space models in d = 4;
- the top-K rule against a brute-force box adversary;
- the old RDP "best" against the new one on the same bands (the issue's pairs).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _topk_oracle import draw_band, draw_map, min_overlap, valid_topk_sets
from scipy import stats

from captum_certified.certify import (
    RDPTopKCertificate,
    laplace_lower_bound,
    laplace_pair_radius,
    laplace_upper_bound,
    rdp_orders,
)
from captum_certified.certify._core.laplace_bounds import laplace_cdf, laplace_icdf
from captum_certified.noise import LaplaceNoise

ORDERS = rdp_orders(60)


def lower_ref(q, rho, b):
    return stats.laplace.cdf(stats.laplace.ppf(q) - rho / b)


def make_cert(lower, upper, *, scale=1.0, mass=None, n_in=None, method="best"):
    lower = torch.as_tensor(np.atleast_2d(lower), dtype=torch.float64)
    upper = torch.as_tensor(np.atleast_2d(upper), dtype=torch.float64)
    return RDPTopKCertificate(
        lower,
        upper,
        orders=ORDERS,
        method=method,
        score_mass=mass,
        num_input_features=n_in,
        noise=LaplaceNoise(),
        norm="l1",
        scale=torch.full((lower.shape[0],), scale, dtype=torch.float64),
        n=1,
        alpha=0.05,
        bound="test",
    )


def test_closed_forms_match_scipy():
    z = np.linspace(-30, 30, 1201)
    torch.testing.assert_close(laplace_cdf(torch.tensor(z)), torch.tensor(stats.laplace.cdf(z)))
    q = np.r_[0.0, 1e-300, 1e-12, np.linspace(0.001, 0.999, 999), 1 - 1e-12, 1.0]
    ref = stats.laplace.ppf(q)
    got = laplace_icdf(torch.tensor(q)).numpy()
    assert got[0] == -math.inf and got[-1] == math.inf
    np.testing.assert_allclose(got[1:-1], ref[1:-1], rtol=1e-9, atol=1e-12)
    for rho, b in [(0.0, 1.0), (0.3, 1.0), (0.7, 0.25), (5.0, 2.0)]:
        qq = np.linspace(0, 1, 101)
        np.testing.assert_allclose(
            laplace_lower_bound(torch.tensor(qq), rho, b).numpy(),
            lower_ref(qq, rho, b),
            atol=1e-12,
        )
        np.testing.assert_allclose(
            laplace_upper_bound(torch.tensor(qq), rho, b).numpy(),
            1 - lower_ref(1 - qq, rho, b),
            atol=1e-12,
        )
    # pair radius: (b/2)(F^-1(qa) - F^-1(qb)); -inf where nothing is certified
    for qa, qb, b in [(0.8, 0.3, 1.0), (0.6, 0.4, 0.5), (0.95, 0.05, 2.0), (0.99, 0.5, 1.0)]:
        ref = 0.5 * b * (stats.laplace.ppf(qa) - stats.laplace.ppf(qb))
        assert laplace_pair_radius(qa, qb, b).item() == pytest.approx(ref, rel=1e-12)
    assert laplace_pair_radius(0.3, 0.3, 1.0).item() == -math.inf
    assert laplace_pair_radius(0.0, 0.0, 1.0).item() == -math.inf
    assert laplace_pair_radius(1.0, 1.0, 1.0).item() == -math.inf


def cell_masses(edges: np.ndarray, shift: float, b: float) -> np.ndarray:
    """Exact Laplace(shift, b) mass of each grid cell (1-D), tails folded into the end cells."""
    cdf = stats.laplace.cdf(edges, loc=shift, scale=b)
    cdf[0], cdf[-1] = 0.0, 1.0
    return np.diff(cdf)


def np_minimum(q: float, delta: tuple[float, float], b: float, half: int = 500) -> float:
    """Exact adversary on a grid: min of E h(x + delta + eps) over h with E h(x + eps) = q.

    Neyman-Pearson: put h = 1 on the cells with the smallest mass ratio p1 / p0 until their
    p0-mass reaches q (the last cell fractionally). Cells are products of 1-D cells, so the
    masses are exact; the grid only restricts h to be constant on cells (a weaker adversary by
    at most the discretization of the ratio, ~1e-4 here).
    """
    edges = np.linspace(-20 * b, 20 * b, 2 * half + 1)
    p0x, p0y = cell_masses(edges, 0.0, b), cell_masses(edges, 0.0, b)
    p1x, p1y = cell_masses(edges, -delta[0], b), cell_masses(edges, -delta[1], b)
    p0 = np.outer(p0x, p0y).ravel()
    p1 = np.outer(p1x, p1y).ravel()
    keep = p0 > 0
    p0, p1 = p0[keep], p1[keep]
    order = np.argsort(p1 / p0, kind="stable")
    c0, c1 = np.cumsum(p0[order]), np.cumsum(p1[order])
    j = int(np.searchsorted(c0, q))
    prev0 = c0[j - 1] if j > 0 else 0.0
    prev1 = c1[j - 1] if j > 0 else 0.0
    frac = (q - prev0) / p0[order][j]
    return float(prev1 + frac * p1[order][j])


@pytest.mark.parametrize("q", [0.1, 0.5, 0.8, 0.97])
def test_exact_adversary_cannot_beat_the_bound(q):
    b, rho = 1.0, 0.6
    bound = lower_ref(q, rho, b)
    claimed_more = lower_ref(q, 0.8 * rho, b)  # a rule claiming 25 % more radius
    axis = np_minimum(q, (rho, 0.0), b)
    assert axis == pytest.approx(bound, abs=5e-4)  # attained by a one-coordinate shift
    assert axis < claimed_more - 2e-3  # negative control: the generous rule is beaten
    for split in (0.5, 0.3, 0.1):
        spread = np_minimum(q, (split * rho, (1 - split) * rho), b)
        assert spread >= bound - 5e-4, (q, split, spread, bound)


def test_monte_carlo_half_spaces_d4():
    gen = torch.Generator().manual_seed(0)
    n, d, b, rho = 200_000, 4, 0.5, 0.4
    u = torch.rand((2, n, d), generator=gen, dtype=torch.float64)
    eps = (-torch.log1p(-u[0]) + torch.log1p(-u[1])) * b
    checked = 0
    for trial in range(12):
        w = torch.randn(d, generator=gen, dtype=torch.float64)
        if trial < 3:
            w = torch.zeros(d, dtype=torch.float64)
            w[trial] = 1.0  # axis half-spaces: the bound is attained
        c = 0.3 * torch.randn((), generator=gen, dtype=torch.float64)
        q = ((eps @ w) > c).double().mean().item()
        delta = torch.randn(d, generator=gen, dtype=torch.float64)
        if trial < 3:
            delta = -w.clone()  # push against the half-space along its axis
        delta = delta / delta.abs().sum() * rho
        q2 = (((eps + delta) @ w) > c).double().mean().item()
        se = math.sqrt(0.25 / n)
        lo = laplace_lower_bound(q, rho, b).item()
        hi = laplace_upper_bound(q, rho, b).item()
        # same noise for q and q2: the difference has sd well below 2 se
        assert lo - 6 * se <= q2 <= hi + 6 * se
        if trial < 3:
            assert q2 == pytest.approx(lo, abs=6 * se)
        checked += 1
    assert checked == 12


def test_topk_rule_is_sound_bruteforce():
    rng = np.random.default_rng(5)
    positive = tight = exact_trials = 0
    for trial in range(300):
        d = int(rng.integers(4, 9))
        k = int(rng.integers(1, d + 1))
        radius = float(rng.uniform(0.0, 1.5))
        b = float(rng.uniform(0.3, 2.0))
        q = draw_map(rng, d)
        band = ("exact", "constant", "variable")[trial % 3]
        lower, upper = draw_band(rng, q, band, constant_width=0.15, variable_width=0.2)
        m = int(make_cert(lower, upper, scale=b, method="laplace").certified_count(k, radius)[0])
        assert max(0, 2 * k - d) <= m <= k
        positive += m > max(0, 2 * k - d)
        lo = lower_ref(q, radius, b)
        hi = 1 - lower_ref(1 - q, radius, b)
        for _ in range(10):
            t = rng.uniform(size=d)
            t[rng.uniform(size=d) < 0.3] = rng.integers(0, 2)
            assert min_overlap(q, lo + t * (hi - lo), k) >= m
        worst = min(min_overlap(q, np.where(s, lo, hi), k) for s in valid_topk_sets(q, k))
        assert worst >= m, (q, lower, upper, k, radius, b, m)
        if band == "exact":
            exact_trials += 1
            tight += worst == m
    assert positive > 0.3 * 300
    assert tight >= 0.97 * exact_trials  # the box adversary attains the rule


@pytest.mark.parametrize(
    "qa, qb, old_ratio",
    [(0.8, 0.3, 0.78), (0.6, 0.4, 0.94), (0.95, 0.05, 0.74), (0.99, 0.5, 0.30)],
)
def test_new_rule_versus_rdp_on_the_same_band(qa, qb, old_ratio):
    # d = 2, K = 1: rank 1 pairs L_(1) = qa with U_(2) = qb
    cert = make_cert([qa, qb], [qa, qb])  # a [0, 1] map of unknown mass: Hölder was the rule
    old = cert.certified_radius(1, 1.0, method="holder").item()
    new = cert.certified_radius(1, 1.0).item()  # "best" now includes the Laplace rule
    exact = 0.5 * (stats.laplace.ppf(qa) - stats.laplace.ppf(qb))
    assert new == pytest.approx(exact, rel=1e-8) and new <= exact
    assert old / exact == pytest.approx(old_ratio, abs=0.015)
    assert cert.certifying_method(1, 0.99 * new) == ["laplace"]
    assert cert.certifying_method(1, 1.01 * new) == ["none"]


def test_other_norms_convert_to_l1():
    cert = make_cert([0.9, 0.2, 0.1], [0.9, 0.2, 0.1], n_in=10, scale=0.5)
    r1 = cert.certified_radius(1, 1.0, norm="l1", method="laplace").item()
    assert r1 == pytest.approx(0.25 * (stats.laplace.ppf(0.9) - stats.laplace.ppf(0.2)))
    r2 = cert.certified_radius(1, 1.0, norm="l2", method="laplace").item()
    rinf = cert.certified_radius(1, 1.0, norm="linf", method="laplace").item()
    assert r2 == pytest.approx(r1 / math.sqrt(10), rel=1e-8)
    assert rinf == pytest.approx(r1 / 10, rel=1e-8)
    # best is never below either part, on every norm
    for norm in ("l1", "l2", "linf"):
        best = cert.certified_radius(1, 1.0, norm=norm).item()
        holder = cert.certified_radius(1, 1.0, norm=norm, method="holder").item()
        lap = cert.certified_radius(1, 1.0, norm=norm, method="laplace").item()
        assert best >= max(holder, lap) * (1 - 1e-8)
    # without N the l1 rule cannot convert; "best" still answers through the RDP routes
    cert._num_input_features = None  # as if built without the count (it is immutable)
    with pytest.raises(ValueError, match="num_input_features"):
        cert.topk_overlap(1, 0.1, norm="l2", method="laplace")
    assert cert.topk_overlap(1, 0.01, norm="l2").item() == 1.0
