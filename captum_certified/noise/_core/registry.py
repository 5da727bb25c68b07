"""Look up noise distributions by name."""

from __future__ import annotations

from captum_certified.noise._core.base import NoiseDistribution
from captum_certified.noise._core.gaussian import GaussianNoise
from captum_certified.noise._core.laplace import LaplaceNoise
from captum_certified.noise._core.uniform import UniformBallNoise, UniformCubeNoise

NOISES: dict[str, type[NoiseDistribution]] = {"gaussian": GaussianNoise}
NOISES.update({"cube": UniformCubeNoise, "l2_ball": UniformBallNoise})
NOISES["laplace"] = LaplaceNoise


def resolve_noise(noise: str | NoiseDistribution) -> NoiseDistribution:
    """Return ``noise`` if it is a distribution, else instantiate it by name."""
    if isinstance(noise, NoiseDistribution):
        return noise
    if isinstance(noise, str):
        try:
            return NOISES[noise.lower()]()
        except KeyError:
            raise ValueError(f"`noise` must be one of {sorted(NOISES)}, got {noise!r}") from None
    raise TypeError(f"`noise` must be a name or a NoiseDistribution, got {type(noise).__name__}")
