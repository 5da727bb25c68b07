"""Pairwise, Hölder and joint RDP bounds against brute-force minimization (certificates.rst §8).

The reference minimizer is scipy's SLSQP on min sum_i Q_i^a P_i^(1-a) (a monotone transform of
D_a(Q || P)) over the simplex with the linear ordering constraints, written independently of the
closed forms; where the optimum has a known one-parameter form a bounded scalar search gives a
tighter reference.
"""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
import torch
from _oracles import joint_rdp_bound, renyi_divergence
from scipy import optimize, stats

from captum_certified.certify import gaussian_lower_bound, rdp_orders
from captum_certified.certify._core.rdp_bounds import holder_bounds, pairwise_rdp_bound
from captum_certified.noise._core.renyi import gaussian_rdp_epsilon


def f64(value) -> torch.Tensor:
    return torch.tensor(value, dtype=torch.float64)


def slsqp_min_divergence(p: np.ndarray, order: float, below: list[int], above: list[int]) -> float:
    """min D_order(Q || P) s.t. Q_j >= Q_i for all i in ``below``, j in ``above`` (SLSQP).

    Variables are the likelihood ratios r = Q / P (well scaled around 1); the objective is
    log(sum_i P_i r_i^a) / (a - 1) and the constraints are linear in r.
    """
    n = p.size

    def objective(r):
        return math.log(float(np.sum(p * np.maximum(r, 0) ** order))) / (order - 1.0)

    cons = [{"type": "eq", "fun": lambda r: float(p @ r) - 1.0}]
    for i in below:
        for j in above:
            cons.append({"type": "ineq", "fun": lambda r, i=i, j=j: p[j] * r[j] - p[i] * r[i]})
    # feasible start: the constrained cells share their mean mass
    q = p.copy()
    q[below + above] = q[below + above].mean()
    res = optimize.minimize(
        objective,
        q / p,
        method="SLSQP",
        bounds=[(0.0, None)] * n,
        constraints=cons,
        options={"ftol": 1e-14, "maxiter": 2000},
    )
    q = np.maximum(res.x, 0) * p
    q /= q.sum()
    assert all(q[j] >= q[i] - 1e-8 for i in below for j in above), res
    return renyi_divergence(q, p, order)


def scalar_min_pairwise(pa: float, pb: float, order: float) -> float:
    """The optimum sets Q_a = Q_b = t and Q = c P elsewhere: minimize over t exactly."""
    rest = 1.0 - pa - pb

    def f(t):
        return math.log(
            t**order * (pa ** (1 - order) + pb ** (1 - order))
            + (1 - 2 * t) ** order * rest ** (1 - order)
        ) / (order - 1)

    res = optimize.minimize_scalar(
        f, bounds=(1e-300, 0.5), method="bounded", options={"xatol": 1e-14}
    )
    return float(res.fun)


def test_pairwise_closed_form_matches_bruteforce():
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(40):
        n = int(rng.integers(3, 7))
        p = rng.dirichlet(np.full(n, rng.uniform(0.3, 3.0)))
        order = float(np.exp(rng.uniform(np.log(1.05), np.log(50.0))))
        a, b = (int(i) for i in rng.choice(n, 2, replace=False))
        if p[a] < p[b]:
            a, b = b, a
        closed = pairwise_rdp_bound(f64(p[a]), f64(p[b]), order).item()
        # generic constrained solver (all cells free): agrees to solver tolerance
        assert slsqp_min_divergence(p, order, [a], [b]) == pytest.approx(closed, rel=1e-5, abs=1e-9)
        # tight one-parameter search: agrees to ~1e-10
        assert scalar_min_pairwise(p[a], p[b], order) == pytest.approx(closed, rel=1e-9, abs=1e-12)
        checked += 1
    assert checked == 40


