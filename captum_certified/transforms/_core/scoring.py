"""Scoring-vector families of Rényi-Robust-Smooth (Liu et al.), built on RankRescale."""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch import Tensor

from captum_certified._utils.validation import (
    check_count_spec,
    resolve_count,
)
from captum_certified.transforms._core.rank_rescale import RankRescale
from captum_certified.transforms._core.selection import topk_mask

SCORING_FAMILIES = ("topk", "linear", "geometric")


def scoring_vector(
    family: str,
    num_features: int,
    sparsity: int | float = 0.1,
    gamma: float = 0.9,
) -> Tensor:
    r"""A non-negative, non-increasing scoring vector ``v`` with ``v_1 = 1`` (float64).

    Families, for ranks ``r = 1..k'`` with ``k' = sparsity`` (a count or a fraction of ``d``;
    ranks beyond ``k'`` score 0):

    - ``"topk"``: ``v_r = 1`` (Levine et al.'s binary top-k' map);
    - ``"linear"``: ``v_r = (k' - r + 1) / k'``;
    - ``"geometric"``: ``v_r = gamma^(r - 1)`` (exponential decay).

    Args:
        family (str): One of ``"topk"``, ``"linear"``, ``"geometric"``.
        num_features (int): ``d``.
        sparsity (int or float, optional): ``k'``. Default: 0.1
        gamma (float, optional): Decay of the geometric family, in (0, 1]. Default: 0.9

    Returns:
        Tensor: ``v`` of length ``k'``.

    Examples::

        >>> scoring_vector("linear", 10, sparsity=4)
        tensor([1.0000, 0.7500, 0.5000, 0.2500], dtype=torch.float64)
    """
    return _family_vector(family, num_features, sparsity, gamma)


def _family_vector(family: str, num_features: int, sparsity: int | float, gamma: float) -> Tensor:
    if family not in SCORING_FAMILIES:
        raise ValueError(f"`scoring` must be one of {SCORING_FAMILIES} or a tensor, got {family!r}")
    k = resolve_count(sparsity, num_features, "sparsity")
    ranks = torch.arange(k, dtype=torch.float64)
    if family == "topk":
        return torch.ones(k, dtype=torch.float64)
    if family == "linear":
        return (k - ranks) / k
    gamma = _check_gamma(gamma)
    return torch.exp(ranks * math.log(gamma))


def _check_gamma(gamma: float) -> float:
    if isinstance(gamma, bool) or not isinstance(gamma, Real):
        raise TypeError(f"`gamma` must be a float in (0, 1], got {type(gamma).__name__}")
    gamma = float(gamma)
    if not 0.0 < gamma <= 1.0:
        raise ValueError(f"`gamma` must be in (0, 1], got {gamma}")
    return gamma


class ScoringRescale(RankRescale):
    r"""Rank re-scaling by a named scoring-vector family or an explicit vector.

    Each sample's feature of rank ``r`` (by ``|a|``, ties by lowest index) gets ``v_r / v_1``,
    so every sample's map lies in [0, 1] and sums to ``S = ||v||_1 / v_1``; ``q / S`` of the
    smoothed map ``q`` is the distribution ``P`` of Liu et al.'s certificate. ``"topk"`` gives a
    binary map (kind ``"binary"``: Clopper-Pearson bands apply); :class:`TopKBinarize` is that
    family under its own name.

    Args:
        scoring (str or Tensor, optional): ``"topk"``, ``"linear"``, ``"geometric"`` (see
                    :func:`scoring_vector`) or a 1-D non-negative, non-increasing tensor with a
                    positive first entry. Default: "topk"
        sparsity (int or float, optional): Support ``k'`` of the family, the number of
                    features scored per sample (count or fraction of ``d``); ignored for a
                    tensor. Default: 0.1
        gamma (float, optional): Decay of ``"geometric"``. Default: 0.9
        by_magnitude (bool, optional): Rank by ``|a|``. Default: True

    Examples::

        >>> ScoringRescale("linear", sparsity=2)(torch.tensor([[0.1, -3.0, 2.0, 0.0]]))
        tensor([[0.0000, 1.0000, 0.5000, 0.0000]])
    """

    def __init__(
        self,
        scoring: str | Tensor = "topk",
        sparsity: int | float | None = 0.1,
        gamma: float = 0.9,
        by_magnitude: bool = True,
    ) -> None:
        if isinstance(scoring, Tensor):
            super().__init__(scoring.detach(), by_magnitude=by_magnitude)
            self.scoring, self.sparsity, self.gamma = "explicit", None, None
            return
        if not isinstance(scoring, str):
            raise TypeError(
                f"`scoring` must be a family name or a tensor, got {type(scoring).__name__}"
            )
        if scoring not in SCORING_FAMILIES:
            raise ValueError(
                f"`scoring` must be one of {SCORING_FAMILIES} or a tensor, got {scoring!r}"
            )
        sparsity = check_count_spec(sparsity, "sparsity")
        if scoring == "geometric":
            gamma = _check_gamma(gamma)

        def family(d: int) -> Tensor:
            return _family_vector(scoring, d, sparsity, gamma)

        super().__init__(family, by_magnitude=by_magnitude)
        self.scoring, self.sparsity, self.gamma = scoring, sparsity, gamma
        self.kind = "binary" if scoring == "topk" else "unit"
        # measured at least as tight as KL on linear maps only (benchmarks/bench_sequential.py)
        self.default_bound = "betting" if scoring == "linear" else None

    def __call__(self, attributions: Tensor) -> Tensor:
        if self.scoring != "topk":
            return super().__call__(attributions)
        # the binary family is a mask: the same selection as the ranked scatter (ties by
        # lowest index), without sorting the whole row
        scores = attributions.abs() if self.by_magnitude else attributions
        return topk_mask(scores, self._count(scores.shape[1])).to(attributions.dtype)

    def total_mass(self, num_features: int) -> float | None:
        if self.scoring == "topk":
            return float(self._count(num_features))
        return super().total_mass(num_features)

    def _count(self, num_features: int) -> int:
        """``sparsity`` as a count of the ``num_features`` features (a named family only)."""
        assert self.sparsity is not None  # only an explicit vector has no sparsity
        return resolve_count(self.sparsity, num_features, "sparsity")

    def __repr__(self) -> str:
        if self.scoring == "explicit":
            length = self._scores.numel() if isinstance(self._scores, Tensor) else "?"
            return f"ScoringRescale(scores of length {length})"
        extra = f", gamma={self.gamma}" if self.scoring == "geometric" else ""
        return f"ScoringRescale({self.scoring!r}, sparsity={self.sparsity}{extra})"


class LinearRank(ScoringRescale):
    r"""Rank-linear map: rank ``r <= sparsity`` scores ``(sparsity - r + 1) / sparsity``.

    Levine et al.'s ``LinearExplainer``; the same map as ``ScoringRescale("linear", sparsity)``.

    Args:
        sparsity (int or float): Number (or fraction of ``d``) of features with non-zero
                    score.
        by_magnitude (bool, optional): Rank by ``|a|``. Default: True
    """

    def __init__(
        self,
        sparsity: int | float,
        by_magnitude: bool = True,
    ) -> None:
        super().__init__("linear", sparsity=sparsity, by_magnitude=by_magnitude)

    def __repr__(self) -> str:
        return f"LinearRank(sparsity={self.sparsity})"
