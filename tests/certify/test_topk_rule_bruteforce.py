"""Brute-force soundness and tightness of the sorted pigeonhole top-K rule (certificates.rst §6).

The certificate speaks about the *true* smoothed maps p = gbar(x) and p' = gbar(x + delta). For
a band L <= p <= U it certifies ``m`` such that |T_K(p) ∩ T_K(p')| >= m for every p' with
lo_a(p) <= p' <= hi_a(p) element-wise (a = radius / sigma), *for every tie-breaking* of both
top-K sets. The oracle below therefore takes the minimum intersection over all valid top-K sets
of p and of p'. The admissible box [lo_a(p), hi_a(p)] is computed with scipy, independently of
the package's Phi-bounds.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from _topk_oracle import draw_band, draw_map, min_overlap, valid_topk_sets
from scipy import stats

from captum_certified.certify import (
    GaussianTopKCertificate,
    clopper_pearson_band,
    hoeffding_band,
)
from captum_certified.noise import GaussianNoise

# ----------------------------------------------------------------------------------------------
# Oracle
# ----------------------------------------------------------------------------------------------


def min_overlap_enumerated(p: np.ndarray, q: np.ndarray, k: int) -> int:
    """Slow reference for :func:`min_overlap`: enumerate all k-subsets of both maps."""
    d = p.shape[0]

    def valid(v, subset):
        inside = v[list(subset)]
        outside = np.delete(v, list(subset))
        return outside.size == 0 or inside.min() >= outside.max()

    subsets = list(itertools.combinations(range(d), k))
    sp = [set(s) for s in subsets if valid(p, s)]
    sq = [set(s) for s in subsets if valid(q, s)]
    return min(len(a & b) for a in sp for b in sq)


def phi_box(p: np.ndarray, a: float) -> tuple[np.ndarray, np.ndarray]:
    """Admissible values of the true map after the shift: [Phi(Phi^-1(p) - a), Phi(.. + a)]."""
    if a == 0.0:
        return p.copy(), p.copy()
    z = stats.norm.ppf(p)  # -inf at 0, +inf at 1: the bounds are then 0 and 1 exactly
    return stats.norm.cdf(z - a), stats.norm.cdf(z + a)


def certified_count(lower, upper, k: int, radius: float, sigma: float) -> int:
    cert = GaussianTopKCertificate(
        torch.as_tensor(lower, dtype=torch.float64)[None],
        torch.as_tensor(upper, dtype=torch.float64)[None],
        noise=GaussianNoise(),
        norm="l2",
        scale=torch.tensor([sigma], dtype=torch.float64),
        n=1,
        alpha=0.05,
        bound="test",
    )
    return int(cert.certified_count(k, radius)[0])


def naive_count(lower, upper, k: int, radius: float, sigma: float, p_hat=None) -> int:
    """The unsound variant: L of the coordinate at p-hat rank i vs U of the one at rank 2K-i+1.

    ``p_hat`` defaults to the band midpoint.
    """
    d = lower.shape[0]
    if p_hat is None:
        p_hat = 0.5 * (lower + upper)
    order = np.argsort(-p_hat, kind="stable")
    a = radius / sigma
    m = 0
    for i in range(1, k + 1):
        j = 2 * k - i + 1
        if j > d:
            ok = True
        else:
            ok = stats.norm.ppf(lower[order[i - 1]]) - stats.norm.ppf(upper[order[j - 1]]) > 2 * a
        if ok:
            m = i
        else:
            break
    return m


def test_oracle_matches_full_enumeration():
    # The oracle is only as good as its tie handling: compare with brute force over all subsets.
    rng = np.random.default_rng(1)
    for _ in range(300):
        d = int(rng.integers(2, 8))
        k = int(rng.integers(1, d + 1))
        p = rng.integers(0, 4, d) / 3.0
        q = rng.integers(0, 4, d) / 3.0
        assert min_overlap(p, q, k) == min_overlap_enumerated(p, q, k)
    # explicit tie: p = (1, 1, 0), q = (0, 1, 1), K = 1 -> choose S = {0}, S' = {2}: overlap 0
    assert min_overlap(np.array([1.0, 1.0, 0.0]), np.array([0.0, 1.0, 1.0]), 1) == 0


N_TRIALS = 3000
N_RANDOM_PERTURBED = 20


@pytest.mark.slow
def test_sorted_rule_is_sound_bruteforce():
    rng = np.random.default_rng(20240611)
    # per band kind: [extreme adversary attains m, trials, trials with m >= 1, attains with m >= 1]
    attained = {kind: [0, 0, 0, 0] for kind in ("exact", "constant", "variable")}
    comparisons = 0
    k_above_half = 0
    for trial in range(N_TRIALS):
        d = int(rng.integers(4, 11))
        k = int(rng.integers(1, d + 1))
        k_above_half += 2 * k > d
        sigma = float(rng.uniform(0.2, 2.0))
        a_draw = 0.0 if rng.uniform() < 0.05 else float(rng.uniform(0.0, 1.5))
        radius = a_draw * sigma
        a = radius / sigma  # the same float64 division the certificate performs
        p = draw_map(rng, d)
        band_kind = ("exact", "constant", "variable")[trial % 3]
        lower, upper = draw_band(
            rng, p, band_kind, constant_width=0.2, variable_width=0.3, vacuous_ends=True
        )
        assert np.all(lower <= p) and np.all(p <= upper)

        m = certified_count(lower, upper, k, radius, sigma)
        assert 0 <= m <= k
        assert m >= max(0, 2 * k - d)  # two K-subsets of d features share >= 2K - d members

        lo, hi = phi_box(p, a)
        for _ in range(N_RANDOM_PERTURBED):
            u = rng.uniform(size=d)
            snap = rng.uniform(size=d)
            u[snap < 0.15] = 0.0  # endpoints of the box produce ties and extreme maps
            u[snap > 0.85] = 1.0
            q = lo + u * (hi - lo)
            got = min_overlap(p, q, k)
            comparisons += 1
            assert got >= m, (trial, d, k, a, p, lower, upper, q, m, got)

        # extreme adversary: lower bound on (every tie-breaking of) T_K(p), upper bound elsewhere
        worst = k
        for s in valid_topk_sets(p, k):
            q = np.where(s, lo, hi)
            worst = min(worst, min_overlap(p, q, k))
            comparisons += 1
        assert worst >= m, (trial, d, k, a, p, lower, upper, m, worst)
        attained[band_kind][0] += worst == m
        attained[band_kind][1] += 1
        attained[band_kind][2] += m >= 1
        attained[band_kind][3] += (m >= 1) and worst == m

    assert comparisons >= N_TRIALS * (N_RANDOM_PERTURBED + 1)
    assert k_above_half > N_TRIALS // 4  # the 2K > d branch is exercised
    frac = {key: hits / total for key, (hits, total, _, _) in attained.items()}
    print(f"extreme adversary attains m (hits, trials, m >= 1, hits with m >= 1): {attained}")
    print(f"comparisons: {comparisons}")
    for key, (_, total, positive, positive_hits) in attained.items():
        # the soundness checks are not vacuous (m >= 1 in a good share of the trials), and
        # tightness is not only the trivial m = worst = 0
        assert positive > 0.3 * total, key
        assert positive_hits > 0.3 * positive, key
    # With the exact map (L = U = p) the rule is exactly the worst case of the extreme
    # adversary: both are max{i : lo_a(p_(i)) > hi_a(p_(2K-i+1))}. Allow 1% for float
    # coincidences at exact ties (none seen with this seed).
    assert frac["exact"] >= 0.99
    # With a band the rule is conservative by the band's slack, but should not be trivial.
    assert frac["constant"] > 0.3
    assert frac["variable"] > 0.3


def test_unopposed_ranks_k_above_half():
    # K > d/2: ranks i <= 2K - d are kept by every perturbation (the two top-K sets share at
    # least 2K - d members), and nothing more is kept at a huge radius.
    rng = np.random.default_rng(7)
    for _ in range(200):
        d = int(rng.integers(4, 11))
        k = int(rng.integers(d // 2 + 1, d + 1))
        p = rng.uniform(0.05, 0.95, d)
        sigma = 1.0
        radius = 50.0  # lo_a ~ 0 and hi_a ~ 1 for p in [0.05, 0.95]
        m = certified_count(p, p, k, radius, sigma)
        assert m == 2 * k - d
        lo, hi = phi_box(p, radius / sigma)
        s = valid_topk_sets(p, k)[0]
        assert min_overlap(p, np.where(s, lo, hi), k) == 2 * k - d  # and the adversary gets there


def test_naive_pairing_overcertifies_sorted_rule_does_not():
    # Band (A, B, C): A narrow around 0.9, B narrow around 0.5, C wide [0, 0.95] so that its
    # midpoint ranks last. Naive pairing (K = 1) compares L_A with U_B and certifies; but C's
    # true value may exceed A's.
    lower = np.array([0.89, 0.49, 0.00])
    upper = np.array([0.91, 0.51, 0.95])
    k, sigma, radius = 1, 1.0, 0.3
    assert naive_count(lower, upper, k, radius, sigma) == 1

    # Witness: a true map inside the band and an admissible shift that empties the overlap.
    p = np.array([0.89, 0.50, 0.891])
    assert np.all(lower <= p) and np.all(p <= upper)
    lo, hi = phi_box(p, radius / sigma)
    q = np.array([hi[0], p[1], lo[2]])  # A up, C down; B unchanged
    assert np.all(lo <= q) and np.all(q <= hi)
    assert min_overlap(p, q, k) == 0  # the naive certificate (1) is violated

    # The implemented sorted rule pairs L_(1) = 0.89 with U_(2) = 0.91: nothing certified.
    assert certified_count(lower, upper, k, radius, sigma) == 0
    assert certified_count(lower, upper, k, 0.0, sigma) == 0


def test_naive_pairing_equals_sorted_rule_for_monotone_bands():
    # Levine et al.'s rule (p-hat positions) is the sorted rule whenever the band is a
    # non-decreasing function of p-hat alone: Hoeffding, or Clopper-Pearson with a common n.
    rng = np.random.default_rng(3)
    n = 64
    for _ in range(300):
        d = int(rng.integers(4, 30))
        k = int(rng.integers(1, d + 1))
        counts = torch.as_tensor(rng.binomial(n, rng.uniform(size=d)), dtype=torch.float64)
        radius = float(rng.uniform(0.0, 0.5))
        for lower, upper in (
            hoeffding_band(counts[None] / n, n, 0.05),
            clopper_pearson_band(counts[None], n, 0.05),
        ):
            lower, upper = lower[0].numpy(), upper[0].numpy()
            p_hat = counts.numpy() / n
            assert naive_count(lower, upper, k, radius, 1.0, p_hat) == certified_count(
                lower, upper, k, radius, 1.0
            )


@pytest.mark.parametrize("seed", [0, 1])
def test_sorted_rule_equals_worst_case_for_exact_map(seed):
    # With L = U = p the certified count is *equal* to the worst case over the admissible box
    # (lowering T_K(p) and raising the rest can only shrink the overlap, so the extreme
    # adversary is optimal), for every tie-breaking of T_K(p).
    rng = np.random.default_rng(100 + seed)
    for _ in range(500):
        d = int(rng.integers(4, 11))
        k = int(rng.integers(1, d + 1))
        p = draw_map(rng, d)
        a = float(rng.uniform(0.0, 1.5))
        m = certified_count(p, p, k, a, 1.0)
        lo, hi = phi_box(p, a)
        worst = min(min_overlap(p, np.where(s, lo, hi), k) for s in valid_topk_sets(p, k))
        assert worst == m, (p, k, a, m, worst)
