"""Issue 15 item 10: on a ReLU network the attacks pick a softplus surrogate by themselves."""

import warnings

import pytest
import torch
from torch import nn

from captum_certified.metrics import topk_intersection
from captum_certified.robust import AttributionL2Attack, AttributionPGD


def relu_cnn(seed: int = 0) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = nn.Sequential(
            nn.Conv2d(1, 6, 3, padding=1),
            nn.ReLU(),
            nn.Conv2d(6, 6, 3, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(6 * 8 * 8, 4),
        )
    return model.eval()


def _inputs(n=4):
    return torch.rand(n, 1, 8, 8, generator=torch.Generator().manual_seed(1))


def _pgd(model, **kwargs):
    return AttributionPGD(model, objective="topk", k=10, lower_bound=0.0, upper_bound=1.0, **kwargs)


def _run(attack, x):
    return attack.perturb(
        x,
        radius=0.1,
        step_size=0.02,
        step_num=10,
        generator=torch.Generator().manual_seed(0),
        return_report=True,
    )


def test_default_pgd_moves_a_relu_network_like_the_explicit_surrogate():
    model, x = relu_cnn(), _inputs()
    params = [p.detach().clone() for p in model.parameters()]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "attack direction is zero" warning
        x_auto, report = _run(_pgd(model), x)
    assert report.extra["auto_surrogate"] is True
    x_explicit, explicit = _run(_pgd(model, softplus_beta=10.0), x)
    assert explicit.extra["auto_surrogate"] is False
    # the automatic choice is exactly softplus_surrogate(model, 10.0)
    assert torch.equal(x_auto, x_explicit)
    assert (x_auto - x).abs().amax() > 0.05
    # and it really attacks: the saliency top-10 of the original model moves
    assert report.metric.mean() < 0.9
    # the model is untouched
    assert all(torch.equal(a, b) for a, b in zip(params, model.parameters()))


def test_auto_surrogate_can_be_turned_off_and_is_rebuilt_per_call():
    model, x = relu_cnn(), _inputs()
    attack = _pgd(model, auto_surrogate=False)
    with pytest.warns(UserWarning, match="no input gradient"):
        x_off, report = _run(attack, x)
    assert torch.equal(x_off, x) and report.extra["auto_surrogate"] is False
    assert float(topk_intersection(x_off, x, k=10).min()) == 1.0
    auto = _pgd(model)
    _run(auto, x)
    first = auto.last_report.extra["gradient_model"]  # per call, not kept on the attack
    assert auto.surrogate is None
    with torch.no_grad():
        model[-1].weight.mul_(2.0)  # the surrogate follows the current weights
    _run(auto, x)
    assert auto.last_report.extra["gradient_model"] is not first
    assert torch.equal(auto.last_report.extra["gradient_model"][-1].weight, model[-1].weight)
    with pytest.raises(TypeError, match="auto_surrogate"):
        _pgd(model, auto_surrogate=1)


def test_l2_attack_on_a_relu_network_works_by_default():
    model, x = relu_cnn(), _inputs(2)
    attack = AttributionL2Attack(model, explainer="saliency", k=10, lower_bound=0, upper_bound=1)
    x_adv, report = attack.perturb(
        x,
        radius=0.5,
        step_num=5,
        num_restarts=1,
        generator=torch.Generator().manual_seed(0),
        return_report=True,
    )
    assert report.extra["auto_surrogate"] is True
    assert ((x_adv - x).flatten(1).norm(dim=1) <= 0.5 + 1e-5).all()
    assert report.metric.mean() < 1.0
