"""Issue 15: the command line on a user's own model, data and machine.

CLI items run the real command in a subprocess (tiny sample counts, few examples).
"""

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10 (supported by the package): no stdlib TOML reader
    tomllib = None

from captum_certified.cli._config import ConfigError, RunConfig, parse_count
from captum_certified.cli._report import low_certification_hint, run_context
from captum_certified.cli._results import ATTACK_COLUMNS, parse_rows
from captum_certified.cli._run_folder import MARKER

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--nt-samples", "128", "--nt-samples-batch-size", "128", "--no-progress"]


def _env(cache_dir=None, pythonpath=True):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if cache_dir is not None:
        env["CAPTUM_CERTIFIED_CACHE"] = str(cache_dir)
    env.pop("WORLD_SIZE", None)
    env.pop("PYTHONPATH", None)
    if pythonpath:
        env["PYTHONPATH"] = str(ROOT)
    return env


def _cli(args, cache_dir=None, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "captum_certified", *args],
        env=_env(cache_dir),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd or ROOT,
    )


def _digits_tensors(tmp_path, n=6):
    from captum_certified.cli import load_digits_split

    _, _, x, y = load_digits_split()
    path = tmp_path / "digits.pt"
    torch.save((x[:n], y[:n]), path)
    return path


# -- 1: no torchvision extra -------------------------------------------------------------------


def test_nothing_installs_or_imports_torchvision():
    if tomllib is None:
        pytest.skip("reading pyproject.toml needs Python >= 3.11 (tomllib)")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    requirements = [*project["dependencies"]]
    for extra in project["optional-dependencies"].values():
        requirements += extra
    assert not [r for r in requirements if "torchvision" in r.lower()]
    for name in ("README.md", ".ci/run"):
        path = ROOT / name
        if path.exists():
            text = path.read_text()
            assert not re.search(r"pip install[^\n]*(torchvision|\[vision\])", text), name
    for source in (ROOT / "captum_certified").rglob("*.py"):
        assert not re.search(r"^\s*(import|from) torchvision", source.read_text(), re.M), source


# -- 2: attack cost, batching, progress --------------------------------------------------------


def test_attack_help_states_its_cost_and_the_run_prints_it(tmp_path, cache_dir):
    helped = _cli(["attack", "--help"])
    assert helped.returncode == 0 and "Cost per example" in helped.stdout
    out = tmp_path / "run"
    certify = ["certify", "--out", str(out), "--n-examples", "2", "--radii", "0", "0.3", "1.0"]
    assert _cli([*certify, *SMALL], cache_dir).returncode == 0
    attack = [
        "attack",
        str(out),
        "--n-examples",
        "3",
        "--step-num",
        "2",
        "--num-restarts",
        "1",
        "--guide-samples",
        "8",
        "--eval-samples",
        "128",
        "--box",
        "0",
        "1",
        "--no-progress",
    ]
    result = _cli(attack, cache_dir)
    assert result.returncode == 0, result.stderr
    # cost announced: 2 radii x 1 restart x 2 steps x 5 x 8 + 2 x 3 x 128
    assert f"~{2 * 1 * 2 * 5 * 8 + 2 * 3 * 128:,} sample gradients per example" in result.stderr
    assert "--n-examples 3 asked, but the run holds 2" in result.stderr
    rows = parse_rows((out / "attack.tsv").read_text(), ATTACK_COLUMNS)
    # every radius of an example is its own row of one batch, inside its own ball
    assert sorted((r["index"], r["radius"]) for r in rows) == [
        (0, 0.3),
        (0, 1.0),
        (1, 0.3),
        (1, 1.0),
    ]
    for row in rows:
        assert row["attack_norm"] <= row["radius"] + 1e-5 and row["label_kept"] == 1
        assert 0 <= row["empirical"] <= 1
    assert (out / "attack.png").read_bytes()[:4] == b"\x89PNG"


def test_attack_uses_and_restores_the_recorded_thread_count(tmp_path, cache_dir):
    from captum_certified.cli import main

    out = tmp_path / "run"
    certify = ["certify", "--out", str(out), "--n-examples", "1", "--radii", "0", "0.2"]
    assert main([*certify, *SMALL]) == 0
    seen = []
    import captum_certified.cli._attack as attack_module

    original = attack_module._attack_examples

    def spy(*args, **kwargs):
        seen.append(torch.get_num_threads())
        return original(*args, **kwargs)

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        attack_module._attack_examples = spy
        args = ["attack", str(out), "--step-num", "1", "--num-restarts", "1"]
        args += ["--guide-samples", "4"]
        assert main([*args, "--eval-samples", "64", "--no-progress"]) == 0
        assert seen == [1] and torch.get_num_threads() == 2
    finally:
        attack_module._attack_examples = original
        torch.set_num_threads(before)


