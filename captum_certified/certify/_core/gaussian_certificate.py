"""Certified top-K overlap under l2 perturbations for Gaussian-smoothed [0, 1] maps."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from captum_certified.certify._core.topk_certificate import TopKCertificate
from captum_certified.certify._core.topk_rule import (
    kept_count,
    paired_order_statistics,
    quantile_gap,
)


class GaussianTopKCertificate(TopKCertificate):
    r"""Certified top-K overlap of a Gaussian-smoothed [0, 1]-valued attribution map.

    **Guarantee.** Let ``gbar(x) = E s(x + eps)``, ``eps ~ N(0, sigma^2 I)``, be the *expected*
    smoothed map (``s`` any [0, 1]-valued per-sample map). With probability at least
    ``1 - alpha`` over the Monte-Carlo samples, simultaneously for every ``k`` and ``radius``
    queried, ``|TopK(gbar(x)) ∩ TopK(gbar(x + delta))| >= topk_overlap(k, radius) * K`` for
    all ``||delta||_2 <= radius``. It speaks about the expected maps, not about the displayed
    estimate, and holds for any tie-breaking of the top-K.

    **Rule** (Levine et al. 2019, with separately sorted band endpoints): with ``L_(i)`` the
    i-th largest lower bound and ``U_(j)`` the j-th largest upper bound, rank ``i <= K`` is
    kept up to the radius ``R_i = (sigma / 2) (Phi^-1(L_(i)) - Phi^-1(U_(2K-i+1)))`` and the
    certified overlap at ``radius`` is ``#{i : R_i > radius} / K``. Where nothing can be
    certified the answer is 0, never NaN.

    Built by :class:`GaussianTopKCertifier`; see :class:`~captum_certified.certify.Certificate`
    for the recorded fields. ``lower`` and ``upper`` hold the band, shape ``(bsz, d)``.
    """

    def __init__(self, lower: Tensor, upper: Tensor, **fields) -> None:
        super().__init__(num_features=lower.shape[-1], **fields)
        self.lower = lower.to(torch.float64)
        self.upper = upper.to(torch.float64)

    def _check_l2(self, norm: str | float | None) -> None:
        """Refuse a norm other than l2: the Phi rule bounds l2 shifts of the Gaussian."""
        if self._norm(norm) != 2.0:
            raise ValueError(
                f"`norm` must be 'l2' (or None) for the Gaussian top-K certificate, got {norm!r}; "
                "RenyiRobustSmooth (RDPTopKCertificate) certifies other l_p norms"
            )

    def rank_radii(self, k: int | float, norm: str | float | None = None) -> Tensor:
        r"""Per-rank certified radii ``R_1 >= ... >= R_K``, shape ``(bsz, K)``.

        Rank ``i`` of the top-K is certified to stay for every radius below ``R_i``. ``+inf``
        marks ranks no perturbation can remove (``2K > d``); ``-inf`` ranks not certified even
        at radius 0.

        Args:
            k (int or float): Top-K size as a count in ``1..d`` or a fraction of ``d``.
            norm (str or float, optional): ``"l2"`` or None (the native l2). Default: None

        Returns:
            Tensor: float64 radii of shape ``(bsz, K)``.
        """
        self._check_l2(norm)
        count = self._count(k)
        lower_i, upper_i, unopposed = paired_order_statistics(self.lower, self.upper, count)
        gap = quantile_gap(lower_i, upper_i, torch.special.ndtri)
        radii = 0.5 * self.scale.to(gap.device).unsqueeze(-1) * gap
        return torch.where(unopposed, torch.full_like(radii, math.inf), radii)

    def certified_count(
        self, k: int | float, radius: float | Tensor, norm: str | float | None = None
    ) -> Tensor:
        r"""Certified number ``m`` of top-K features kept, shape ``(bsz,)`` (int64).

        Args:
            k (int or float): Top-K size (count or fraction of ``d``).
            radius (float or Tensor): l2 radius ``>= 0``; a scalar or a ``(bsz,)`` tensor.
            norm (str or float, optional): ``"l2"`` or None. Default: None

        Returns:
            Tensor: ``m`` per example.
        """
        self._check_l2(norm)
        radius = self._per_example(radius)
        # +inf ranks (2K > d) are kept by every perturbation, even at an infinite radius
        return kept_count(self.rank_radii(k), radius)

    def topk_overlap(
        self, k: int | float, radius: float | Tensor, norm: str | float | None = None
    ) -> Tensor:
        r"""Certified fraction of the top-K kept under every l2 perturbation within ``radius``.

        Args:
            k (int or float): Top-K size as a count in ``1..d`` or a fraction of ``d``.
            radius (float or Tensor): l2 radius ``>= 0``; a scalar or a ``(bsz,)`` tensor.
                        ``radius=0`` gives the statistical top-K agreement bound between the
                        estimate's band and the expected map.
            norm (str or float, optional): ``"l2"`` or None. Default: None

        Returns:
            Tensor: ``m / K`` per example, shape ``(bsz,)``, float64.

        Examples::

            >>> cert.topk_overlap(k=0.2, radius=0.1)
            tensor([0.451, 0.424, 0.477, 0.431], dtype=torch.float64)
        """
        count = self._count(k)
        return self.certified_count(count, radius, norm).to(torch.float64) / count

    def certified_radius(
        self, k: int | float, overlap: float, norm: str | float | None = None
    ) -> Tensor:
        r"""Largest l2 radius at which a top-K overlap of at least ``overlap`` is certified.

        Where the radius ``r`` returned is positive, ``topk_overlap(k, r) >= overlap``. It is
        ``inf`` where every perturbation keeps that overlap, and 0 where no positive radius is
        certified; then even ``topk_overlap(k, 0)`` may be below ``overlap`` (0 means "not
        certified", not "certified at radius 0"). The value is one float64 step below the
        boundary: keep it in float64 (rounding it to float32 can cross the boundary).

        Args:
            k (int or float): Top-K size as a count in ``1..d`` or a fraction of ``d``.
            overlap (float): Required fraction in (0, 1]; ``ceil(overlap * K)`` features.
            norm (str or float, optional): ``"l2"`` or None. Default: None

        Returns:
            Tensor: radius per example, shape ``(bsz,)``, float64.
        """
        return self._radius_from_rank_radii(k, overlap, norm)

    def overlap_curve(
        self, k: int | float, radii: Tensor, norm: str | float | None = None
    ) -> Tensor:
        r"""Certified overlap at each radius of a grid, shape ``(bsz, len(radii))``.

        One sort serves the whole curve.

        Args:
            k (int or float): Top-K size.
            radii (Tensor): 1-D tensor of radii ``>= 0``.
            norm (str or float, optional): ``"l2"`` or None. Default: None

        Returns:
            Tensor: float64 fractions.
        """
        return self._curve_from_rank_radii(k, radii, norm)
