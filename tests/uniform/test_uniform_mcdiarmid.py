"""Coverage of the McDiarmid bound on ||hhat - hbar||_2 (certificates.rst §9).

For i.i.d. maps with ||h||_2 <= M, P(||hhat - hbar||_2 > mcdiarmid_error(n, alpha, M)) <= alpha.
Each scenario has an exactly known mean hbar (finite support or symmetry). The failure count
over R repetitions must not be significantly above alpha (one-sided binomial test at level
1e-3, as in tests/certify/test_band_coverage.py). The negative control shows that the harness
detects a bound that is too small: dropping the deviation term leaves ``M / sqrt(n)``, which the
signed-coordinate scenario exceeds about 32 % of the time.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from captum_certified.certify import mcdiarmid_error

TEST_LEVEL = 1e-3
REPS = 2000


def _sample_means(name: str, n: int, rng: np.random.Generator):
    """Sample means hhat of n i.i.d. maps, shape (REPS, D); the exact mean (D,); M."""
    if name == "signed_coordinate":  # h = +-M e_1: ||hhat|| ~ |N(0, 1)| M / sqrt(n)
        m = 2.0
        h = m * rng.choice([-1.0, 1.0], size=(REPS, n))
        return h.mean(axis=1, keepdims=True), np.zeros(1), m
    if name == "signed_basis_d1000":  # h = +-e_j, j uniform in 1..1000: E ||hhat|| ~ 1/sqrt(n)
        d = 1000
        j = rng.integers(0, d, size=(REPS, n))
        s = rng.choice([-1.0, 1.0], size=(REPS, n))
        flat = (np.arange(REPS)[:, None] * d + j).ravel()
        sums = np.bincount(flat, weights=s.ravel(), minlength=REPS * d).reshape(REPS, d)
        return sums / n, np.zeros(d), 1.0
    if name == "finite_support_unit":  # uniform over 16 fixed unit vectors in R^8 (biased mean)
        support = rng.standard_normal((16, 8)) + np.array([1.0] + [0.0] * 7)
        support /= np.linalg.norm(support, axis=1, keepdims=True)
    elif name == "finite_support_inside":  # norms in [0, M], including the zero map
        support = rng.standard_normal((10, 5))
        support *= rng.uniform(0, 1, size=(10, 1)) / np.linalg.norm(support, axis=1, keepdims=True)
        support[0] = 0.0
    else:
        raise KeyError(name)
    assert np.linalg.norm(support, axis=1).max() <= 1 + 1e-12  # the premise ||h|| <= M = 1
    counts = rng.multinomial(n, np.full(len(support), 1 / len(support)), size=REPS)
    return counts @ support / n, support.mean(0), 1.0


SCENARIOS = [
    "signed_coordinate",
    "signed_basis_d1000",
    "finite_support_unit",
    "finite_support_inside",
]


@pytest.mark.parametrize("alpha", [0.05, 0.5])
@pytest.mark.parametrize("n", [10, 100])
@pytest.mark.parametrize("name", SCENARIOS)
def test_mcdiarmid_coverage(name, n, alpha):
    rng = np.random.default_rng(100 * n + SCENARIOS.index(name))
    hhat, mean, m = _sample_means(name, n, rng)
    errors = np.linalg.norm(hhat - mean, axis=1)
    bound = mcdiarmid_error(n, alpha, m)
    failures = int((errors > bound).sum())
    print(f"{name} n={n} alpha={alpha}: {failures}/{REPS} failures, bound {bound:.4f}")
    assert stats.binomtest(failures, REPS, alpha, alternative="greater").pvalue > TEST_LEVEL


def test_harness_rejects_a_bound_without_the_deviation_term():
    n, alpha = 100, 0.05
    rng = np.random.default_rng(3)
    hhat, mean, m = _sample_means("signed_coordinate", n, rng)
    errors = np.linalg.norm(hhat - mean, axis=1)
    too_small = m / np.sqrt(n)  # E ||hhat - hbar|| bound only
    failures = int((errors > too_small).sum())
    assert stats.binomtest(failures, REPS, alpha, alternative="greater").pvalue < TEST_LEVEL
    # while the full bound holds
    assert int((errors > mcdiarmid_error(n, alpha, m)).sum()) <= alpha * REPS
