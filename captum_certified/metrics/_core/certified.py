#!/usr/bin/env python3
"""Certified metrics, read from certificates (never re-sampled)."""

from typing import Any

import torch
from captum.log import log_usage
from torch import Tensor

from captum_certified._utils.validation import check_count_spec, check_radius
from captum_certified.certify import Certificate, CosineCertificate, TopKCertificate


def _check_radius(radius: object) -> None:
    """A non-negative radius, a number or a real tensor (passed on unchanged)."""
    if isinstance(radius, Tensor) and (radius.is_complex() or radius.dtype == torch.bool):
        raise TypeError(f"`radius` must be a real number or a real tensor, got {radius.dtype}")
    check_radius(radius, "radius")  # type: ignore[arg-type]


def _read_certificate(
    certificate: Certificate, kind: type[Certificate], method_name: str, low: float, **kwargs: Any
) -> Tensor:
    """``certificate.<method_name>(**kwargs)`` of a ``kind`` certificate, checked to be a
    ``(bsz,)`` tensor in ``[low, 1]``."""
    if not isinstance(certificate, kind):
        raise TypeError(
            f"certificate must be a {kind.__name__} (captum_certified.certify), got "
            f"{type(certificate).__name__}"
        )
    return _check_output(
        getattr(certificate, method_name)(**kwargs), f"certificate.{method_name}", low
    )


@log_usage()
@torch.no_grad()
def certified_topk_intersection(
    certificate: TopKCertificate,
    k: int | float,
    radius: float | Tensor,
) -> Tensor:
    r"""
    Certified top-k intersection read from a certificate: a lower bound on
    :math:`|T_k(s(x)) \cap T_k(s(x + \delta))| / k` valid for every perturbation
    :math:`\|\delta\| \le` ``radius`` (in the certificate's norm), with the certificate's
    confidence.

    This calls ``certificate.topk_overlap(k=k, radius=radius)`` of a
    :class:`~captum_certified.certify.TopKCertificate` (e.g. the certificate returned with
    ``return_certificate=True`` by the smoothed attribution methods of
    :mod:`captum_certified.attr`); where nothing can be certified the certificate reports 0.
    Nothing is re-sampled here.

    Args:

        certificate (TopKCertificate): A top-K certificate; its ``topk_overlap(k=...,
                radius=...)`` returns a ``(bsz,)`` tensor of fractions in [0, 1].
        k (int or float): The top-k size, an ``int`` >= 1 or a ``float`` fraction in
                (0, 1] of the number of features (resolved by the certificate).
        radius (float or Tensor): The perturbation radius, non-negative (a tensor is passed
                through, e.g. one radius per example).

    Returns:

        **overlap** (Tensor):
                The certificate's ``(bsz,)`` certified overlap fractions.

    Examples::

        >>> attr, cert = ssg.attribute(x, target=y, return_certificate=True)
        >>> certified_topk_intersection(cert, k=0.2, radius=0.1)  # (bsz,)
        tensor([0.372, 0.398, 0.424, 0.431], dtype=torch.float64)
    """
    check_count_spec(k, "k")
    _check_radius(radius)
    return _read_certificate(certificate, TopKCertificate, "topk_overlap", 0.0, k=k, radius=radius)


def _check_output(out: object, what: str, low: float) -> Tensor:
    if not isinstance(out, Tensor):
        raise TypeError(f"{what} returned {type(out).__name__}, expected a (bsz,) tensor")
    if out.dim() != 1:
        raise ValueError(f"{what} returned shape {tuple(out.shape)}, expected (bsz,)")
    bad = (out < low) | (out > 1)
    if out.is_floating_point():
        bad = bad | torch.isnan(out)
    if bad.any():
        shown = out.tolist() if out.numel() <= 8 else out
        raise ValueError(f"{what} returned values outside [{low:g}, 1] (or NaN): {shown}")
    return out


@log_usage()
@torch.no_grad()
def certified_cosine_similarity(certificate: CosineCertificate, radius: float | Tensor) -> Tensor:
    r"""
    Certified cosine similarity read from a certificate: a lower bound on
    :math:`\cos(s(x), s(x + \delta))` valid for every perturbation of size at most ``radius``
    (the certificate's norm), e.g. the uniform-smoothing cosine bound of
    :mod:`captum_certified.certify`.

    This calls ``certificate.cosine_lower_bound(radius=radius)`` of a
    :class:`~captum_certified.certify.CosineCertificate` (or its cube variant). Nothing is
    re-sampled here.

    Args:

        certificate (CosineCertificate): A cosine certificate; its
                ``cosine_lower_bound(radius=...)`` returns a ``(bsz,)`` tensor in [-1, 1].
        radius (float or Tensor): The perturbation size, non-negative (a tensor is passed
                through, e.g. one radius per example).

    Returns:

        **cosine** (Tensor):
                The certificate's ``(bsz,)`` certified lower bounds.

    Examples::

        >>> attr, cert = usa.attribute(x, target=y, return_certificate=True)
        >>> certified_cosine_similarity(cert, radius=0.05)  # (bsz,)
        tensor([0., 0., 0., 0.], dtype=torch.float64)
    """
    _check_radius(radius)
    return _read_certificate(
        certificate, CosineCertificate, "cosine_lower_bound", -1.0, radius=radius
    )
