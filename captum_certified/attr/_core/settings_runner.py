"""Several settings (transforms) from one sampling pass: the noisy attributions once, each
setting's statistics side by side, a certificate per setting at its own alpha."""

from __future__ import annotations

from typing import Any

import torch

from captum_certified._utils.validation import rng_guard
from captum_certified.attr._core import sampling
from captum_certified.attr._core.certification_conditions import batch_statistics_guard
from captum_certified.attr._core.noise_scale import smallest_scale
from captum_certified.attr._core.plan import Plan
from captum_certified.attr._core.runners import SampleCheck, method_call, returned_maps
from captum_certified.certify.streaming import SettingStatistics


def run_settings(plans: list[Plan]) -> list[Any]:
    """One pass over the noise of ``plans[0]``; per plan (setting) its smoothed map, and its
    certificate at its own alpha. The plans differ only in transform and alpha."""
    plan = plans[0]
    certifier = plan.certifier
    transforms = [p.transform for p in plans]
    call = method_call(plan)
    stats = SettingStatistics(
        transforms, second_moment=certifier is not None and certifier.needs_second_moment
    )
    shapes: list[torch.Size] = []
    with (
        torch.no_grad(),
        rng_guard(plan.generator, plan.inputs),
        batch_statistics_guard(enabled=certifier is not None),
    ):
        # one device-side check per setting, read once after sampling (no host sync per chunk)
        checks = {} if certifier is None else {id(t): SampleCheck(certifier, t) for t in transforms}
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
            stats.update(
                outs,
                batch=plan.batch,
                n_chunk=n_chunk,
                check=(lambda maps, t: checks[id(t)].see(maps)) if checks else None,
            )
        for check in checks.values():
            check.check()
        results = []
        for setting, moments in zip(plans, stats.statistics):
            transform = setting.transform
            attributions = returned_maps(plan, moments.mean, transform, shapes, call.returned_tuple)
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
