"""Attacks on the top-K of a Laplace- or Gaussian-smoothed rank map.

Written independently of the package's certificate code (scipy bands, own projections).

The smoothed map q(x) = E s(x + eps) is differentiable even though s (a binary top-k' map of
|grad|) is piecewise constant: for a noise density p, grad q(x) = E[s(x + eps) * score(eps)]
with score = -grad log p (eps / sigma^2 for Gaussian, sign(eps) / b for Laplace). We estimate it
with antithetic pairs (eps, -eps) and descend on sum_i w_i q_i(x), with w = +1 on the current
top-K and -1 on the next K ranks, under an l1, l2 or l_inf budget.

The tests judge with tests/_smoothed_attack.py (shared with the Gaussian attack tests), which
never trusts point estimates: with simultaneous bands for q(x) and q(x'), it computes an upper
bound on |T_K(q(x)) ∩ T_K(q(x'))| valid for every pair of maps inside the bands. A certificate m
above that bound is a violation (up to the bands' failure probabilities).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

# ------------------------------------------------------------------------------------------------
# Per-sample maps and noise
# ------------------------------------------------------------------------------------------------


def binary_topk_maps(model, target: Tensor, keep: int) -> Callable[[Tensor], Tensor]:
    """z (rows, m, *shape) -> binary top-``keep`` maps of |d logit_target / dz|, (rows, m, d)."""

    def maps(z: Tensor) -> Tensor:
        rows, m = z.shape[:2]
        flat = z.reshape((rows * m,) + tuple(z.shape[2:])).detach().requires_grad_(True)
        with torch.enable_grad():
            out = model(flat).gather(1, target.repeat_interleave(m)[:, None]).sum()
            (grad,) = torch.autograd.grad(out, flat)
        a = grad.abs().reshape(rows, m, -1)
        order = torch.argsort(-a, dim=-1, stable=True)[..., :keep]
        return torch.zeros_like(a).scatter_(-1, order, 1.0)

    return maps


def draw_noise(kind: str, shape, scale: float, generator: torch.Generator) -> Tensor:
    if kind == "gaussian":
        return scale * torch.randn(shape, generator=generator)
    u = torch.rand((2,) + tuple(shape), generator=generator, dtype=torch.float64)
    return (scale * (torch.log1p(-u[1]) - torch.log1p(-u[0]))).to(torch.float32)


def score(kind: str, eps: Tensor, scale: float) -> Tensor:
    return eps / scale**2 if kind == "gaussian" else torch.sign(eps) / scale


def smoothed_counts(maps, x: Tensor, noise: str, scale: float, n: int, chunk: int, seed: int):
    """Counts of the binary maps over n fresh noisy copies of each row of x, (rows, d)."""
    g = torch.Generator().manual_seed(seed)
    total = 0
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        eps = draw_noise(noise, (x.shape[0], m) + tuple(x.shape[1:]), scale, g)
        total = total + maps(x.unsqueeze(1) + eps).sum(1)
    return total


# ------------------------------------------------------------------------------------------------
# Geometry
# ------------------------------------------------------------------------------------------------


def lp_norm(v: Tensor, p: float) -> Tensor:
    flat = v.flatten(1)
    if math.isinf(p):
        return flat.abs().amax(1)
    return flat.abs().pow(p).sum(1).pow(1 / p)


def project_l1(v: Tensor, radius: Tensor) -> Tensor:
    """Euclidean projection of each row onto the l1 ball (Duchi et al. 2008)."""
    flat = v.flatten(1)
    r = radius.reshape(-1, 1).to(flat.dtype)
    inside = flat.abs().sum(1, keepdim=True) <= r
    mu = flat.abs().sort(dim=1, descending=True).values
    cumsum = mu.cumsum(1)
    idx = torch.arange(1, flat.shape[1] + 1, dtype=flat.dtype)
    cond = mu - (cumsum - r) / idx > 0
    rho = cond.to(flat.dtype).mul(idx).argmax(1, keepdim=True)
    theta = (cumsum.gather(1, rho) - r) / (rho + 1).to(flat.dtype)
    projected = flat.sign() * (flat.abs() - theta).clamp_min(0)
    return torch.where(inside, flat, projected).reshape(v.shape)


def project(v: Tensor, radius: Tensor, p: float) -> Tensor:
    r = radius.reshape((-1,) + (1,) * (v.dim() - 1)).to(v.dtype)
    if math.isinf(p):
        return torch.maximum(torch.minimum(v, r), -r)
    if p == 2:
        norms = lp_norm(v, 2).reshape(r.shape)
        return v * torch.clamp(r / norms.clamp_min(1e-30), max=1.0)
    return project_l1(v, radius)


def steepest(grad: Tensor, p: float) -> Tensor:
    """Unit-norm (in l_p) direction of steepest ascent for the budget norm."""
    flat = grad.flatten(1)
    if math.isinf(p):
        d = flat.sign()
    elif p == 2:
        d = flat / flat.norm(dim=1, keepdim=True).clamp_min(1e-30)
    else:  # l1: move the few coordinates with the largest gradient (sparse l1 descent)
        top = flat.abs() >= flat.abs().topk(4, dim=1).values[:, -1:]
        d = flat.sign() * top
        d = d / d.abs().sum(1, keepdim=True).clamp_min(1)
    return d.reshape(grad.shape)


# ------------------------------------------------------------------------------------------------
# Attack
# ------------------------------------------------------------------------------------------------


def smoothed_topk_attack(
    maps,
    x: Tensor,
    weights: Tensor,
    radius: Tensor,
    p: float,
    *,
    noise: str,
    scale: float,
    pairs: int = 128,
    steps: int = 15,
    seed: int = 0,
) -> Tensor:
    """Minimize weights · q(x + delta) over ||delta||_p <= radius; returns the best delta."""
    g = torch.Generator().manual_seed(seed)
    rows = x.shape[0]
    delta = torch.zeros_like(x)
    best, best_val = delta.clone(), torch.full((rows,), math.inf)
    view = (rows, pairs) + (1,) * (x.dim() - 1)
    for i in range(steps):
        eps = draw_noise(noise, (rows, pairs) + tuple(x.shape[1:]), scale, g)
        centre = (x + delta).unsqueeze(1)
        j_plus = (maps(centre + eps) * weights.unsqueeze(1)).sum(-1)
        j_minus = (maps(centre - eps) * weights.unsqueeze(1)).sum(-1)
        val = 0.5 * (j_plus + j_minus).mean(1)
        better = val < best_val
        best_val = torch.where(better, val, best_val)
        best[better] = delta[better]
        grad = 0.5 * ((j_plus - j_minus).reshape(view) * score(noise, eps, scale)).mean(1)
        step = radius * 0.6 / (1 + i / 5)
        step = step.reshape((-1,) + (1,) * (x.dim() - 1))
        delta = project(delta - step * steepest(grad, p), radius, p)
    return best
