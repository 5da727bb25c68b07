"""Statistical checks of the Gaussian sampler and of the noise the engine actually adds."""

import pytest
import torch
from _recording import engine_noisy_inputs
from scipy import stats

from captum_certified.noise import GaussianNoise, resolve_noise


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("sigma", [0.05, 1.0, 3.0])
def test_gaussian_sampler_distribution(seed, sigma):
    n = 20000
    (eps,) = GaussianNoise().sample(
        [(n,)],
        [torch.tensor(sigma)],
        generator=torch.Generator().manual_seed(seed),
        dtype=torch.float64,
        device=torch.device("cpu"),
    )
    # mean: sd sigma/sqrt(n); 5 standard errors
    assert abs(eps.mean().item()) < 5 * sigma / n**0.5
    # variance within [0.9, 1.1] sigma^2 (sd of the ratio is sqrt(2/n) = 1%)
    assert 0.9 < eps.var().item() / sigma**2 < 1.1
    assert stats.kstest(eps.numpy() / sigma, "norm").pvalue > 1e-3


def test_engine_adds_noise_of_the_requested_variance():
    noise = engine_noisy_inputs(
        torch.zeros(2, 3, 4),
        nt_samples=3000,
        nt_samples_batch_size=1000,
        stdevs=0.7,
        generator=torch.Generator().manual_seed(0),
    )
    assert noise.shape == (6000, 3, 4)
    ratio = noise.var().item() / 0.49
    assert 0.95 < ratio < 1.05  # 72000 draws: sd of the ratio ~0.5%


def test_resolve_noise():
    assert isinstance(resolve_noise("gaussian"), GaussianNoise)
    assert isinstance(resolve_noise("Gaussian"), GaussianNoise)
    noise = GaussianNoise()
    assert resolve_noise(noise) is noise
    with pytest.raises(ValueError, match="noise"):
        resolve_noise("cauchy")
    with pytest.raises(TypeError, match="noise"):
        resolve_noise(3)
