"""The sequential runner: chunks per example until its certification target is decided.

Finished examples leave the batch: every round samples only the examples still undecided (the
same plan restricted to their rows); on an accelerator the remaining ones draw several chunks
per call so the model runs at full batch width. The band is the betting
confidence sequence, valid at any stopping time (:doc:`/certificates`, section 3b).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import Tensor

from captum_certified._utils.validation import rng_guard
from captum_certified.attr._core import sampling
from captum_certified.attr._core.certification_conditions import batch_statistics_guard
from captum_certified.attr._core.noise_scale import smallest_scale
from captum_certified.attr._core.plan import Plan
from captum_certified.attr._core.runners import method_call, returned_maps
from captum_certified.certify import BandCertifier
from captum_certified.certify.streaming import certify_sequentially

#: Method arguments with a row per example, and how the expansion helpers recognise the rows.
PER_EXAMPLE = ("target", "baselines", "additional_forward_args", "feature_mask")


def _rows(value: Any, index: Tensor, batch: int, name: str) -> Any:
    """Rows ``index`` of a per-example argument, read as ``_utils.expansion`` reads it."""
    if name == "target":
        if isinstance(value, list):
            return [value[i] for i in index.tolist()]
        if isinstance(value, Tensor) and value.numel() > 1:
            return value[index.to(value.device)]
        return value
    if isinstance(value, tuple):
        return tuple(_rows(v, index, batch, name) for v in value)
    if isinstance(value, Tensor) and value.dim() > 0:
        if name == "additional_forward_args" or (value.shape[0] == batch and batch > 1):
            return value[index.to(value.device)]
    return value


def restrict(plan: Plan, index: Tensor) -> Plan:
    """The plan for the examples ``index`` only (inputs, scales and per-example arguments)."""
    kwargs = dict(plan.method_kwargs)
    for name in PER_EXAMPLE:
        if name in kwargs:
            kwargs[name] = _rows(kwargs[name], index, plan.batch, name)
    inputs = tuple(x[index.to(x.device)] for x in plan.inputs)
    scales = tuple(s.expand_as(x)[index.to(x.device)] for s, x in zip(plan.scales, plan.inputs))
    return dataclasses.replace(plan, inputs=inputs, scales=scales, method_kwargs=kwargs)


def run_sequential(plan: Plan) -> Any:
    """Smoothed maps and a certificate, each example sampled until its target is decided."""
    certifier, transform, target = plan.certifier, plan.transform, plan.stop_when
    # the plan guarantees a top-K band certifier and a target
    assert isinstance(certifier, BandCertifier) and target is not None
    scale = smallest_scale(plan.scales, plan.inputs)
    n_in = sum(int(x[0].numel()) for x in plan.inputs)
    seen: dict[str, Any] = {}

    def draw(active: Tensor, n_chunk: int) -> Tensor:
        sub = restrict(plan, active)
        call = method_call(sub)  # the plan refused deltas and drawn baselines
        chunks = sampling.sample_chunks(
            sub.inputs,
            sub.scales,
            sub.noise,
            n_chunk,
            n_chunk,
            sub.generator,
            call,
            requires_grad=sub.requires_grad,
        )
        ((_, outs),) = list(chunks)
        seen["shapes"] = [o.shape[1:] for o in outs]
        seen["returned_tuple"] = call.returned_tuple
        maps = sampling.flatten_outputs(tuple(o.detach() for o in outs), transform)
        certifier.check_samples(maps, transform)
        return maps.reshape(len(active), n_chunk, -1)

    def build(lower: Tensor, upper: Tensor, n: Tensor, index: Tensor) -> Any:
        fields = dict(
            noise=plan.noise,
            scale=scale[index.to(scale.device)],
            n=int(n.max()),
            alpha=plan.alpha,
            bound="betting_sequence",
        )
        return certifier.build(lower, upper, fields, transform=transform, num_input_features=n_in)

    with (
        torch.no_grad(),
        rng_guard(plan.generator, plan.inputs),
        batch_statistics_guard(enabled=True),
    ):
        lower, upper, used, decision, mean = certify_sequentially(
            draw,
            build,
            target,
            batch_size=plan.batch,
            alpha=plan.alpha,
            max_samples=plan.nt_samples,
            chunk=plan.chunk,
            binary=transform.kind == "binary",
            # wider calls pay off where a call's cost hardly grows with its width (not a CPU)
            fill_batch=any(x.device.type != "cpu" for x in plan.inputs),
        )
    everyone = torch.arange(plan.batch)
    certificate = build(lower, upper, used, everyone)
    certificate.samples_used = used
    certificate.stop_decision = decision
    # the bracket [R_cert, R_best] at the stopping time, from the band the certificate holds
    certificate.stop_radius = target.certified_radius(certificate)
    certificate.stop_radius_best = target.certified_radius(build(upper, lower, used, everyone))
    result = returned_maps(plan, mean, transform, seen["shapes"], seen["returned_tuple"])
    return result, certificate
