"""Attribution methods: the smoothing engine and its presets (drop-in for ``captum.attr``)."""

from captum_certified.attr._core.certification_conditions import (
    shares_randomness_across_rows,
    uses_batch_statistics,
)
from captum_certified.attr._core.certified_wrapper import NOISY_ARGMAX, CertifiedWrapper
from captum_certified.attr._core.default_certifiers import DEFAULT_CERTIFIERS, default_certifier
from captum_certified.attr._core.renyi_robust_smooth import RenyiRobustSmooth
from captum_certified.attr._core.sparse_smoothgrad import SparseSmoothGrad
from captum_certified.attr._core.uniform_smoothed import UniformSmoothedAttribution

__all__ = [
    "DEFAULT_CERTIFIERS",
    "NOISY_ARGMAX",
    "CertifiedWrapper",
    "RenyiRobustSmooth",
    "SparseSmoothGrad",
    "UniformSmoothedAttribution",
    "default_certifier",
    "shares_randomness_across_rows",
    "uses_batch_statistics",
]
