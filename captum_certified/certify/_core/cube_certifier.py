"""The certifier of :class:`CubeTopKCertificate` (uniform cube noise)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from captum_certified._utils.validation import check_feature_count
from captum_certified.certify._core.certifier import BandCertifier
from captum_certified.certify._core.cube_certificate import CubeTopKCertificate
from captum_certified.noise import UniformCubeNoise
from captum_certified.transforms import AttributionTransform


class CubeTopKCertifier(BandCertifier):
    r"""Builds :class:`CubeTopKCertificate`: top-K certificates for uniform cube noise.

    Pass it to :class:`~captum_certified.attr.CertifiedWrapper` (or the Uniform Gradient preset)
    with a [0, 1]-valued transform such as :class:`~captum_certified.transforms.TopKBinarize`.
    The band is Clopper-Pearson for binary maps and the Bernoulli-KL band otherwise
    (:func:`~captum_certified.certify.confidence_band`). The number of perturbed input features
    comes from the engine.

    Examples::

        >>> from captum.attr import Saliency
        >>> from captum_certified.attr import CertifiedWrapper
        >>> from captum_certified.transforms import TopKBinarize
        >>> from captum_certified.noise import UniformCubeNoise
        >>> cw = CertifiedWrapper(Saliency(model), noise=UniformCubeNoise(),
        ...                       transform=TopKBinarize(0.1), certifier=CubeTopKCertifier())
        >>> _, cert = cw.attribute(x, target=0, nt_samples=256, noise_scale=0.5,
        ...                        return_certificate=True)
        >>> cert.topk_overlap(k=0.1, radius=0.05, norm="l1")
        tensor([0.394, 0.486, 0.486, 0.500], dtype=torch.float64)
    """

    #: Noise distributions the rule is proven for.
    supported_noises = (UniformCubeNoise,)
    top_k = True

    def build(
        self,
        lower: Tensor,
        upper: Tensor,
        fields: dict[str, Any],
        *,
        transform: AttributionTransform,
        num_input_features: int | None,
    ) -> CubeTopKCertificate:
        count = check_feature_count(num_input_features, "num_input_features")
        native = fields["noise"].native_norm  # a norm-less query answers for l_inf
        return CubeTopKCertificate(lower, upper, num_input_features=count, norm=native, **fields)
