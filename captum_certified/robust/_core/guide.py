"""Smoothed explainers with a graph: a Monte-Carlo "guide" over fixed or fresh noise draws.

SmoothGrad and Sparsified SmoothGrad average a per-sample map over Gaussian noise. The binary
top-tau map of Sparsified SmoothGrad is piecewise constant in the input, so it has no useful
gradient; like Levine et al.'s "guider", the attacks differentiate a smooth per-sample map
averaged over ``n_guide`` noisy copies (``create_graph=True``) and evaluate the real map without
a graph.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from captum_certified._utils.expansion import expand_additional_forward_args
from captum_certified.attr._core.noise_scale import expand_scale
from captum_certified.noise import GaussianNoise
from captum_certified.robust._core.gradients import input_gradients
from captum_certified.transforms import TopKBinarize

Tensors = tuple[Tensor, ...]

#: Per-sample maps of the smoothed explainers.
#: ``abs_grad``: ``|g|`` (SmoothGrad over Saliency, as NoiseTunnel(Saliency) computes it);
#: ``normalized_abs_grad``: ``|g| / sum |g|`` over all features of the example (Levine et al.'s
#: guide); ``binary_topk``: 1 on the top-tau entries of ``|g|`` (Sparsified SmoothGrad).
SAMPLE_MAPS = ("abs_grad", "normalized_abs_grad", "binary_topk")


def draw_noise(
    inputs: Tensors,
    n: int,
    scales: Tensors,
    generator: torch.Generator | None,
) -> Tensors:
    """Gaussian noise for ``n`` copies of every example, rows ordered ``[x0 + e0, ..., x0 +
    e(n-1), x1 + e0, ...]`` (Captum's repeat_interleave layout), drawn with ``generator``."""
    shapes = [(x.shape[0] * n,) + tuple(x.shape[1:]) for x in inputs]
    expanded = [expand_scale(s, x, n) for s, x in zip(scales, inputs)]
    return GaussianNoise().sample(
        shapes, expanded, generator=generator, dtype=inputs[0].dtype, device=inputs[0].device
    )


def smoothed_map(
    model: Callable[..., Tensor],
    inputs: Tensors,
    target: Tensor | None,
    args: tuple,
    noise: Tensors,
    sample_map: str,
    *,
    create_graph: bool,
    sparsity: int | float = 0.1,
) -> Tensors:
    r"""``(1/n) sum_t s(x + eps_t)`` for the per-sample map ``s`` named by ``sample_map``.

    The gradient of each noisy copy is taken for the example's ``target`` (the same class for
    every copy). With ``create_graph`` (only meaningful for the smooth maps) the result is
    differentiable in ``inputs``.
    """
    batch = inputs[0].shape[0]
    n = noise[0].shape[0] // batch
    noisy = tuple(x.repeat_interleave(n, dim=0) + e for x, e in zip(inputs, noise))
    tgt = None if target is None else target.repeat_interleave(n)
    grads = input_gradients(
        model,
        noisy,
        tgt,
        expand_additional_forward_args(args, n) or (),
        create_graph=create_graph and sample_map != "binary_topk",
    )
    mags = [g.abs() for g in grads]
    if sample_map == "abs_grad":
        per = mags
    else:
        sizes = [int(m[0].numel()) for m in mags]
        flat = torch.cat([m.reshape(m.shape[0], -1) for m in mags], dim=1)
        if sample_map == "normalized_abs_grad":
            flat = flat / flat.sum(dim=1, keepdim=True).clamp_min(torch.finfo(flat.dtype).tiny)
        else:
            flat = TopKBinarize(sparsity)(flat.detach())
        per = [p.reshape(m.shape) for p, m in zip(flat.split(sizes, dim=1), mags)]
    return tuple(p.reshape((batch, n) + tuple(p.shape[1:])).mean(dim=1) for p in per)
