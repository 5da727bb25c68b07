"""l2 attacks on the top-K of a Gaussian-smoothed binary top-tau saliency map, and a sound judge.

Used by the attack-based soundness tests of the certificates: certify at rho, attack the smoothed
map inside the rho-ball, re-estimate the attacked map with fresh samples and its own band; the
band-adjusted overlap must never fall below the certified one (docs/levine.rst, "Our numbers and
the paper's"; the rule being attacked is in docs/certificates.rst). Everything here is
written independently of the package's certificate code: the band is an exact Clopper-Pearson band
computed with scipy, and the judge below is a *provable upper bound* on the overlap of the true
(expected) top-K sets, so Monte-Carlo error can never manufacture a violation.

The binary top-tau map has zero gradient, so the attacks use either

- a differentiable surrogate (Levine et al.'s l2 attack, docs/robust.rst, AttributionL2Attack:
  random starts on the sphere, normalized steps of decaying length, projection, step halving
  until the label holds): the smoothed soft saliency of a softplus copy of the model, on a fixed
  set of noise draws (common random numbers), with second-order gradients; or
- the exact gradient of the *smoothed* binary map, which is differentiable because of the Gaussian
  noise: grad E s(x + eps) = E[s(x + eps) eps] / sigma^2 (Stein's lemma), estimated with antithetic
  pairs. This attacks the very quantity the certificate speaks about.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import numpy as np
import torch
from scipy import stats
from torch import Tensor, nn

# ------------------------------------------------------------------------------------------------
# Bands and the judge
# ------------------------------------------------------------------------------------------------


def clopper_pearson_band(counts: Tensor, n: int, alpha: float) -> tuple[Tensor, Tensor]:
    """Simultaneous exact band over the d coordinates of each row (Bonferroni over 2d tails)."""
    k = counts.to(torch.float64).numpy()
    tail = alpha / (2 * k.shape[-1])
    with np.errstate(all="ignore"):
        lower = np.where(k > 0, stats.beta.ppf(tail, k, n - k + 1), 0.0)
        upper = np.where(k < n, stats.beta.isf(tail, k + 1, n - k), 1.0)
    return torch.from_numpy(lower), torch.from_numpy(upper)


def _kth_largest(v: Tensor, k: int) -> Tensor:
    return v.topk(k, dim=-1).values[..., -1:]


def possibly_in_topk(lower: Tensor, upper: Tensor, k: int) -> Tensor:
    """Features that may belong to some top-k of some map p with lower <= p <= upper.

    Feature j is provably out if upper_j < L_(k), the k-th largest lower bound: k other features
    then have p_i >= L_(k) > upper_j >= p_j (j cannot be one of them since lower_j <= upper_j).
    """
    return upper >= _kth_largest(lower, k)


def surely_in_topk(lower: Tensor, upper: Tensor, k: int) -> Tensor:
    """Features in every top-k (any tie-breaking) of every map p with lower <= p <= upper.

    If j were left out, the k members of the top-k and j itself would all have upper >= lower_j,
    so U_(k+1) >= lower_j. Hence lower_j > U_(k+1) forces j in.
    """
    if k >= lower.shape[-1]:
        return torch.ones_like(lower, dtype=torch.bool)
    return lower > _kth_largest(upper, k + 1)


def overlap_upper_bound(
    lower_a: Tensor, upper_a: Tensor, lower_b: Tensor, upper_b: Tensor, k: int
) -> Tensor:
    """Upper bound on |T_k(p) ∩ T_k(q)| for all p in [lower_a, upper_a], q in [lower_b, upper_b].

    Three valid bounds, take the smallest: the overlap lies inside (possible in a) ∩ (possible in
    b); and T_k(p) has k members including every sure member of a, so the sure members of a that
    are impossible in b are missing from the overlap (and symmetrically).
    """
    pos_a, pos_b = possibly_in_topk(lower_a, upper_a, k), possibly_in_topk(lower_b, upper_b, k)
    sure_a, sure_b = surely_in_topk(lower_a, upper_a, k), surely_in_topk(lower_b, upper_b, k)
    both = (pos_a & pos_b).sum(-1)
    lost_a = k - (sure_a & ~pos_b).sum(-1)
    lost_b = k - (sure_b & ~pos_a).sum(-1)
    return torch.stack([both, lost_a, lost_b]).min(0).values.clamp(max=k)


def topk_overlap(p: Tensor, q: Tensor, k: int) -> Tensor:
    """Point-estimate overlap |T_k(p) ∩ T_k(q)| per row."""
    in_p = torch.zeros_like(p, dtype=torch.bool).scatter_(-1, p.topk(k, dim=-1).indices, True)
    in_q = torch.zeros_like(q, dtype=torch.bool).scatter_(-1, q.topk(k, dim=-1).indices, True)
    return (in_p & in_q).sum(-1)


# ------------------------------------------------------------------------------------------------
# Geometry
# ------------------------------------------------------------------------------------------------


def _norms(v: Tensor) -> Tensor:
    return v.flatten(1).norm(dim=1).reshape((-1,) + (1,) * (v.dim() - 1))


def project_l2(delta: Tensor, radius: Tensor) -> Tensor:
    """Project each row of ``delta`` onto the l2 ball of its radius (``radius`` of shape (B,))."""
    r = radius.to(delta.dtype).reshape(_norms(delta).shape)
    return delta * torch.clamp(r / _norms(delta).clamp_min(1e-30), max=1.0)


def on_sphere(direction: Tensor, radius: Tensor) -> Tensor:
    """Rescale each row of ``direction`` to l2 norm ``radius``."""
    r = radius.to(direction.dtype).reshape(_norms(direction).shape)
    return direction * r / _norms(direction).clamp_min(1e-30)


def random_on_sphere(like: Tensor, radius: Tensor, generator: torch.Generator) -> Tensor:
    return on_sphere(torch.randn(like.shape, generator=generator, dtype=like.dtype), radius)


# ------------------------------------------------------------------------------------------------
# Attacks
# ------------------------------------------------------------------------------------------------


def softplus_copy(model: nn.Module, beta: float) -> nn.Module:
    """A deep copy of ``model`` with every nn.ReLU replaced by nn.Softplus(beta)."""
    twin = copy.deepcopy(model)
    for module in list(twin.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, nn.ReLU):
                setattr(module, name, nn.Softplus(beta=beta))
    return twin


def _normalized_step(
    delta: Tensor, grad: Tensor, step: Tensor, radius: Tensor, keep: Tensor
) -> Tensor:
    """Descend along the normalized gradient and project; rows with ``keep`` False stay put."""
    shape = (-1,) + (1,) * (delta.dim() - 1)
    direction = on_sphere(grad, torch.ones_like(radius))
    moved = project_l2(delta - step.reshape(shape) * direction, radius)
    return torch.where(keep.reshape(shape), moved, delta)


def surrogate_attack(
    twin: nn.Module,
    x: Tensor,
    target: Tensor,
    radius: Tensor,
    weights: Tensor,
    sigma: float,
    tau: int,
    *,
    start: Tensor,
    samples: int = 64,
    steps: int = 30,
    temperature: float = 0.1,
    generator: torch.Generator,
) -> Tensor:
    """Levine-style l2 attack on a differentiable surrogate of the smoothed binary map.

    Per noisy sample, the soft top-tau map sigmoid((|g| - t) / (temperature * mean|g|)), with t
    halfway between the tau-th and (tau+1)-th largest |g| (g: input gradient of the target logit
    of the softplus ``twin``), is averaged over ``samples`` fixed noise draws per row; the
    objective ``sum_i weights_i * map_i`` is minimized by normalized-gradient steps (length
    radius / 2, decaying) projected onto each row's l2 ball. Returns the best iterate per row
    under the surrogate objective.
    """
    rows, d = x.shape[0], x[0].numel()
    eps = sigma * torch.randn((rows, samples) + tuple(x.shape[1:]), generator=generator)
    tgt = target.repeat_interleave(samples).unsqueeze(1)

    def objective(delta: Tensor) -> Tensor:
        z = ((x + delta).unsqueeze(1) + eps).reshape((rows * samples,) + tuple(x.shape[1:]))
        out = twin(z).gather(1, tgt).sum()
        (g,) = torch.autograd.grad(out, z, create_graph=True)
        a = g.abs().reshape(rows, samples, d)
        top = a.topk(tau + 1, dim=-1).values
        thr = 0.5 * (top[..., tau - 1 : tau] + top[..., tau : tau + 1])
        soft = torch.sigmoid((a - thr) / (temperature * a.mean(-1, keepdim=True) + 1e-12))
        return (soft.mean(1) * weights).sum(-1)

    delta = start.clone()
    best_val = torch.full((rows,), math.inf)
    best = delta.clone()
    for i in range(steps):
        delta = delta.detach().requires_grad_()
        val = objective(delta)
        (grad,) = torch.autograd.grad(val.sum(), delta)
        with torch.no_grad():
            better = val < best_val
            best_val = torch.where(better, val, best_val)
            best[better] = delta[better]
            step = 0.5 * radius / (1 + i / 8)
            delta = _normalized_step(delta, grad, step, radius, grad.flatten(1).norm(dim=1) > 0)
    return best.detach()


def stein_attack(
    smoothed_samples: Callable[[Tensor], Tensor],
    x: Tensor,
    radius: Tensor,
    weights: Tensor,
    sigma: float,
    *,
    start: Tensor,
    pairs: int = 128,
    steps: int = 20,
    generator: torch.Generator,
) -> Tensor:
    """l2 attack on the exact smoothed binary map via Stein's lemma (zeroth order).

    ``smoothed_samples(z)`` maps noisy inputs of shape (rows, m, *x.shape[1:]) to their binary
    top-tau maps of shape (rows, m, d). For J(x) = weights · E s(x + eps),
    grad J = E[(J_s(x + sigma u) - J_s(x - sigma u)) u] / (2 sigma) with antithetic pairs. The
    best iterate per row is kept by the (noisy) objective.
    """
    rows = x.shape[0]
    delta = start.clone()
    best_val = torch.full((rows,), math.inf)
    best = delta.clone()
    view = (rows, pairs) + (1,) * (x.dim() - 1)
    for i in range(steps):
        u = torch.randn((rows, pairs) + tuple(x.shape[1:]), generator=generator)
        centre = (x + delta).unsqueeze(1)
        s_plus = smoothed_samples(centre + sigma * u)
        s_minus = smoothed_samples(centre - sigma * u)
        j_plus = (s_plus * weights.unsqueeze(1)).sum(-1)
        j_minus = (s_minus * weights.unsqueeze(1)).sum(-1)
        val = 0.5 * (j_plus + j_minus).mean(1)
        better = val < best_val
        best_val = torch.where(better, val, best_val)
        best[better] = delta[better]
        grad = ((j_plus - j_minus).reshape(view) * u).mean(1) / (2 * sigma)
        step = 0.5 * radius / (1 + i / 8)
        delta = _normalized_step(delta, grad, step, radius, grad.flatten(1).norm(dim=1) > 0)
    return best
