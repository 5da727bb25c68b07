"""Perturbation geometry: steps, projections onto l_inf / l2 balls, random starts, box clamp.

Tuple inputs are one perturbation: the l2 norm is taken over the concatenated features of all
input tensors of an example (the norm the certificates of this package speak about), the l_inf
norm per element.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from captum_certified._utils.norms import parse_norm

#: Canonical (Captum) spellings of the attack norms; any case and ``inf``/``2`` also parse.
NORMS = ("Linf", "L2")
Tensors = tuple[Tensor, ...]


def check_norm(norm: str | float) -> str:
    """The attack norm in Captum's spelling, ``"Linf"`` or ``"L2"``.

    Parsed by the package's one norm parser (case-insensitive: ``"linf"``, ``"inf"``,
    ``float("inf")``, ``"l2"``, ``2``); any other l_p norm raises ``ValueError``.
    """
    try:
        p = parse_norm(norm)
    except (TypeError, ValueError):
        p = None
    if p == math.inf:
        return "Linf"
    if p == 2.0:
        return "L2"
    raise ValueError(f"`norm` must be one of {NORMS} (any case), got {norm!r}")


def _is_linf(norm: str | float) -> bool:
    return check_norm(norm) == "Linf"


def _rows(norms: Tensor, like: Tensor) -> Tensor:
    return norms.reshape((-1,) + (1,) * (like.dim() - 1))


def joint_l2_norm(deltas: Tensors) -> Tensor:
    """l2 norm of each example's perturbation over all tensors, shape ``(bsz,)``."""
    parts = [d.reshape(d.shape[0], -1).pow(2).sum(dim=1) for d in deltas]
    sq = parts[0]
    for part in parts[1:]:
        sq = sq + part
    return sq.sqrt()


def joint_linf_norm(deltas: Tensors) -> Tensor:
    """l_inf norm of each example's perturbation over all tensors, shape ``(bsz,)``."""
    per = [d.reshape(d.shape[0], -1).abs().amax(dim=1) for d in deltas]
    return torch.stack(per).amax(dim=0)


def perturbation_norm(deltas: Tensors, norm: str) -> Tensor:
    return joint_linf_norm(deltas) if _is_linf(norm) else joint_l2_norm(deltas)


def project(x0: Tensors, x: Tensors, radius: Tensor | None, norm: str) -> Tensors:
    """Project ``x`` onto the ball of ``radius`` (shape ``(bsz,)``) around ``x0``."""
    if radius is None:
        return x
    deltas = tuple(a - b for a, b in zip(x, x0))
    if _is_linf(norm):
        out = []
        for d, c in zip(deltas, x0):
            r = _rows(radius.to(d.dtype), d)
            out.append(c + torch.maximum(torch.minimum(d, r), -r))
        return tuple(out)
    norms = joint_l2_norm(deltas)
    factor = torch.clamp(radius.to(norms.dtype) / norms.clamp_min(1e-30), max=1.0)
    return tuple(c + d * _rows(factor, d) for d, c in zip(deltas, x0))


def clamp_box(x: Tensors, lower: float, upper: float) -> Tensors:
    """Clamp to the input box ``[lower, upper]``."""
    return tuple(t.clamp(min=lower, max=upper) for t in x)


def normalized(g: Tensors, norm: str) -> Tensors:
    """Steepest-ascent direction of unit norm: ``sign(g)`` (l_inf) or ``g / ||g||_2`` (l2).

    Rows with a zero gradient get a zero direction.
    """
    if _is_linf(norm):
        return tuple(t.sign() for t in g)
    norms = joint_l2_norm(g)
    inv = torch.where(norms > 0, 1.0 / norms.clamp_min(1e-30), torch.zeros_like(norms))
    return tuple(t * _rows(inv, t) for t in g)


def step(x: Tensors, direction: Tensors, size: Tensor, masks: tuple) -> Tensors:
    """``x + size * mask * direction`` with a per-example ``size`` of shape ``(bsz,)``."""
    return tuple(t + _rows(size.to(t.dtype), t) * m * d for t, d, m in zip(x, direction, masks))


def random_direction(x0: Tensors, masks: tuple, generator: torch.Generator | None) -> Tensors:
    """Gaussian noise on the masked features (drawn where the generator lives)."""
    out = []
    for t, m in zip(x0, masks):
        dev = generator.device if generator is not None else t.device
        g = torch.randn(t.shape, generator=generator, dtype=t.dtype, device=dev).to(t.device)
        out.append(g * m)
    return tuple(out)


def random_start(
    x0: Tensors,
    radius: Tensor,
    norm: str,
    masks: tuple,
    generator: torch.Generator | None,
    *,
    on_sphere: bool = False,
) -> Tensors:
    """A random point of the ball (or of its sphere) around ``x0``, on the masked features.

    l_inf: uniform in the cube (each coordinate ``+-radius`` on the sphere); l2: uniform in the
    ball, or uniform on the sphere with ``on_sphere=True``.
    """
    if _is_linf(norm):
        out = []
        for t, m in zip(x0, masks):
            dev = generator.device if generator is not None else t.device
            u = torch.rand(t.shape, generator=generator, dtype=t.dtype, device=dev).to(t.device)
            u = (u > 0.5).to(t.dtype) * 2 - 1 if on_sphere else 2 * u - 1
            out.append(t + u * _rows(radius.to(t.dtype), t) * m)
        return tuple(out)
    g = random_direction(x0, masks, generator)
    unit = normalized(g, "L2")
    r = radius.to(x0[0].dtype)
    if not on_sphere:
        d = sum(int(t[0].numel()) for t in x0)
        dev = generator.device if generator is not None else x0[0].device
        u = torch.rand(r.shape, generator=generator, dtype=r.dtype, device=dev).to(r.device)
        r = r * u.pow(1.0 / d)
    return tuple(t + _rows(r, t) * e for t, e in zip(x0, unit))
