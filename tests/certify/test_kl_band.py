"""The Bernoulli-KL (Chernoff) band for [0, 1]-valued maps (docs/certificates.rst, section 3).

- each end against an independent root finder (scipy's brentq on the KL equation);
- never wider than Hoeffding (Pinsker), exact at the ends 0 and 1;
- per-tail failure probability for Bernoulli samples, enumerated exactly over the counts,
  at most alpha / (2 d) for every p; simulated simultaneous coverage on Beta and three-point
  samples (non-binary) at alpha = 0.05 and 0.3;
- negative controls: the same harnesses reject a band built as if there were 4x the samples;
- the same samples give a band inside Hoeffding's, hence never fewer certified ranks.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import optimize, stats

from captum_certified.certify import hoeffding_band, kl_band
from captum_certified.certify._core.bands import bernoulli_kl

TEST_LEVEL = 1e-3


def kl_np(m: float, p: float) -> float:
    out = 0.0
    if m > 0:
        out += m * math.log(m / p)
    if m < 1:
        out += (1 - m) * math.log((1 - m) / (1 - p))
    return out


def reference_ends(m: float, level: float) -> tuple[float, float]:
    f = lambda p: kl_np(m, p) - level  # noqa: E731
    upper = 1.0 if m >= 1 or f(1 - 1e-15) <= 0 else optimize.brentq(f, m, 1 - 1e-15, xtol=1e-15)
    lower = 0.0 if m <= 0 or f(1e-300) <= 0 else optimize.brentq(f, 1e-300, m, xtol=1e-15)
    return lower, upper


def test_kl_divergence_matches_scipy():
    m = np.array([0.0, 0.1, 0.5, 0.9, 1.0, 0.3])
    p = np.array([0.2, 0.3, 0.5, 0.5, 0.7, 0.0])
    ref = [stats.entropy([a, 1 - a], [b, 1 - b]) for a, b in zip(m, p)]
    got = bernoulli_kl(torch.tensor(m), torch.tensor(p)).numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-12)
    assert got[-1] == math.inf


@pytest.mark.parametrize("n,d,alpha", [(50, 1, 0.05), (1000, 784, 0.05), (64, 10, 0.3)])
def test_ends_match_an_independent_root_finder(n, d, alpha):
    m = np.r_[0.0, 1e-4, 0.01, 0.2, 0.5, 0.77, 0.999, 1.0]
    mean = torch.zeros(1, d, dtype=torch.float64)
    mean[0, : m.size] = torch.tensor(m[:d]) if d < m.size else torch.tensor(m)
    lower, upper = kl_band(mean, n, alpha)
    level = math.log(2 * d / alpha) / n
    for j in range(min(d, m.size)):
        ref_lo, ref_up = reference_ends(float(mean[0, j]), level)
        assert upper[0, j].item() >= ref_up - 1e-15 and upper[0, j].item() <= ref_up + 1e-12
        assert lower[0, j].item() <= ref_lo + 1e-15 and lower[0, j].item() >= ref_lo - 1e-12
    # closed forms at the ends: kl(0, p) = -log(1 - p)
    assert upper[0, 0].item() == pytest.approx(-math.expm1(-level), rel=1e-12)
    if d >= m.size:
        assert lower[0, m.size - 1].item() == pytest.approx(math.exp(-level), rel=1e-12)


def test_never_wider_than_hoeffding():
    gen = torch.Generator().manual_seed(0)
    mean = torch.rand(4, 500, generator=gen, dtype=torch.float64) ** 3
    mean[:, :5] = torch.tensor([0.0, 1.0, 0.5, 1e-9, 1 - 1e-9], dtype=torch.float64)
    for n in (1, 10, 300, 10_000):
        lo, up = kl_band(mean, n, 0.05)
        hlo, hup = hoeffding_band(mean, n, 0.05)
        assert (lo >= hlo).all() and (up <= hup).all()
        assert (lo <= mean).all() and (up >= mean).all()
        assert (lo >= 0).all() and (up <= 1).all()
    # much narrower near 0: at m = 0.01, n = 1000, d = 784
    lo, up = kl_band(torch.full((1, 784), 0.01, dtype=torch.float64), 1000, 0.05)
    hlo, hup = hoeffding_band(torch.full((1, 784), 0.01, dtype=torch.float64), 1000, 0.05)
    assert (up - lo)[0, 0] < 0.5 * (hup - hlo)[0, 0]


def kl_band_counts(k: np.ndarray, n: int, alpha: float, inflate: float = 1.0):
    """The band of counts k; ``inflate`` pretends there were inflate * n samples (too narrow)."""
    mean = torch.as_tensor(k / n, dtype=torch.float64)[None]
    lower, upper = kl_band(mean, round(n * inflate), alpha)
    return lower[0].numpy(), upper[0].numpy()


def worst_tails(n: int, d: int, alpha: float, inflate: float = 1.0) -> tuple[float, float]:
    """max over p of P(p < L) and P(p > U) for Bernoulli samples, by enumerating the counts."""
    k = np.arange(n + 1, dtype=np.float64)
    # every count in its own row, d copies of it: the level alpha / (2 d) depends on d
    mean = torch.as_tensor(np.tile(k[:, None] / n, (1, d)))
    lo, up = kl_band(mean, round(n * inflate), alpha)
    lower, upper = lo[:, 0].numpy(), up[:, 0].numpy()
    ends = np.concatenate([lower, upper])
    probes = np.unique(
        np.clip(np.concatenate([ends, np.nextafter(ends, 0), np.nextafter(ends, 1)]), 0, 1)
    )
    pmf = stats.binom.pmf(k[None, :], n, probes[:, None])
    below = (pmf * (probes[:, None] < lower[None, :])).sum(-1).max()
    above = (pmf * (probes[:, None] > upper[None, :])).sum(-1).max()
    return float(below), float(above)


@pytest.mark.parametrize("n,d,alpha", [(1, 1, 0.3), (20, 1, 0.05), (200, 1, 0.3), (100, 10, 0.3)])
def test_bernoulli_tails_exact(n, d, alpha):
    tail = alpha / (2 * d)
    below, above = worst_tails(n, d, alpha)
    assert below <= tail + 1e-12 and above <= tail + 1e-12
    # negative control: a band built as if there were 4x the samples breaks the tail level
    if n >= 20:
        bad_below, bad_above = worst_tails(n, d, alpha, inflate=4.0)
        assert max(bad_below, bad_above) > tail


def three_point(rng, mu_low: np.ndarray, reps: int, n: int) -> np.ndarray:
    """Samples in {0, 0.5, 1} with probabilities (0.3, mu_low, 0.7 - mu_low)."""
    u = rng.uniform(size=(reps, n, mu_low.size))
    return np.where(u < 0.3, 0.0, np.where(u < 0.3 + mu_low, 0.5, 1.0))


@pytest.mark.parametrize("alpha", [0.05, 0.3])
def test_simultaneous_coverage_non_binary(alpha):
    rng = np.random.default_rng(7)
    reps, n = 2000, 100
    a = np.array([0.05, 0.1, 0.5, 1.0, 2.0, 5.0, 0.2, 0.05] * 2)
    b = np.array([0.05, 0.1, 0.5, 1.0, 5.0, 2.0, 3.0, 20.0] * 2)
    mu = a / (a + b)
    samples = rng.beta(a, b, size=(reps, n, a.size))
    mean = torch.as_tensor(samples.mean(1))
    lower, upper = kl_band(mean, n, alpha)
    fails = int(((mu < lower.numpy()) | (mu > upper.numpy())).any(-1).sum())
    assert stats.binomtest(fails, reps, alpha, alternative="greater").pvalue > TEST_LEVEL
    # three-point laws {0, 1/2, 1}
    mu_low = np.linspace(0.05, 0.6, 10)
    samples = three_point(rng, mu_low, reps, n)
    mu3 = 0.5 * mu_low + (1 - 0.3 - mu_low)
    mean = torch.as_tensor(samples.mean(1))
    lower, upper = kl_band(mean, n, alpha)
    fails3 = int(((mu3 < lower.numpy()) | (mu3 > upper.numpy())).any(-1).sum())
    assert stats.binomtest(fails3, reps, alpha, alternative="greater").pvalue > TEST_LEVEL
    if alpha == 0.3:
        # negative control: the same harness rejects a band built for 4x the samples
        lower, upper = kl_band(mean, 4 * n, alpha)
        bad = int(((mu3 < lower.numpy()) | (mu3 > upper.numpy())).any(-1).sum())
        assert stats.binomtest(bad, reps, alpha, alternative="greater").pvalue < TEST_LEVEL


def test_bad_arguments():
    with pytest.raises(ValueError, match="`n`"):
        kl_band(torch.zeros(1, 3), 0, 0.05)
    with pytest.raises(ValueError, match="`alpha`"):
        kl_band(torch.zeros(1, 3), 10, 1.5)
