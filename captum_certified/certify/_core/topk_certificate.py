"""The interface every top-K certificate answers, and the query checks they share."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor

from captum_certified._utils.norms import parse_norm
from captum_certified._utils.validation import check_radius
from captum_certified.certify._core.certificate import Certificate, needed_rank
from captum_certified.certify._core.topk_rule import kept_curve, radius_below


class TopKCertificate(Certificate, ABC):
    r"""Abstract certificate of the top-K overlap of a smoothed [0, 1]-valued map.

    **Guarantee** (each subclass states it for its noise). With probability at least
    ``1 - alpha`` over the Monte-Carlo samples, simultaneously for every query,
    ``|TopK(q(x)) ∩ TopK(q(x + delta))| >= topk_overlap(k, radius, norm) * K`` for all
    ``||delta||_norm <= radius``, where ``q`` is the expected smoothed map and ``K`` the
    top-K size (a count in ``1..d`` or a fraction of the ``d`` map features).

    Every query takes the same arguments: ``k`` (count or fraction), a radius (scalar or one
    per example, ``>= 0``) or a 1-D grid of radii, and ``norm`` (None: the noise's native norm,
    :attr:`~captum_certified.certify.Certificate.norm`). Subclasses may add keywords after
    ``norm`` (e.g. the bound ``method`` of :class:`~captum_certified.certify.RDPTopKCertificate`)
    and refuse a norm they cannot answer for with a ``ValueError``.

    Implemented by :class:`~captum_certified.certify.GaussianTopKCertificate`,
    :class:`~captum_certified.certify.CubeTopKCertificate` and
    :class:`~captum_certified.certify.RDPTopKCertificate`; the certified metrics of
    :mod:`captum_certified.metrics` read any subclass.
    """

    @abstractmethod
    def rank_radii(self, k: int | float, norm: str | float | None = None) -> Tensor:
        r"""Per-rank certified radii ``R_1 >= ... >= R_K``, shape ``(bsz, K)`` (float64).

        Rank ``i`` of the top-K is certified to stay for every radius below ``R_i``; ``+inf``
        marks ranks no perturbation can remove (``2K > d``), ``-inf`` ranks not certified even
        at radius 0.
        """

    @abstractmethod
    def certified_count(
        self, k: int | float, radius: float | Tensor, norm: str | float | None = None
    ) -> Tensor:
        """Certified number ``m`` of top-K features kept within ``radius``, ``(bsz,)`` int64."""

    @abstractmethod
    def topk_overlap(
        self, k: int | float, radius: float | Tensor, norm: str | float | None = None
    ) -> Tensor:
        """Certified fraction ``m / K`` of the top-K kept within ``radius``, ``(bsz,)``
        float64 in [0, 1] (0 where nothing is certified, never NaN)."""

    @abstractmethod
    def certified_radius(
        self, k: int | float, overlap: float, norm: str | float | None = None
    ) -> Tensor:
        """Largest radius at which an overlap of at least ``overlap`` is certified, ``(bsz,)``
        float64: ``inf`` where every perturbation keeps it, 0 where no positive radius is."""

    @abstractmethod
    def overlap_curve(
        self, k: int | float, radii: Tensor, norm: str | float | None = None
    ) -> Tensor:
        """Certified overlap at each radius of a 1-D grid, shape ``(bsz, len(radii))``."""

    # -- query checks shared by the subclasses ---------------------------------------------

    def _norm(self, norm: str | float | None) -> float:
        """The query's norm as a ``p`` in ``[1, inf]`` (None: the native :attr:`norm`)."""
        return parse_norm(self.norm if norm is None else norm)

    @staticmethod
    def _grid(radii: Tensor) -> Tensor:
        """A grid of radii ``>= 0`` as a 1-D tensor."""
        return check_radius(radii, "radii").reshape(-1)

    # -- queries read off the per-rank radii -------------------------------------------------

    def _radius_from_rank_radii(
        self, k: int | float, overlap: float, norm: str | float | None
    ) -> Tensor:
        """:meth:`certified_radius` of a subclass whose :meth:`rank_radii` is exact."""
        count = self._count(k)
        needed = needed_rank(overlap, count)
        radii = self.rank_radii(count, norm).sort(dim=-1, descending=True).values
        # certified for radii strictly below R_m: step one float below so the answer is attained
        return radius_below(radii[:, needed - 1])

    def _curve_from_rank_radii(
        self, k: int | float, radii: Tensor, norm: str | float | None
    ) -> Tensor:
        """:meth:`overlap_curve` of a subclass whose :meth:`rank_radii` is exact (one sort)."""
        count = self._count(k)
        grid = self._grid(radii)
        return kept_curve(self.rank_radii(count, norm), grid).to(torch.float64) / count
