"""The certifier of :class:`FeatureCertificate` (Gaussian noise)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from captum_certified._utils.validation import check_probability
from captum_certified.certify._core.certifier import BandCertifier
from captum_certified.certify._core.feature_certificate import FeatureCertificate
from captum_certified.noise import GaussianNoise
from captum_certified.transforms import AttributionTransform


class FeatureCertifier(BandCertifier):
    r"""Per-feature certificates (Anani et al., ICML 2025) for Gaussian noise (l2).

    Each feature of the expected [0, 1] map is certified important (``p_j > threshold``),
    unimportant (``p_j < threshold``) or left uncertified, each with its own l2 radius
    (:func:`feature_radii`). With :class:`~captum_certified.transforms.TopKBinarize` as the
    per-sample map, ``p_j`` is the probability that feature ``j`` is in the top K: the
    paper's setting. The Phi rule is a property of the Gaussian law: any other noise is
    refused.

    Args:
        threshold (float, optional): ``tau`` in (0, 1). Default: 0.5

    Examples::

        >>> from captum.attr import Saliency
        >>> from captum_certified.attr import CertifiedWrapper
        >>> from captum_certified.transforms import TopKBinarize
        >>> cw = CertifiedWrapper(Saliency(model), transform=TopKBinarize(0.25),
        ...                       certifier=FeatureCertifier())
        >>> attr, cert = cw.attribute(x, target=y, nt_samples=100, stdevs=0.25,
        ...                           return_certificate=True, alpha=0.001)
        >>> m = cert.certified_map(radius=0.1)  # (bsz, d) in {+1, -1, 0}
        >>> (m == 1).sum(1), (m == -1).sum(1)  # certified in / out of the top 25 %
        (tensor([24, 28, 28, 36]), tensor([318, 337, 322, 325]))
    """

    supported_noises = (GaussianNoise,)

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = check_probability(threshold, "threshold")

    def build(
        self,
        lower: Tensor,
        upper: Tensor,
        fields: dict[str, Any],
        *,
        transform: AttributionTransform,
        num_input_features: int | None,
    ) -> FeatureCertificate:
        return FeatureCertificate(
            lower,
            upper,
            threshold=self.threshold,
            norm="l2",
            num_input_features=num_input_features,
            **fields,
        )

    def __repr__(self) -> str:
        return f"FeatureCertifier(threshold={self.threshold})"
