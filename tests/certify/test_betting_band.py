"""The betting band (certificates.rst, "Betting bands and confidence sequences"): the capital
bounds against the exact capital, the band ends against scipy root finding, and tightness
against the KL band on low-variance maps."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import optimize

from captum_certified.certify import betting_band, kl_band
from captum_certified.certify._core.betting import (
    betting_grid,
    betting_lower_bound,
    log_capital_lower_bound,
)


def exact_log_capital(x: np.ndarray, lam: float, m: float) -> float:
    return float(np.log1p(lam * (x - m)).sum())


@pytest.mark.parametrize("kind", ["binary", "beta", "three_point", "uniform_low"])
def test_capital_lower_bound_never_exceeds_the_exact_capital(kind):
    rng = np.random.default_rng(1)
    bets = betting_grid(64, 5, 0.05)
    worst_gap = math.inf
    naive_beaten = False
    for rep in range(40):
        n = int(rng.integers(1, 60))
        if kind == "binary":
            x = (rng.random(n) < rng.random()).astype(float)
        elif kind == "beta":
            x = rng.beta(0.5, 2.0, n)
        elif kind == "three_point":
            x = rng.choice([0.0, 0.5, 1.0], n)
        else:
            x = rng.random(n) * 0.2
        mean = torch.tensor([x.mean()], dtype=torch.float64)
        m2 = torch.tensor([((x - x.mean()) ** 2).sum()], dtype=torch.float64)
        for m in np.linspace(0.0, 1.0, 41):
            bound = log_capital_lower_bound(
                bets, torch.tensor(float(n)), mean, m2, torch.tensor([m], dtype=torch.float64)
            )[0]
            exact = np.array([exact_log_capital(x, float(lam), m) for lam in bets])
            gap = exact - bound.numpy()
            assert (gap >= -1e-9).all(), (kind, rep, m, gap.min())
            worst_gap = min(worst_gap, float(gap.min()))
            if kind == "binary":  # the chord bound is exact for {0, 1} samples
                np.testing.assert_allclose(bound.numpy(), exact, rtol=1e-10, atol=1e-9)
            # teeth: the same check catches the second-order Taylor "bound" without remainder
            y = x - m
            naive = np.array([(lam * y - (lam * y) ** 2 / 2).sum() for lam in bets.numpy()])
            naive_beaten |= bool((naive > exact + 1e-9).any())
    assert worst_gap < 0.05  # close to the exact capital somewhere: not vacuous
    assert naive_beaten


def mixture_root(k: int, n: int, level: float, bets: np.ndarray) -> float:
    """The exact lower end for binary samples: largest m with log mean_j K_j(m) = level."""

    def f(m: float) -> float:
        logs = k * np.log1p(bets * (1 - m)) + (n - k) * np.log1p(-bets * m)
        top = logs.max()
        return float(top + np.log(np.exp(logs - top).mean()) - level)

    mean = k / n
    if f(0.0) < 0:
        return 0.0
    return optimize.brentq(f, 0.0, mean, xtol=1e-14)


def test_binary_band_matches_scipy_root_and_is_on_the_safe_side():
    n, d, alpha = 300, 7, 0.05
    level = math.log(2 * d / alpha)
    bets = betting_grid(n, d, alpha)
    counts = torch.arange(0, n + 1, 10, dtype=torch.float64)
    mean = (counts / n).reshape(1, -1).expand(d, -1)[:1]  # one example, many coordinates
    lower = betting_lower_bound(mean, None, n, level, bets)[0]
    for k, got in zip(counts.tolist(), lower.tolist()):
        want = mixture_root(int(k), n, level, bets.numpy())
        assert got <= want + 1e-12
        assert want - got < 1e-6, (k, got, want)


def test_band_is_symmetric_and_contains_the_mean():
    mean = torch.tensor([[0.0, 0.1, 0.5, 0.9, 1.0]], dtype=torch.float64)
    lo, up = betting_band(mean, 500, 0.05)
    assert (lo <= mean).all() and (up >= mean).all()
    np.testing.assert_allclose(lo[0].numpy(), 1 - up[0].flip(0).numpy(), atol=1e-9)
    assert lo[0, 0] == 0.0 and up[0, -1] == 1.0


def test_variance_makes_the_band_tighter_than_kl_on_low_variance_maps():
    # uniform on [0, 0.3]: variance 0.0075, far below the Bernoulli worst case 0.15 * 0.85
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2048, 200, generator=gen, dtype=torch.float64) * 0.3
    mean, var = x.mean(0, keepdim=True), x.var(0, unbiased=False, keepdim=True)
    lo, up = betting_band(mean, 2048, 0.05, variance=var)
    lo_kl, up_kl = kl_band(mean, 2048, 0.05)
    ratio = ((up - lo) / (up_kl - lo_kl)).mean().item()
    assert ratio < 0.5  # measured 0.36
    # without the variance the band is the Bernoulli worst case: never better than ~KL
    lo_c, up_c = betting_band(mean, 2048, 0.05)
    assert ((up_c - lo_c) / (up_kl - lo_kl)).mean().item() > 0.95


def test_bad_arguments_are_refused():
    mean = torch.full((1, 3), 0.5)
    with pytest.raises(ValueError, match="alpha"):
        betting_band(mean, 10, 1.5)
    with pytest.raises(ValueError, match="variance"):
        betting_band(mean, 10, 0.05, variance=torch.ones(1, 2))
    with pytest.raises(ValueError, match="horizon"):
        betting_band(mean, torch.tensor([[10.0]]), 0.05)
    with pytest.raises(ValueError, match="horizon"):
        betting_grid(0, 3, 0.05)


def test_confidence_band_betting_uses_the_second_moment_and_refuses_without_it():
    from captum_certified.certify import StreamingMoments, confidence_band

    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 512, 30, generator=gen, dtype=torch.float64) * 0.2
    stats = StreamingMoments(track_second_moment=True)
    stats.update(x)
    lower, upper, name = confidence_band(stats, alpha=0.05, bound="betting", binary=False)
    want = betting_band(stats.mean, 512, 0.05, variance=stats.variance)
    assert name == "betting"
    torch.testing.assert_close(lower, want[0])
    torch.testing.assert_close(upper, want[1])
    plain = StreamingMoments()
    plain.update(x)
    with pytest.raises(ValueError, match="second moment"):
        confidence_band(plain, alpha=0.05, bound="betting", binary=False)
    binary = StreamingMoments()
    binary.update((x > 0.1).double())  # binary maps: the mean alone is exact
    lower, _, _ = confidence_band(binary, alpha=0.05, bound="betting", binary=True)
    torch.testing.assert_close(lower, betting_band(binary.mean, 512, 0.05)[0])


def test_engine_certifies_with_the_betting_band():
    from torch import nn

    from captum_certified.attr import SparseSmoothGrad

    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).double()
    x = torch.rand(2, 1, 4, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    ssg = SparseSmoothGrad(model, sparsity=0.25, variant="linear")
    certs = {}
    for bound in ("kl", "betting"):
        _, certs[bound] = ssg.attribute(
            x,
            target=0,
            nt_samples=256,
            stdevs=0.1,
            return_certificate=True,
            bound=bound,
            generator=torch.Generator().manual_seed(0),
        )
    assert certs["betting"].bound == "betting"
    # same samples: both bands contain the same sample mean
    assert (certs["betting"].lower <= certs["kl"].upper).all()
    assert (certs["kl"].lower <= certs["betting"].upper).all()
