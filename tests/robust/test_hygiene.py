"""Argument checks name the argument; seeded determinism; no global side effects."""

from __future__ import annotations

import pytest
import torch
from _toys import small_mlp

from captum_certified.attr import differentiable_attribution
from captum_certified.robust import (
    AttributionL2Attack,
    AttributionPGD,
    ExplanationManipulation,
)


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(5, 6, generator=g, dtype=torch.float64), torch.tensor([0, 1, 2, 0, 1])


def _pgd(**kw):
    args = dict(k=2, lower_bound=0, upper_bound=1, softplus_beta=5.0)
    args.update(kw)
    return AttributionPGD(small_mlp(), **args)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"objective": "sideways"}, ValueError, "objective"),
        ({"explainer": "lime"}, ValueError, "explainer"),
        ({"explainer": 3}, TypeError, "explainer"),
        ({"label_policy": "hope"}, ValueError, "label_policy"),
        ({"k": 0}, ValueError, "k"),
        ({"k": 1.5}, ValueError, "k"),
        ({"k": "ten"}, TypeError, "k"),
        ({"lower_bound": 1, "upper_bound": 0}, ValueError, "lower_bound"),
        ({"reduce_channels": "max"}, ValueError, "reduce_channels"),
        ({"normalize": "l2"}, ValueError, "normalize"),
        ({"selection_metric": "accuracy"}, ValueError, "selection_metric"),
        ({"surrogate": small_mlp()}, ValueError, "softplus_beta"),
        ({"explainer_kwargs": {"n_stepz": 3}}, TypeError, "n_stepz"),
        (
            {"explainer": "integrated_gradients", "explainer_kwargs": {"method": "simpson"}},
            ValueError,
            "method",
        ),
        (
            {"explainer": "smoothgrad", "explainer_kwargs": {"noise": "sometimes"}},
            ValueError,
            "noise",
        ),
        ({"max_halvings": -1}, ValueError, "max_halvings"),
    ],
)
def test_constructor_checks(kwargs, error, match):
    with pytest.raises(error, match=match):
        _pgd(**kwargs)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"radius": -0.1}, ValueError, "radius"),
        ({"radius": "big"}, TypeError, "radius"),
        ({"step_size": 0.0}, ValueError, "step_size"),
        ({"step_num": 2.5}, TypeError, "step_num"),
        ({"norm": "L1"}, ValueError, "norm"),
        ({"num_restarts": 0}, ValueError, "num_restarts"),
        ({"target": [0, 1]}, ValueError, "target"),
        ({"target": 7}, ValueError, "target"),
        ({"mask": (torch.ones(6), torch.ones(6))}, ValueError, "mask"),
        ({"mask": torch.ones(3)}, ValueError, "mask"),
        ({"target_region": torch.ones(6)}, ValueError, "target_region"),
        ({"generator": 0}, TypeError, "generator"),
    ],
)
def test_perturb_checks(kwargs, error, match):
    x, y = _data()
    args = dict(radius=0.1, step_size=0.01, step_num=1, target=y)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        _pgd().perturb(x, **args)


