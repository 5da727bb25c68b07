"""Brute-force soundness of the RDP top-k rules on small vectors (certificates.rst §6-8).

The certificate speaks about the true smoothed maps q = E s(x + eps) and q' at a shifted input:
for a band L <= q <= U it certifies m such that |T_K(q) ∩ T_K(q')| >= m for every q' the RDP
constraints allow, for every tie-breaking of both top-K sets.

- Hölder: every coordinate of q' lies in [max_a lo_a(q_i), min_a hi_a(q_i)] (the Bernoulli
  post-processing bound). We take random q' in that box and the extreme adversary (low end on
  T_K(q), high end elsewhere), with the box computed here in numpy from our own RDP formula.
- Pairwise: P = q / S is a distribution and any P' with D_a(P'||P) <= eps_a and
  D_a(P||P') <= eps_a for all orders a of the grid is admissible. We search for admissible P'
  that swap k0 = K - m + 1 boundary pairs (exact joint minimizers, tempered by mixing with P
  until admissible) and random admissible perturbations; none may cut the overlap below m.
"""

from __future__ import annotations

import numpy as np
import torch
from _oracles import joint_rdp_bound
from _topk_oracle import draw_band, draw_map, min_overlap, valid_topk_sets

from captum_certified.certify import RDPTopKCertificate, rdp_orders
from captum_certified.noise import resolve_noise

ORDERS = rdp_orders(40)
A = ORDERS.numpy()

# ------------------------------------------------------------------------------------------------
# Oracle (independent of the package)
# ------------------------------------------------------------------------------------------------


def laplace_eps(l1_over_b: float) -> np.ndarray:
    """Mironov's epsilon for all orders of the grid (numpy, written out independently)."""
    s = l1_over_b
    w1, w2 = np.log(A / (2 * A - 1)), np.log((A - 1) / (2 * A - 1))
    return np.logaddexp(w1 + (A - 1) * s, w2 - A * s) / (A - 1)


