"""Attribution methods: the smoothing engine and its presets (drop-in for ``captum.attr``)."""

from captum_certified.attr._core.certified_wrapper import NOISY_ARGMAX, CertifiedWrapper
from captum_certified.attr._core.sparse_smoothgrad import SparseSmoothGrad

__all__ = ["NOISY_ARGMAX", "CertifiedWrapper", "SparseSmoothGrad"]
