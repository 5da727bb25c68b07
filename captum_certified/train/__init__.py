"""Robust-attribution training: losses (``loss_fn(model, x, y) -> scalar``), their building
blocks and a small trainer.

Losses: :class:`IGNormLoss`, :class:`IGSumNormLoss` (Chen et al. 2019), :class:`ARTLoss`
(Singh et al. 2020), :class:`SSRLoss` (Wang et al. 2020), :class:`SarkarLoss` (Sarkar et al.
2021), and :class:`AttributionalLoss` to combine any regularizers
``(model, x, x_adv, y) -> scalar``.
"""

from captum_certified.train._core.art import ARTAttack, ARTRegularizer
from captum_certified.train._core.evaluation import accuracy, attribution_robustness_eval
from captum_certified.train._core.ig_norm import IGNormAttack, IGNormRegularizer
from captum_certified.train._core.losses import (
    ARTLoss,
    AttributionalLoss,
    IGNormLoss,
    IGSumNormLoss,
    SarkarLoss,
    SSRLoss,
)
from captum_certified.train._core.map_distance import MapDistanceRegularizer
from captum_certified.train._core.sarkar import CACRRegularizer, WACRRegularizer
from captum_certified.train._core.ssr import SSRRegularizer
from captum_certified.train._core.trainer import AttributionalTrainer, default_eval

__all__ = [
    "ARTAttack",
    "ARTLoss",
    "ARTRegularizer",
    "AttributionalLoss",
    "CACRRegularizer",
    "IGNormAttack",
    "IGNormLoss",
    "IGNormRegularizer",
    "IGSumNormLoss",
    "MapDistanceRegularizer",
    "SSRLoss",
    "SSRRegularizer",
    "SarkarLoss",
    "WACRRegularizer",
    "AttributionalTrainer",
    "accuracy",
    "attribution_robustness_eval",
    "default_eval",
]