def test_pairwise_is_monotone_and_zero_when_already_ordered():
    orders = rdp_orders(30)
    grid = torch.linspace(0.0, 1.0, 81, dtype=torch.float64)
    pa, pb = torch.meshgrid(grid, grid, indexing="ij")
    inside = (pa + pb <= 1.0) & (pa > pb)
    values = pairwise_rdp_bound(
        (pa * inside).unsqueeze(-1), (pb * inside).unsqueeze(-1), orders
    )  # zeros outside the region
    values = torch.where(inside.unsqueeze(-1), values, torch.nan)
    d_a = values.diff(dim=0)  # along p_a
    d_b = values.diff(dim=1)  # along p_b
    assert (d_a[~torch.isnan(d_a)] >= -1e-12).all()
    assert (d_b[~torch.isnan(d_b)] <= 1e-12).all()
    assert pairwise_rdp_bound(f64(0.2), f64(0.3), orders).eq(0).all()
    assert pairwise_rdp_bound(f64(0.3), f64(0.3), orders).eq(0).all()
    with pytest.raises(ValueError, match="p_a"):
        pairwise_rdp_bound(f64(0.8), f64(0.3), orders)


def test_pairwise_tiny_masses_and_large_orders_match_high_precision():
    mpmath.mp.dps = 60
    for pa, pb, order in [
        (1e-3, 1e-6, 500.0),
        (0.3, 1e-9, 200.0),
        (0.5, 0.0, 80.0),
        (1e-5, 9e-6, 3.0),
    ]:
        got = pairwise_rdp_bound(f64(pa), f64(pb), order).item()
        a, b, al = mpmath.mpf(pa), mpmath.mpf(pb), mpmath.mpf(order)
        mean = 0 if pb == 0 else ((a ** (1 - al) + b ** (1 - al)) / 2) ** (1 / (1 - al))
        expected = float(-mpmath.log(1 - a - b + 2 * mean))
        assert got == pytest.approx(expected, rel=1e-9, abs=1e-15)


def test_holder_bounds_contain_every_admissible_bernoulli_shift():
    # q' is reachable when both Bernoulli divergences are <= eps_a; Hölder must contain q'.
    rng = np.random.default_rng(1)
    orders = rdp_orders(60)
    a = orders.numpy()
    q = rng.uniform(0, 1, 3000)
    q2 = 1 / (1 + np.exp(-(np.log(q / (1 - q)) + rng.normal(0, 1.0, q.size))))
    q[:50] = 0.0  # exact 0 and 1: infinite divergences, trivial bounds
    q2[50:100] = 1.0

    def div(x, y):
        """Bernoulli D_a(x || y) for all orders, shape (n, A), in log space."""
        lx = np.log(np.stack([x, 1 - x], 1))[:, None, :]
        ly = np.log(np.stack([y, 1 - y], 1))[:, None, :]
        al = a[None, :, None]
        with np.errstate(invalid="ignore"):
            terms = np.where(np.isneginf(lx), -np.inf, al * lx + (1 - al) * ly)
        return np.logaddexp(terms[..., 0], terms[..., 1]) / (a - 1)

    with np.errstate(divide="ignore"):
        eps = np.maximum(div(q2, q), div(q, q2))
    keep = np.isfinite(eps).all(1)
    lo, hi = holder_bounds(f64(q[keep])[:, None], f64(eps[keep]), orders)
    assert (lo[:, 0].numpy() <= q2[keep] + 1e-12).all()
    assert (hi[:, 0].numpy() >= q2[keep] - 1e-12).all()
    assert keep.sum() > 2800


