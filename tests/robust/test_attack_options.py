"""One options object for the attacks: both spellings build the same attack, the options are
checked once and frozen, and a perturb call leaves nothing of itself on the attack."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from _toys import small_mlp

from captum_certified.attr import differentiable_attribution
from captum_certified.robust import (
    AttackOptions,
    AttributionL2Attack,
    AttributionPGD,
    ExplanationManipulation,
)


def _data():
    g = torch.Generator().manual_seed(0)
    return torch.rand(4, 6, generator=g, dtype=torch.float64), torch.tensor([0, 1, 2, 0])


def _run(attack, x, y):
    return attack.perturb(
        x, 0.2, 0.05, 3, target=y, generator=torch.Generator().manual_seed(1), return_report=True
    )


def test_keywords_and_an_options_object_build_the_same_attack():
    model = small_mlp()
    x, y = _data()
    by_keywords = AttributionPGD(model, "saliency", 0.0, 1.0, k=2, softplus_beta=5.0)
    by_object = AttributionPGD(model, "saliency", 0.0, 1.0, AttackOptions(k=2, softplus_beta=5.0))
    assert by_keywords.options == by_object.options
    a, ra = _run(by_keywords, x, y)
    b, rb = _run(by_object, x, y)
    assert torch.equal(a, b) and torch.equal(ra.metric, rb.metric)
    # keywords override the object's fields
    over = AttributionPGD(model, options=AttackOptions(k=2), k=3)
    assert over.options.k == 3


def test_each_attack_starts_from_its_papers_settings():
    model = small_mlp()
    assert AttributionPGD(model).options == AttackOptions()
    l2 = AttributionL2Attack(model).options
    assert (l2.k, l2.reduce_channels, l2.normalize) == (0.25, "abs", "sum_to_one")
    manip = ExplanationManipulation(model).options
    assert (manip.k, manip.reduce_channels, manip.normalize) == (0.1, "sum_abs", "sum_to_one")
    # an explicit object replaces the defaults as a whole
    assert AttributionL2Attack(model, options=AttackOptions()).options.reduce_channels == "sum_abs"


def test_options_are_checked_once_and_frozen():
    with pytest.raises(ValueError, match="objective"):
        AttackOptions(objective="sideways")
    with pytest.raises(TypeError, match="auto_surrogate"):
        AttackOptions(auto_surrogate=1)
    with pytest.raises(ValueError, match="softplus_beta"):
        AttackOptions(softplus_beta=-1.0)
    with pytest.raises(TypeError, match="higher_is_stronger"):
        AttackOptions(higher_is_stronger="yes")
    with pytest.raises(TypeError, match="explainer_kwargs"):
        AttackOptions(explainer_kwargs=[("n_steps", 3)])
    with pytest.raises(TypeError, match="stepz"):
        AttributionPGD(small_mlp(), stepz=3)  # an unknown option is named
    with pytest.raises(TypeError, match="options"):
        AttributionPGD(small_mlp(), "saliency", 0.0, 1.0, {"k": 2})
    opts = AttackOptions(k=2, explainer_kwargs={"abs": False})
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.k = 3  # type: ignore[misc]
    assert opts.replace() is opts and opts.replace(k=4).k == 4 and opts.k == 2


def test_manipulation_refuses_options_it_does_not_use():
    for name, value in (
        ("objective", "mass_center"),
        ("max_halvings", 3),
        ("search_iterations", 2),
        ("auto_surrogate", False),
    ):
        with pytest.raises(ValueError, match=name):
            ExplanationManipulation(small_mlp(), **{name: value})
    with pytest.raises(ValueError, match="objective"):
        ExplanationManipulation(small_mlp(), options=AttackOptions(objective="random"))


@pytest.mark.parametrize("kind", ["pgd", "l2", "manipulation"])
def test_a_call_leaves_nothing_of_itself_on_the_attack(kind):
    model = small_mlp()
    x, y = _data()
    if kind == "pgd":
        attack = AttributionPGD(model, "saliency", 0.0, 1.0, k=2)  # ReLU: automatic surrogate

        def call():
            return _run(attack, x, y)
    elif kind == "l2":
        attack = AttributionL2Attack(model, "saliency", 0.0, 1.0, k=2, softplus_beta=5.0)

        def call():
            return attack.perturb(x, 0.2, step_num=2, num_restarts=2, target=y, return_report=True)
    else:
        attack = ExplanationManipulation(model, lower_bound=0.0, upper_bound=1.0)
        h = differentiable_attribution(model, x.flip(0), y.flip(0), create_graph=False)

        def call():
            return attack.perturb(x, step_size=0.01, step_num=2, target_map=h, return_report=True)

    before = {k: v for k, v in vars(attack).items() if k != "last_report"}
    _, report = call()
    after = {k: v for k, v in vars(attack).items() if k != "last_report"}
    assert after.keys() == before.keys()
    assert all(after[k] is before[k] for k in before)  # no attribute rebound by the call
    assert attack.last_report is report
    if kind == "pgd":
        assert report.extra["auto_surrogate"] is True and attack.surrogate is None
