"""The matched-accuracy interpolation of benchmarks/train_comparison.py (issue 28)."""

import importlib.util
import math
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _module():
    spec = importlib.util.spec_from_file_location(
        "train_comparison", ROOT / "benchmarks" / "train_comparison.py"
    )
    mod = importlib.util.module_from_spec(spec)
    sys.modules.setdefault(spec.name, mod)
    spec.loader.exec_module(mod)
    return mod


def _pts(weight, accs, topks):
    return [
        {"seed": s, "weight": weight, "accuracy": a, "topk": t, "kendall": t / 2, "certified": 0.5}
        for s, (a, t) in enumerate(zip(accs, topks))
    ]


def test_match_interpolates_in_the_weight_on_the_seed_mean_cost():
    tc = _module()
    sweep = [
        _pts(0.0, [0.97, 0.97, 0.97], [0.6, 0.6, 0.6]),
        _pts(1.0, [0.96, 0.96, 0.96], [0.7, 0.8, 0.9]),  # cost 0.01
        _pts(10.0, [0.92, 0.92, 0.92], [0.8, 0.9, 1.0]),  # cost 0.05
    ]
    got = tc.match(sweep, 0.97)
    assert got["0.01"]["weight"] == pytest.approx(1.0)
    assert got["0.01"]["topk"] == pytest.approx(0.8)
    assert got["0.01"]["topk_se"] == pytest.approx(0.1 / math.sqrt(3))
    # cost 0.03 is half-way from weight 1 to weight 10: each seed's top-k half-way too
    assert got["0.03"]["weight"] == pytest.approx(5.5)
    assert got["0.03"]["topk"] == pytest.approx(0.85)
    assert got["0.03"]["kendall"] == pytest.approx(0.425)
    assert got["0.05"]["weight"] == pytest.approx(10.0)


def test_match_reports_unreached_costs_as_nan():
    tc = _module()
    sweep = [_pts(0.0, [0.97] * 3, [0.6] * 3), _pts(3.0, [0.965] * 3, [0.7] * 3)]
    got = tc.match(sweep, 0.97)
    assert all(math.isnan(got[t]["weight"]) for t in ("0.01", "0.03", "0.05"))
    rows = tc.table_rows(
        {"task": "t", "natural_accuracy": 0.97, "sweeps": {"ssr": sweep}, "matched": {"ssr": got}}
    )
    assert rows[-1][2] == "(+0.005)" and rows[-1][3] == "3 (max)"
    assert rows[1][3] == "n/r"
