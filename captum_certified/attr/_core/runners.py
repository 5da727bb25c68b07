"""Runners: carry out a resolved :class:`~plan.Plan` on the sampling loop of ``sampling.py``.

- :func:`run_stream`: statistics chunk by chunk without a graph, then the smoothed maps (and
  the convergence deltas and the certificate the plan asks for);
- :func:`run_graph`: the smoothed map with every chunk's graph kept (``create_graph=True``);
- :func:`run_loss_gradient`: a loss of the smoothed map and its gradient, in memory bounded by
  the chunk (two passes over the same noise).

A runner trusts its plan: every argument was checked when the plan was built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import torch
from torch import Tensor

from captum_certified._utils.validation import rng_guard
from captum_certified.attr._core import sampling
from captum_certified.attr._core.certification_conditions import batch_statistics_guard
from captum_certified.attr._core.method_call import MethodCall
from captum_certified.attr._core.noise_scale import smallest_scale
from captum_certified.attr._core.plan import Plan
from captum_certified.certify import Certifier, StreamingMoments
from captum_certified.transforms import AttributionTransform

Tensors = tuple[Tensor, ...]


def method_call(plan: Plan) -> MethodCall:
    """The per-sample call of ``plan``'s method (every runner's)."""
    return MethodCall(
        plan.method,
        plan.inputs,
        plan.is_tuple,
        plan.method_kwargs,
        draw_baseline_from_distrib=plan.draw_baseline_from_distrib,
        generator=plan.generator,
        collect_deltas=plan.want_delta,
    )


def _chunks(
    plan: Plan, call: MethodCall, generator: torch.Generator | None, create_graph: bool
) -> Iterator[tuple[int, Tensors]]:
    return sampling.sample_chunks(
        plan.inputs,
        plan.scales,
        plan.noise,
        plan.nt_samples,
        plan.chunk,
        generator,
        call,
        create_graph=create_graph,
        requires_grad=plan.requires_grad,
    )


def _reduce(stats: StreamingMoments, nt_type: str) -> Tensor:
    if nt_type == "smoothgrad":
        return stats.mean
    if nt_type == "smoothgrad_sq":
        return stats.second_moment
    return stats.variance


class SampleCheck:
    """The certifier's check of every chunk of transformed maps, without a host sync per chunk.

    The chunks' :meth:`~captum_certified.certify.Certifier.sample_summary` are combined on the
    device (elementwise maximum) and checked once after sampling, before the certificate is
    built: the same errors, and the sampling loop never waits for the host. A certifier that
    overrides ``check_samples`` itself is called on every chunk, as before.
    """

    def __init__(self, certifier: Certifier, transform: AttributionTransform) -> None:
        self.certifier, self.transform = certifier, transform
        self.per_chunk = type(certifier).check_samples is not Certifier.check_samples
        self.summary: Tensor | None = None

    def see(self, maps: Tensor) -> None:
        if self.per_chunk:
            self.certifier.check_samples(maps, self.transform)
            return
        part = self.certifier.sample_summary(maps, self.transform)
        self.summary = part if self.summary is None else torch.maximum(self.summary, part)

    def check(self) -> None:
        if self.summary is not None:
            self.certifier.check_summary(self.summary, self.transform)


def returned_maps(
    plan: Plan,
    flat_mean: Tensor,
    transform: AttributionTransform,
    shapes: list[torch.Size],
    returned_tuple: bool,
) -> Any:
    """The smoothed maps of flattened ``(bsz, d)`` statistics in the method's shapes, dtype
    and tuple-ness."""
    out_shapes = sampling.output_shapes(transform, shapes, flat_mean.shape[1])
    maps = tuple(
        r.to(plan.inputs[0].dtype) for r in sampling.unflatten_outputs(flat_mean, out_shapes)
    )
    return maps if returned_tuple else maps[0]


def run_stream(plan: Plan) -> Any:
    """Smoothed maps from streamed statistics; then the deltas and the certificate if asked."""
    call = method_call(plan)
    certifier, transform = plan.certifier, plan.transform
    checker = None if certifier is None else SampleCheck(certifier, transform)
    # with a certificate, a batch-statistics module hidden from the plan's checks (a model
    # inside a closure) is refused when it runs, before it touches its running statistics
    with (
        torch.no_grad(),
        rng_guard(plan.generator, plan.inputs),
        batch_statistics_guard(enabled=certifier is not None),
    ):
        track = plan.nt_type != "smoothgrad" or (
            certifier is not None and certifier.needs_second_moment
        )
        stats, shapes = sampling.stream_moments(
            _chunks(plan, call, plan.generator, create_graph=False),
            plan.batch,
            transform,
            flat=plan.flat,
            second_moment=track,
            check=None if checker is None else checker.see,
        )
        if checker is not None:  # before the certificate is built, once for all chunks
            checker.check()
        results = [_reduce(s, plan.nt_type) for s in stats]
        if plan.flat:
            shapes = sampling.output_shapes(transform, shapes, results[0].shape[1])
            results = list(sampling.unflatten_outputs(results[0], shapes))
        attributions = tuple(r.to(plan.inputs[0].dtype) for r in results)
        certificate = None
        if certifier is not None:
            certificate = certifier.certify(
                stats[0],
                scale=smallest_scale(plan.scales, plan.inputs),
                noise=plan.noise,
                alpha=plan.alpha,
                bound=plan.bound,
                transform=transform,
                num_input_features=sum(int(x[0].numel()) for x in plan.inputs),
            )
    result: Any = attributions if call.returned_tuple else attributions[0]
    extras: list[Any] = []
    if call.deltas is not None:
        extras.append(torch.cat(call.deltas, dim=0))
    if certificate is not None:
        extras.append(certificate)
    return (result, *extras) if extras else result


def run_graph(plan: Plan) -> Any:
    """The smoothed map, differentiable with respect to the inputs (and the parameters)."""
    call = method_call(plan)
    with rng_guard(plan.generator, plan.inputs):
        chunks = _chunks(plan, call, plan.generator, create_graph=True)
        maps = sampling.smoothed_graph(chunks, plan.batch, plan.transform, plan.nt_type)
    return maps if call.returned_tuple else maps[0]


def run_loss_gradient(
    plan: Plan, loss_fn: Callable[[Any], Tensor], wrt: Sequence[Tensor]
) -> tuple[Tensor, Tensors]:
    """``loss_fn`` of the smoothed map (a tensor, or a tuple for tuple inputs or outputs) and
    its gradient with respect to ``wrt``; the noise is replayed from the plan's generator (or a
    generator seeded from the global RNG)."""
    call = method_call(plan)

    def on_map(maps: Tensors) -> Tensor:
        return loss_fn(maps if plan.is_tuple or len(maps) > 1 else maps[0])

    with rng_guard(plan.generator, plan.inputs):
        return sampling.smoothed_loss_gradient(
            lambda g, graph: _chunks(plan, call, g, create_graph=graph),
            sampling.replayable(plan.generator, plan.inputs[0].device),
            plan.batch,
            plan.transform,
            on_map,
            tuple(wrt),
            single_pass=sampling.single_chunk(plan.nt_samples, plan.chunk),
        )
