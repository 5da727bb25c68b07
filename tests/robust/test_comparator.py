"""AttributionAttackComparator: attribution metrics, per-example label policy, aggregation."""

from __future__ import annotations

import math

import pytest
import torch
from _digits import trained_digits_cnn
from captum.attr import Saliency

from captum_certified.attr import differentiable_attribution
from captum_certified.metrics import topk_intersection
from captum_certified.robust import (
    AttackReport,
    AttributionAttackComparator,
    AttributionPGD,
)


@pytest.fixture(scope="module")
def digits():
    model, x, y, _ = trained_digits_cnn()
    with torch.no_grad():
        pred = model(x).argmax(1)
    idx = torch.nonzero(pred == y).flatten()
    # six correctly classified digits, and one digit of another class per example
    x6, y6 = x[idx[:6]], y[idx[:6]]
    swap = torch.stack([x[idx][y[idx] != c][0] for c in y6.tolist()])
    return model, x6, y6, swap


def _flip_first_two(swap):
    """An "attack" that replaces examples 0 and 1 by digits of another class."""

    def attack(inputs, target=None):
        out = inputs.clone()
        out[:2] = swap[:2]
        return out

    return attack


def test_metrics_compare_attributions_and_exclude_label_changes(digits):
    model, x, y, swap = digits
    comp = AttributionAttackComparator(
        model,
        Saliency(model),
        metrics={"topk": "topk_intersection", "kendall": "kendall_tau"},
        k=10,
    )
    comp.add_attack(lambda inputs: inputs.clone(), "identity")
    comp.add_attack(_flip_first_two(swap), "flip", additional_attack_arg_names=["target"])
    res = comp.evaluate(x, target=y)
    assert res["identity"]["mean"]["topk"] == pytest.approx(1.0)
    assert res["identity"]["mean"]["kendall"] == pytest.approx(1.0)
    assert res["identity"]["success_rate"] == 1.0 and res["identity"]["label_changed"] == 0
    flip = res["flip"]
    assert flip["label_changed"] == 2 and flip["success_rate"] == pytest.approx(4 / 6)
    values = flip["values"]["topk"]
    assert values.shape == (1, 6) and torch.isnan(values[0, :2]).all()
    assert flip["mean"]["topk"] == pytest.approx(1.0)  # the excluded ones would score < 1


def test_attempts_mean_worst_and_summary(digits):
    model, x, y, _ = digits
    comp = AttributionAttackComparator(
        model, "saliency", metrics={"topk": "topk_intersection"}, k=10
    )
    attack = AttributionPGD(model, objective="random", k=10, lower_bound=0, upper_bound=1)
    gen = torch.Generator().manual_seed(0)
    comp.add_attack(
        attack,
        "random",
        num_attempts=3,
        attack_kwargs={"radius": 0.2, "step_size": 0.2, "step_num": 1, "generator": gen},
        additional_attack_arg_names=["target"],
    )
    first = comp.evaluate(x[:4], target=y[:4])["random"]
    second = comp.evaluate(x[4:], target=y[4:])["random"]
    v = first["values"]["topk"]
    assert v.shape == (3, 4)
    expected_mean = v[~torch.isnan(v)].mean().item()
    assert first["mean"]["topk"] == pytest.approx(expected_mean)
    assert first["worst"]["topk"] == pytest.approx(
        torch.nan_to_num(v, nan=math.inf).min(0).values.mean().item()
    )
    assert first["worst"]["topk"] <= first["mean"]["topk"]
    # the summary weights by (example, attempt) pair, not by batch
    both = torch.cat([first["values"]["topk"], second["values"]["topk"]], dim=1)
    summary = comp.summary()["random"]
    assert summary["mean"]["topk"] == pytest.approx(both[~torch.isnan(both)].mean().item())
    assert summary["examples"] == 6
    comp.reset()
    assert comp.summary() == {}


def test_string_and_captum_explainers_agree_and_reports_flag_failures(digits):
    model, x, y, _ = digits

    def failing_attack(inputs, target=None):
        out = inputs.clone()
        success = torch.ones(len(inputs), dtype=torch.bool)
        success[0] = False
        report = AttackReport(
            success=success,
            label=y,
            label_kept=torch.ones_like(success),
            metric=torch.ones(len(inputs)),
            metric_name="topk",
            higher_is_stronger=False,
            objective=torch.zeros(len(inputs)),
            restart=torch.zeros(len(inputs)).long(),
            policy="reject_keep_best",
        )
        return out, report

    shifted = lambda inputs: (inputs + 0.05).clamp(0, 1)  # noqa: E731
    results = []
    for explainer in ("saliency", Saliency(model)):
        comp = AttributionAttackComparator(
            model, explainer, metrics={"topk": "topk_intersection"}, k=10
        )
        comp.add_attack(shifted, "shift")
        comp.add_attack(failing_attack, "failing")
        results.append(comp.evaluate(x, target=y))
    assert results[0]["shift"]["mean"]["topk"] == pytest.approx(results[1]["shift"]["mean"]["topk"])
    clean = differentiable_attribution(model, x, y, create_graph=False)
    moved = differentiable_attribution(model, shifted(x), y, create_graph=False)
    keep = model(shifted(x)).argmax(1) == y
    direct = topk_intersection(clean, moved, k=10, reduce_channels="sum_abs", normalize="sum_to_hw")
    assert results[0]["shift"]["mean"]["topk"] == pytest.approx(direct[keep].mean().item())
    failing = results[0]["failing"]
    assert failing["failed"] == 1 and failing["label_changed"] == 0
    assert failing["success_rate"] == pytest.approx(5 / 6)


def test_comparator_argument_checks(digits):
    model, x, y, _ = digits
    with pytest.raises(ValueError, match="metrics"):
        AttributionAttackComparator(model, metrics={"bad": "not_a_metric"})
    with pytest.raises(ValueError, match="higher_is_stronger"):
        AttributionAttackComparator(model, higher_is_stronger=["nope"])
    with pytest.raises(ValueError, match="explainer"):
        AttributionAttackComparator(model, "lime")
    comp = AttributionAttackComparator(model, k=10)
    comp.add_attack(lambda inputs: inputs, "same")
    with pytest.raises(RuntimeError, match="same name"):
        comp.add_attack(lambda inputs: inputs, "same")
    with pytest.raises(ValueError, match="num_attempts"):
        comp.add_attack(lambda inputs: inputs, "zero", num_attempts=0)
    comp.add_attack(
        lambda inputs, foo=None: inputs, "needs_foo", additional_attack_arg_names=["foo"]
    )
    with pytest.warns(UserWarning, match="foo"):
        comp.evaluate(x[:2], target=y[:2])
