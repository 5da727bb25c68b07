"""Evaluation of a trained model: accuracy and attribution robustness under Ghorbani et al.'s
top-k attack on IG (Chen et al.'s protocol), with the library's attack and metrics."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from captum_certified.attr import differentiable_attribution
from captum_certified.metrics import kendall_tau, topk_intersection
from captum_certified.robust import AttributionPGD
from captum_certified.train._core.checks import restored_state


def accuracy(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 512) -> float:
    """Top-1 accuracy of ``model`` (evaluated in eval mode; the mode is restored)."""
    with restored_state(model), torch.no_grad():
        model.eval()
        hits = sum(
            int((model(xb).argmax(1) == yb).sum())
            for xb, yb in zip(x.split(batch_size), y.split(batch_size))
        )
    return hits / max(len(x), 1)


def attribution_robustness_eval(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    radius: float = 0.1,
    step_size: float = 0.01,
    step_num: int = 40,
    num_restarts: int = 1,
    k_attack: int | float = 0.25,
    k_eval: int | float = 0.125,
    n_steps: int = 50,
    softplus_beta: float | None = 10.0,
    lower_bound: float = 0.0,
    upper_bound: float = 1.0,
    generator: torch.Generator | None = None,
    batch_size: int = 64,
) -> dict[str, Any]:
    r"""Attack the IG maps (zero baseline, channel ``sum |.|``) of the correctly classified
    examples with :class:`~captum_certified.robust.AttributionPGD` (top-k objective,
    ``reject_keep_best`` keeping the lowest-Kendall iterate, l_inf ball ``radius``) and report
    the mean top-k intersection (``k_eval``) and Kendall's tau between clean and attacked maps
    over the examples where the attack found a label-keeping iterate.

    Returns:
        dict: ``accuracy``, ``n_attacked``, ``success_rate``, ``topk``, ``kendall``.
    """
    acc = accuracy(model, x, y)
    with restored_state(model):
        model.eval()
        with torch.no_grad():
            correct = torch.cat([model(b).argmax(1) for b in x.split(512)]) == y
        xs, ys = x[correct], y[correct]
        attack = AttributionPGD(
            model,
            explainer="integrated_gradients",
            objective="topk",
            k=k_attack,
            lower_bound=lower_bound,
            upper_bound=upper_bound,
            selection_metric="kendall_tau",
            softplus_beta=softplus_beta,
            explainer_kwargs={"n_steps": n_steps, "method": "riemann_right"},
        )
        topk, kendall, success = [], [], []
        for xb, yb in zip(xs.split(batch_size), ys.split(batch_size)):
            x_adv, report = attack.perturb(
                xb,
                radius=radius,
                step_size=step_size,
                step_num=step_num,
                target=yb,
                random_start=True,
                num_restarts=num_restarts,
                generator=generator,
                return_report=True,
            )
            kw: dict[str, Any] = dict(
                explainer="integrated_gradients", n_steps=n_steps, method="riemann_right"
            )
            clean = differentiable_attribution(model, xb, yb, create_graph=False, **kw)
            adv = differentiable_attribution(model, x_adv, yb, create_graph=False, **kw)
            ok = report.success
            topk.append(topk_intersection(clean, adv, k=k_eval, reduce_channels="sum_abs")[ok])
            kendall.append(kendall_tau(clean, adv, reduce_channels="sum_abs")[ok])
            success.append(ok)
    ok = torch.cat(success) if success else torch.zeros(0, dtype=torch.bool)
    t = torch.cat(topk) if topk else torch.zeros(0)
    kt = torch.cat(kendall) if kendall else torch.zeros(0)
    return {
        "accuracy": acc,
        "n_attacked": int(ok.numel()),
        "success_rate": float(ok.double().mean()) if ok.numel() else math.nan,
        "topk": float(t.double().mean()) if t.numel() else math.nan,
        "topk_std": float(t.double().std()) if t.numel() > 1 else math.nan,
        "kendall": float(kt.double().mean()) if kt.numel() else math.nan,
    }
