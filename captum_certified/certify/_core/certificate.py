"""Certificate base class: the statistics a certificate came from, and how it was bounded."""

from __future__ import annotations

import math
from numbers import Real

import torch
from torch import Tensor

from captum_certified._utils.norms import parse_norm
from captum_certified._utils.validation import (
    check_feature_count,
    check_radius,
    resolve_count,
)
from captum_certified.noise import NoiseDistribution


def noise_object(noise: NoiseDistribution) -> NoiseDistribution:
    """``noise`` if it is a :class:`NoiseDistribution` (``TypeError`` naming ``noise`` otherwise,
    a name such as ``"gaussian"`` included: certificates and certifiers take the object)."""
    if not isinstance(noise, NoiseDistribution):
        hint = (
            f"; pass the object, e.g. captum_certified.noise.resolve_noise({noise!r})"
            if isinstance(noise, str)
            else ""
        )
        raise TypeError(f"`noise` must be a NoiseDistribution, got {type(noise).__name__}{hint}")
    return noise


def check_overlap(overlap: float) -> float:
    """A required top-K overlap fraction in (0, 1]."""
    if isinstance(overlap, bool) or not isinstance(overlap, Real):
        raise TypeError(f"`overlap` must be a float in (0, 1], got {type(overlap).__name__}")
    if not 0.0 < float(overlap) <= 1.0:
        raise ValueError(f"`overlap` must be in (0, 1], got {overlap}")
    return float(overlap)


def needed_rank(overlap: float, count: int) -> int:
    """``ceil(overlap * K)`` (at least 1): the rank that must be certified for ``overlap``."""
    return max(1, math.ceil(check_overlap(overlap) * count - 1e-9))


class Certificate:
    r"""Common fields of every certificate.

    A certificate is a pure function of Monte-Carlo statistics. It records what it was
    computed from so that a reader can audit it.

    Attributes:
        noise (str): Name of the smoothing distribution (``noise_distribution.name``).
        noise_distribution (NoiseDistribution): The smoothing distribution itself; the
                    certificate asks it (never its name) for what the bound needs.
        norm (str): The noise's native norm (e.g. ``"l2"`` for Gaussian, ``"l1"`` for
                    Laplace, ``"linf"`` for the uniform cube): the norm of every query that
                    names none. Queries that take a ``norm`` argument answer for other norms
                    only when it is passed; a certificate built with another ``norm`` than its
                    noise's native one is refused.
        scale (Tensor): Noise scale per example, shape ``(bsz,)`` (float64); for tuple inputs
                    or per-feature scales, the smallest one (the bound is driven by it).
        n (int): Number of noise samples per example (the largest, for a sequential run).
        samples_used (Tensor): Samples each example used, int64 ``(bsz,)``: ``n`` for every
                    example of a fixed-n run; fewer where sequential certification
                    (``stop_when=``) stopped early.
        stop_decision (Tensor or None): Sequential certification only (None otherwise): the
                    decision each example stopped on, int8 ``(bsz,)``: 1 certified or 2
                    cannot be certified (a target with a ``radius``), 3 the radius is known
                    to ``precision`` or 4 stopped without that (a target with a
                    ``precision``); see :class:`~captum_certified.certify.CertificationTarget`.
        stop_radius (Tensor or None): Sequential certification only: ``R_cert``, this
                    certificate's ``certified_radius(k, overlap)`` at the target's ``k`` and
                    ``overlap``, float64 ``(bsz,)``.
        stop_radius_best (Tensor or None): Sequential certification only: ``R_best``, the
                    same query on the swapped band (lower ends ``U``, upper ends ``L``). On the
                    event the certificate holds on, the radius its rule would give from the
                    exact expected map lies in ``[stop_radius, stop_radius_best]``.
        alpha (float): Failure probability: every statement holds simultaneously for all
                    queries on an example with probability at least ``1 - alpha`` over the
                    sampling.
        bound (str): Confidence-band method.
        num_features (int): Number of features ``d`` of the map.
    """

    def __init__(
        self,
        *,
        noise: NoiseDistribution,
        norm: str,
        scale: Tensor,
        n: int,
        alpha: float,
        bound: str,
        num_features: int,
        num_input_features: int | None = None,
    ) -> None:
        self.noise_distribution = noise_object(noise)
        self.noise = self.noise_distribution.name
        native = self.noise_distribution.native_norm
        if native is not None and parse_norm(norm) != parse_norm(native):
            # one rule for every certificate: a query without a norm answers for the native one
            raise ValueError(
                f"`norm` must be the native norm of {self.noise!r} noise ({native!r}): a "
                "query that names no norm answers for it; pass another norm to each query "
                f"instead, got norm={norm!r}"
            )
        self.norm = norm
        self.scale = scale.detach().to(torch.float64)
        self.n = n
        self.samples_used = torch.full((self.scale.shape[0],), int(n), dtype=torch.int64)
        self.stop_decision: Tensor | None = None
        self.stop_radius: Tensor | None = None
        self.stop_radius_best: Tensor | None = None
        self.alpha = alpha
        self.bound = bound
        self.num_features = num_features
        self._num_input_features: int | None = None
        self.num_input_features = num_input_features

    @property
    def num_input_features(self) -> int | None:
        """Number of input features the noise perturbed (all input tensors of an example
        together); None if unknown. It can be set once and never changed."""
        return self._num_input_features

    @num_input_features.setter
    def num_input_features(self, value: int | None) -> None:
        if value is not None:
            value = check_feature_count(value, "num_input_features")
        known = getattr(self, "_num_input_features", None)
        if known is not None and value != known:
            # a fact about the noise, not a tuning knob: a smaller count would certify a
            # larger radius than is true
            raise ValueError(
                f"`num_input_features` is already {known} (the number of perturbed input "
                f"features); it cannot be changed to {value!r}"
            )
        self._num_input_features = value

    @property
    def batch_size(self) -> int:
        return int(self.scale.shape[0])

    def _count(self, k: int | float) -> int:
        """The top-K size as a count in ``1..d`` (``k`` a count or a fraction of ``d``)."""
        return resolve_count(k, self.num_features, "k")

    def _per_example(self, radius: float | Tensor, name: str = "radius") -> Tensor:
        """A scalar or ``(bsz,)`` radius ``>= 0`` as a ``(bsz,)`` float64 CPU tensor."""
        radius = check_radius(radius, name)
        if radius.dim() > 1 or (radius.dim() == 1 and radius.shape[0] != self.batch_size):
            raise ValueError(
                f"`{name}` must be a scalar or of shape ({self.batch_size},), "
                f"got {tuple(radius.shape)}"
            )
        return radius.cpu().expand(self.batch_size).clone()

    def __len__(self) -> int:
        return self.batch_size

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(batch_size={self.batch_size}, "
            f"num_features={self.num_features}, "
            f"noise={self.noise!r}, norm={self.norm!r}, n={self.n}, alpha={self.alpha}, "
            f"bound={self.bound!r})"
        )
