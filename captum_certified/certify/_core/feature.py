"""Per-feature certified attributions (Anani et al., 2025): important, unimportant or abstain."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from captum_certified._utils.validation import check_probability, check_radius
from captum_certified.certify._core.certificate import Certificate
from captum_certified.certify._core.certifier import BandCertifier
from captum_certified.certify._core.topk_rule import quantile_gap
from captum_certified.noise import GaussianNoise
from captum_certified.transforms import AttributionTransform


def feature_radii(
    lower: Tensor, upper: Tensor, scale: Tensor | float, threshold: float = 0.5
) -> tuple[Tensor, Tensor]:
    r"""Per-feature certified l2 radii of a Gaussian-smoothed [0, 1] map, and their side.

    For ``p_j(x) = E s_j(x + eps)``, ``eps ~ N(0, sigma^2 I)``, ``Phi^-1(p_j)`` is
    ``1/sigma``-Lipschitz, so from a band ``lower_j <= p_j(x) <= upper_j``:

    - if ``lower_j > tau``, then ``p_j(x + delta) > tau`` for every
      ``||delta||_2 < sigma (Phi^-1(lower_j) - Phi^-1(tau))`` (certified *important*, +1);
    - if ``upper_j < tau``, then ``p_j(x + delta) < tau`` for every
      ``||delta||_2 < sigma (Phi^-1(tau) - Phi^-1(upper_j))`` (certified *unimportant*, -1);
      for ``tau = 1/2`` this is ``sigma Phi^-1(1 - upper_j)``;
    - otherwise nothing is certified (abstain: side 0, radius 0).

    Both radii are exact for a half-space indicator ``s_j``.

    Args:
        lower (Tensor): Lower band, shape ``(bsz, d)``.
        upper (Tensor): Upper band, shape ``(bsz, d)``.
        scale (Tensor or float): Noise standard deviation ``sigma``, a float or ``(bsz,)``.
        threshold (float, optional): ``tau`` in (0, 1). Default: 0.5

    Returns:
        tuple[Tensor, Tensor]: ``(radius, side)``: float64 radii ``>= 0`` (``inf`` where
        ``lower = 1`` or ``upper = 0``) and int8 sides in {+1, -1, 0}, both ``(bsz, d)``.

    Examples::

        >>> r, side = feature_radii(torch.tensor([[0.75]]), torch.tensor([[0.9]]), 0.25)
        >>> round(r.item(), 4), side.item()
        (0.1686, 1)
    """
    tau = check_probability(threshold, "threshold")
    lower = lower.to(torch.float64)
    upper = upper.to(torch.float64)
    sigma = torch.as_tensor(scale, dtype=torch.float64, device=lower.device)
    if sigma.dim() == 1:
        sigma = sigma.unsqueeze(-1)
    tau_t = torch.tensor(tau, dtype=torch.float64, device=lower.device)
    important = lower > tau
    unimportant = upper < tau
    up = sigma * quantile_gap(lower, tau_t, torch.special.ndtri)
    down = sigma * quantile_gap(tau_t, upper, torch.special.ndtri)
    zero = torch.zeros((), dtype=torch.float64, device=lower.device)
    radius = torch.where(important, up, torch.where(unimportant, down, zero))
    # ndtri rounding can give a tiny negative value just past tau: never certify it
    radius = radius.clamp(min=0.0)
    side = important.to(torch.int8) - unimportant.to(torch.int8)
    side = torch.where(radius > 0, side, torch.zeros_like(side))
    return radius, side


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
    Bernoulli-KL band for other [0, 1] maps by default (``bound=None``); ``bound="kl"`` or
    ``"hoeffding"`` may be asked for any [0, 1] map (``cert.bound`` records which).

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


class FeatureCertifier(BandCertifier):
    r"""Per-feature certificates (Anani et al., ICML 2025) for Gaussian noise (l2).

    Each feature of the expected [0, 1] map is certified important (``p_j > threshold``),
    unimportant (``p_j < threshold``) or left uncertified, each with its own l2 radius
    (:func:`feature_radii`). With :class:`~captum_certified.transforms.TopKBinarize` as the
    per-sample map, ``p_j`` is the probability that feature ``j`` is in the top K: the
    paper's setting. The Phi rule is a property of the Gaussian law: any other noise is
    refused.

    Args:
        threshold (float, optional): ``tau`` in (0, 1). Default: 0.5

    Examples::

        >>> from captum.attr import Saliency
        >>> from captum_certified.attr import CertifiedWrapper
        >>> from captum_certified.transforms import TopKBinarize
        >>> cw = CertifiedWrapper(Saliency(model), transform=TopKBinarize(0.25),
        ...                       certifier=FeatureCertifier())
        >>> attr, cert = cw.attribute(x, target=y, nt_samples=100, stdevs=0.25,
        ...                           return_certificate=True, alpha=0.001)
        >>> m = cert.certified_map(radius=0.1)  # (bsz, d) in {+1, -1, 0}
        >>> (m == 1).sum(1), (m == -1).sum(1)  # certified in / out of the top 25 %
        (tensor([24, 28, 28, 36]), tensor([318, 337, 322, 325]))
    """

    supported_noises = (GaussianNoise,)

    def __init__(self, threshold: float = 0.5) -> None:
        self.threshold = check_probability(threshold, "threshold")

    def build(
        self,
        lower: Tensor,
        upper: Tensor,
        fields: dict[str, Any],
        *,
        transform: AttributionTransform,
        num_input_features: int | None,
    ) -> FeatureCertificate:
        return FeatureCertificate(
            lower,
            upper,
            threshold=self.threshold,
            norm="l2",
            num_input_features=num_input_features,
            **fields,
        )

    def __repr__(self) -> str:
        return f"FeatureCertifier(threshold={self.threshold})"
