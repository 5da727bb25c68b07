"""``captum-certified train`` and ``compare`` end to end on the digits default (in process)."""

import json

import pytest
import torch

from captum_certified.cli import load_digits_split, main
from captum_certified.cli._config import ConfigError
from captum_certified.cli._train import TrainConfig, load_trained, run_train

TINY = ["--epochs", "1", "--no-progress", "--step-num", "1", "--n-steps", "4"]


@pytest.fixture
def small_digits(tmp_path):
    """250 digits as a tensors file (200 train / 50 validation): a fast ``--data``."""
    x, y, _, _ = load_digits_split(seed=0)
    path = tmp_path / "digits.pt"
    torch.save((x[:250], y[:250]), path)
    return ["--data", f"tensors:{path}"]


def test_train_resume_and_compare(tmp_path, capsys, small_digits):
    nat, ssr = tmp_path / "natural", tmp_path / "ssr"
    assert main(["train", "--loss", "natural", "--out", str(nat), *TINY, *small_digits]) == 0
    assert main(["train", "--loss", "ssr", "--out", str(ssr), *TINY, *small_digits]) == 0
    history = json.loads((nat / "history.json").read_text())
    assert len(history) == 1 and 0 <= history[0]["accuracy"] <= 1
    model, config = load_trained(ssr)
    assert config.loss == "ssr" and not model.training
    # rerunning with more epochs resumes from the checkpoint (epoch 1 is not retrained)
    weights = torch.load(nat / "model.pt", weights_only=True)
    args = ["train", "--loss", "natural", "--out", str(nat), "--no-progress", *small_digits]
    changed = ["--epochs", "2", "--step-num", "1", "--n-steps", "4"]
    assert main([*args, *changed]) == 2  # config differs
    capsys.readouterr()
    out = tmp_path / "cmp"
    code = main(
        [
            "compare",
            str(nat),
            str(ssr),
            "--out",
            str(out),
            "--n-examples",
            "6",
            "--step-num",
            "2",
            "--n-steps",
            "4",
            "--nt-samples",
            "64",
            "--no-progress",
        ]
    )
    assert code == 0
    rows = json.loads((out / "compare.json").read_text())
    assert [r["loss"] for r in rows] == ["natural", "ssr"]
    for r in rows:
        assert 0 <= r["accuracy"] <= 1 and 0 <= r["topk"] <= 1 and -1 <= r["kendall"] <= 1
        assert all(0 <= v <= 1 for v in r["certified"].values())
    assert (out / "compare.tsv").read_text().count("\n") == 3
    assert torch.equal(
        torch.load(nat / "model.pt", weights_only=True)["head.bias"], weights["head.bias"]
    )


def test_train_resumes_an_interrupted_run(tmp_path, small_digits):
    out = tmp_path / "run"
    config = TrainConfig(loss="natural", out=str(out), epochs=2, data=small_digits[1])
    run_train(config, progress=False, echo=lambda *_: None)
    full = torch.load(out / "model.pt", weights_only=True)
    # simulate a kill after epoch 1: keep the epoch-1 checkpoint only
    part = tmp_path / "part"
    run_train(
        TrainConfig(loss="natural", out=str(part), epochs=1, data=small_digits[1]),
        progress=False,
        echo=lambda *_: None,
    )
    cfg = json.loads((part / "train_config.json").read_text())
    cfg["epochs"] = 2
    (part / "train_config.json").write_text(json.dumps(cfg))
    run_train(
        TrainConfig(loss="natural", out=str(part), epochs=2, data=small_digits[1]),
        progress=False,
        echo=lambda *_: None,
    )
    resumed = torch.load(part / "model.pt", weights_only=True)
    for key in full:
        torch.testing.assert_close(full[key], resumed[key], rtol=0, atol=0)


@pytest.mark.parametrize(
    "args, match",
    [
        (["--loss", "pgd"], "invalid choice"),
        (["--epochs", "0"], "epochs"),
        (["--radius", "0"], "radius"),
        (["--epsilon", "0.3"], "unrecognized"),  # one name per concept: --radius
        (["--lam", "0.3"], "unrecognized"),  # the regularizer weight is --weight
        (["--mixing", "1.5"], "mixing"),
        (["--n-steps", "5", "--approx-factor", "2"], "multiple"),
    ],
)
def test_train_bad_arguments(tmp_path, capsys, args, match):
    try:
        code = main(["train", "--out", str(tmp_path / "x"), "--no-progress", *args])
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    assert match in capsys.readouterr().err


def test_compare_needs_finished_runs(tmp_path):
    with pytest.raises(ConfigError, match="not a finished train run"):
        load_trained(tmp_path)
