"""Issue 27: ``train`` and ``compare`` as careful as ``certify``; errors before torch; help.

CLI items run the real command in a subprocess and check: one line on stderr, exit code 2 and
no folder written.
"""

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest
import torch

from captum_certified.cli._config import ConfigError, read_config_file
from captum_certified.cli._main import _parser, main
from captum_certified.cli._run_folder import claim
from captum_certified.cli._train_config import TrainConfig

ROOT = Path(__file__).resolve().parents[2]
MODELS = """
import torch
from torch import nn


def rgb():  # a 3-channel model: the digits are 1x8x8
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 6 * 6, 10))


def two_classes():  # 10 digit classes in the labels
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 2))


def rgb16():  # takes 3x16x16 images only
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.Linear(4 * 14 * 14, 10))


def size16():  # takes 1x16x16 images only
    return nn.Sequential(nn.Flatten(), nn.Linear(256, 10))
"""


def _cli(args, cwd):
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    env.pop("WORLD_SIZE", None)
    return subprocess.run(
        [sys.executable, "-m", "captum_certified", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def _refused(result, *fragments):
    """Exit code 2 and exactly one line on stderr holding every fragment."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("contact")
    (folder / "usermodels.py").write_text(MODELS)
    from captum_certified.cli import load_digits_split

    x, y, _, _ = load_digits_split(seed=0)
    torch.save((x[:60], y[:60]), folder / "digits.pt")
    return folder


# -- 1: train and compare check before any folder is written -----------------------------------


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["--model", "usermodels:rgb"], ["--model", "3 input channels", "--data has 1"]),
        (["--model", "usermodels:two_classes"], ["--data has labels 0..9", "2 classes"]),
        (["--loss", "art", "--k", "5000"], ["--k 5000", "64 features"]),
        (["--data", "tensors:missing.pt"], ["--data file missing.pt does not exist"]),
        (["--model", "usermodels:size16"], ["--model does not accept", "shape (1, 8, 8)"]),
    ],
)
def test_train_refuses_before_writing_a_folder(workdir, args, fragments):
    out = workdir / "runs" / "t"
    result = _cli(["train", "--out", str(out), "--no-progress", "--epochs", "1", *args], workdir)
    _refused(result, *fragments)
    assert not out.exists() and not (workdir / "runs").exists()


def test_image_size_mismatch_suggests_image_size(workdir):
    from PIL import Image

    for label in ("a", "b"):
        (workdir / "images" / label).mkdir(parents=True, exist_ok=True)
        for i in range(2):
            Image.new("RGB", (8, 8), (40 * i, 90, 200)).save(
                workdir / "images" / label / f"{i}.png"
            )
    out = workdir / "img_run"
    data = ["--data", f"imagefolder:{workdir / 'images'}", "--model", "usermodels:rgb16"]
    line = _refused(_cli(["certify", "--out", str(out), *data, "--no-progress"], workdir))
    assert "--image-size" in line and not out.exists()
    line = _refused(_cli(["train", "--out", str(out), *data, "--no-progress"], workdir))
    assert "--image-size" in line and not out.exists()


def test_a_folder_that_never_trained_takes_the_corrected_command(tmp_path, workdir):
    out = tmp_path / "run"
    claim(out, "train")  # a failed start of an older version left its folder and config
    failed = TrainConfig(out=str(out), model="usermodels:rgb")
    (out / "train_config.json").write_text(json.dumps(asdict(failed)))
    args = [
        "train",
        "--out",
        str(out),
        "--data",
        f"tensors:{workdir / 'digits.pt'}",
        "--epochs",
        "1",
    ]
    assert main([*args, "--no-progress"]) == 0  # nothing trained: taken over
    assert json.loads((out / "train_config.json").read_text())["model"] == "digits"
    # one epoch finished: now the folder holds a run, and another configuration is refused
    line = _refused(_cli([*args, "--lr", "0.5", "--no-progress"], workdir))
    assert "differs in ['lr']" in line


def test_train_without_progress_bar_prints_one_line_per_epoch(tmp_path, workdir, capsys):
    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--data", f"tensors:{workdir / 'digits.pt'}"]
    assert main([*args, "--epochs", "2", "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "epoch 1/2: loss" in err and "epoch 2/2: loss" in err and "val accuracy" in err
    # compare refuses a --k larger than the data before it evaluates or writes anything
    cmp_out = tmp_path / "cmp"
    assert main(["compare", str(out), "--out", str(cmp_out), "--k", "500", "--no-progress"]) == 2
    line = capsys.readouterr().err.strip()
    assert line.count("\n") == 0 and "--k 500" in line and "64 features" in line
    assert not cmp_out.exists()


def test_compare_refuses_unfinished_runs_and_bad_values(workdir):
    out = workdir / "cmp"
    _refused(_cli(["compare", "nowhere", "--out", str(out)], workdir), "nowhere", "train")
    _refused(_cli(["compare", "nowhere", "--radius", "0", "--out", str(out)], workdir), "--radius")
    assert not out.exists()


# -- 2: one config reader for every command ----------------------------------------------------


def test_train_reads_toml_yaml_and_json(tmp_path):
    files = {
        "c.toml": 'loss = "ssr"\nepochs = 3\n',
        "c.yaml": "loss: ssr\nepochs: 3\n",
        "c.json": '{"loss": "ssr", "epochs": 3}',
    }
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        assert read_config_file(tmp_path / name) == {"loss": "ssr", "epochs": 3}
        assert TrainConfig.from_dict(read_config_file(tmp_path / name)).epochs == 3
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="table of options"):
        read_config_file(tmp_path / "list.yaml")


@pytest.mark.parametrize(
    "name, text, fragment",
    [
        ("bad.json", "{bad", "--config file bad.json is not valid json"),
        ("bad.toml", "loss = ", "--config file bad.toml is not valid toml"),
        ("missing.toml", None, "--config file missing.toml does not exist"),
        ("c.ini", "x=1", "--config must be a .toml, .yaml or .json file"),
    ],
)
def test_config_file_errors_are_one_line(tmp_path, name, text, fragment):
    if text is not None:
        (tmp_path / name).write_text(text)
    for command in ("train", "certify"):
        result = _cli([command, "--config", name, "--out", "o"], tmp_path)
        _refused(result, fragment)
        assert not (tmp_path / "o").exists()


# -- 7: errors that need no model come before the torch import; usage and help ----------------


def test_errors_that_need_no_model_do_not_import_torch(tmp_path):
    (tmp_path / "bad.json").write_text("{bad")
    commands = [
        ["certify", "--data", "tensors:missing.pt"],
        ["certify", "--data", "folder:x"],
        ["certify", "--model", "nocolon"],
        ["certify", "--config", "missing.toml"],
        ["train", "--data", "tensors:missing.pt"],
        ["train", "--data", "imagefolder:nowhere"],
        ["train", "--config", "bad.json"],
        ["attack", "nowhere"],
        ["report", "nowhere"],
        ["compare", "nowhere"],
    ]
    script = (
        "import json, sys\n"
        "from captum_certified.cli._main import main\n"
        f"codes = [main(c) for c in {commands!r}]\n"
        "print(json.dumps([codes, 'torch' in sys.modules]))\n"
    )
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env
    )
    codes, imported = json.loads(result.stdout.strip().splitlines()[-1])
    assert codes == [2] * len(commands), result.stderr
    assert not imported
    lines = result.stderr.strip().splitlines()
    assert len(lines) == len(commands) and all(
        line.startswith("captum-certified: error") for line in lines
    )


def test_a_mistyped_option_prints_the_subcommands_usage(tmp_path):
    for command in ("train", "certify", "attack", "compare"):
        extra = ["run"] if command in ("attack", "compare") else []
        result = _cli([command, *extra, "--no-such-option", "3"], tmp_path)
        assert result.returncode == 2
        assert result.stderr.startswith(f"usage: captum-certified {command}"), result.stderr
        assert "unrecognized arguments: --no-such-option 3" in result.stderr
    assert not list(tmp_path.iterdir())


def _help(command=None):
    parser = _parser()
    if command is None:
        return parser.format_help()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    return " ".join(sub.choices[command].format_help().split())


def test_help_texts():
    top = " ".join(_help().split())
    for command in ("certify", "attack", "report", "train", "compare"):
        assert f"({command})" in top
    train = _help("train")
    assert "regularizer weight (lambda, beta, s) (default: the loss's own)" in train
    assert train.count("default: -1") == 0 and "imagefolder:DIR" in train
    attack = _help("attack")
    assert "(default: 16)" in attack and "(default: 512)" in attack and "unbounded" in attack
    assert "Prints the summary" in _help("report")
    assert "--noise-scale" in _help("compare") and "--stdevs" not in _help("compare")


# -- 6: pictures show what was certified and say what they show --------------------------------


def test_colour_heatmap_shows_the_certified_topk_of_all_features():
    from captum_certified.cli._report import topk_panel

    saved = torch.rand(3, 4, 4, generator=torch.Generator().manual_seed(0))
    panel, title = topk_panel(saved, 10)
    # exactly the 10 largest of the 48 feature-channels, counted per pixel
    reference = torch.zeros(48)
    reference[saved.flatten().argsort(descending=True)[:10]] = 1
    assert torch.equal(panel, reference.reshape(3, 4, 4).sum(0))
    assert panel.sum() == 10 and "10 of 48 features" in title and "channels" in title
    # the old picture (top 10 of the 16 channel sums) is a different set of pixels here
    summed = torch.zeros(16)
    summed[saved.sum(0).flatten().topk(10).indices] = 1
    assert not torch.equal((panel > 0).float(), summed.reshape(4, 4))
    grey, grey_title = topk_panel(saved[:1], 5)
    assert grey.shape == (4, 4) and grey.sum() == 5 and grey_title == "top-K: 5 of 16 features"


def test_long_run_context_is_wrapped():
    from captum_certified.cli._report import wrap_context

    context = "sparse_smoothgrad (gaussian), data=imagefolder:" + "/very/long/path" * 12
    wrapped = wrap_context(context, 100)
    assert "".join(wrapped.split()) == "".join(context.split())  # nothing lost
    assert max(len(line) for line in wrapped.splitlines()) <= 100


def test_compare_figure_labels_and_explains_its_metrics():
    pytest.importorskip("matplotlib")
    import matplotlib.pyplot as plt

    from captum_certified.cli._compare import compare_figure, legend

    row = {"loss": "ssr", "accuracy": 0.9, "topk": 0.5, "kendall": 0.4, "certified": {"0.1": 0.3}}
    note = legend(0.3, 0.125, 0.5)
    fig = compare_figure([row], [0.1], note)
    try:
        assert fig.axes[0].get_ylabel()
        shown = " ".join(t.get_text() for t in fig.texts).replace("\n", " ")
        for term in ("topk:", "kendall:", "success:", "cert@r:", "radius 0.3", "sigma = 0.5"):
            assert term in shown
    finally:
        plt.close(fig)


def test_docs_have_no_nested_inline_markup():
    import re

    for page in (ROOT / "docs").glob("*.rst"):
        for line in page.read_text().splitlines():
            for bold in re.findall(r"(?<!\*)\*\*(?!\*)(.+?)(?<!\*)\*\*(?!\*)", line):
                assert "``" not in bold, (page.name, line)


# -- 5: attack: the measurement does not mistake sampling noise for attack success -------------


def test_unmoved_input_reads_as_full_overlap(tmp_path, cache_dir, monkeypatch):
    """Clean and attacked maps are re-estimated from the same noise, so an attack that moves
    nothing reads exactly 1; with independent draws (the old measurement) the same unmoved
    input read below 1 (teeth: checked on the same maps)."""
    from captum_certified.attr import SparseSmoothGrad
    from captum_certified.cli import load_digits_split
    from captum_certified.cli._results import ATTACK_COLUMNS, parse_rows
    from captum_certified.metrics import topk_intersection
    from captum_certified.robust import AttributionL2Attack

    run = tmp_path / "run"
    small = ["--nt-samples", "64", "--nt-samples-batch-size", "64", "--no-progress"]
    assert main(["certify", "--out", str(run), "--n-examples", "2", *small]) == 0

    def unmoved(self, inputs, radius, *args, return_report=False, **kwargs):
        from captum_certified.robust._core.report import AttackReport

        out = inputs.clone()
        if not return_report:
            return out
        report = AttackReport.__new__(AttackReport)
        report.label_kept = torch.ones(len(inputs), dtype=torch.bool)
        return out, report

    monkeypatch.setattr(AttributionL2Attack, "perturb", unmoved)
    args = ["attack", str(run), "--n-examples", "2", "--eval-samples", "32", "--no-progress"]
    assert main(args) == 0
    rows = parse_rows((run / "attack.tsv").read_text(), ATTACK_COLUMNS)
    assert len(rows) == 20 and all(r["empirical"] == 1.0 for r in rows)
    # teeth: two independent 32-sample estimates of the same digit's map disagree
    from captum_certified.cli._digits import default_digits_model

    x, y = load_digits_split(seed=0)[2:]
    ssg = SparseSmoothGrad(default_digits_model(), sparsity=0.2)
    maps = [
        ssg.attribute(x[:1], target=int(y[0]), nt_samples=32, stdevs=0.5,
                      generator=torch.Generator().manual_seed(s))
        for s in (1, 2)
    ]  # fmt: skip
    assert topk_intersection(maps[0], maps[1], k=0.2).item() < 1


# -- 4: one explanation of "nothing certified at radius 0", in all three places ----------------


def test_radius_zero_advice_is_the_same_everywhere():
    from captum_certified.cli._config import RunConfig
    from captum_certified.cli._report import RADIUS_ZERO_ADVICE, low_certification_hint

    hint = low_certification_hint({"radii": [0.0, 0.1], "mean": [0.03, 0.0]}, RunConfig(), 3072)
    assert RADIUS_ZERO_ADVICE in hint
    for page in ("cli.rst", "parameters.rst"):
        text = " ".join((ROOT / "docs" / page).read_text().split())
        assert RADIUS_ZERO_ADVICE in text, page
        assert "certify a smaller" not in text and "raise --k/--sparsity" not in text
    assert "--sparsity" not in hint and "larger --k" in hint and "--nt-samples" in hint
