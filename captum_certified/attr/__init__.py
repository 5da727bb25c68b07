"""Attribution methods: the smoothing engine, its presets, and a drop-in for ``captum.attr``.

``from captum_certified.attr import NoiseTunnel, Saliency, ...`` works as the same import
from ``captum.attr`` does: every public name of ``captum.attr`` is re-exported unchanged,
except :class:`NoiseTunnel`, which is this package's engine behind Captum's interface.
"""

from typing import TYPE_CHECKING

import captum.attr as _captum_attr

if TYPE_CHECKING:  # let static tools see the re-exported names
    from captum.attr import *  # noqa: F403

from captum_certified.attr._core.certification_conditions import (
    shares_randomness_across_rows,
    uses_batch_statistics,
)
from captum_certified.attr._core.certified_wrapper import CertifiedWrapper
from captum_certified.attr._core.default_certifiers import DEFAULT_CERTIFIERS, default_certifier
from captum_certified.attr._core.differentiable_explainer import (
    EXPLAINERS,
    DifferentiableExplainer,
    ExplainerRun,
    differentiable_attribution,
)
from captum_certified.attr._core.fast_forward import FastForward
from captum_certified.attr._core.method_call import NOISY_ARGMAX
from captum_certified.attr._core.noise_tunnel import NoiseTunnel
from captum_certified.attr._core.renyi_robust_smooth import RenyiRobustSmooth
from captum_certified.attr._core.sparse_smoothgrad import SparseSmoothGrad
from captum_certified.attr._core.uniform_smoothed import UniformSmoothedAttribution

# Captum's public names, read from the installed captum so every supported version is
# mirrored exactly (its NoiseTunnel is replaced by ours).
_CAPTUM_NAMES = [name for name in _captum_attr.__all__ if name != "NoiseTunnel"]
globals().update({name: getattr(_captum_attr, name) for name in _CAPTUM_NAMES})

__all__ = [
    "DEFAULT_CERTIFIERS",
    "EXPLAINERS",
    "NOISY_ARGMAX",
    "CertifiedWrapper",
    "DifferentiableExplainer",
    "ExplainerRun",
    "FastForward",
    "NoiseTunnel",
    "RenyiRobustSmooth",
    "SparseSmoothGrad",
    "UniformSmoothedAttribution",
    "default_certifier",
    "differentiable_attribution",
    "shares_randomness_across_rows",
    "uses_batch_statistics",
    *_CAPTUM_NAMES,
]
