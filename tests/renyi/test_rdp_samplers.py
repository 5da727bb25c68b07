"""Statistical checks of the Laplace, generalized Gaussian and Gamma samplers (certificates.rst
§10).

Tolerances: for n i.i.d. draws the sample variance divided by the true variance has standard
deviation sqrt((kurtosis - 1) / n); we allow 5 of them. KS tests use p > 1e-3 (a false alarm
probability of 0.1% per test at fixed seeds, i.e. none expected).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _recording import engine_noisy_inputs
from scipy import stats

from captum_certified.attr import RenyiRobustSmooth, default_certifier
from captum_certified.noise import (
    NOISES,
    GeneralizedGaussianNoise,
    LaplaceNoise,
    resolve_noise,
    sample_standard_gamma,
)

N = 20000
CPU = torch.device("cpu")


def draw(noise, scale: float, seed: int, n: int = N, dtype=torch.float64) -> np.ndarray:
    (eps,) = noise.sample(
        [(n,)],
        [torch.tensor(scale, dtype=dtype)],
        generator=torch.Generator().manual_seed(seed),
        dtype=dtype,
        device=CPU,
    )
    assert eps.dtype == dtype and eps.shape == (n,)
    return eps.numpy()


def gg_kurtosis(q: float) -> float:
    """Kurtosis E z^4 / (E z^2)^2 of the generalized Gaussian: G(5/q) G(1/q) / G(3/q)^2."""
    return math.exp(math.lgamma(5 / q) + math.lgamma(1 / q) - 2 * math.lgamma(3 / q))


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("b", [0.05, 1.0, 3.0])
def test_laplace_sampler_distribution(seed, b):
    eps = draw(LaplaceNoise(), b, seed)
    # stdevs is the scale b: variance 2 b^2 (kurtosis 6)
    assert abs(eps.mean()) < 5 * math.sqrt(2) * b / math.sqrt(N)
    assert abs(eps.var() / (2 * b * b) - 1) < 5 * math.sqrt(5 / N)
    assert stats.kstest(eps, stats.laplace(scale=b).cdf).pvalue > 1e-3


@pytest.mark.parametrize("q", [0.5, 1.0, 1.5, 2.0, 4.0])
def test_generalized_gaussian_sampler_distribution(q):
    noise = GeneralizedGaussianNoise(q=q)
    sigma = 0.7
    eps = draw(noise, sigma, seed=int(10 * q))
    var = sigma**2 * math.gamma(3 / q) / math.gamma(1 / q)
    assert noise.unit_variance == pytest.approx(var / sigma**2, rel=1e-12)
    assert abs(eps.var() / var - 1) < 5 * math.sqrt((gg_kurtosis(q) - 1) / N)
    assert stats.kstest(eps, stats.gennorm(q, scale=sigma).cdf).pvalue > 1e-3
    if q == 2.0:
        assert var == pytest.approx(sigma**2 / 2)  # q = 2 is N(0, sigma^2 / 2), not sigma^2


def test_generalized_gaussian_q1_is_laplace():
    a = draw(GeneralizedGaussianNoise(q=1.0), 0.5, seed=3)
    b = draw(LaplaceNoise(), 0.5, seed=4)
    assert stats.ks_2samp(a, b).pvalue > 1e-3


@pytest.mark.parametrize("shape", [0.3, 1.0, 2.5, 7.0])
def test_gamma_sampler(shape):
    g = sample_standard_gamma((N,), shape, generator=torch.Generator().manual_seed(5)).numpy()
    assert g.dtype == np.float64 and (g >= 0).all()
    assert abs(g.mean() / shape - 1) < 5 / math.sqrt(shape * N)  # sd of the mean sqrt(a / n)
    assert stats.kstest(g, stats.gamma(shape).cdf).pvalue > 1e-3


def test_samplers_are_deterministic_and_leave_the_global_rng_alone():
    state = torch.random.get_rng_state()
    for noise in (LaplaceNoise(), GeneralizedGaussianNoise(1.5), GeneralizedGaussianNoise(0.7)):
        a = draw(noise, 1.0, seed=7, n=1000, dtype=torch.float32)
        b = draw(noise, 1.0, seed=7, n=1000, dtype=torch.float32)
        c = draw(noise, 1.0, seed=8, n=1000, dtype=torch.float32)
        assert np.array_equal(a, b) and not np.array_equal(a, c)
        assert np.isfinite(a).all()
    assert torch.equal(torch.random.get_rng_state(), state)
    g1 = sample_standard_gamma((3, 4), 0.5, generator=torch.Generator().manual_seed(0))
    g2 = sample_standard_gamma((3, 4), 0.5, generator=torch.Generator().manual_seed(0))
    assert g1.shape == (3, 4) and torch.equal(g1, g2)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_engine_adds_laplace_noise_with_stdevs_equal_to_b():
    noise = engine_noisy_inputs(
        torch.zeros(2, 3, 4),
        {"noise": LaplaceNoise()},
        nt_samples=2000,
        nt_samples_batch_size=500,
        noise_scale=0.7,
        generator=torch.Generator().manual_seed(0),
    ).to(torch.float64)
    assert noise.shape == (4000, 3, 4)
    # 48000 draws: sd of the variance ratio sqrt(5 / 48000) = 1%
    assert abs(noise.var().item() / (2 * 0.49) - 1) < 0.05
    assert stats.kstest(noise.flatten().numpy(), stats.laplace(scale=0.7).cdf).pvalue > 1e-3


def test_registry_and_argument_checks():
    assert NOISES["laplace"] is LaplaceNoise
    assert isinstance(resolve_noise("Laplace"), LaplaceNoise)
    with pytest.raises(ValueError, match="noise"):
        resolve_noise("generalized_gaussian")  # needs q: pass an instance
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="`q`"):
            GeneralizedGaussianNoise(q=bad)
    with pytest.raises(TypeError, match="`q`"):
        GeneralizedGaussianNoise(q=True)
    with pytest.raises(ValueError, match="concentration"):
        sample_standard_gamma((3,), 0.0)
    assert repr(GeneralizedGaussianNoise(3)) == "GeneralizedGaussianNoise(q=3.0)"
    assert LaplaceNoise().certified_norms == ("l1", "l2", "linf")
    assert GeneralizedGaussianNoise().certified_norms == ()


def test_generalized_gaussian_has_no_certificate():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 3))
    x = torch.rand(2, 4)
    rrs = RenyiRobustSmooth(model, sparsity=2)
    # smoothing works
    attr = rrs.attribute(
        x,
        target=0,
        nt_samples=4,
        noise=GeneralizedGaussianNoise(1.5),
        noise_scale=0.3,
        generator=torch.Generator().manual_seed(0),
    )
    assert attr.shape == x.shape
    with pytest.raises(ValueError, match="certificate"):
        rrs.attribute(
            x, target=0, nt_samples=4, noise=GeneralizedGaussianNoise(1.5), return_certificate=True
        )
    with pytest.raises(ValueError, match="generalized Gaussian"):
        default_certifier(GeneralizedGaussianNoise())
