"""Certifiers: pure functions from streamed statistics to a certificate."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import torch
from torch import Tensor

from captum_certified._utils.statistics import StreamingMoments
from captum_certified.certify._core.bands import clopper_pearson_band, hoeffding_band, kl_band
from captum_certified.certify._core.betting import betting_band
from captum_certified.certify._core.certificate import Certificate, noise_object
from captum_certified.noise import NoiseDistribution
from captum_certified.transforms import AttributionTransform

BOUNDS = ("clopper_pearson", "kl", "hoeffding", "betting")


def confidence_band(
    statistics: StreamingMoments, *, alpha: float, bound: str | None, binary: bool
) -> tuple[Tensor, Tensor, str]:
    r"""Simultaneous band for the expected [0, 1] map behind ``statistics``.

    ``bound=None`` picks Clopper-Pearson for binary maps and the Bernoulli-KL band
    (:func:`~captum_certified.certify.kl_band`, never wider than Hoeffding) otherwise;
    ``"hoeffding"`` (the papers' band), ``"kl"`` and ``"betting"``
    (:func:`~captum_certified.certify.betting_band`, variance-adaptive; it needs the centred
    second moment of non-binary maps) can be asked for on any [0, 1] map.

    Returns:
        tuple: ``(lower, upper, bound_name)``.
    """
    if bound is None:
        bound = "clopper_pearson" if binary else "kl"
    if bound not in BOUNDS:
        raise ValueError(f"`bound` must be one of {BOUNDS} or None, got {bound!r}")
    if bound == "clopper_pearson":
        if not binary:
            raise ValueError(
                "`bound`='clopper_pearson' needs a binary ({0, 1}-valued) per-sample map; "
                "use bound='kl' or 'hoeffding' for other [0, 1]-valued maps"
            )
        if statistics.total is None:
            raise RuntimeError("no samples have been added")
        lower, upper = clopper_pearson_band(statistics.total, statistics.n, alpha)
    elif bound == "kl":
        lower, upper = kl_band(statistics.mean, statistics.n, alpha)
    elif bound == "betting":
        variance = None
        if not binary:  # binary maps: the bound through the means is exact
            if statistics.m2 is None:
                raise ValueError(
                    "`bound`='betting' on a non-binary map needs the second moment of the "
                    "samples (StreamingMoments(track_second_moment=True))"
                )
            variance = statistics.variance
        lower, upper = betting_band(statistics.mean, statistics.n, alpha, variance=variance)
    else:
        lower, upper = hoeffding_band(statistics.mean, statistics.n, alpha)
    return lower, upper, bound


class Certifier(ABC):
    """Turns the streamed statistics of per-sample maps into a certificate.

    The engine calls :meth:`check_noise` and :meth:`check_transform` before sampling,
    :meth:`sample_summary` on every chunk of transformed maps (combined on the device),
    :meth:`check_summary` once after sampling and :meth:`certify` at the end. The defaults
    require [0, 1]-valued maps, which is what the top-K certificates need; a certifier with
    other requirements (e.g. a norm bound on each map) overrides the checks
    (``sample_summary`` and ``check_summary``; a subclass that overrides :meth:`check_samples`
    instead is called on every chunk).

    A certificate is a theorem about one noise law, so every certifier lists the noise classes
    it is proven for in ``supported_noises``; any other noise is refused before sampling.
    """

    #: Whether the certifier needs the centred second moment of the samples.
    needs_second_moment: bool = False

    #: Whether its certificates answer top-K queries (``certified_count``), so that sequential
    #: certification toward a :class:`~captum_certified.certify.CertificationTarget` can ask
    #: them after each chunk (``stop_when=``).
    top_k: bool = False

    #: The noise classes the certificate is proven for. Matched by exact type: a subclass may
    #: draw from another law, so it must be declared explicitly. Empty refuses every noise.
    supported_noises: tuple[type[NoiseDistribution], ...] = ()

    def check_noise(self, noise: NoiseDistribution) -> None:
        """Raise ``ValueError`` unless ``noise`` is a family this certifier is proven for."""
        if type(noise) in self.supported_noises:
            return
        proven = (
            ", ".join(f"{c.__name__} ({c.name!r})" for c in self.supported_noises)
            or "no noise (none declared)"
        )
        raise ValueError(
            f"no certificate for `noise`={noise!r}: {type(self).__name__} is proven for "
            f"{proven} only; smooth with a supported noise or pass a certifier proven for "
            "this noise"
        )

    def check_transform(self, transform: AttributionTransform) -> None:
        """Raise ``ValueError`` if ``transform`` cannot produce certifiable maps."""
        if transform.kind not in ("binary", "unit"):
            raise ValueError(
                "`return_certificate=True` needs a transform with values in [0, 1] "
                f"(e.g. TopKBinarize); {transform!r} is unbounded"
            )

    def check_samples(self, maps: Tensor, transform: AttributionTransform) -> None:
        """Raise ``ValueError`` if a chunk of ``(N, d)`` maps breaks the transform's promise.

        The same check as :meth:`check_summary` of :meth:`sample_summary`; the engine combines
        the summaries of all chunks on the device (elementwise maximum) and checks them once,
        before the certificate is built, so the sampling loop never waits for the host.
        """
        self.check_summary(self.sample_summary(maps, transform), transform)

    def sample_summary(self, maps: Tensor, transform: AttributionTransform) -> Tensor:
        """What :meth:`check_summary` needs of one chunk, as a 1-d float64 tensor on the maps'
        device, computed without reading a value on the host. Summaries of several chunks are
        combined by elementwise maximum (NaN propagates). Here: ``(-min, max, non-binary)``."""
        if not maps.numel():
            return torch.full((3,), -torch.inf, dtype=torch.float64, device=maps.device)
        low, high = torch.aminmax(maps)  # one pass; NaN propagates, so it fails the check
        binary = transform.kind == "binary"
        off_grid = (
            ((maps != 0) & (maps != 1)).any() if binary else torch.zeros((), dtype=torch.bool)
        )
        return torch.stack(
            [-low.double(), high.double(), off_grid.to(device=maps.device, dtype=torch.float64)]
        )

    def check_summary(self, summary: Tensor, transform: AttributionTransform) -> None:
        """Raise ``ValueError`` if the (combined) :meth:`sample_summary` breaks the promise."""
        neg_low, high, off_grid = (float(v) for v in summary.tolist())
        if neg_low == -float("inf"):
            return  # no maps
        if not (-neg_low >= 0 and high <= 1):  # NaN fails
            raise ValueError(
                f"transform {transform!r} produced values outside [0, 1]; certificates need "
                "[0, 1]-valued per-sample maps"
            )
        # a transform declaring binary maps gets the exact binomial (Clopper-Pearson) band,
        # which is not valid for fractional values: hold it to its promise
        if off_grid > 0:
            raise ValueError(
                f"transform {transform!r} declares kind='binary' but produced values other "
                "than 0 and 1; declare kind='unit' for [0, 1]-valued maps"
            )

    @abstractmethod
    def certify(
        self,
        statistics: StreamingMoments,
        *,
        scale: Tensor,
        noise: NoiseDistribution,
        alpha: float,
        bound: str | None,
        transform: AttributionTransform,
        num_input_features: int,
    ) -> Certificate:
        """Build the certificate from ``(bsz, d)`` flattened statistics.

        Args:
            statistics: streamed moments of the transformed per-sample maps.
            scale: per-example noise scale, ``(bsz,)`` float64 (smallest over features).
            noise: the noise distribution (an object; a name is a ``TypeError``).
            alpha: failure probability.
            bound: confidence-band method requested by the user (None = certifier default).
            transform: the per-sample map that produced the samples.
            num_input_features: number of *input* features the noise perturbs (all inputs of
                an example together); differs from the map's ``d`` for layer attributions.
        """


class BandCertifier(Certifier):
    """A certifier whose certificate is built from a simultaneous band on the expected map.

    :meth:`certify` computes the band (by default the transform's ``default_bound`` if
    it names one and the statistics hold what it needs, else Clopper-Pearson for binary maps
    and KL otherwise, see :func:`confidence_band`), checks the noise (``certify`` may be
    called outside the engine) and hands the band to :meth:`build`, which subclasses
    implement. The engine keeps the
    second moment of the samples for it (the betting band of non-binary maps uses it).
    """

    needs_second_moment = True

    def certify(
        self,
        statistics: StreamingMoments,
        *,
        scale: Tensor,
        noise: NoiseDistribution,
        alpha: float,
        bound: str | None,
        transform: AttributionTransform,
        num_input_features: int | None = None,
    ) -> Certificate:
        binary = transform.kind == "binary"
        if bound is None:  # the transform may name a tighter band for its maps
            bound = transform.default_bound
            if bound == "betting" and not binary and statistics.m2 is None:
                bound = None  # streamed without the second moment it needs: the usual default
        lower, upper, bound = confidence_band(statistics, alpha=alpha, bound=bound, binary=binary)
        noise = noise_object(noise)
        self.check_noise(noise)
        fields = dict(noise=noise, scale=scale, n=statistics.n, alpha=alpha, bound=bound)
        return self.build(
            lower, upper, fields, transform=transform, num_input_features=num_input_features
        )

    @abstractmethod
    def build(
        self,
        lower: Tensor,
        upper: Tensor,
        fields: dict[str, Any],
        *,
        transform: AttributionTransform,
        num_input_features: int | None,
    ) -> Certificate:
        """The certificate from the band ``(bsz, d)`` and the recorded ``fields`` (noise object,
        scale, n, alpha, bound name)."""
