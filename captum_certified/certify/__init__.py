"""Certificates and the statistics behind them.

Confidence bands (Hoeffding, Bernoulli-KL, simultaneous Clopper-Pearson), the bounds a user
evaluates by hand (Gaussian and Laplace shifts, Rényi-DP epsilons, uniform-noise volume
terms), planning helpers, streamed sample statistics, and the certifiers and certificate
objects returned by ``attribute(..., return_certificate=True)``.
"""

from captum_certified._utils.norms import convert_radius
from captum_certified._utils.statistics import StreamingMoments
from captum_certified.certify._core.bands import clopper_pearson_band, hoeffding_band, kl_band
from captum_certified.certify._core.certificate import Certificate
from captum_certified.certify._core.certifier import (
    BandCertifier,
    Certifier,
    GaussianTopKCertifier,
    confidence_band,
)
from captum_certified.certify._core.cosine import (
    CosineCertificate,
    CosineCertifier,
    CubeCosineCertificate,
    CubeCosineCertifier,
    ball_difference_bound,
    cube_difference_bound,
    mcdiarmid_error,
)
from captum_certified.certify._core.cube_topk import (
    CubeTopKCertificate,
    CubeTopKCertifier,
    cube_tv_bound,
)
from captum_certified.certify._core.dataset import certify_dataset
from captum_certified.certify._core.feature import (
    FeatureCertificate,
    FeatureCertifier,
    feature_radii,
)
from captum_certified.certify._core.gaussian_bounds import (
    gaussian_lower_bound,
    gaussian_upper_bound,
)
from captum_certified.certify._core.gaussian_topk import GaussianTopKCertificate
from captum_certified.certify._core.laplace_bounds import (
    laplace_lower_bound,
    laplace_pair_radius,
    laplace_upper_bound,
)
from captum_certified.certify._core.planning import min_samples_for_radius, radius_upper_bound
from captum_certified.certify._core.rdp import rdp_epsilon, rdp_orders
from captum_certified.certify._core.rdp_certificate import RDPTopKCertificate
from captum_certified.certify._core.rdp_certifier import RDPTopKCertifier

__all__ = [
    "BandCertifier",
    "Certificate",
    "Certifier",
    "CosineCertificate",
    "CosineCertifier",
    "CubeCosineCertificate",
    "CubeCosineCertifier",
    "CubeTopKCertificate",
    "CubeTopKCertifier",
    "FeatureCertificate",
    "FeatureCertifier",
    "GaussianTopKCertificate",
    "GaussianTopKCertifier",
    "RDPTopKCertificate",
    "RDPTopKCertifier",
    "StreamingMoments",
    "ball_difference_bound",
    "clopper_pearson_band",
    "certify_dataset",
    "confidence_band",
    "convert_radius",
    "cube_difference_bound",
    "cube_tv_bound",
    "feature_radii",
    "gaussian_lower_bound",
    "gaussian_upper_bound",
    "hoeffding_band",
    "kl_band",
    "laplace_lower_bound",
    "laplace_pair_radius",
    "laplace_upper_bound",
    "mcdiarmid_error",
    "min_samples_for_radius",
    "radius_upper_bound",
    "rdp_epsilon",
    "rdp_orders",
]
