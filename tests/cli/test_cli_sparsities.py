"""``certify --sparsity`` with several values: one sampling pass, each certificate at alpha/m.

Every multi-sparsity number is compared with separate one-sparsity runs at ``alpha / m`` and
with direct API calls (the same seed draws the same noise), the single-value path with the
layout it always had.
"""

import json
from pathlib import Path

import pytest
import torch

from captum_certified.attr import SparseSmoothGrad
from captum_certified.cli import default_digits_model, load_digits_split, main
from captum_certified.cli._config import RunConfig
from captum_certified.cli._results import COLUMNS, SETTINGS_COLUMNS, parse_rows

SMALL = ["--nt-samples", "64", "--nt-samples-batch-size", "32", "--no-progress"]
VALUES = ["index", "label", "predicted", "correct", "radius", "metric", "certified"]
VALUES += ["certified_count", "k_count", "radius_at_level"]


def _certify(out: Path, *args: str) -> int:
    return main(["certify", "--out", str(out), "--n-examples", "2", *SMALL, *args])


def _rows(out: Path) -> list[dict]:
    return parse_rows((out / "results.tsv").read_text())


def _values(rows: list[dict]) -> list[tuple]:
    """Everything of the rows but the wall time."""
    return [tuple(r[c] for c in VALUES) for r in rows]


def _header(out: Path) -> tuple[str, ...]:
    return tuple((out / "results.tsv").read_text().splitlines()[0].split("\t"))


def test_one_sparsity_keeps_the_layout_of_before(tmp_path, cache_dir):
    """The default, ``--sparsity 0.2`` and a config list of one give the same run folder
    contents (up to the wall time) in the historical layout."""
    default, flag, listed = tmp_path / "default", tmp_path / "flag", tmp_path / "listed"
    config_file = tmp_path / "one.toml"
    config_file.write_text("sparsity = [0.2]\n")
    assert _certify(default) == 0
    assert _certify(flag, "--sparsity", "0.2") == 0
    assert _certify(listed, "--config", str(config_file)) == 0
    for out in (default, flag, listed):
        assert _header(out) == COLUMNS
        assert "\nsparsity = 0.2\n" in (out / "config.toml").read_text()
        assert set(json.loads((out / "fingerprint.json").read_text())) == {"data", "model"}
        assert "settings" not in json.loads((out / "summary.json").read_text())
        assert _values(_rows(out)) == _values(_rows(default))
        assert (out / "fingerprint.json").read_bytes() == (
            default / "fingerprint.json"
        ).read_bytes()
        config = (out / "config.toml").read_text().replace(str(out), "OUT")
        assert config == (default / "config.toml").read_text().replace(str(default), "OUT")
    maps = torch.load(flag / "maps" / "example-0.pt", weights_only=True)
    assert set(maps) == {"index", "label", "input", "map", "k_count"}


def test_several_sparsities_equal_separate_runs_at_alpha_over_m(tmp_path, cache_dir, capsys):
    multi = tmp_path / "multi"
    assert _certify(multi, "--sparsity", "0.05", "0.1,0.2", "--alpha", "0.06") == 0
    printed = capsys.readouterr().out
    assert "3 sparsities from one sampling pass, each certificate at alpha 0.02" in printed
    assert "sparsity 0.05:" in printed and "sparsity 0.2:" in printed
    assert _header(multi) == SETTINGS_COLUMNS
    recorded = RunConfig.load(multi / "config.toml")
    assert recorded.sparsity == [0.05, 0.1, 0.2] and recorded.alpha == 0.06
    rows = _rows(multi)
    config = RunConfig.load(multi / "config.toml")
    assert len(rows) == 2 * 3 * len(config.radii)
    assert {r["alpha"] for r in rows} == {0.06 / 3}
    model = default_digits_model()
    _, _, x, y = load_digits_split()
    for sparsity in (0.05, 0.1, 0.2):
        single = tmp_path / f"single-{sparsity}"
        assert _certify(single, "--sparsity", str(sparsity), "--alpha", repr(0.06 / 3)) == 0
        mine = [r for r in rows if r["sparsity"] == sparsity]
        assert _values(mine) == _values(_rows(single))
        # and the API, independently of the command line: same seed, same noise
        for index in range(2):
            _, cert = SparseSmoothGrad(model, sparsity=sparsity).attribute(
                x[index : index + 1],
                target=int(y[index]),
                nt_samples=64,
                nt_samples_batch_size=32,
                stdevs=0.5,
                alpha=0.06 / 3,
                return_certificate=True,
                generator=torch.Generator().manual_seed(index),
            )
            expected = cert.overlap_curve(0.2, torch.tensor(config.radii))[0].tolist()
            assert [r["certified"] for r in mine if r["index"] == index] == expected
    summary = json.loads((multi / "summary.json").read_text())
    assert [s["sparsity"] for s in summary["settings"]] == [0.05, 0.1, 0.2]
    assert [s["alpha"] for s in summary["settings"]] == [0.06 / 3] * 3
    assert summary["alpha"] == pytest.approx(0.06)
    saved = torch.load(multi / "maps" / "example-0.pt", weights_only=True)
    assert saved["sparsity"] == [0.05, 0.1, 0.2] and saved["maps"].shape == (3, 1, 8, 8)
    assert (multi / "maps.png").read_bytes()[:4] == b"\x89PNG"
    assert main(["report", str(multi)]) == 0
    assert "sparsity 0.1:" in capsys.readouterr().out


