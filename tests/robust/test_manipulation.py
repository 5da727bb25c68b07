"""ExplanationManipulation (Dombrowski et al.): the map moves to the target, the output does not."""

from __future__ import annotations

import pytest
import torch
from _digits import trained_digits_cnn

from captum_certified.robust import ExplanationManipulation, differentiable_attribution


@pytest.fixture(scope="module")
def digits():
    model, x, y, _ = trained_digits_cnn()
    return model, x[:4], y[:4], x[4:8], y[4:8]


def _map_mse(model, x, y, h_target):
    def h(a):
        s = a.abs().sum(1)
        return (s / s.sum((1, 2), keepdim=True)).flatten(1)

    a = differentiable_attribution(model, x, y, create_graph=False)
    return (h(a) - h(h_target)).pow(2).mean(1)


def test_manipulation_moves_the_map_toward_the_target(digits):
    model, x, y, x_other, y_other = digits
    h_target = differentiable_attribution(model, x_other, y_other, create_graph=False)
    attack = ExplanationManipulation(model, lower_bound=0, upper_bound=1)
    x_adv, report = attack.perturb(
        x, step_size=0.01, step_num=30, target_map=h_target, return_report=True
    )
    before = _map_mse(model, x, y, h_target)
    after = _map_mse(model, x_adv, y, h_target)
    print(
        f"\n[manipulation] map MSE to target {before.tolist()} -> {after.tolist()}, output MSE "
        f"{report.extra['output_mse'].tolist()}"
    )
    assert torch.allclose(report.objective.to(after.dtype), after, rtol=1e-4)
    # measured: the MSE drops by 37-44 % in 30 steps (ratios 0.56-0.63); the output penalty
    # keeps the softmax within ~1e-4
    assert (after < 0.8 * before).all()
    assert (report.extra["output_mse"] < 1e-3).all()
    assert report.success.all() and report.policy == "soft"
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    # beta grew geometrically 10 -> 100 and the surrogate is left at its start value
    assert attack.beta_at(0, 30) == pytest.approx(10.0)
    assert attack.beta_at(15, 30) == pytest.approx(10.0 * 10**0.5)
    assert attack.surrogate.features[1].beta == 10.0


def test_manipulation_ball_and_reject_policy(digits):
    model, x, y, x_other, y_other = digits
    h_target = differentiable_attribution(model, x_other, y_other, create_graph=False)
    attack = ExplanationManipulation(
        model, lower_bound=0, upper_bound=1, label_policy="reject_keep_best"
    )
    x_adv, report = attack.perturb(
        x,
        radius=0.05,
        step_size=0.02,
        step_num=10,
        target_map=h_target[:1],
        return_report=True,
    )
    assert (x_adv - x).abs().max() <= 0.05 + 1e-6
    assert report.label_kept[report.success].all()
    with torch.no_grad():
        kept = model(x_adv).argmax(1) == y
    assert kept[report.success].all()
    assert torch.equal(x_adv[~report.success], x[~report.success])
