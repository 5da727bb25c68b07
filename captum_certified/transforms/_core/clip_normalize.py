"""The relaxed Sparsified SmoothGrad map: clip at a high quantile, rescale, sparsify."""

from __future__ import annotations

import torch
from torch import Tensor

from captum_certified._utils.validation import (
    check_count_spec,
    resolve_count,
)
from captum_certified.transforms._core.base import AttributionTransform
from captum_certified.transforms._core.selection import kth_largest, topk_mask


class ClipNormalize(AttributionTransform):
    r"""Levine et al.'s relaxed map (``L0Explainer``), with values in [0, 1].

    ``|a|`` is clipped at its ``clip``-th largest value ``v`` and divided by it, then set to 0
    outside the ``sparsity`` largest entries (ties by lowest index). A row that is zero at its
    ``clip``-th value maps to zeros.

    Args:
        sparsity (int or float): Features kept (``l_0``), count or fraction of ``d``.
                    Default: 0.1 (the paper's CIFAR setting)
        clip (int or float): Rank of the clipping value (``f``), count or fraction of ``d``;
                    must not exceed ``sparsity``. Default: 0.01
        by_magnitude (bool, optional): Use ``|a|``. Default: True
    """

    kind = "unit"

    def __init__(
        self,
        sparsity: int | float = 0.1,
        clip: int | float = 0.01,
        by_magnitude: bool = True,
    ) -> None:
        self.sparsity = check_count_spec(sparsity, "sparsity")
        self.clip = check_count_spec(clip, "clip")
        self.by_magnitude = by_magnitude

    def __call__(self, attributions: Tensor) -> Tensor:
        d = attributions.shape[1]
        keep = resolve_count(self.sparsity, d, "sparsity")
        clip = resolve_count(self.clip, d, "clip")
        if clip > keep:
            raise ValueError(f"`clip` ({clip} features) must not exceed `sparsity` ({keep})")
        scores = attributions.abs() if self.by_magnitude else attributions.clamp(min=0)
        ceiling = kth_largest(scores, clip)
        safe = torch.where(ceiling > 0, ceiling, torch.ones_like(ceiling))
        values = torch.where(ceiling > 0, scores.minimum(ceiling) / safe, torch.zeros_like(scores))
        return values * topk_mask(scores, keep)

    def __repr__(self) -> str:
        return f"ClipNormalize(sparsity={self.sparsity}, clip={self.clip})"