def test_input_structure_checks():
    x, y = _data()
    attack = _pgd()
    with pytest.raises(ValueError, match="inputs"):
        attack.perturb(x + 2, 0.1, 0.01, 1, target=y)  # outside the box
    with pytest.raises(ValueError, match="batch size"):
        attack.perturb((x, x[:3]), 0.1, 0.01, 1, target=y)
    with pytest.raises(TypeError, match="floating"):
        attack.perturb(x.long(), 0.1, 0.01, 1, target=y)
    with pytest.raises(ValueError, match="k"):
        _pgd(k=7).perturb(x, 0.1, 0.01, 1, target=y)  # k > 6 features
    with pytest.raises(ValueError, match="target_region"):
        _pgd(objective="targeted").perturb(x, 0.1, 0.01, 1, target=y)
    with pytest.raises(ValueError, match="random"):
        AttributionL2Attack(small_mlp(), objective="random")
    with pytest.raises(ValueError, match="target_map"):
        ExplanationManipulation(small_mlp(), beta_growth=(1.0, 2.0)).perturb(
            x, step_num=1, target_map=(x, x)
        )
    with pytest.raises(ValueError, match="beta_growth"):
        ExplanationManipulation(small_mlp(), softplus_beta=3.0)


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("explainer", ["saliency", "integrated_gradients", "sparse_smoothgrad"])
def test_no_side_effects_and_seeded_determinism(explainer):
    model = small_mlp()
    model.train()  # left as found, not switched to eval
    x, y = _data()
    x.requires_grad_()
    x_before = x.detach().clone()
    params_before = _state(model)
    kwargs = {
        "saliency": {},
        "integrated_gradients": {"n_steps": 8},
        "sparse_smoothgrad": {"n_guide": 4, "noise": "per_step", "sparsity": 2},
    }[explainer]
    attack = AttributionPGD(
        model,
        explainer,
        objective="topk",
        k=2,
        lower_bound=0,
        upper_bound=1,
        softplus_beta=5.0,
        explainer_kwargs=kwargs or None,
    )
    rng_before = torch.get_rng_state()

    def run(seed):
        return attack.perturb(
            x,
            0.1,
            0.02,
            3,
            target=y,
            random_start=True,
            num_restarts=2,
            generator=torch.Generator().manual_seed(seed),
        )

    a, b, c = run(0), run(0), run(1)
    assert torch.equal(torch.get_rng_state(), rng_before)  # global RNG untouched
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert model.training and all(p.requires_grad and p.grad is None for p in model.parameters())
    assert all(torch.equal(v, params_before[k]) for k, v in model.state_dict().items())
    assert x.requires_grad and x.grad is None and torch.equal(x.detach(), x_before)
    assert not a.requires_grad


def test_l2_and_manipulation_hygiene():
    model = small_mlp()
    x, y = _data()
    rng_before = torch.get_rng_state()
    l2 = AttributionL2Attack(model, k=2, lower_bound=0, upper_bound=1, softplus_beta=5.0)
    out = [
        l2.perturb(
            x, 0.3, step_num=3, num_restarts=2, target=y, generator=torch.Generator().manual_seed(2)
        )
        for _ in range(2)
    ]
    assert torch.equal(out[0], out[1])
    assert ((out[0] - x).norm(dim=1) <= 0.3 + 1e-9).all()
    with torch.no_grad():
        assert torch.equal(model(out[0]).argmax(1), model(x).argmax(1))
    manip = ExplanationManipulation(model, lower_bound=0, upper_bound=1)
    target_map = differentiable_attribution(model, x.flip(0), y.flip(0), create_graph=False)
    manip.perturb(x, step_size=0.01, step_num=3, target_map=target_map)
    assert torch.equal(torch.get_rng_state(), rng_before)
    assert all(p.grad is None for p in model.parameters())


def test_differentiable_attribution_does_not_touch_flags():
    model = small_mlp()
    x, y = _data()
    a = differentiable_attribution(model, x, y)
    assert not x.requires_grad and a.requires_grad  # graph through the parameters
    with pytest.raises(ValueError, match="target"):
        differentiable_attribution(model, x, None)
    with pytest.raises(TypeError, match="additional_forward_args"):
        differentiable_attribution(
            model, x, y, lambda m, inp, t: inp * 1.0, additional_forward_args=(x,)
        )


def test_norm_spellings_parse_to_the_same_attack():
    # geometry.check_norm: any case of Captum's "Linf" / "L2" (and inf / 2) is the same norm
    x, y = _data()
    args = dict(radius=0.1, step_size=0.02, step_num=3, target=y, random_start=True)
    ref = _pgd().perturb(x, norm="Linf", generator=torch.Generator().manual_seed(3), **args)
    for spelling in ("linf", "LINF", float("inf")):
        out = _pgd().perturb(x, norm=spelling, generator=torch.Generator().manual_seed(3), **args)
        assert torch.equal(out, ref)
    assert not torch.equal(ref, x)
    l2 = _pgd().perturb(x, norm="l2", generator=torch.Generator().manual_seed(3), **args)
    assert ((l2 - x).norm(dim=1) <= 0.1 + 1e-12).all()
