"""Coverage of the simultaneous confidence bands (certificates.rst §7).

A band fails on a repetition when *any* coordinate of the true p lies outside [L, U]. The
failure probability must be at most ``alpha``. Simulated failure counts are checked with a
one-sided binomial test at level 0.001 (a correct band is rejected with probability <= 0.001),
and, because the coordinates are independent here, against the *exact* failure probability
1 - prod_j (1 - P(p_j outside band_j)), computed by enumerating the counts 0..n.

Why alpha = 0.3 as well as 0.05: at 0.05 the Bonferroni slack, the discreteness of the counts
and the coordinates at exactly 0 or 1 (which never fail) push the true failure rate far below
alpha, so a band that is too narrow by a moderate factor would still pass. At 0.3 the CP band's
failure rate on the mid-range d = 10 scenario is about 0.20, and a band with the Bonferroni
factor 2 d replaced by d fails at about 0.40: the binomial test detects it (see the negative
controls at the end, which run the same harness on deliberately wrong bands).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from captum_certified.certify import clopper_pearson_band, hoeffding_band
from captum_certified.certify._core.bands import hoeffding_error

TEST_LEVEL = 1e-3


def scenario(name: str) -> np.ndarray:
    rng = np.random.default_rng(0)
    if name == "d10_sparse":  # zeros, a one, small and mid values
        return np.array([0.0, 0.0, 0.0, 0.0, 1.0, 0.5, 0.3, 0.02, 0.9, 0.1])
    if name == "d10_mid":  # all coordinates can fail: the hardest case for the band
        return rng.uniform(0.3, 0.7, 10)
    if name == "d1000":  # 60 % exact zeros, 5 % ones, some tiny and some uniform values
        p = np.zeros(1000)
        p[:50] = 1.0
        p[50:300] = rng.uniform(0.0, 1.0, 250)
        p[300:400] = rng.uniform(0.0, 0.02, 100)
        return p
    raise KeyError(name)


def draw_counts(p: np.ndarray, n: int, reps: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).binomial(n, p, size=(reps, p.size))


def band(kind: str, counts: np.ndarray, n: int, alpha: float):
    c = torch.as_tensor(counts, dtype=torch.float64)
    if kind == "clopper_pearson":
        lower, upper = clopper_pearson_band(c, n, alpha)
    else:
        lower, upper = hoeffding_band(c / n, n, alpha)
    return lower.numpy(), upper.numpy()


def exact_failure_probability(kind: str, p: np.ndarray, n: int, alpha: float) -> float:
    """P(some coordinate outside its band), coordinates independent, by enumerating k = 0..n."""
    d = p.size
    k = np.arange(n + 1, dtype=np.float64)
    # band of every possible count, at this d (the tail level alpha / (2 d) depends on d)
    lower, upper = band(kind, np.tile(k[:, None], (1, d)), n, alpha)
    lower, upper = lower[:, 0], upper[:, 0]
    pmf = stats.binom.pmf(k[None, :], n, p[:, None])  # (d, n + 1)
    miss = ((p[:, None] < lower[None, :]) | (p[:, None] > upper[None, :])) * pmf
    per_coord = np.clip(miss.sum(-1), 0.0, 1.0)
    return float(-np.expm1(np.log1p(-per_coord).sum()))


def count_failures(lower: np.ndarray, upper: np.ndarray, p: np.ndarray) -> int:
    return int(((p < lower) | (p > upper)).any(-1).sum())


CASES = [
    ("d10_sparse", 200, 4000),
    ("d10_mid", 200, 4000),
    ("d1000", 100, 2000),
    ("d1000", 500, 2000),
]

SEEDS = {"d10_sparse": 11_000, "d10_mid": 12_000, "d1000": 13_000}


@pytest.mark.parametrize("kind", ["clopper_pearson", "hoeffding"])
@pytest.mark.parametrize("alpha", [0.05, 0.3])
@pytest.mark.parametrize("name,n,reps", CASES)
def test_simultaneous_coverage(name, n, reps, alpha, kind):
    p = scenario(name)
    counts = draw_counts(p, n, reps, seed=SEEDS[name] + n)
    lower, upper = band(kind, counts, n, alpha)
    assert lower.shape == counts.shape and np.all(lower <= upper)
    assert np.all(lower >= 0.0) and np.all(upper <= 1.0)
    failures = count_failures(lower, upper, p)
    exact = exact_failure_probability(kind, p, n, alpha)
    print(f"{name} n={n} alpha={alpha} {kind}: {failures}/{reps} (exact {exact:.5f})")
    # the band's guarantee, computed exactly
    assert exact <= alpha
    # the simulation: not significantly above alpha (one-sided, level 1e-3)
    assert stats.binomtest(failures, reps, alpha, alternative="greater").pvalue > TEST_LEVEL
    # and consistent with the exact failure probability (two-sided, level 1e-3): this checks
    # the simulated band against the enumerated one, so a band that depends on the batch
    # (e.g. on other rows' counts) would show here
    if exact > 0:
        assert stats.binomtest(failures, reps, exact).pvalue > TEST_LEVEL
    else:
        assert failures == 0


def test_zero_and_one_coordinates_never_fail():
    # p = 0 gives count 0 and L = 0; p = 1 gives count n and U = 1, for both bands
    n = 50
    counts = np.array([[0, n]])
    for kind in ("clopper_pearson", "hoeffding"):
        lower, upper = band(kind, counts, n, 0.05)
        assert lower[0, 0] == 0.0 and upper[0, 1] == 1.0


# ----------------------------------------------------------------------------------------------
# Per-coordinate exactness of Clopper-Pearson (deterministic, by enumeration)
# ----------------------------------------------------------------------------------------------


def _probe_points(lower: np.ndarray, upper: np.ndarray) -> np.ndarray:
    # The miss probability P(p < L_K) is a step function of p that jumps at each L_k (and
    # P(p > U_K) at each U_k): its supremum is approached just below / above those endpoints.
    ends = np.concatenate([lower, upper])
    probes = np.concatenate(
        [ends, np.nextafter(ends, 0.0), np.nextafter(ends, 1.0), np.linspace(0.0, 1.0, 1001)]
    )
    return np.unique(np.clip(probes, 0.0, 1.0))


@pytest.mark.parametrize("n", [1, 7, 100, 500])
@pytest.mark.parametrize("alpha", [0.05, 0.3])
@pytest.mark.parametrize("d", [1, 10])
def test_clopper_pearson_tails_exact(n, alpha, d):
    # Each one-sided tail is at most alpha / (2 d) for every p and reaches it (the interval is
    # the exact one, not a conservative approximation). With d = 1 the band is the plain
    # two-sided exact interval at level alpha, so coverage >= 1 - alpha for every p.
    k = np.arange(n + 1, dtype=np.float64)
    lower, upper = band("clopper_pearson", np.tile(k[:, None], (1, d)), n, alpha)
    assert np.all(lower == lower[:, :1]) and np.all(upper == upper[:, :1])
    lower, upper = lower[:, 0], upper[:, 0]
    tail = alpha / (2 * d)
    p = _probe_points(lower, upper)
    pmf = stats.binom.pmf(k[None, :], n, p[:, None])  # (probes, n + 1)
    below = (pmf * (p[:, None] < lower[None, :])).sum(-1)  # P(p < L_K)
    above = (pmf * (p[:, None] > upper[None, :])).sum(-1)  # P(p > U_K)
    # 1e-12: the pmf sums carry float rounding of ~(n + 1) * 1e-16.
    assert below.max() <= tail + 1e-12
    assert above.max() <= tail + 1e-12
    assert np.all(1.0 - below - above >= 1.0 - 2 * tail - 1e-12)
    # attained: at p just below L_k (k >= 1) the tail is P_p(K >= k) -> tail as p -> L_k, up to
    # the beta-quantile's accuracy (relative 1e-6 is generous for scipy's betaincinv)
    assert below.max() == pytest.approx(tail, rel=1e-6)
    assert above.max() == pytest.approx(tail, rel=1e-6)


# ----------------------------------------------------------------------------------------------
# Hoeffding on non-binary [0, 1] samples
# ----------------------------------------------------------------------------------------------

BETA_PARAMS = np.array(
    [(0.05, 0.05), (0.1, 0.1), (0.5, 0.5), (1.0, 1.0), (2.0, 5.0), (5.0, 2.0), (0.2, 3.0)] * 3
)


@pytest.mark.parametrize("alpha", [0.05, 0.3])
def test_hoeffding_covers_beta_samples(alpha):
    # Beta(a, b) samples in [0, 1]; Beta(0.05, 0.05) is nearly Bernoulli(1/2), the variance-
    # maximising law that makes Hoeffding closest to tight.
    rng = np.random.default_rng(5)
    reps, n = 2000, 100
    a, b = BETA_PARAMS[:, 0], BETA_PARAMS[:, 1]
    mu = a / (a + b)
    samples = rng.beta(a, b, size=(reps, n, a.size))
    mean = torch.as_tensor(samples.mean(1))
    lower, upper = hoeffding_band(mean, n, alpha)
    failures = count_failures(lower.numpy(), upper.numpy(), mu)
    print(f"Hoeffding, Beta samples, alpha={alpha}: {failures}/{reps}")
    assert stats.binomtest(failures, reps, alpha, alternative="greater").pvalue > TEST_LEVEL
    # per-coordinate half-width is the formula's, clamped to [0, 1]
    err = hoeffding_error(a.size, n, alpha)
    assert torch.allclose(upper, (mean + err).clamp(0, 1)) and torch.allclose(
        lower, (mean - err).clamp(0, 1)
    )


# ----------------------------------------------------------------------------------------------
# Negative controls: the harness rejects bands that are too narrow
# ----------------------------------------------------------------------------------------------


def _cp_reference(counts: np.ndarray, n: int, tail: float):
    with np.errstate(all="ignore"):
        lower = np.where(counts > 0, stats.beta.ppf(tail, counts, n - counts + 1), 0.0)
        upper = np.where(counts < n, stats.beta.isf(tail, counts + 1, n - counts), 1.0)
    return lower, upper


@pytest.mark.parametrize(
    "tail_divisor",
    [
        2,  # no Bonferroni at all: per-coordinate two-sided intervals at level alpha
        10,  # Bonferroni over d instead of 2 d tails (d = 10)
    ],
)
def test_harness_rejects_undercovering_bands(tail_divisor):
    p = scenario("d10_mid")
    n, reps, alpha = 200, 4000, 0.3
    counts = draw_counts(p, n, reps, seed=SEEDS["d10_mid"] + n)
    # the reference with the package's divisor 2 d = 20 agrees with the package
    ref = _cp_reference(counts, n, alpha / 20)
    pkg = band("clopper_pearson", counts, n, alpha)
    np.testing.assert_allclose(ref[0], pkg[0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(ref[1], pkg[1], rtol=0, atol=1e-15)
    lower, upper = _cp_reference(counts, n, alpha / tail_divisor)
    failures = count_failures(lower, upper, p)
    assert stats.binomtest(failures, reps, alpha, alternative="greater").pvalue < TEST_LEVEL
