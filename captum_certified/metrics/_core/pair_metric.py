#!/usr/bin/env python3
"""Pairwise attribution metrics as objects: a kernel, its map conventions and its direction.

Each metric splits into ``prepare`` (one batch of formatted attributions -> a per-example
representation, batch in dim 0: a flat map, a top-k mask, centred ranks, centres of mass) and
``compare`` (two representations -> ``(bsz,)`` float64 values), so that a reference can be
prepared once and compared with many perturbations (:func:`attribution_robustness`). The
kernels are gradient-safe (no ``no_grad`` here); the public functions of
:mod:`captum_certified.metrics` wrap them under ``no_grad``. ``higher_is_similar`` is the
metric's direction: True for similarities, False for distances.
"""

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

from torch import Tensor

from captum_certified._utils.validation import resolve_count
from captum_certified.metrics._core.center_of_mass import _prepare_2d
from captum_certified.metrics._core.preprocess import _preprocess_tuple
from captum_certified.metrics._core.rank_correlation import _centered_ranks, _kendall_tau_flat
from captum_certified.metrics.kernels import (
    centers,
    com_shift,
    cosine_flat,
    flatten_cat,
    topk_overlap_count,
)
from captum_certified.transforms import topk_mask


class PairMetric(ABC):
    """A metric on pairs of attribution maps under fixed map conventions.

    Args:
        name (str): The name of the :mod:`captum_certified.metrics` function.
        reduce_channels (str, optional): Channel reduction (already resolved).
        normalize (str, optional): Normalisation (already resolved).
    """

    #: True when a larger value means more similar maps.
    higher_is_similar = True
    name = ""

    def __init__(self, reduce_channels: str | None, normalize: str | None) -> None:
        self.reduce_channels = reduce_channels
        self.normalize = normalize

    def flat(self, attrs: tuple[Tensor, ...]) -> Tensor:
        """``(bsz, d)``: every attribution preprocessed, flattened and concatenated."""
        return flatten_cat(_preprocess_tuple(attrs, self.reduce_channels, self.normalize))

    def prepare_flat(self, flat: Tensor) -> Any:
        """The representation of a ``(bsz, d)`` preprocessed map (the map itself here)."""
        return flat

    def prepare(self, attrs: tuple[Tensor, ...], is_tuple: bool, name: str) -> Any:
        """The representation of formatted attributions (``name`` for error messages)."""
        return self.prepare_flat(self.flat(attrs))

    @abstractmethod
    def compare(self, rep_a: Any, rep_b: Any) -> Tensor:
        """``(bsz,)`` values of the metric between two representations."""


class TopKIntersection(PairMetric):
    """``|T_k(a) & T_k(b)| / k``; ``k`` is resolved against the first map's width."""

    name = "topk_intersection"

    def __init__(self, reduce_channels: str | None, normalize: str | None, k: int | float) -> None:
        super().__init__(reduce_channels, normalize)
        self.k = k
        self.count: int | None = None

    def prepare_flat(self, flat: Tensor) -> Tensor:
        if self.count is None:
            self.count = resolve_count(self.k, flat.shape[1], "k")
        return topk_mask(flat, self.count)

    def compare(self, rep_a: Tensor, rep_b: Tensor) -> Tensor:
        assert self.count is not None
        return topk_overlap_count(rep_a, rep_b, self.count)


class KendallTau(PairMetric):
    """Kendall's tau-b of the flat maps."""

    name = "kendall_tau"

    def compare(self, rep_a: Tensor, rep_b: Tensor) -> Tensor:
        return _kendall_tau_flat(rep_a, rep_b)


class CosineSimilarity(PairMetric):
    """Cosine similarity of the flat maps."""

    name = "cosine_similarity"

    def compare(self, rep_a: Tensor, rep_b: Tensor) -> Tensor:
        return cosine_flat(rep_a, rep_b)


class SpearmanRho(CosineSimilarity):
    """Spearman's rho: the cosine (Pearson correlation) of the centred average ranks."""

    name = "spearman_rho"

    def prepare_flat(self, flat: Tensor) -> Tensor:
        return _centered_ranks(flat)


class CenterOfMassShift(PairMetric):
    """Distance in pixels between the centres of mass of 2-D maps (a distance)."""

    name = "center_of_mass_shift"
    higher_is_similar = False

    def __init__(
        self, reduce_channels: str | None, normalize: str | None, round_centers: bool = False
    ) -> None:
        super().__init__(reduce_channels, normalize)
        self.round_centers = bool(round_centers)

    def prepare(self, attrs: tuple[Tensor, ...], is_tuple: bool, name: str) -> Tensor:
        s = _prepare_2d(attrs, is_tuple, name, self.reduce_channels, self.normalize)
        return centers(s, self.round_centers)

    def compare(self, rep_a: Tensor, rep_b: Tensor) -> Tensor:
        return com_shift(rep_a, rep_b)


#: name -> metric class, one per pairwise function of :mod:`captum_certified.metrics`.
PAIR_METRICS: Mapping[str, Callable[..., PairMetric]] = MappingProxyType(
    {
        cls.name: cls
        for cls in (TopKIntersection, KendallTau, SpearmanRho, CosineSimilarity, CenterOfMassShift)
    }
)

#: Named metrics (read-only): name -> True when a higher value means more similar maps
#: (similarities), False for distances.
METRIC_HIGHER_IS_SIMILAR: Mapping[str, bool] = MappingProxyType(
    {name: cls.higher_is_similar for name, cls in PAIR_METRICS.items()}  # type: ignore[attr-defined]
)


def make_metric(
    name: str,
    reduce_channels: str | None,
    normalize: str | None,
    k: int | float | None = None,
    options: Mapping[str, Any] | None = None,
) -> PairMetric:
    """The :class:`PairMetric` named ``name``; ``k`` only for top-k, ``options`` only
    ``round_centers`` for the centre-of-mass shift."""
    if name not in PAIR_METRICS:
        raise ValueError(f"metric must be one of {sorted(PAIR_METRICS)}, got {name!r}")
    options = dict(options or {})
    allowed = {"round_centers"} if name == "center_of_mass_shift" else set()
    unknown = set(options) - allowed
    if unknown:
        raise ValueError(
            f"metric_kwargs has keys {sorted(unknown)} that metric={name!r} does not take"
            + (f" (allowed: {sorted(allowed)})" if allowed else "")
        )
    if name == "topk_intersection":
        if k is None:
            raise ValueError("metric='topk_intersection' needs k (an int or a fraction)")
        return TopKIntersection(reduce_channels, normalize, k)
    if k is not None:
        raise ValueError(f"k is only used by metric='topk_intersection', not {name!r}")
    return PAIR_METRICS[name](reduce_channels, normalize, **options)
