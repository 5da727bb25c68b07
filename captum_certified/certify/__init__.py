"""Certificates and the statistics behind them.

Confidence bands (Hoeffding, simultaneous Clopper-Pearson), Gaussian Phi-bounds, the sorted
pigeonhole top-K rule, streamed sample statistics and the certificate objects returned by
``attribute(..., return_certificate=True)``.
"""

from captum_certified.certify._core.bands import (
    bernoulli_kl,
    clopper_pearson_band,
    hoeffding_band,
    hoeffding_error,
    kl_band,
)
from captum_certified.certify._core.certificate import Certificate
from captum_certified.certify._core.certifier import (
    Certifier,
    GaussianTopKCertifier,
    confidence_band,
)
from captum_certified.certify._core.cosine import (
    NORM_TOLERANCE,
    CosineCertificate,
    CosineCertifier,
    CubeCosineCertificate,
    CubeCosineCertifier,
    ball_difference_bound,
    ball_nonoverlap,
    cube_difference_bound,
    mcdiarmid_error,
)
from captum_certified.certify._core.cube_topk import (
    CubeTopKCertificate,
    CubeTopKCertifier,
    cube_pair_radius,
    cube_tv_bound,
)
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
from captum_certified.certify._core.rdp import (
    convert_radius,
    gaussian_rdp,
    gaussian_rdp_epsilon,
    laplace_rdp,
    laplace_rdp_epsilon,
    parse_norm,
    rdp_epsilon,
    rdp_orders,
)
from captum_certified.certify._core.rdp_topk import (
    RDPTopKCertificate,
    RDPTopKCertifier,
    holder_bounds,
    joint_rdp_bound,
    pairwise_rdp_bound,
    renyi_divergence,
    score_mass,
)
from captum_certified.certify._core.statistics import StreamingMoments
from captum_certified.certify._core.topk_rule import paired_order_statistics

__all__ = [
    "NORM_TOLERANCE",
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
    "bernoulli_kl",
    "ball_nonoverlap",
    "clopper_pearson_band",
    "confidence_band",
    "convert_radius",
    "cube_difference_bound",
    "cube_pair_radius",
    "cube_tv_bound",
    "feature_radii",
    "gaussian_lower_bound",
    "gaussian_rdp",
    "gaussian_rdp_epsilon",
    "gaussian_upper_bound",
    "hoeffding_band",
    "hoeffding_error",
    "holder_bounds",
    "joint_rdp_bound",
    "kl_band",
    "laplace_lower_bound",
    "laplace_pair_radius",
    "laplace_rdp",
    "laplace_rdp_epsilon",
    "laplace_upper_bound",
    "mcdiarmid_error",
    "min_samples_for_radius",
    "paired_order_statistics",
    "pairwise_rdp_bound",
    "parse_norm",
    "radius_upper_bound",
    "rdp_epsilon",
    "rdp_orders",
    "renyi_divergence",
    "score_mass",
]
