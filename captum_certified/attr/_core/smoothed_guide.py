"""Smoothed explainers of the attacks, computed by the engine's sampling core.

SmoothGrad and Sparsified SmoothGrad average a per-sample map over Gaussian noise. The binary
top-tau map of Sparsified SmoothGrad is piecewise constant in the input, so it has no useful
gradient; like Levine et al.'s "guider", the attacks differentiate a smooth per-sample map
averaged over ``n_guide`` noisy copies and evaluate the real map without a graph. Both are
:class:`~captum_certified.attr.CertifiedWrapper` runs over ``Saliency`` (the evaluation map of
``"binary_topk"`` *is* :class:`~captum_certified.attr.SparseSmoothGrad`), so the attacked map
is the certified map by construction: same noise layout, method, transform and chunking.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from captum.attr import Saliency
from torch import Tensor

from captum_certified.attr._core.certified_wrapper import CertifiedWrapper
from captum_certified.attr._core.sparse_smoothgrad import SparseSmoothGrad
from captum_certified.transforms import AttributionTransform

Tensors = tuple[Tensor, ...]

#: Per-sample maps of the smoothed explainers.
#: ``abs_grad``: ``|g|`` (SmoothGrad over Saliency, as NoiseTunnel(Saliency) computes it);
#: ``normalized_abs_grad``: ``|g| / sum |g|`` over all features of the example (Levine et al.'s
#: guide); ``binary_topk``: 1 on the top-tau entries of ``|g|`` (Sparsified SmoothGrad).
SAMPLE_MAPS = ("abs_grad", "normalized_abs_grad", "binary_topk")


class _AbsSumNormalize(AttributionTransform):
    """``|a| / sum |a|`` per row (Levine et al.'s smooth guide); values in [0, 1]."""

    kind = "unit"

    def __call__(self, attributions: Tensor) -> Tensor:
        mags = attributions.abs()
        total = mags.sum(dim=1, keepdim=True)
        return mags / total.clamp_min(torch.finfo(mags.dtype).tiny)


def smoothed_wrapper(
    model: Callable[..., Tensor], sample_map: str, sparsity: int | float = 0.1
) -> CertifiedWrapper:
    """The engine instance computing ``sample_map`` smoothed over noise for ``model``."""
    if sample_map == "binary_topk":
        return SparseSmoothGrad(model, sparsity)
    if sample_map == "abs_grad":
        return CertifiedWrapper(Saliency(model))
    if sample_map == "normalized_abs_grad":
        return CertifiedWrapper(Saliency(model), transform=_AbsSumNormalize())
    raise ValueError(f"`sample_map` must be one of {SAMPLE_MAPS}, got {sample_map!r}")


def _call_kwargs(
    target: Tensor | None,
    args: tuple,
    n: int,
    chunk: int | None,
    stdevs: object,
    generator: torch.Generator | None,
) -> dict:
    return {
        "target": target,
        "additional_forward_args": args if args else None,
        "nt_samples": n,
        "nt_samples_batch_size": chunk,
        "stdevs": stdevs,
        "generator": generator,
    }


def smoothed_map(
    model: Callable[..., Tensor],
    inputs: Tensors,
    target: Tensor | None,
    args: tuple,
    sample_map: str,
    *,
    n: int,
    chunk: int | None,
    stdevs: object,
    generator: torch.Generator | None,
    create_graph: bool,
    sparsity: int | float = 0.1,
) -> Tensors:
    r"""``(1/n) sum_t s(x + eps_t)`` for the per-sample map ``s`` named by ``sample_map``.

    The gradient of each noisy copy is taken for the example's ``target`` (the same class for
    every copy). With ``create_graph`` (only meaningful for the smooth maps) the result is
    differentiable in ``inputs``; otherwise it is the engine's streamed (certified) estimate.
    """
    wrapper = smoothed_wrapper(model, sample_map, sparsity)
    kwargs = _call_kwargs(target, args, n, chunk, stdevs, generator)
    if create_graph and sample_map != "binary_topk":
        out = wrapper.attribute(inputs, create_graph=True, **kwargs)
    else:
        out = wrapper.attribute(tuple(x.detach() for x in inputs), **kwargs)
    return out


def smoothed_map_loss_gradient(
    model: Callable[..., Tensor],
    inputs: Tensors,
    target: Tensor | None,
    args: tuple,
    sample_map: str,
    loss_fn: Callable[[Tensors], Tensor],
    *,
    n: int,
    chunk: int | None,
    stdevs: object,
    generator: torch.Generator | None,
) -> tuple[Tensor, Tensors]:
    """``loss_fn`` of the smoothed map and its gradient w.r.t. ``inputs``, memory bounded by
    ``chunk`` (see :meth:`CertifiedWrapper.loss_gradient`)."""
    wrapper = smoothed_wrapper(model, sample_map)
    return wrapper.loss_gradient(
        inputs,
        lambda m: loss_fn(m if isinstance(m, tuple) else (m,)),
        wrt=inputs,
        **_call_kwargs(target, args, n, chunk, stdevs, generator),
    )
