"""Certificates and the statistics behind them.

Confidence bands (Hoeffding, Bernoulli-KL, simultaneous Clopper-Pearson, betting) and the
time-uniform betting confidence sequence behind sequential certification, the bounds a user
evaluates by hand (Gaussian and Laplace shifts, Rényi-DP epsilons, uniform-noise volume
terms), planning helpers, streamed sample statistics, and the certifiers and certificate
objects returned by ``attribute(..., return_certificate=True)``.
"""

from captum_certified._utils.norms import convert_radius
from captum_certified._utils.statistics import StreamingMoments
from captum_certified.certify._core.bands import clopper_pearson_band, hoeffding_band, kl_band
from captum_certified.certify._core.betting import betting_band
from captum_certified.certify._core.certificate import Certificate
from captum_certified.certify._core.certifier import BandCertifier, Certifier, confidence_band
from captum_certified.certify._core.cosine_bounds import (
    ball_difference_bound,
    cube_difference_bound,
    mcdiarmid_error,
)
from captum_certified.certify._core.cosine_certificate import (
    CosineCertificate,
    CubeCosineCertificate,
)
from captum_certified.certify._core.cosine_certifier import CosineCertifier, CubeCosineCertifier
from captum_certified.certify._core.cube_bounds import cube_tv_bound
from captum_certified.certify._core.cube_certificate import CubeTopKCertificate
from captum_certified.certify._core.cube_certifier import CubeTopKCertifier
from captum_certified.certify._core.dataset import certify_dataset
from captum_certified.certify._core.feature_bounds import feature_radii
from captum_certified.certify._core.feature_certificate import FeatureCertificate
from captum_certified.certify._core.feature_certifier import FeatureCertifier
from captum_certified.certify._core.gaussian_bounds import (
    gaussian_lower_bound,
    gaussian_upper_bound,
)
from captum_certified.certify._core.gaussian_certificate import GaussianTopKCertificate
from captum_certified.certify._core.gaussian_certifier import GaussianTopKCertifier
from captum_certified.certify._core.laplace_bounds import (
    laplace_lower_bound,
    laplace_pair_radius,
    laplace_upper_bound,
)
from captum_certified.certify._core.planning import min_samples_for_radius, radius_upper_bound
from captum_certified.certify._core.rdp import rdp_epsilon, rdp_orders
from captum_certified.certify._core.rdp_certificate import RDPTopKCertificate
from captum_certified.certify._core.rdp_certifier import RDPTopKCertifier
from captum_certified.certify._core.target import CertificationTarget, StopDecision
from captum_certified.certify._core.topk_certificate import TopKCertificate

__all__ = [
    "BandCertifier",
    "Certificate",
    "CertificationTarget",
    "StopDecision",
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
    "TopKCertificate",
    "ball_difference_bound",
    "betting_band",
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
