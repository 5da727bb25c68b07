"""Smoke test of benchmarks/bench_scale.py at tiny sizes (the benchmark itself is run by hand)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_scale.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_scale", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_scale"] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop("bench_scale", None)


def test_help_lists_the_options(bench, capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench.parse_args(["--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for flag in ("--device", "--n", "--chunk", "--options", "--project", "--tiny"):
        assert flag in text


def test_tiny_run_prints_the_table_with_consistent_numbers(bench, tmp_path, capsys):
    out = tmp_path / "scale.json"
    argv = ["--tiny", "--n", "2", "--chunk", "1", "--models", "resnet50", "--options"]
    argv += ["bf16", "--methods", "grad", "ssg+cert", "ig16+cert", "--json", str(out)]
    bench.main(argv)
    text = capsys.readouterr().out
    assert "| resnet50 | ssg+cert | 2 |" in text
    assert "img/h n=1024" in text and "load" in text and "extrapolated" in text
    (result,) = json.loads(out.read_text())["results"]
    rows = result["methods"]
    assert set(rows) == {"grad", "ssg+cert", "ig16+cert"}
    assert rows["grad"]["ratio"] == pytest.approx(1.0)
    for name, r in rows.items():
        assert r["per_sample"] == pytest.approx(r["wall"] / r["n"])
        assert 0 < r["ratio"] < float("inf"), name
    assert rows["ig16+cert"]["evals"] == 16 and rows["ig16+cert"]["n"] == 1
    assert result["memory"]["n_small"] == 1 and result["memory"]["n_large"] == 2
    assert set(result["options"]["bf16"]) >= {"grad", "ssg+cert"}


def test_bad_arguments_are_refused(bench):
    with pytest.raises(SystemExit):
        bench.parse_args(["--n", "0"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--options", "turbo"])
