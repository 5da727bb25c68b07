"""Attribution methods: the smoothing engine and its presets (drop-in for ``captum.attr``)."""

from captum_certified.attr._core.certified_wrapper import NOISY_ARGMAX, CertifiedWrapper
from captum_certified.attr._core.renyi_robust_smooth import RenyiRobustSmooth
from captum_certified.attr._core.sparse_smoothgrad import SparseSmoothGrad
from captum_certified.attr._core.uniform_smoothed import UniformSmoothedAttribution

__all__ = [
    "NOISY_ARGMAX",
    "CertifiedWrapper",
    "RenyiRobustSmooth",
    "SparseSmoothGrad",
    "UniformSmoothedAttribution",
]
