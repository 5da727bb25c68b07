"""The certifier of :class:`GaussianTopKCertificate` (Gaussian noise, l2)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from captum_certified.certify._core.certifier import BandCertifier
from captum_certified.certify._core.gaussian_certificate import GaussianTopKCertificate
from captum_certified.noise import GaussianNoise
from captum_certified.transforms import AttributionTransform


class GaussianTopKCertifier(BandCertifier):
    r"""Levine et al.'s top-K certificate for Gaussian noise (l2), with a simultaneous band.

    The band is Clopper-Pearson for binary maps (default) or Hoeffding (the paper's choice,
    valid for any [0, 1] map); it is combined with the Phi-bounds through the sorted
    pigeonhole rule (:class:`GaussianTopKCertificate`). The Phi rule is a property of the
    Gaussian law: any other noise is refused (:meth:`Certifier.check_noise`).
    """

    supported_noises = (GaussianNoise,)
    top_k = True

    def build(
        self,
        lower: Tensor,
        upper: Tensor,
        fields: dict[str, Any],
        *,
        transform: AttributionTransform,
        num_input_features: int | None,
    ) -> GaussianTopKCertificate:
        return GaussianTopKCertificate(
            lower, upper, norm="l2", num_input_features=num_input_features, **fields
        )
