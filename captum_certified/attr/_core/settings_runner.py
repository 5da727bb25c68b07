"""Several settings (transforms) from one sampling pass: the noisy attributions once, each
setting's statistics side by side, a certificate per setting at its own alpha."""

from __future__ import annotations

from typing import Any

import torch

from captum_certified._utils.validation import rng_guard
from captum_certified.attr._core import sampling
from captum_certified.attr._core.certification_conditions import batch_statistics_guard
from captum_certified.attr._core.method_call import MethodCall
from captum_certified.attr._core.noise_scale import smallest_scale
from captum_certified.attr._core.plan import Plan
from captum_certified.certify.streaming import SettingStatistics


def run_settings(plans: list[Plan]) -> list[Any]:
    """One pass over the noise of ``plans[0]``; per plan (setting) its smoothed map, and its
    certificate at its own alpha. The plans differ only in transform and alpha."""
    plan = plans[0]
    certifier = plan.certifier
    transforms = [p.transform for p in plans]
    call = MethodCall(
        plan.method,
        plan.inputs,
        plan.is_tuple,
        plan.method_kwargs,
        draw_baseline_from_distrib=plan.draw_baseline_from_distrib,
        generator=plan.generator,
    )
    stats = SettingStatistics(
        transforms, second_moment=certifier is not None and certifier.needs_second_moment
    )
    shapes: list[torch.Size] = []
    with (
        torch.no_grad(),
        rng_guard(plan.generator, plan.inputs),
        batch_statistics_guard(enabled=certifier is not None),
    ):
        check = None if certifier is None else certifier.check_samples
        for n_chunk, outs in sampling.sample_chunks(
            plan.inputs,
            plan.scales,
            plan.noise,
            plan.nt_samples,
            plan.chunk,
            plan.generator,
            call,
            requires_grad=plan.requires_grad,
        ):
            shapes = [o.shape[1:] for o in outs]
            stats.update(outs, batch=plan.batch, n_chunk=n_chunk, check=check)
        results = []
        for setting, moments in zip(plans, stats.statistics):
            transform = setting.transform
            mean = moments.mean
            out_shapes = sampling.output_shapes(transform, shapes, mean.shape[1])
            maps = tuple(
                r.to(plan.inputs[0].dtype) for r in sampling.unflatten_outputs(mean, out_shapes)
            )
            attributions: Any = maps if call.returned_tuple else maps[0]
            if certifier is None:
                results.append(attributions)
                continue
            certificate = certifier.certify(
                moments,
                scale=smallest_scale(plan.scales, plan.inputs),
                noise=plan.noise,
                alpha=setting.alpha,
                bound=plan.bound,
                transform=transform,
                num_input_features=sum(int(x[0].numel()) for x in plan.inputs),
            )
            results.append((attributions, certificate))
    return results
