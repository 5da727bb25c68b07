"""The share of certified features (Anani et al.'s %certified), read from a certificate."""

from __future__ import annotations

import torch
from captum.log import log_usage
from torch import Tensor

from captum_certified._utils.validation import check_radius
from captum_certified.certify import FeatureCertificate


def _certified_map(certificate: FeatureCertificate, radius: float | Tensor) -> Tensor:
    if not isinstance(certificate, FeatureCertificate):
        raise TypeError(
            "certificate must be a FeatureCertificate (captum_certified.certify: its "
            "certified_map(radius) is read), got "
            f"{type(certificate).__name__}"
        )
    return certificate.certified_map(radius)


def _select(tri: Tensor, side: str) -> Tensor:
    if side == "any":
        return tri != 0
    if side == "important":
        return tri > 0
    if side == "unimportant":
        return tri < 0
    raise ValueError(f"`side` must be 'any', 'important' or 'unimportant', got {side!r}")


@log_usage()
@torch.no_grad()
def certified_fraction(
    certificate: FeatureCertificate, radii: float | Tensor, side: str = "any"
) -> Tensor:
    r"""Share of features certified at each radius: the %certified-vs-radius curve.

    A feature counts at radius ``r`` when the certificate keeps its side (important or
    unimportant, see ``side``) for every l2 perturbation of norm up to ``r``. Abstentions count
    as not certified. Nothing is re-sampled.

    Args:
        certificate (FeatureCertificate): A per-feature certificate; its
                    ``certified_map(radius)`` is a ``(bsz, d)`` map in {+1, -1, 0}.
        radii (float or Tensor): A radius ``>= 0`` or a 1-D tensor of radii.
        side (str, optional): ``"any"``, ``"important"`` or ``"unimportant"``. Default: "any"

    Returns:
        Tensor: float64 fractions, ``(bsz,)`` for a scalar radius, else ``(bsz, len(radii))``.

    Examples::

        >>> certified_fraction(cert, torch.linspace(0, 0.3, 7))  # (bsz, 7)
        tensor([[0.701, 0.569, 0.445, 0.302, 0.175, 0.092, 0.000],
                [0.726, 0.606, 0.475, 0.350, 0.217, 0.144, 0.000],
                [0.727, 0.584, 0.455, 0.325, 0.225, 0.161, 0.000],
                [0.730, 0.600, 0.470, 0.345, 0.243, 0.166, 0.000]],
               dtype=torch.float64)
    """
    grid = check_radius(radii, "radii")
    if grid.dim() > 1:
        raise ValueError(f"`radii` must be a scalar or 1-D, got shape {tuple(grid.shape)}")
    values = [
        _select(_certified_map(certificate, float(r)), side).to(torch.float64).mean(dim=-1)
        for r in grid.reshape(-1)
    ]
    out = torch.stack(values, dim=-1)
    return out[..., 0] if grid.dim() == 0 else out
