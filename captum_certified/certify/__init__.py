"""Certificates and the statistics behind them.

Confidence bands (Hoeffding, Bernoulli-KL, simultaneous Clopper-Pearson), the bounds a user
evaluates by hand (Gaussian and Laplace shifts, Rényi-DP epsilons, uniform-noise volume
terms), planning helpers, streamed sample statistics, and the certifiers and certificate
objects returned by ``attribute(..., return_certificate=True)``.
"""

import importlib
from typing import Any

from captum_certified._utils.norms import convert_radius
from captum_certified._utils.validation import warn_deprecated
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
from captum_certified.certify._core.statistics import StreamingMoments

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

#: Names removed from the public surface in this release: ``name -> (module, attribute, use)``.
#: They stay importable from here for one release, with a DeprecationWarning.
_DEPRECATED = {
    "NORM_TOLERANCE": (
        "captum_certified.certify._core.cosine",
        "NORM_TOLERANCE",
        "CosineCertifier",
    ),
    "ball_nonoverlap": (
        "captum_certified.certify._core.cosine",
        "ball_nonoverlap",
        "ball_difference_bound(t, r, d) / 2",
    ),
    "bernoulli_kl": ("captum_certified.certify._core.bands", "bernoulli_kl", "kl_band"),
    "cube_pair_radius": (
        "captum_certified.certify._core.cube_topk",
        "cube_pair_radius",
        "CubeTopKCertificate.rank_radii",
    ),
    "gaussian_rdp": (
        "captum_certified.noise._core.renyi",
        "gaussian_rdp",
        "GaussianNoise().rdp_epsilon",
    ),
    "gaussian_rdp_epsilon": (
        "captum_certified.noise._core.renyi",
        "gaussian_rdp_epsilon",
        "GaussianNoise().rdp_epsilon or rdp_epsilon(GaussianNoise(), ...)",
    ),
    "hoeffding_error": (
        "captum_certified.certify._core.bands",
        "hoeffding_error",
        "hoeffding_band",
    ),
    "holder_bounds": (
        "captum_certified.certify._core.rdp_bounds",
        "holder_bounds",
        "RDPTopKCertificate(method='holder')",
    ),
    "joint_rdp_bound": (None, "joint_rdp_bound", "nothing (it was a test oracle, now in tests/)"),
    "laplace_rdp": (
        "captum_certified.noise._core.renyi",
        "laplace_rdp",
        "LaplaceNoise().rdp_epsilon",
    ),
    "laplace_rdp_epsilon": (
        "captum_certified.noise._core.renyi",
        "laplace_rdp_epsilon",
        "LaplaceNoise().rdp_epsilon or rdp_epsilon(LaplaceNoise(), ...)",
    ),
    "paired_order_statistics": (
        "captum_certified.certify._core.topk_rule",
        "paired_order_statistics",
        "the certificates' rank_radii / certified_count",
    ),
    "pairwise_rdp_bound": (
        "captum_certified.certify._core.rdp_bounds",
        "pairwise_rdp_bound",
        "RDPTopKCertificate(method='pairwise')",
    ),
    "parse_norm": ("captum_certified._utils.norms", "parse_norm", "a norm name such as 'L2'"),
    "renyi_divergence": (None, "renyi_divergence", "nothing (it was a test oracle, now in tests/)"),
    "score_mass": (
        "captum_certified.certify._core.rdp_certifier",
        "score_mass",
        "transform.total_mass(num_features)",
    ),
}


def __getattr__(name: str) -> Any:
    if name not in _DEPRECATED:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attribute, use = _DEPRECATED[name]
    if module is None:
        raise AttributeError(
            f"captum_certified.certify.{name} was removed: it was a test oracle (see "
            f"tests/_oracles.py); use {use}"
        )
    warn_deprecated(
        f"captum_certified.certify.{name} is no longer public and will be removed in the next "
        f"release; use {use}"
    )
    return getattr(importlib.import_module(module), attribute)
