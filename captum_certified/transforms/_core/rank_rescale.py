"""Rank re-scaling: the feature ranked r-th in a sample gets a fixed score."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from captum_certified.transforms._core.base import AttributionTransform
from captum_certified.transforms._core.selection import topk_indices


class RankRescale(AttributionTransform):
    r"""Give the feature of rank ``r`` (by magnitude, ties by lowest index) the score ``v_r / v_1``.

    ``v`` is a non-negative, non-increasing scoring vector (Rényi-Robust-Smooth's upsilon);
    entries beyond its length score 0. Dividing by ``v_1`` puts values in [0, 1]; a 0/1 vector
    gives a binary map (Levine's top-k binarization).

    Args:
        scores (Tensor or callable): 1-D scoring vector, or a function ``d -> vector`` for
                    vectors that depend on the number of features.
        by_magnitude (bool, optional): Rank by ``|a|``. Default: True
    """

    def __init__(self, scores: Tensor | Callable[[int], Tensor], by_magnitude: bool = True) -> None:
        if isinstance(scores, Tensor):
            self._check(scores)
        elif not callable(scores):
            raise TypeError(f"`scores` must be a tensor or a callable, got {type(scores).__name__}")
        self._scores = scores
        self.by_magnitude = by_magnitude
        self.kind = (
            "binary"
            if isinstance(scores, Tensor) and bool(((scores == 0) | (scores == scores[0])).all())
            else "unit"
        )

    @staticmethod
    def _check(scores: Tensor) -> None:
        if scores.dim() != 1 or scores.numel() == 0:
            raise ValueError("`scores` must be a non-empty 1-D tensor")
        if not torch.isfinite(scores).all() or (scores < 0).any():
            raise ValueError("`scores` must be finite and non-negative")
        if (scores[1:] > scores[:-1]).any():
            raise ValueError("`scores` must be non-increasing")
        if scores[0] <= 0:
            raise ValueError("`scores` must have a positive first entry")

    def scores(self, num_features: int) -> Tensor:
        """The scoring vector for ``num_features`` features, normalized to ``v_1 = 1``."""
        v = self._scores if isinstance(self._scores, Tensor) else self._scores(num_features)
        self._check(v)
        if v.numel() > num_features:
            raise ValueError(f"`scores` has {v.numel()} entries for {num_features} features")
        return v / v[0]

    def total_mass(self, num_features: int) -> float | None:
        """``||v||_1 / v_1``: every sample's map sums to it."""
        return float(self.scores(num_features).to(torch.float64).sum())

    def __call__(self, attributions: Tensor) -> Tensor:
        n, d = attributions.shape
        v = self.scores(d).to(device=attributions.device, dtype=attributions.dtype)
        keys = attributions.abs() if self.by_magnitude else attributions
        order = topk_indices(keys, v.numel())  # among ties the lower index ranks better
        out = torch.zeros_like(attributions)
        return out.scatter_(1, order, v.expand(n, -1))
