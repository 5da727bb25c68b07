"""The certifier that builds Rényi-DP top-k certificates (Gaussian or Laplace noise)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from captum_certified._utils.validation import check_feature_count, check_orders
from captum_certified.certify._core.certifier import BandCertifier
from captum_certified.certify._core.rdp import DEFAULT_ORDERS, rdp_orders
from captum_certified.certify._core.rdp_certificate import METHODS, RDPTopKCertificate, check_rule
from captum_certified.noise import GaussianNoise, LaplaceNoise, NoiseDistribution
from captum_certified.transforms import AttributionTransform


class RDPTopKCertifier(BandCertifier):
    r"""Builds :class:`RDPTopKCertificate` (Rényi-DP top-k certificates, Gaussian or Laplace).

    The band is Clopper-Pearson for binary maps (exact counts) and the Bernoulli-KL band
    otherwise (:func:`~captum_certified.certify.confidence_band`), on ``q = m / v_1`` in [0, 1]
    (:doc:`/certificates`).

    Args:
        method (str, optional): Default query method: ``"holder"``, ``"pairwise"``, ``"phi"``
                    (Gaussian only), ``"laplace"`` (Laplace only) or ``"best"`` (the union of
                    the available ones; for Gaussian noise it is in practice the Phi rule, for
                    Laplace noise and l1 the exact Laplace rule). Default: "best"
        orders (Tensor, optional): Rényi orders ``> 1``; None is 200 log-spaced orders in
                    [1.01, 500]. Default: None
        num_input_features (int, optional): Number of perturbed input features ``N`` used by
                    norm conversions (l_inf, l_p with p > 2, and for Laplace any p > 1 beyond
                    the zCDP route), for certificates built outside the engine. Inside
                    :class:`~captum_certified.attr.CertifiedWrapper` the engine's count is
                    authoritative and a value that disagrees with it is refused (a smaller
                    ``N`` would certify a larger radius than is true). Default: None
    """

    supported_noises: tuple[type[NoiseDistribution], ...] = (GaussianNoise, LaplaceNoise)
    top_k = True

    def __init__(
        self,
        method: str = "best",
        orders: Tensor | None = None,
        num_input_features: int | None = None,
    ) -> None:
        if method not in METHODS:
            raise ValueError(f"`method` must be one of {METHODS}, got {method!r}")
        self.method = method
        low, high, num = DEFAULT_ORDERS
        self.orders = rdp_orders(num, low, high) if orders is None else check_orders(orders)
        if num_input_features is not None:
            num_input_features = check_feature_count(num_input_features, "num_input_features")
        self.num_input_features = num_input_features

    def sample_summary(self, maps: Tensor, transform: AttributionTransform) -> Tensor:
        """The [0, 1] summary and, for rank-rescaled maps, the largest relative deviation of a
        per-sample total from the constant ``S``."""
        base = super().sample_summary(maps, transform)
        mass = transform.total_mass(maps.shape[1])
        deviation = torch.full((1,), -torch.inf, dtype=torch.float64, device=maps.device)
        if mass is not None and maps.numel():
            totals = maps.sum(dim=1, dtype=torch.float64)
            deviation = ((totals - mass).abs() / mass).max().reshape(1)
        mass_t = torch.full((1,), -1.0 if mass is None else mass, dtype=torch.float64)
        return torch.cat([base, deviation, mass_t.to(maps.device)])

    def check_summary(self, summary: Tensor, transform: AttributionTransform) -> None:
        """[0, 1] values and, for rank-rescaled maps, the constant per-sample total ``S``."""
        super().check_summary(summary[:3], transform)
        deviation, mass = (float(v) for v in summary[3:].tolist())
        if mass >= 0 and not deviation <= 1e-4:  # NaN fails
            raise ValueError(
                f"transform {transform!r} produced per-sample totals other than "
                f"||v||_1 / v_1 = {mass:g}; the pairwise RDP bound needs constant totals"
            )

    def build(
        self,
        lower: Tensor,
        upper: Tensor,
        fields: dict[str, Any],
        *,
        transform: AttributionTransform,
        num_input_features: int | None,
    ) -> RDPTopKCertificate:
        method = self.method
        check_rule(method, fields["noise"])
        mass = transform.total_mass(lower.shape[-1])
        if method == "pairwise" and mass is None:
            raise ValueError(
                "`method`='pairwise' needs a RankRescale or TopKBinarize transform, got "
                f"{transform!r}"
            )
        if (
            self.num_input_features is not None
            and num_input_features is not None
            and self.num_input_features != num_input_features
        ):
            raise ValueError(
                f"`num_input_features`={self.num_input_features} disagrees with the "
                f"{num_input_features} input features the noise perturbs; the certificate must "
                "use the true count (omit `num_input_features`)"
            )
        return RDPTopKCertificate(
            lower,
            upper,
            orders=self.orders,
            method=method,
            score_mass=mass,
            num_input_features=(
                num_input_features if num_input_features is not None else self.num_input_features
            ),
            norm=fields["noise"].native_norm,
            **fields,
        )