def renyi(q: np.ndarray, p: np.ndarray) -> np.ndarray:
    """D_a(q || p) for all orders of the grid (inf where q has mass outside p's support)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        lq, lp = np.log(q)[None, :], np.log(p)[None, :]
        terms = np.where(q[None, :] > 0, A[:, None] * lq + (1 - A[:, None]) * lp, -np.inf)
    top = terms.max(1, keepdims=True)
    return (top[:, 0] + np.log(np.exp(terms - top).sum(1))) / (A - 1)


def admissible(q: np.ndarray, p: np.ndarray, eps: np.ndarray) -> bool:
    return bool((renyi(q, p) <= eps).all() and (renyi(p, q) <= eps).all())


def make_cert(lower, upper, *, method, noise="laplace", scale=1.0, mass=None):
    return RDPTopKCertificate(
        torch.as_tensor(lower, dtype=torch.float64)[None],
        torch.as_tensor(upper, dtype=torch.float64)[None],
        orders=ORDERS,
        method=method,
        score_mass=mass,
        noise=resolve_noise(noise),
        norm="l1" if noise == "laplace" else "l2",
        scale=torch.tensor([scale], dtype=torch.float64),
        n=1,
        alpha=0.05,
        bound="test",
    )


# ------------------------------------------------------------------------------------------------
# Hölder
# ------------------------------------------------------------------------------------------------


def holder_box(q: np.ndarray, eps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(divide="ignore"):
        lq = np.log(q)[:, None]
    lo = np.exp((-eps[None, :] + A / (A - 1) * lq).max(1))
    hi = np.exp(np.minimum(((A - 1) / A * (eps[None, :] + lq)).min(1), 0.0))
    return lo, hi


def test_holder_rule_is_sound_bruteforce():
    rng = np.random.default_rng(11)
    trials, attained, positive = 0, {"exact": [0, 0]}, 0
    for trial in range(600):
        d = int(rng.integers(4, 10))
        k = int(rng.integers(1, d + 1))
        radius = float(rng.uniform(0.0, 1.0)) * (rng.uniform() > 0.05)
        q = draw_map(rng, d)
        band = ("exact", "constant", "variable")[trial % 3]
        lower, upper = draw_band(rng, q, band, constant_width=0.15, variable_width=0.2)
        m = int(make_cert(lower, upper, method="holder").certified_count(k, radius)[0])
        assert max(0, 2 * k - d) <= m <= k
        positive += m > max(0, 2 * k - d)
        lo, hi = holder_box(q, laplace_eps(radius))
        for _ in range(15):
            u = rng.uniform(size=d)
            u[rng.uniform(size=d) < 0.3] = rng.integers(0, 2)  # box corners: ties, extremes
            q2 = lo + u * (hi - lo)
            assert min_overlap(q, q2, k) >= m, (q, lower, upper, k, radius, m, q2)
        worst = min(min_overlap(q, np.where(s, lo, hi), k) for s in valid_topk_sets(q, k))
        assert worst >= m, (q, lower, upper, k, radius, m)
        if band == "exact":
            attained["exact"][0] += worst == m
            attained["exact"][1] += 1
        trials += 1
    hits, total = attained["exact"]
    print(
        f"Hölder: {trials} trials, {positive} with a non-trivial m; "
        f"exact-band tightness {hits}/{total}"
    )
    assert positive > 0.3 * trials  # not vacuous
    # With the exact map the rule is the worst case of the box adversary (as for Phi)
    assert hits >= 0.98 * total


# ------------------------------------------------------------------------------------------------
# Pairwise
# ------------------------------------------------------------------------------------------------


def smoothed_binary_map(rng: np.random.Generator, d: int, s: int) -> np.ndarray:
    """The mean of T random top-s indicator maps: a genuine smoothed binary map, sum s."""
    t = int(rng.integers(5, 60))
    logits = rng.normal(0, rng.uniform(0.5, 3.0), d)
    maps = np.zeros((t, d))
    for row in maps:
        row[np.argsort(-(logits + rng.gumbel(size=d)))[:s]] = 1.0
    return maps.mean(0)


def temper(target: np.ndarray, p: np.ndarray, eps: np.ndarray) -> np.ndarray | None:
    """The admissible mixture (1 - w) p + w target with the largest w (bisection)."""
    if admissible(target, p, eps):
        return target
    lo, hi = 0.0, 1.0
    for _ in range(20):  # weight to ~1e-6
        mid = 0.5 * (lo + hi)
        if admissible((1 - mid) * p + mid * target, p, eps):
            lo = mid
        else:
            hi = mid
    return (1 - lo) * p + lo * target if lo > 0 else None


def joint_minimizer(p: np.ndarray, below, above, order: float) -> np.ndarray | None:
    """The exact minimizer of D_order(Q||P) s.t. Q_above >= Q_below, rest spread like P."""
    value, merged = joint_rdp_bound(p[below], p[above], order, return_minimizer=True)
    if merged is None or not np.isfinite(value):  # e.g. an outsider of mass 0 must rise
        return None
    k0 = len(below)
    q = np.empty_like(p)
    q[below], q[above] = merged[:k0], merged[k0 : 2 * k0]
    rest = np.setdiff1d(np.arange(p.size), np.r_[below, above])
    if rest.size:
        total = p[rest].sum()
        q[rest] = merged[-1] * p[rest] / total if total > 0 else 0.0
    assert renyi(q, p)[0] >= 0 and q[above].min() >= q[below].max() - 1e-12
    return q


def test_pairwise_rule_is_sound_bruteforce():
    rng = np.random.default_rng(12)
    trials = positive = attacked = reached = 0
    for trial in range(160):
        d = int(rng.integers(4, 8))
        s = int(rng.integers(1, d // 2 + 1))
        k = int(rng.integers(1, d // 2 + 1))
        q = smoothed_binary_map(rng, d, s)
        band = ("exact", "constant", "variable")[trial % 3]
        lower, upper = draw_band(rng, q, band, constant_width=0.15, variable_width=0.2)
        radius = float(rng.uniform(0.0, 0.6))
        cert = make_cert(lower, upper, method="pairwise", mass=float(s))
        m = int(cert.certified_count(k, radius)[0])
        trials += 1
        if m == 0:
            continue
        positive += 1
        p = q / s
        eps = laplace_eps(radius)
        # adversaries that would need to swap k0 = K - m + 1 pairs to beat the certificate
        order_p = np.argsort(-p, kind="stable")
        k0 = k - m + 1
        below, above = order_p[k - k0 : k], order_p[k : k + k0]
        candidates = []
        for order in (1.5, 3.0, 10.0):
            target = joint_minimizer(p, below, above, order)
            if target is not None:
                candidates.append(target)
        support = p > 0  # mass outside P's support has infinite divergence
        for _ in range(5):  # random perturbations, tempered to admissibility below
            target = np.zeros_like(p)
            target[support] = rng.dirichlet(0.2 + 5 * p[support] / p[support].max())
            candidates.append(target)
        for target in candidates:
            q2 = temper(target, p, eps)
            if q2 is None:
                continue
            attacked += 1
            got = min_overlap(p, q2, k)
            reached += got == m
            assert got >= m, (q, lower, upper, k, radius, m, q2)
    print(
        f"pairwise: {trials} trials, {positive} with m >= 1, {attacked} admissible attacks, "
        f"{reached} reached m"
    )
    # not vacuous: many certified trials, many admissible attacks, and attacks that reach the
    # certified overlap exactly (the bound is attained, not only respected)
    assert positive > 0.3 * trials and attacked > 4 * positive and reached > positive
