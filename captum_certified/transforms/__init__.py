"""Per-sample transforms applied to each noisy sample's attribution before averaging."""

from captum_certified.transforms._core.base import AttributionTransform, Identity
from captum_certified.transforms._core.clip_normalize import ClipNormalize
from captum_certified.transforms._core.compose import Compose
from captum_certified.transforms._core.norm_bound import (
    L2BoundedTransform,
    L2NormClip,
    UnitL2Normalize,
)
from captum_certified.transforms._core.rank_rescale import RankRescale
from captum_certified.transforms._core.scoring import (
    SCORING_FAMILIES,
    LinearRank,
    ScoringRescale,
    scoring_vector,
)
from captum_certified.transforms._core.selection import topk_mask
from captum_certified.transforms._core.token_reduce import TOKEN_REDUCTIONS, TokenReduce
from captum_certified.transforms._core.topk_binarize import TopKBinarize
from captum_certified.transforms._core.upsample import Upsample

__all__ = [
    "AttributionTransform",
    "ClipNormalize",
    "Compose",
    "Identity",
    "L2BoundedTransform",
    "L2NormClip",
    "LinearRank",
    "RankRescale",
    "SCORING_FAMILIES",
    "ScoringRescale",
    "TOKEN_REDUCTIONS",
    "TokenReduce",
    "TopKBinarize",
    "UnitL2Normalize",
    "Upsample",
    "scoring_vector",
    "topk_mask",
]
