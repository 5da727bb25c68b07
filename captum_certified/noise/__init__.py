"""Noise distributions for smoothing, each sampled with a ``torch.Generator``."""

from captum_certified.noise._core.base import NoiseDistribution
from captum_certified.noise._core.gaussian import GaussianNoise
from captum_certified.noise._core.laplace import (
    GeneralizedGaussianNoise,
    LaplaceNoise,
    sample_standard_gamma,
)
from captum_certified.noise._core.registry import NOISES, resolve_noise
from captum_certified.noise._core.uniform import UniformBallNoise, UniformCubeNoise

__all__ = [
    "NOISES",
    "GaussianNoise",
    "GeneralizedGaussianNoise",
    "LaplaceNoise",
    "NoiseDistribution",
    "UniformBallNoise",
    "UniformCubeNoise",
    "resolve_noise",
    "sample_standard_gamma",
]
