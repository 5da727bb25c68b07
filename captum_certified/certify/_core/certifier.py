"""Certifiers: pure functions from streamed statistics to a certificate."""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch
from torch import Tensor

from captum_certified.certify._core.bands import clopper_pearson_band, hoeffding_band
from captum_certified.certify._core.certificate import Certificate
from captum_certified.certify._core.gaussian_topk import GaussianTopKCertificate
from captum_certified.certify._core.statistics import StreamingMoments
from captum_certified.transforms import AttributionTransform

BOUNDS = ("clopper_pearson", "hoeffding")


def confidence_band(
    statistics: StreamingMoments, *, alpha: float, bound: str | None, binary: bool
) -> tuple[Tensor, Tensor, str]:
    r"""Simultaneous band for the expected [0, 1] map behind ``statistics``.

    ``bound=None`` picks Clopper-Pearson for binary maps and Hoeffding otherwise.

    Returns:
        tuple: ``(lower, upper, bound_name)``.
    """
    if bound is None:
        bound = "clopper_pearson" if binary else "hoeffding"
    if bound not in BOUNDS:
        raise ValueError(f"`bound` must be one of {BOUNDS} or None, got {bound!r}")
    if bound == "clopper_pearson":
        if not binary:
            raise ValueError(
                "`bound`='clopper_pearson' needs a binary ({0, 1}-valued) per-sample map; "
                "use bound='hoeffding' for other [0, 1]-valued maps"
            )
        if statistics.total is None:
            raise RuntimeError("no samples have been added")
        lower, upper = clopper_pearson_band(statistics.total, statistics.n, alpha)
    else:
        lower, upper = hoeffding_band(statistics.mean, statistics.n, alpha)
    return lower, upper, bound


class Certifier(ABC):
    """Turns the streamed statistics of per-sample maps into a certificate.

    The engine calls :meth:`check_transform` before sampling, :meth:`check_samples` on every
    chunk of transformed maps, and :meth:`certify` once at the end. The defaults require
    [0, 1]-valued maps, which is what the top-K certificates need; a certifier with other
    requirements (e.g. a norm bound on each map) overrides the two checks.
    """

    #: Whether the certifier needs the centred second moment of the samples.
    needs_second_moment: bool = False

    def check_transform(self, transform: AttributionTransform) -> None:
        """Raise ``ValueError`` if ``transform`` cannot produce certifiable maps."""
        if transform.kind not in ("binary", "unit"):
            raise ValueError(
                "`return_certificate=True` needs a transform with values in [0, 1] "
                f"(e.g. TopKBinarize); {transform!r} is unbounded"
            )

    def check_samples(self, maps: Tensor, transform: AttributionTransform) -> None:
        """Raise ``ValueError`` if a chunk of ``(N, d)`` maps breaks the transform's promise."""
        if not maps.numel():
            return
        low, high = torch.aminmax(maps)  # one pass; NaN propagates, so it fails the test
        if not (bool(low >= 0) and bool(high <= 1)):
            raise ValueError(
                f"transform {transform!r} produced values outside [0, 1]; certificates need "
                "[0, 1]-valued per-sample maps"
            )

    @abstractmethod
    def certify(
        self,
        statistics: StreamingMoments,
        *,
        scale: Tensor,
        noise: str,
        alpha: float,
        bound: str | None,
        transform: AttributionTransform,
        num_input_features: int,
    ) -> Certificate:
        """Build the certificate from ``(bsz, d)`` flattened statistics.

        Args:
            statistics: streamed moments of the transformed per-sample maps.
            scale: per-example noise scale, ``(bsz,)`` float64 (smallest over features).
            noise: name of the noise distribution.
            alpha: failure probability.
            bound: confidence-band method requested by the user (None = certifier default).
            transform: the per-sample map that produced the samples.
            num_input_features: number of *input* features the noise perturbs (all inputs of
                an example together); differs from the map's ``d`` for layer attributions.
        """


class GaussianTopKCertifier(Certifier):
    r"""Levine et al.'s top-K certificate for Gaussian noise (l2), with a simultaneous band.

    The band is Clopper-Pearson for binary maps (default) or Hoeffding (the paper's choice,
    valid for any [0, 1] map); it is combined with the Phi-bounds through the sorted
    pigeonhole rule (:class:`GaussianTopKCertificate`).
    """

    def certify(
        self,
        statistics: StreamingMoments,
        *,
        scale: Tensor,
        noise: str,
        alpha: float,
        bound: str | None,
        transform: AttributionTransform,
        num_input_features: int,
    ) -> GaussianTopKCertificate:
        binary = transform.kind == "binary"
        lower, upper, bound = confidence_band(statistics, alpha=alpha, bound=bound, binary=binary)
        return GaussianTopKCertificate(
            lower,
            upper,
            noise=noise,
            norm="l2",
            scale=scale,
            n=statistics.n,
            alpha=alpha,
            bound=bound,
            num_input_features=num_input_features,
        )