def test_renyi_counts_and_fractions_from_one_pass(tmp_path, cache_dir):
    args = ["--method", "renyi", "--noise", "laplace", "--norm", "l1", "--radii", "0", "0.5"]
    multi = tmp_path / "multi"
    assert _certify(multi, *args, "--sparsity", "5", "20%") == 0
    rows = _rows(multi)
    assert [type(r["sparsity"]) for r in rows[:4]] == [int, int, float, float]
    for sparsity, text in ((5, "5"), (0.2, "0.2")):
        single = tmp_path / f"single-{text}"
        assert _certify(single, *args, "--sparsity", text, "--alpha", "0.025") == 0
        mine = [
            r for r in rows if r["sparsity"] == sparsity and type(r["sparsity"]) is type(sparsity)
        ]
        assert _values(mine) == _values(_rows(single))
        assert {r["alpha"] for r in mine} == {0.025}


TEXT_FACTORY = """
import torch
from captum_certified.text import TokenTransformerClassifier, WordTokenizer

def factory():
    torch.manual_seed(0)
    tokenizer = WordTokenizer(["good", "great", "bad", "awful", "the", "movie", "was", "plot"])
    return TokenTransformerClassifier(len(tokenizer)).eval(), tokenizer
"""


def test_text_sparsities_from_one_pass(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "text_models_s.py").write_text(TEXT_FACTORY)
    (tmp_path / "reviews.txt").write_text(
        "1\tthe movie was good and great\n0\tthe plot was awful\n"
    )
    args = ["--model", "text_models_s:factory", "--data", "text:reviews.txt", "--k", "2"]
    args += ["--noise-scale", "0.1", "--radii", "0", "0.05"]
    multi = tmp_path / "multi"
    assert _certify(multi, *args, "--sparsity", "1", "2") == 0
    rows = _rows(multi)
    for sparsity in (1, 2):
        single = tmp_path / f"single-{sparsity}"
        assert _certify(single, *args, "--sparsity", str(sparsity), "--alpha", "0.025") == 0
        assert _values([r for r in rows if r["sparsity"] == sparsity]) == _values(_rows(single))


