"""A stopping target for sequential certification, and the decision made after each chunk."""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Any

import torch
from torch import Tensor

from captum_certified._utils.validation import check_count_spec
from captum_certified.certify._core.certificate import check_overlap, needed_rank

#: Decision codes of :func:`sequential_decision`.
CONTINUE, CERTIFIED, CANNOT_CERTIFY = 0, 1, 2


@dataclass(frozen=True)
class CertificationTarget:
    r"""The question sequential certification answers for each example.

    "Is the top-K overlap at ``radius`` at least ``overlap``?": sampling stops for an example
    as soon as its certificate says yes, or as soon as no band containing the expected map
    could say yes (or the sample budget is spent). It is named ``stop_when`` in
    ``attribute`` (``target`` is Captum's class index).

    Args:
        k (int or float): Top-K size, a count or a fraction of ``d``.
        radius (float): Perturbation radius ``>= 0`` in the certificate's norm.
        overlap (float): Required fraction of the top-K kept, in (0, 1].
        futility (str, optional): When to give up on an example before ``N_max``:
                    ``"proven"`` only when no band containing the expected map could reach the
                    target (on the confidence sequence's event), ``"projected"`` also when the
                    band forecast at ``N_max`` from the current mean and variance misses it (a
                    forecast: it may give up on an example that more samples would have
                    certified; it never makes a certificate unsound). Default: "proven"

    Examples::

        >>> t = CertificationTarget(k=0.2, radius=0.1, overlap=0.5)
        >>> t
        CertificationTarget(k=0.2, radius=0.1, overlap=0.5, futility='proven')
    """

    k: int | float
    radius: float
    overlap: float
    futility: str = "proven"

    def __post_init__(self) -> None:
        if self.futility not in ("proven", "projected"):
            raise ValueError(f"`futility` must be 'proven' or 'projected', got {self.futility!r}")
        check_count_spec(self.k, "k")
        if isinstance(self.radius, bool) or not isinstance(self.radius, Real):
            raise TypeError(f"`radius` must be a float >= 0, got {type(self.radius).__name__}")
        if not (math.isfinite(float(self.radius)) and float(self.radius) >= 0.0):
            raise ValueError(f"`radius` must be finite and >= 0, got {self.radius}")
        check_overlap(self.overlap)

    def reached(self, certificate: Any) -> Tensor:
        """Whether each example's certificate certifies the target, ``(bsz,)`` bool.

        Args:
            certificate: A top-K certificate (a ``certified_count(k, radius)`` method).
        """
        if not hasattr(certificate, "certified_count"):
            raise TypeError(
                "a CertificationTarget needs a top-K certificate (with certified_count); got "
                f"{type(certificate).__name__}"
            )
        count = certificate._count(self.k)
        kept = certificate.certified_count(count, float(self.radius))
        return kept >= needed_rank(self.overlap, count)


def sequential_decision(
    target: CertificationTarget,
    certificate: Any,
    best_case: Any,
    n: Tensor,
    max_samples: int,
    projected: Any = None,
) -> Tensor:
    r"""The decision after a chunk, per example: continue, certified, or cannot be certified.

    A pure function of the streamed statistics: ``certificate`` is built from the current
    confidence-sequence band ``[L, U]`` and ``best_case`` from the swapped band
    ``(lower=U, upper=L)``. On the event that the sequence covers the expected map ``p``
    (probability at least ``1 - alpha``), every band built later, at any sample size, that
    contains ``p`` has lower ends ``<= p <= U`` and upper ends ``>= p >= L``; top-K
    certificates are non-decreasing in the lower and non-increasing in the upper ends, so none
    certifies more than ``best_case``. Where ``best_case`` fails the target, no further
    sampling can reach it (on that event), and sampling stops; it also stops when ``n`` has
    reached ``max_samples``. Stopping early never makes a certificate unsound: the band is
    valid at any stopping time.

    Args:
        target (CertificationTarget): The target.
        certificate: Certificate from the current band.
        best_case: Certificate from the swapped band.
        n (Tensor): Samples drawn per example, ``(bsz,)``.
        max_samples (int): The budget ``N_max``.
        projected (optional): Certificate from the band forecast at ``N_max``; where given and
                    it misses the target, the example stops too (``futility="projected"``).

    Returns:
        Tensor: int8 codes ``(bsz,)``: ``CONTINUE`` (0), ``CERTIFIED`` (1) or
        ``CANNOT_CERTIFY`` (2).
    """
    certified = target.reached(certificate)
    hopeless = ~target.reached(best_case) | (n.to(certified.device) >= max_samples)
    if projected is not None:
        hopeless = hopeless | ~target.reached(projected)
    codes = torch.full(certified.shape, CONTINUE, dtype=torch.int8)
    codes[hopeless.cpu()] = CANNOT_CERTIFY
    codes[certified.cpu()] = CERTIFIED
    return codes
