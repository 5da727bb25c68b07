"""The certifier each noise family gets when ``return_certificate=True`` names none.

The table lives here, above both ``noise`` and ``certify``, so that neither imports the other
upwards; a new noise with a certificate adds one entry.
"""

from __future__ import annotations

from collections.abc import Callable

from captum_certified.certify import (
    Certifier,
    CosineCertifier,
    CubeCosineCertifier,
    GaussianTopKCertifier,
    RDPTopKCertifier,
)
from captum_certified.noise import (
    GaussianNoise,
    GeneralizedGaussianNoise,
    LaplaceNoise,
    NoiseDistribution,
    UniformBallNoise,
    UniformCubeNoise,
)

DEFAULT_CERTIFIERS: dict[type[NoiseDistribution], Callable[[], Certifier]] = {
    GaussianNoise: GaussianTopKCertifier,
    LaplaceNoise: RDPTopKCertifier,
    UniformCubeNoise: CubeCosineCertifier,
    UniformBallNoise: CosineCertifier,
}

_NO_CERTIFICATE: dict[type[NoiseDistribution], str] = {
    GeneralizedGaussianNoise: (
        "no certificate is available for generalized Gaussian noise (its Rényi divergence "
        "has no closed form); use noise=GaussianNoise() (l2) or noise=LaplaceNoise() (l1) "
        "with return_certificate=True"
    ),
}


def default_certifier(noise: NoiseDistribution) -> Certifier:
    """A fresh instance of the default certifier for ``noise``.

    Args:
        noise (NoiseDistribution): The smoothing noise.

    Returns:
        Certifier: Levine et al.'s Phi-rule certifier for Gaussian noise, the Rényi-DP
        certifier for Laplace noise, the cosine certifiers for uniform cube and ball noise.

    Raises:
        ValueError: if no certificate is proven for this noise family.

    Examples::

        >>> from captum_certified.noise import LaplaceNoise
        >>> default_certifier(LaplaceNoise()).method
        'best'
    """
    factory = DEFAULT_CERTIFIERS.get(type(noise))
    if factory is None:
        raise ValueError(
            _NO_CERTIFICATE.get(
                type(noise),
                f"no certificate is available for `noise`={noise!r}; pass a certifier proven "
                "for it (a Certifier whose `supported_noises` lists its class)",
            )
        )
    return factory()