# -- 3: radius grid from the noise scale and norm, hint ------------------------------------------


@pytest.mark.parametrize(
    "method, noise, norm, top",
    [
        ("sparse_smoothgrad", "gaussian", "l2", 0.5),
        ("renyi", "gaussian", "l1", 0.5),
        ("renyi", "gaussian", "linf", 0.5 / 8),
        ("renyi", "laplace", "l1", 1.5),
        ("renyi", "laplace", "l2", 1.5 / 8),
        ("renyi", "laplace", "linf", 1.5 / 64),
        ("uniform", "l2_ball", "l2", 0.5 / 8),
    ],
)
def test_auto_radius_grid_scales_with_noise_and_norm(method, noise, norm, top):
    config = RunConfig(method=method, noise=noise, norm=norm, noise_scale=0.5).validate()
    grid = config.radius_grid(64)
    assert len(grid) == 11 and grid[0] == 0.0
    assert grid[-1] == pytest.approx(top, rel=1e-5)
    assert all(b > a for a, b in zip(grid, grid[1:]))
    explicit = RunConfig(radii=[0.3, 0.0]).validate()
    assert explicit.radius_grid(64) == [0.0, 0.3]


def test_hint_when_almost_nothing_is_certified(tmp_path, cache_dir):
    config = RunConfig(nt_samples=64).validate()
    summary = {"radii": [0.0, 0.1], "mean": [0.03, 0.0]}
    assert "--nt-samples" in low_certification_hint(summary, config, 12288)
    low = {"radii": [0.0, 0.1], "mean": [0.9, 0.01]}
    assert "--noise-scale" in low_certification_hint(low, config)
    assert low_certification_hint({"radii": [0.0, 0.1], "mean": [0.9, 0.5]}, config) == ""
    # the real command: 16 samples, K = all but a few features -> wide band, nothing certified
    out = tmp_path / "run"
    args = ["certify", "--out", str(out), "--n-examples", "1", "--nt-samples", "16"]
    result = _cli([*args, "--nt-samples-batch-size", "16", "--no-progress"], cache_dir)
    assert result.returncode == 0, result.stderr
    hints = [line for line in result.stdout.splitlines() if line.startswith("hint:")]
    assert len(hints) == 1 and "Choosing parameters" in hints[0]
    recorded = RunConfig.load(out / "config.toml")
    assert recorded.radii == RunConfig().validate().radius_grid(64)  # auto grid recorded


# -- 4: own module from the current folder -------------------------------------------------------


def test_model_module_found_in_the_current_folder_without_pythonpath(tmp_path, cache_dir):
    (tmp_path / "tinycnn.py").write_text(
        "from captum_certified.cli import default_digits_model\n"
        "def factory():\n    return default_digits_model()\n"
    )
    data = _digits_tensors(tmp_path, n=1)
    # a launcher like the console script: its own folder, not the cwd, is sys.path[0]
    launcher = tmp_path / "bin" / "captum-certified"
    launcher.parent.mkdir()
    launcher.write_text(
        f"import sys\nsys.path.insert(1, {str(ROOT)!r})\n"
        "from captum_certified.cli._main import console_main\nconsole_main()\n"
    )
    args = ["certify", "--model", "tinycnn:factory", "--data", f"tensors:{data}", "--out", "run"]
    result = subprocess.run(
        [sys.executable, str(launcher), *args, *SMALL],
        env=_env(cache_dir, pythonpath=False),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "run" / "results.tsv").exists()
    assert "current folder" in _cli(["certify", "--help"]).stdout


# -- 5: validation before the run folder exists --------------------------------------------------