def test_resume_keeps_the_list_and_refuses_another(tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    base = ["certify", "--out", str(out), *SMALL, "--radii", "0", "0.1", "--n-examples", "2"]
    assert main([*base, "--sparsity", "0.05", "0.2"]) == 0
    complete = _rows(out)
    # as if killed after the first example and part of the second one's rows
    part = out / "parts" / "part-0.tsv"
    lines = part.read_text().splitlines(keepends=True)
    assert len(lines) == 1 + 2 * 2 * 2
    part.write_text("".join(lines[:-3]))
    assert main([*base, "--sparsity", "0.05,0.2"]) == 0
    assert "resuming: 1 examples already done" in capsys.readouterr().out
    assert _values(_rows(out)) == _values(complete)
    for other in (["0.05", "0.1"], ["0.05", "0.2", "0.3"], ["0.05"], ["0.2", "0.05"]):
        assert main([*base, "--sparsity", *other]) == 2
        err = capsys.readouterr().err
        assert "differs in ['sparsity']" in err and len(err.strip().splitlines()) == 1
    # without config.toml the fingerprint still names the list
    (out / "config.toml").unlink()
    assert main([*base, "--sparsity", "0.05", "0.1"]) == 2
    assert "different sparsity" in capsys.readouterr().err
    # a run of one sparsity refuses a list, and the other way round
    single = tmp_path / "single"
    one = ["certify", "--out", str(single), *SMALL, "--n-examples", "1"]
    assert main(one) == 0
    assert main([*one, "--sparsity", "0.2", "0.1"]) == 2
    assert "differs in ['sparsity']" in capsys.readouterr().err


@pytest.mark.parametrize(
    "values, message",
    [
        (["0.1", "0.1"], "--sparsity lists the same value twice (0.1 and 0.1)"),
        (["0.5", "50%"], "--sparsity lists the same value twice (0.5 and 50%)"),
        (["0.1", "6"], "--sparsity 0.1 and 6 both keep 6 of the 64 features"),
        (["0.1,,0.2"], "--sparsity has an empty value"),
        (["0.1,"], "--sparsity has an empty value"),
        ([""], "--sparsity has an empty value"),
        (["0.05", "0"], "--sparsity as a count must be >= 1, got 0"),
        (["0.05", "1.5"], "--sparsity 1.5: a count is an integer"),
        (["0.05", "1.0"], "--sparsity 1.0 is ambiguous"),
        (["0.05", "65"], "--sparsity 65 is more than the 64 features"),
        (["0.05", "-0.1"], "--sparsity must be a count"),
        (["0.05", "150%"], "--sparsity as a percentage must be in (0%, 100%]"),
        (["0.1", "0.2", "--method", "uniform"], "several --sparsity values need a method"),
        (["0.1", "0.2", "--certificate", "feature"], "several --sparsity values need --certif"),
    ],
)
def test_bad_sparsity_lists_are_one_line_errors(values, message, tmp_path, cache_dir, capsys):
    out = tmp_path / "out"
    assert main(["certify", "--out", str(out), *SMALL, "--sparsity", *values]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert not out.exists()


@pytest.mark.parametrize(
    "text, message",
    [
        ("sparsity = []", "--sparsity must hold at least one value"),
        ("sparsity = [0.1, 0.1]", "--sparsity lists the same value twice"),
        ("sparsity = [0.1, true]", "config key `sparsity` must be a list of counts"),
        ("sparsity = [0.1, [0.2]]", "config key `sparsity` must be a list of counts"),
    ],
)
def test_bad_sparsity_lists_in_a_config_file(text, message, tmp_path, capsys):
    config_file = tmp_path / "c.toml"
    config_file.write_text(text + "\n")
    assert main(["certify", "--config", str(config_file), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1, err


def test_a_config_file_list_may_mix_spellings(tmp_path, cache_dir):
    config_file = tmp_path / "c.toml"
    config_file.write_text('sparsity = [3, "10%", 0.2]\nradii = [0.0]\n')
    out = tmp_path / "run"
    assert _certify(out, "--config", str(config_file)) == 0
    assert RunConfig.load(out / "config.toml").sparsity == [3, 0.1, 0.2]
    assert [r["sparsity"] for r in _rows(out)[:3]] == [3, 0.1, 0.2]


def test_attack_refuses_a_run_of_several_sparsities(tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    assert _certify(out, "--sparsity", "0.1", "0.2", "--radii", "0", "0.1") == 0
    capsys.readouterr()
    assert main(["attack", str(out), "--n-examples", "1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "attack supports runs of one --sparsity" in err and len(err.strip().splitlines()) == 1


def test_bound_betting_is_the_api_betting_band(tmp_path, cache_dir):
    out = tmp_path / "betting"
    assert _certify(out, "--bound", "betting", "--sparsity", "0.1") == 0
    assert RunConfig.load(out / "config.toml").bound == "betting"
    config = RunConfig.load(out / "config.toml")
    model = default_digits_model()
    _, _, x, y = load_digits_split()
    rows = _rows(out)
    for index in range(2):
        _, cert = SparseSmoothGrad(model, sparsity=0.1).attribute(
            x[index : index + 1],
            target=int(y[index]),
            nt_samples=64,
            nt_samples_batch_size=32,
            stdevs=0.5,
            bound="betting",
            return_certificate=True,
            generator=torch.Generator().manual_seed(index),
        )
        assert cert.bound == "betting"
        expected = cert.overlap_curve(0.2, torch.tensor(config.radii))[0].tolist()
        assert [r["certified"] for r in rows if r["index"] == index] == expected
