"""Inner maximisations of the min-max losses: l_inf PGD with a random start.

The steps, projections, random starts and box clamps are those of the attribution attacks
(:mod:`captum_certified._utils.geometry`); only the objective differs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from captum_certified._utils import geometry


def linf_pgd(
    objective: Callable[[Tensor], Tensor] | None,
    x: Tensor,
    radius: float,
    step_size: float,
    step_num: int,
    lower: float,
    upper: float,
    *,
    random_start: bool = True,
    generator: torch.Generator | None = None,
    mask: Tensor | None = None,
    init: Tensor | None = None,
) -> Tensor:
    r"""Maximise ``objective(x')`` (one value per example, summed for the gradient) over
    ``||x' - x||_inf <= radius`` and the box, by ``step_num`` sign-ascent steps::

        x'_(t+1) = clip_box( x + clip_eps( x'_t + step_size * sign(grad) - x ) )

    starting at ``x + U(-radius, radius)`` clipped to the box (or at ``x``). ``mask``
    (0/1, broadcastable to ``x``) freezes features; ``init`` replaces the start. With
    ``step_num=0`` the start is returned. Returns the last iterate, detached.
    """
    x0: tuple[Tensor, ...] = (x.detach(),)
    masks = (torch.ones((), dtype=x.dtype, device=x.device) if mask is None else mask,)
    radii = torch.full((x.shape[0],), float(radius), dtype=x.dtype, device=x.device)
    size = torch.full_like(radii, float(step_size))
    cur: tuple[Tensor, ...] = x0
    if init is not None:
        cur = (init.detach(),)
    elif random_start:
        cur = geometry.clamp_box(
            geometry.random_start(x0, radii, "Linf", masks, generator), lower, upper
        )
    if step_num and objective is None:
        raise ValueError("`objective` is needed when `step_num` > 0")
    for _ in range(step_num):
        assert objective is not None
        point = cur[0].detach().requires_grad_()
        with torch.enable_grad():
            value = objective(point).sum()
            (grad,) = torch.autograd.grad(value, point)
        cur = geometry.step((point.detach(),), geometry.normalized((grad,), "Linf"), size, masks)
        cur = geometry.clamp_box(geometry.project(x0, cur, radii, "Linf"), lower, upper)
    return cur[0].detach()