def _one_line_error(result, *needles):
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def test_data_dependent_errors_come_before_the_run_folder(tmp_path, cache_dir):
    data = _digits_tensors(tmp_path)
    out = tmp_path / "run"
    common = ["--data", f"tensors:{data}", "--out", str(out), *SMALL]
    _one_line_error(
        _cli(["certify", "--k", "100", *common], cache_dir), "--k 100", "64", "(1, 8, 8)"
    )
    _one_line_error(_cli(["certify", "--sparsity", "65", *common], cache_dir), "--sparsity")
    (tmp_path / "rgb.py").write_text(
        "import torch\n"
        "def factory():\n"
        "    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(),\n"
        "                               torch.nn.LazyLinear(10))\n"
        "def five():\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 5))\n"
        "def wrong():\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 10))\n"
    )
    rgb = ["certify", "--model", "rgb:factory", *common]
    _one_line_error(_cli(rgb, cache_dir, cwd=tmp_path), "--model", "3 input channels", "has 1")
    five = ["certify", "--model", "rgb:five", *common]
    _one_line_error(_cli(five, cache_dir, cwd=tmp_path), "--data has labels", "5 classes")
    wrong = ["certify", "--model", "rgb:wrong", *common]
    _one_line_error(_cli(wrong, cache_dir, cwd=tmp_path), "--model does not accept", "(1, 8, 8)")
    assert not out.exists()
    # a folder left by a run that certified nothing accepts the corrected command
    (out / "parts").mkdir(parents=True)
    (out / MARKER).write_text('{"kind": "certify"}\n')  # the folder is the tool's own
    (out / "config.toml").write_text(RunConfig(k=100, data=f"tensors:{data}").dump_toml())
    fixed = _cli(["certify", "--k", "10", "--n-examples", "1", *common], cache_dir)
    assert fixed.returncode == 0, fixed.stderr
    assert RunConfig.load(out / "config.toml").k == 10


# -- 6: plots with context ----------------------------------------------------------------------