def test_algorithms_numbers_holder_pairwise_vs_phi():
    orders = rdp_orders()
    eps = gaussian_rdp_epsilon(orders, 0.3, 1.0)
    lo, hi = holder_bounds(f64([[0.8]]), eps, orders)
    assert gaussian_lower_bound(0.8, 0.3, 1.0).item() == pytest.approx(0.706, abs=5e-4)
    assert lo.item() == pytest.approx(0.626, abs=5e-4)
    # largest certified rho / sigma of the pair (0.8, 0.3): Phi rule vs pairwise RDP on P = q / k'
    phi = (stats.norm.ppf(0.8) - stats.norm.ppf(0.3)) / 2
    assert phi == pytest.approx(0.683, abs=5e-4)

    def pairwise_radius(k_prime):
        p_b = 0.3 / k_prime
        p_a = min(0.8 / k_prime, 1 - p_b)  # the certificate's clamp to a valid pair
        bound = pairwise_rdp_bound(f64(p_a), f64(p_b), orders)
        return torch.sqrt(2 * bound / orders).max().item()  # a rho^2 / 2 = B_a

    assert pairwise_radius(100) == pytest.approx(0.049, abs=5e-4)
    assert pairwise_radius(10) == pytest.approx(0.156, abs=5e-4)
    # k' = 1: masses 0.8 + 0.3 > 1 cannot both be P entries. The often quoted 0.509 plugs them
    # into the formula anyway; the certificate uses the valid pair (0.7, 0.3): 0.419.
    assert pairwise_radius(1) == pytest.approx(0.419, abs=5e-4)
    assert pairwise_radius(1) < phi


# ------------------------------------------------------------------------------------------------
# Joint bound
# ------------------------------------------------------------------------------------------------


def equalized_joint(p_a, p_b, order):
    """The equalizing shortcut (NOT a lower bound): all 2 k0 boundary entries set equal."""
    s = np.concatenate([p_a, p_b])
    mean = np.mean(s ** (1 - order)) ** (1 / (1 - order))
    return -math.log(1 - s.sum() + s.size * mean)


def test_joint_counterexample():
    p_a, p_b, order = [0.2, 0.2], [0.19, 0.001], 8.0
    exact = joint_rdp_bound(p_a, p_b, order)
    assert exact == pytest.approx(0.5067, abs=1e-4)
    # hand-checkable witness satisfying the constraints with a smaller divergence
    witness = np.array([0.001, 0.001, 0.19, 0.001, 0.807])
    p = np.array([0.2, 0.2, 0.19, 0.001, 0.409])
    assert renyi_divergence(witness, p, order) == pytest.approx(0.649, abs=1e-3)
    shortcut = equalized_joint(np.array(p_a), np.array(p_b), order)
    assert shortcut == pytest.approx(0.8822, abs=1e-4)
    # the shortcut exceeds a feasible point's divergence: any eps in (0.507, 0.882) would be
    # "certified" wrongly, which is why it is not shipped
    assert shortcut > renyi_divergence(witness, p, order) > exact
    # the minimizer of certificates.rst §8
    q_star = np.array([0.00194, 0.00194, 0.31535, 0.00194, 0.67883])
    assert renyi_divergence(q_star / q_star.sum(), p, order) == pytest.approx(exact, abs=2e-4)


def test_joint_matches_bruteforce_and_reduces_to_pairwise():
    rng = np.random.default_rng(3)
    for _ in range(12):
        n = int(rng.integers(4, 7))
        k0 = int(rng.integers(1, n // 2 + 1))
        p = rng.dirichlet(np.full(n, 1.0))
        order = float(np.exp(rng.uniform(np.log(1.2), np.log(30.0))))
        idx = rng.permutation(n)
        below, above = list(idx[:k0]), list(idx[k0 : 2 * k0])
        exact = joint_rdp_bound(p[below], p[above], order)
        brute = slsqp_min_divergence(p, order, below, above)
        assert exact == pytest.approx(brute, rel=1e-4, abs=1e-7)
        if k0 == 1 and p[below[0]] > p[above[0]]:
            closed = pairwise_rdp_bound(f64(p[below[0]]), f64(p[above[0]]), order)
            assert exact == pytest.approx(closed.item(), rel=1e-6, abs=1e-10)
