#!/usr/bin/env python3
"""Robustness metrics for attribution maps, in the style of ``captum.metrics``.

Pairwise primitives compare two batches of attributions and return one value per example
(``(bsz,)``); :func:`attribution_robustness` wraps them in ``sensitivity_max`` form (worst case
over random perturbations); :func:`certified_topk_intersection` reads the certified counterpart
from a certificate. The map conventions (channel reduction, normalisation, k) are explicit
arguments, with one named preset per paper in :data:`PRESETS`.
"""

from captum_certified.metrics._core.attribution_robustness import (
    METRIC_HIGHER_IS_SIMILAR,
    attribution_robustness,
    default_perturb_func,
)
from captum_certified.metrics._core.center_of_mass import center_of_mass, center_of_mass_shift
from captum_certified.metrics._core.certified import (
    certified_cosine_similarity,
    certified_topk_intersection,
)
from captum_certified.metrics._core.certified_fraction import certified_fraction
from captum_certified.metrics._core.cosine import cosine_similarity
from captum_certified.metrics._core.grid_pointing_game import (
    certified_grid_pointing_game,
    make_grid_images,
)
from captum_certified.metrics._core.preprocess import preprocess_attributions
from captum_certified.metrics._core.rank_correlation import kendall_tau, spearman_rho
from captum_certified.metrics._core.topk_intersection import topk_intersection
from captum_certified.metrics.kernels import PRESETS

__all__ = [
    "PRESETS",
    "METRIC_HIGHER_IS_SIMILAR",
    "preprocess_attributions",
    "topk_intersection",
    "kendall_tau",
    "spearman_rho",
    "cosine_similarity",
    "center_of_mass",
    "center_of_mass_shift",
    "certified_topk_intersection",
    "certified_cosine_similarity",
    "certified_fraction",
    "certified_grid_pointing_game",
    "make_grid_images",
    "attribution_robustness",
    "default_perturb_func",
]
