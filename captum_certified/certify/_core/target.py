"""A stopping target for sequential certification, and the decision made after each chunk."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any

import torch
from torch import Tensor

from captum_certified._utils.validation import check_count_spec, check_positive
from captum_certified.certify._core.certificate import check_overlap, needed_rank


class StopDecision(IntEnum):
    """What an example stopped on in sequential certification (``cert.stop_decision`` holds
    these codes as an int8 tensor, one per example).

    - ``CONTINUE`` (0): undecided (never recorded in a certificate);
    - overlap form: ``CERTIFIED`` (1) the target is certified, ``CANNOT_CERTIFY`` (2) it is
      out of reach, the budget is spent, or the forecast gave up;
    - radius form: ``RESOLVED`` (3) the radius is known to ``precision``, ``UNRESOLVED`` (4)
      sampling stopped without that (budget spent, or the forecast said more would not help).

    Examples::

        >>> int(StopDecision.RESOLVED), StopDecision(2).name
        (3, 'CANNOT_CERTIFY')
    """

    CONTINUE = 0
    CERTIFIED = 1
    CANNOT_CERTIFY = 2
    RESOLVED = 3
    UNRESOLVED = 4


CONTINUE, CERTIFIED, CANNOT_CERTIFY, RESOLVED, UNRESOLVED = (
    int(StopDecision.CONTINUE),
    int(StopDecision.CERTIFIED),
    int(StopDecision.CANNOT_CERTIFY),
    int(StopDecision.RESOLVED),
    int(StopDecision.UNRESOLVED),
)


@dataclass(frozen=True, kw_only=True, repr=False)
class CertificationTarget:
    r"""The question sequential certification answers for each example.

    Two forms, told apart by which of ``radius`` and ``precision`` is given (exactly one):

    - ``CertificationTarget(k=0.2, radius=0.1, overlap=0.5)``: "is the top-K overlap at
      ``radius`` at least ``overlap``?" Sampling stops for an example as soon as its
      certificate says yes, or as soon as no band containing the expected map could say yes
      (or the sample budget is spent).
    - ``CertificationTarget(k=0.2, overlap=0.5, precision=0.01)``: "what is the radius at
      which the top-K overlap is at least ``overlap``, up to ``precision``?" After each chunk,
      ``R_cert`` is the certified radius of the current band and ``R_best`` that of the best
      case (the swapped band, see :func:`sequential_decision`); sampling stops as soon as
      ``R_best - R_cert <= precision`` (both infinite, or both 0, count as equal), or the
      budget is spent.

    It is named ``stop_when`` in ``attribute`` (``target`` is Captum's class index). The
    certificate returned is always the confidence sequence's band at the stopping time, valid
    whatever the rule: the form only decides how many samples each example gets.

    What the radius form claims (:doc:`/certificates`, section 3b): with ``R*`` the radius this
    certificate's rule gives from the exact expected map ``p`` (a band of zero width), on the
    event that the sequence covers ``p`` (probability at least ``1 - alpha``, the certificate's
    own event), ``R_cert <= R* <= R_best`` at every sample size. So where the decision is
    ``RESOLVED``, no number of samples could certify more than ``precision`` beyond
    ``R_cert`` with this rule. It does not bound the true robustness radius of the smoothed
    map's top-K (the rule is a sufficient condition; the truth may be larger), and it claims
    nothing where the decision is ``UNRESOLVED``.

    Args:
        k (int or float): Top-K size, a count or a fraction of ``d``.
        radius (float, optional): Perturbation radius ``>= 0`` in the certificate's norm (the
                    overlap form). Default: None
        overlap (float): Required fraction of the top-K kept, in (0, 1].
        precision (float, optional): Width ``> 0`` to which the radius at ``overlap`` is
                    wanted, in the certificate's norm (the radius form). Default: None
        futility (str, optional): When an example may stop before ``N_max``:
                    ``"proven"`` only on a proof (on the confidence sequence's event): the
                    target is certified or no band containing the expected map could reach
                    it (overlap form), or the radius is known to ``precision`` (radius form);
                    ``"projected"`` also when the band forecast at ``N_max`` (from the current
                    variance and a mean ``forecast_margin`` standard errors more favourable in
                    every coordinate) misses the target (overlap form) or gives a radius
                    ``R_proj`` with ``R_proj - R_cert <= precision`` (radius form). A
                    forecast: it may stop an example that more samples would have certified
                    or resolved; it never makes a certificate unsound. Default: "proven"
        forecast_margin (float, optional): Standard errors (of the current mean) of optimism
                    in the ``"projected"`` forecast: lower ends forecast from
                    ``mean + margin * se``, upper ends from ``mean - margin * se``. 0 forecasts
                    from the mean itself (fewest samples); larger values give up later and
                    lose fewer examples that more samples would certify (measured in
                    :doc:`/certificates`, section 3b). Only with ``futility="projected"``.
                    Default: 0.0

    Arguments are keyword-only.

    Examples::

        >>> CertificationTarget(k=0.2, radius=0.1, overlap=0.5)
        CertificationTarget(k=0.2, radius=0.1, overlap=0.5, futility='proven')
        >>> CertificationTarget(k=0.2, overlap=0.5, precision=0.01)
        CertificationTarget(k=0.2, overlap=0.5, precision=0.01, futility='proven')
    """

    k: int | float
    radius: float | None = None
    overlap: float
    futility: str = "proven"
    precision: float | None = None
    forecast_margin: float = 0.0

    def __post_init__(self) -> None:
        if self.futility not in ("proven", "projected"):
            raise ValueError(f"`futility` must be 'proven' or 'projected', got {self.futility!r}")
        margin = check_positive(self.forecast_margin, "forecast_margin", allow_zero=True)
        if margin != 0.0 and self.futility != "projected":
            raise ValueError(
                "`forecast_margin` only shapes the forecast of futility='projected'; "
                f"got forecast_margin={margin!r} with futility={self.futility!r}"
            )
        check_count_spec(self.k, "k")
        if (self.radius is None) == (self.precision is None):
            raise ValueError(
                "give exactly one of `radius` (is the overlap certified at this radius?) and "
                "`precision` (the radius at this overlap, to this precision), got "
                f"radius={self.radius!r}, precision={self.precision!r}"
            )
        if self.radius is not None:
            check_positive(self.radius, "radius", allow_zero=True)
        else:
            check_positive(self.precision, "precision")
        check_overlap(self.overlap)

    def __repr__(self) -> str:
        question = (
            f"radius={self.radius!r}, overlap={self.overlap!r}"
            if self.precision is None
            else f"overlap={self.overlap!r}, precision={self.precision!r}"
        )
        margin = f", forecast_margin={self.forecast_margin!r}" if self.forecast_margin else ""
        return (
            f"{type(self).__name__}(k={self.k!r}, {question}, futility={self.futility!r}{margin})"
        )

    @property
    def searches_radius(self) -> bool:
        """Whether this is the radius form (``precision`` given) rather than the overlap form
        (``radius`` given)."""
        return self.precision is not None

    @staticmethod
    def _check(certificate: Any, query: str) -> None:
        if not hasattr(certificate, query):
            raise TypeError(
                f"a CertificationTarget needs a top-K certificate (with {query}); got "
                f"{type(certificate).__name__}"
            )

    def reached(self, certificate: Any) -> Tensor:
        """Whether each example's certificate certifies the target, ``(bsz,)`` bool (the
        overlap form only).

        Args:
            certificate: A top-K certificate (a ``certified_count(k, radius)`` method).
        """
        self._check(certificate, "certified_count")
        if self.radius is None:
            raise ValueError(
                "`reached` needs a target with a `radius`; this one asks for the radius "
                f"itself (precision={self.precision!r}): use `certified_radius`"
            )
        count = certificate._count(self.k)
        kept = certificate.certified_count(count, float(self.radius))
        return kept >= needed_rank(self.overlap, count)

    def certified_radius(self, certificate: Any) -> Tensor:
        """The certificate's radius at this target's ``k`` and ``overlap``, ``(bsz,)`` float64
        (``certificate.certified_radius(k, overlap)``: ``inf`` where every perturbation keeps
        the overlap, 0 where no positive radius is certified).

        Args:
            certificate: A top-K certificate (a ``certified_radius(k, overlap)`` method).
        """
        self._check(certificate, "certified_radius")
        return certificate.certified_radius(self.k, float(self.overlap))

    def within_precision(self, radius: Tensor, bound: Tensor) -> Tensor:
        """Whether ``bound - radius <= precision``, ``(bsz,)`` bool (the radius form only);
        equal values (both ``inf``, both 0) count as within, an infinite ``bound`` above a
        finite ``radius`` does not.

        Args:
            radius (Tensor): Certified radii ``R_cert``, ``(bsz,)``.
            bound (Tensor): Radii that bound it from above (``R_best``) or forecast it
                        (``R_proj``), ``(bsz,)``.
        """
        if self.precision is None:
            raise ValueError(
                "`within_precision` needs a target with a `precision`; this one asks whether "
                f"the overlap holds at radius={self.radius!r}"
            )
        bound = bound.to(radius.device)
        return (bound == radius) | (bound - radius <= float(self.precision))


def sequential_decision(
    target: CertificationTarget,
    certificate: Any,
    best_case: Any,
    n: Tensor,
    max_samples: int,
    projected: Any = None,
) -> Tensor:
    r"""The decision after a chunk, per example.

    A pure function of the streamed statistics: ``certificate`` is built from the current
    confidence-sequence band ``[L, U]`` and ``best_case`` from the swapped band
    ``(lower=U, upper=L)``. On the event that the sequence covers the expected map ``p``
    (probability at least ``1 - alpha``), every band built later, at any sample size, that
    contains ``p`` has lower ends ``<= p <= U`` and upper ends ``>= p >= L``; top-K
    certificates are non-decreasing in the lower and non-increasing in the upper ends, so none
    certifies more than ``best_case`` (nor does the zero-width band ``(p, p)``, and ``[L, U]``
    itself certifies no more than it). Stopping early never makes a certificate unsound: the
    band is valid at any stopping time.

    *Overlap form* (``target.radius`` given): ``CERTIFIED`` where ``certificate`` reaches the
    target; ``CANNOT_CERTIFY`` where ``best_case`` fails it (no further sampling can reach it,
    on that event), where ``n`` has reached ``max_samples``, or where ``projected`` misses it.

    *Radius form* (``target.precision`` given), with ``R_cert``, ``R_best`` and ``R_proj``
    the three certificates' radii at ``(k, overlap)``: ``RESOLVED`` where ``R_best - R_cert
    <= precision`` (on that event the radius ``R*`` of the exact map lies in
    ``[R_cert, R_best]``); ``UNRESOLVED`` where not but ``n`` has reached ``max_samples`` or
    ``R_proj - R_cert <= precision``.

    Args:
        target (CertificationTarget): The target.
        certificate: Certificate from the current band.
        best_case: Certificate from the swapped band.
        n (Tensor): Samples drawn per example, ``(bsz,)``.
        max_samples (int): The budget ``N_max``.
        projected (optional): Certificate from the band forecast at ``N_max``
                    (``futility="projected"``); where given, the example also stops when the
                    forecast says more samples would not help (see above).

    Returns:
        Tensor: int8 codes ``(bsz,)``: ``CONTINUE`` (0), and ``CERTIFIED`` (1) or
        ``CANNOT_CERTIFY`` (2) for the overlap form, ``RESOLVED`` (3) or ``UNRESOLVED`` (4)
        for the radius form.
    """
    spent = n >= max_samples
    if target.searches_radius:
        r_cert = target.certified_radius(certificate)
        done = target.within_precision(r_cert, target.certified_radius(best_case))
        give_up = spent.to(done.device)
        if projected is not None:
            give_up = give_up | target.within_precision(r_cert, target.certified_radius(projected))
        yes, no = RESOLVED, UNRESOLVED
    else:
        done = target.reached(certificate)
        give_up = ~target.reached(best_case) | spent.to(done.device)
        if projected is not None:
            give_up = give_up | ~target.reached(projected)
        yes, no = CERTIFIED, CANNOT_CERTIFY
    codes = torch.full(done.shape, CONTINUE, dtype=torch.int8)
    codes[give_up.cpu()] = no
    codes[done.cpu()] = yes
    return codes