def test_plots_name_the_run_and_heatmaps_are_written(tmp_path, cache_dir):
    config = RunConfig(k=5, noise_scale=0.25, nt_samples=300, alpha=0.01).validate()
    context = run_context(config, 7)
    for part in ("sparse_smoothgrad", "K=5", "sigma=0.25", "n=300", "alpha=0.01", "7 examples"):
        assert part in context
    assert "data=digits" in context
    out = tmp_path / "run"
    result = _cli(["certify", "--out", str(out), "--n-examples", "4", *SMALL], cache_dir)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in (out / "maps").iterdir()) == [
        "example-0.pt",
        "example-1.pt",
        "example-2.pt",
    ]
    saved = torch.load(out / "maps" / "example-1.pt", weights_only=True)
    assert saved["map"].shape == (1, 8, 8) and saved["k_count"] == 12
    for name in ("certified_vs_radius.png", "maps.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG"
    report = _cli(["report", str(out)])
    assert report.returncode == 0 and "heatmaps:" in report.stdout


# -- 7: example selection --------------------------------------------------------------------------


def _image_folder(root, classes=3, per_class=4):
    from PIL import Image

    for c in range(classes):
        folder = root / f"class{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.new("RGB", (4, 4), (40 * c, 10 * i, 0)).save(folder / f"img{i}.png")


def test_image_folder_examples_are_balanced_seeded_and_counted(tmp_path):
    from captum_certified.cli._sources import load_data

    _image_folder(tmp_path / "imgs")
    x, y = load_data(f"imagefolder:{tmp_path / 'imgs'}", seed=0)
    assert x.shape == (12, 3, 4, 4)
    assert y[:3].sort().values.tolist() == [0, 1, 2] and y[3:6].sort().values.tolist() == [0, 1, 2]
    x1, y1 = load_data(f"imagefolder:{tmp_path / 'imgs'}", seed=1)
    assert sorted(y1.tolist()) == sorted(y.tolist()) and not torch.equal(x1, x)
    # the same images, each exactly once
    assert sorted(map(tuple, x.flatten(1).tolist())) == sorted(map(tuple, x1.flatten(1).tolist()))
    (tmp_path / "m.py").write_text(
        "import torch\n"
        "def factory():\n"
        "    torch.manual_seed(0)\n"
        "    return torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(48, 3))\n"
    )
    args = ["certify", "--model", "m:factory", "--data", f"imagefolder:{tmp_path / 'imgs'}"]
    args += ["--out", str(tmp_path / "run"), "--n-examples", "100", "--k", "5", *SMALL]
    result = _cli(args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "--n-examples 100 asked, but --data holds 12 examples" in result.stderr
    rows = parse_rows((tmp_path / "run" / "results.tsv").read_text())
    assert sorted({r["index"] for r in rows}) == list(range(12))


# -- 8: --k / --sparsity ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [("1", 1), ("12", 12), ("0.2", 0.2), ("20%", 0.2), ("100%", 1.0), (" 5 ", 5)],
)
def test_count_specs_parse_unambiguously(text, expected):
    value = parse_count(text, "--k")
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("text", ["1.0", "2.5", "3.0", "0", "-1", "0%", "120%", "abc", "1e9x"])
def test_bad_count_specs_name_the_option(text):
    with pytest.raises(ConfigError, match="--k"):
        parse_count(text, "--k")


def test_config_files_follow_the_python_convention():
    assert parse_count(1.0, "--k") == 1.0 and isinstance(parse_count(1.0, "--k"), float)
    assert parse_count(5, "--k") == 5 and parse_count(5.0, "--k") == 5  # older files
    assert parse_count("20%", "--k") == 0.2


def test_cli_records_exactly_the_k_it_used(tmp_path, cache_dir):
    out = tmp_path / "run"
    args = ["certify", "--out", str(out), "--n-examples", "1", "--radii", "0", "0.1"]
    result = _cli([*args, "--k", "1", "--sparsity", "25%", *SMALL], cache_dir)
    assert result.returncode == 0, result.stderr
    text = (out / "config.toml").read_text()
    assert "\nk = 1\n" in text and "\nsparsity = 0.25\n" in text
    assert {r["k_count"] for r in parse_rows((out / "results.tsv").read_text())} == {1}
    _one_line_error(_cli([*args, "--k", "1.0", *SMALL], cache_dir), "--k 1.0 is ambiguous")


# -- 9: device, start-up time ---------------------------------------------------------------------


def _modules_after(code):
    result = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys\nprint(' '.join(sorted(sys.modules)))"],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
    return set(result.stdout.split())


def test_imports_stay_lazy():
    attr = _modules_after("import captum_certified.attr, captum_certified.certify")
    assert "scipy.stats" not in attr and "scipy.special" not in attr and "sklearn" not in attr
    cli = _modules_after(
        "import sys\nsys.argv = ['captum-certified', '--help']\n"
        "from captum_certified.cli._main import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass"
    )
    assert "torch" not in cli and "scipy" not in cli and "matplotlib" not in cli


def test_cli_sources_never_call_numpy_on_tensors():
    # the CUDA path must not call .numpy() on device tensors: the command line converts with
    # .item()/.tolist()/.cpu() only
    for source in (ROOT / "captum_certified" / "cli").glob("*.py"):
        assert ".numpy()" not in source.read_text(), source


def test_device_option(tmp_path, cache_dir, monkeypatch):
    from captum_certified.cli._checks import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="--device cuda"):
        resolve_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == torch.device("cuda")
    assert resolve_device("cpu") == torch.device("cpu")
    out = tmp_path / "run"
    args = ["certify", "--out", str(out), "--n-examples", "1", "--radii", "0", *SMALL]
    result = _cli([*args, "--device", "auto"], cache_dir)
    assert result.returncode == 0, result.stderr
    assert RunConfig.load(out / "config.toml").device == "auto"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_run_matches_the_cpu_run(tmp_path, cache_dir):  # pragma: no cover - GPU only
    args = ["certify", "--n-examples", "2", "--radii", "0", "0.1", *SMALL]
    cpu = _cli([*args, "--out", str(tmp_path / "cpu")], cache_dir)
    gpu = _cli([*args, "--out", str(tmp_path / "gpu"), "--device", "cuda"], cache_dir)
    assert cpu.returncode == 0 and gpu.returncode == 0, gpu.stderr
    a = parse_rows((tmp_path / "cpu" / "results.tsv").read_text())
    b = parse_rows((tmp_path / "gpu" / "results.tsv").read_text())
    assert [r["predicted"] for r in a] == [r["predicted"] for r in b]
    for ra, rb in zip(a, b):
        assert math.isfinite(rb["certified"]) and abs(ra["certified"] - rb["certified"]) <= 0.25


# -- 11: --version, broken pipes, YAML -----------------------------------------------------------


def test_version_broken_pipe_and_yaml_extra(tmp_path, cache_dir):
    from captum_certified import __version__

    version = _cli(["--version"])
    assert version.returncode == 0 and version.stdout.strip() == f"captum-certified {__version__}"
    out = tmp_path / "run"
    assert (
        _cli(["certify", "--out", str(out), "--n-examples", "1", *SMALL], cache_dir).returncode == 0
    )
    piped = subprocess.run(
        f"{sys.executable} -m captum_certified report {out} | head -n 1",
        shell=True,
        env=_env(cache_dir),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert piped.stdout.startswith("examples: 1")
    assert "Traceback" not in piped.stderr and "BrokenPipe" not in piped.stderr
    if tomllib is None:
        pytest.skip("reading pyproject.toml needs Python >= 3.11 (tomllib)")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    assert any(r.lower().startswith("pyyaml") for r in extras["cli"])
