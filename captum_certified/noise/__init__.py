"""Noise distributions for smoothing, each sampled with a ``torch.Generator``."""

from captum_certified.noise._core.base import NoiseDistribution
from captum_certified.noise._core.gaussian import GaussianNoise
from captum_certified.noise._core.registry import NOISES, resolve_noise

__all__ = ["NOISES", "GaussianNoise", "NoiseDistribution", "resolve_noise"]
