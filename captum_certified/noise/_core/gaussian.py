"""Isotropic Gaussian noise (certifies l2 perturbations)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from captum_certified.noise._core.base import NoiseDistribution
from captum_certified.noise._core.renyi import gaussian_rdp_epsilon


class GaussianNoise(NoiseDistribution):
    r"""``N(0, sigma^2 I)`` noise; the engine's ``stdevs`` (Captum's name) is ``sigma``.

    ``torch.randn(shape, generator=g) * sigma`` draws the same numbers as Captum's
    ``torch.normal(0, sigma_tensor)`` from the same RNG state, so with identity transforms the
    engine reproduces :class:`captum.attr.NoiseTunnel` exactly. Its certificate is Levine et
    al.'s Phi-bound top-K certificate for l2 perturbations.
    """

    name = "gaussian"
    certified_norms = ("l2",)
    native_norm = "l2"
    coordinate_rule = "phi"

    #: :func:`~captum_certified.noise._core.renyi.gaussian_rdp_epsilon`, ``scale`` = ``sigma``.
    renyi_curve = staticmethod(gaussian_rdp_epsilon)

    def unit_icdf(self, p: Tensor) -> Tensor:
        """``Phi^-1``, the standard normal quantile function."""
        return torch.special.ndtri(p)

    def sample_unit(
        self,
        shape: Sequence[int],
        *,
        generator: torch.Generator | None,
        dtype: torch.dtype,
        device: torch.device,
    ) -> Tensor:
        return torch.randn(tuple(shape), generator=generator, dtype=dtype, device=device)
