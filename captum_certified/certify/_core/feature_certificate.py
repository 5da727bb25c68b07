"""Per-feature certified attributions (Anani et al., 2025): important, unimportant or abstain."""

from __future__ import annotations

import torch
from torch import Tensor

from captum_certified._utils.validation import check_probability, check_radius
from captum_certified.certify._core.certificate import Certificate
from captum_certified.certify._core.feature_bounds import feature_radii


class FeatureCertificate(Certificate):
    r"""Per-feature certificate: which features are certifiably important or unimportant.

    **Guarantee.** Let ``p(x) = E s(x + eps)``, ``eps ~ N(0, sigma^2 I)``, be the *expected*
    map (``s`` the [0, 1]-valued per-sample map, e.g. a top-K binarization, so ``p_j`` is the
    probability that feature ``j`` is among the top K). With probability at least
    ``1 - alpha`` over the Monte-Carlo samples, simultaneously for every feature and every
    radius queried: where :meth:`certified_map` says +1, ``p_j(x + delta) > threshold`` for
    all ``||delta||_2 <= radius``; where it says -1, ``p_j(x + delta) < threshold``; 0 is an
    abstention. It speaks about the expected map, not the displayed estimate.

    **Rule** (Anani et al. 2025, Gaussian noise): see :func:`feature_radii`. The band is
    simultaneous (Bonferroni over the ``2 d`` tails): Clopper-Pearson for binary maps and the
    Bernoulli-KL band for other [0, 1] maps by default (``bound=None``; the betting band for
    a transform whose ``default_bound`` names it, such as the rank-linear map); ``bound="kl"``,
    ``"hoeffding"`` or ``"betting"`` may be asked for any [0, 1] map (``cert.bound`` records
    which).

    Built by :class:`FeatureCertifier`. All per-feature outputs are flattened, shape
    ``(bsz, d)``, in the order of the (transformed) attribution map: reshape them with
    ``.reshape(attr.shape)``.

    Attributes:
        lower (Tensor): Lower band, ``(bsz, d)`` float64.
        upper (Tensor): Upper band, ``(bsz, d)`` float64.
        threshold (float): The importance threshold ``tau``.
    """

    def __init__(self, lower: Tensor, upper: Tensor, *, threshold: float = 0.5, **fields) -> None:
        super().__init__(num_features=lower.shape[-1], **fields)
        self.lower = lower.to(torch.float64)
        self.upper = upper.to(torch.float64)
        self.threshold = check_probability(threshold, "threshold")
        self._radius, self._side = feature_radii(
            self.lower, self.upper, self.scale.to(self.lower.device), self.threshold
        )

    def feature_radius(self) -> Tensor:
        r"""Per-feature certified l2 radius, ``(bsz, d)`` float64, 0 where abstaining.

        The decision of feature ``j`` (:meth:`decision`) holds for every perturbation of l2
        norm strictly below its radius.

        Returns:
            Tensor: radii ``>= 0`` (``inf`` where no perturbation can change the decision).
        """
        return self._radius.clone()

    def decision(self) -> Tensor:
        r"""Per-feature certified side, ``(bsz, d)`` int8: +1 important, -1 unimportant, 0 abstain.

        Returns:
            Tensor: the side certified at some positive radius.
        """
        return self._side.clone()

    def certified_map(self, radius: float | Tensor = 0.0) -> Tensor:
        r"""Tri-valued map at ``radius``: +1 certified important, -1 unimportant, 0 abstain.

        A feature keeps its side only where its certified radius is strictly larger than
        ``radius``.

        Args:
            radius (float or Tensor, optional): l2 radius ``>= 0``; a scalar or a ``(bsz,)``
                        tensor. Default: 0.0

        Returns:
            Tensor: int8 map of shape ``(bsz, d)``.

        Examples::

            >>> cert.certified_map(radius=0.1).reshape(attr.shape).shape
            torch.Size([4, 3, 16, 16])
        """
        r = self._per_example(radius).to(self._radius.device)
        keep = self._radius > r.unsqueeze(-1)
        return torch.where(keep, self._side, torch.zeros_like(self._side))

    def fraction_certified(self, radius: float | Tensor = 0.0, side: str = "any") -> Tensor:
        r"""Share of features certified at ``radius`` (the paper's %certified), ``(bsz,)``.

        Args:
            radius (float or Tensor, optional): l2 radius ``>= 0`` (scalar or ``(bsz,)``).
                        Default: 0.0
            side (str, optional): ``"any"`` (important or unimportant), ``"important"`` or
                        ``"unimportant"``. Default: "any"

        Returns:
            Tensor: float64 fractions in [0, 1].
        """
        tri = self.certified_map(radius)
        if side == "any":
            hit = tri != 0
        elif side == "important":
            hit = tri > 0
        elif side == "unimportant":
            hit = tri < 0
        else:
            raise ValueError(f"`side` must be 'any', 'important' or 'unimportant', got {side!r}")
        return hit.to(torch.float64).mean(dim=-1)

    def fraction_curve(self, radii: Tensor, side: str = "any") -> Tensor:
        r"""%certified at each radius of a grid, ``(bsz, len(radii))`` float64.

        Args:
            radii (Tensor): 1-D tensor of radii ``>= 0``.
            side (str, optional): As in :meth:`fraction_certified`. Default: "any"

        Returns:
            Tensor: float64 fractions.
        """
        grid = check_radius(radii, "radii").reshape(-1)
        return torch.stack(
            [self.fraction_certified(float(r), side=side) for r in grid], dim=-1
        ).reshape(self.batch_size, grid.numel())

    def __repr__(self) -> str:
        base = super().__repr__()[:-1]
        return f"{base}, threshold={self.threshold})"
