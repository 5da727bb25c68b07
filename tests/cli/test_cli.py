"""The command line end to end: default run, config files, bad arguments, resume, torchrun."""

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from captum_certified.attr import SparseSmoothGrad
from captum_certified.cli import default_digits_model, load_digits_split, main
from captum_certified.cli._config import ConfigError, RunConfig
from captum_certified.cli._results import parse_rows
from captum_certified.noise import LaplaceNoise, UniformBallNoise

SMALL = ["--nt-samples", "256", "--nt-samples-batch-size", "128", "--no-progress"]


ROOT = Path(__file__).resolve().parents[2]


def _env(cache_dir):
    env = dict(os.environ, CAPTUM_CERTIFIED_CACHE=str(cache_dir), OMP_NUM_THREADS="1")
    # subprocesses run this checkout's package, whatever their working folder
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("WORLD_SIZE", None)
    return env


def _cli(args, cache_dir, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "captum_certified", *args],
        env=_env(cache_dir),
        capture_output=True,
        text=True,
        timeout=300,
        **kwargs,
    )


def _certified_columns(path):
    rows = parse_rows(Path(path).read_text())
    return [(r["index"], r["radius"], r["certified"], r["predicted"]) for r in rows]


def test_default_certify_end_to_end(tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    assert main(["certify", "--out", str(out), "--n-examples", "3", *SMALL]) == 0
    printed = capsys.readouterr().out
    assert "certified top-K overlap" in printed and "clean accuracy" in printed
    for name in ("results.tsv", "config.toml", "meta.json", "summary.json"):
        assert (out / name).exists(), name
    assert (out / "certified_vs_radius.png").read_bytes()[:4] == b"\x89PNG"
    rows = parse_rows((out / "results.tsv").read_text())
    config = RunConfig.load(out / "config.toml")
    assert len(rows) == 3 * len(config.radii)
    # independent check: the rows equal a direct SparseSmoothGrad call with the same seed
    model = default_digits_model()
    _, _, x, y = load_digits_split()
    for index in range(3):
        _, cert = SparseSmoothGrad(model, sparsity=0.2).attribute(
            x[index : index + 1],
            target=int(y[index]),
            nt_samples=256,
            nt_samples_batch_size=128,
            stdevs=0.5,
            return_certificate=True,
            generator=torch.Generator().manual_seed(index),
        )
        expected = [float(cert.topk_overlap(0.2, r)[0]) for r in config.radii]
        got = [r["certified"] for r in rows if r["index"] == index]
        assert got == expected
    # the report subcommand reads the folder back
    assert main(["report", str(out)]) == 0
    assert "median certified radius at overlap >= 0.5" in capsys.readouterr().out


def test_config_round_trip(tmp_path):
    config = RunConfig(noise_scale=0.3, radii=[0.0, 0.2], target="predicted", n_examples=7)
    path = tmp_path / "c.toml"
    path.write_text(config.dump_toml())
    assert RunConfig.load(path) == config
    json_path = tmp_path / "c.json"
    json_path.write_text('{"noise_scale": 0.3, "radii": [0.0, 0.2], "target": "predicted"}')
    loaded = RunConfig.load(json_path)
    assert loaded.noise_scale == 0.3 and loaded.target == "predicted" and loaded.n_examples == 100
    yaml = pytest.importorskip("yaml")
    yaml_path = tmp_path / "c.yaml"
    yaml_path.write_text(yaml.safe_dump(config.to_dict()))
    assert RunConfig.load(yaml_path) == config


def test_config_file_and_flags_combine(tmp_path, cache_dir):
    config_file = tmp_path / "my.toml"
    config_file.write_text("n_examples = 2\nradii = [0.0, 0.1]\nnoise_scale = 0.4\n")
    out = tmp_path / "run"
    args = ["certify", "--config", str(config_file), "--out", str(out), "--noise-scale", "0.45"]
    assert main([*args, *SMALL]) == 0
    recorded = RunConfig.load(out / "config.toml")
    assert recorded.n_examples == 2 and recorded.radii == [0.0, 0.1]
    assert recorded.noise_scale == 0.45


@pytest.mark.parametrize(
    "args, message",
    [
        (["certify", "--noise-scale", "-1"], "--noise-scale"),
        (["certify", "--alpha", "1.5"], "--alpha"),
        (["certify", "--k", "0"], "--k"),
        (["certify", "--radii", "-0.1"], "--radii"),
        (["certify", "--model", "nomodule"], "--model"),
        (["certify", "--model", "no_such_module_xyz:f"], "--model"),
        (["certify", "--data", "tensors:/no/such/file.pt"], "--data"),
        (["certify", "--data", "csv:foo"], "--data"),
        (["certify", "--config", "/no/such/config.ini"], "--config"),
        (["report", "/no/such/run"], "results.tsv"),
    ],
)
def test_bad_arguments_exit_nonzero_with_a_clear_message(args, message, tmp_path, capsys):
    if args[0] == "certify":
        args = [*args, "--out", str(tmp_path / "out")]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_argparse_rejects_unknown_choices(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["certify", "--method", "magic"])
    assert exc.value.code == 2
    assert "--method" in capsys.readouterr().err


def test_resuming_with_a_different_config_is_refused(tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    base = ["certify", "--out", str(out), "--n-examples", "1", *SMALL]
    assert main(base) == 0
    assert main([*base, "--noise-scale", "0.3"]) == 2
    assert "noise_scale" in capsys.readouterr().err


def test_tensors_and_factory_sources(tmp_path, cache_dir):
    _, _, x, y = load_digits_split()
    torch.save((x[:2], y[:2]), tmp_path / "data.pt")
    module = tmp_path / "my_models.py"
    module.write_text(
        "from captum_certified.cli import default_digits_model\n"
        "def factory():\n    return default_digits_model()\n"
    )
    out = tmp_path / "run"
    result = _cli(
        [
            "certify",
            "--model",
            "my_models:factory",
            "--data",
            f"tensors:{tmp_path / 'data.pt'}",
            "--out",
            str(out),
            "--n-examples",
            "5",
            *SMALL,
        ],
        cache_dir,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    rows = parse_rows((out / "results.tsv").read_text())
    assert sorted({r["index"] for r in rows}) == [0, 1]  # clamped to the 2 examples given


def _wait_for_examples(part, count, proc, timeout=120):
    start = time.time()
    while time.time() - start < timeout:
        if part.exists() and len(parse_rows(part.read_text())) >= count:
            return
        if proc.poll() is not None:
            raise AssertionError("run ended before it could be interrupted")
        time.sleep(0.05)
    raise AssertionError("run made no progress")


@pytest.mark.slow
def test_resume_after_sigint_and_kill_9(tmp_path, cache_dir, capsys):
    radii = ["--radii", "0", "0.1", "0.2"]
    args = [
        "certify",
        "--n-examples",
        "8",
        "--nt-samples",
        "1024",
        "--nt-samples-batch-size",
        "256",
        "--no-progress",
        *radii,
    ]
    out = tmp_path / "run"
    part = out / "parts" / "part-0.tsv"
    command = [sys.executable, "-m", "captum_certified", *args, "--out", str(out)]

    proc = subprocess.Popen(command, env=_env(cache_dir), stderr=subprocess.PIPE, text=True)
    _wait_for_examples(part, 2 * 3, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and "rerun the same command to resume" in err

    proc = subprocess.Popen(command, env=_env(cache_dir), stderr=subprocess.DEVNULL)
    _wait_for_examples(part, 4 * 3, proc)
    proc.kill()  # SIGKILL: no cleanup at all
    proc.wait()
    if part.read_text().endswith("\n"):  # simulate a write cut mid-line as well
        with open(part, "a") as f:
            f.write("99\t1\t1")

    # the rerun and the fresh reference run in this process (the same code as the command)
    capsys.readouterr()
    assert main([*args, "--out", str(out)]) == 0
    assert "resuming" in capsys.readouterr().out
    rows = parse_rows((out / "results.tsv").read_text())
    indices = [r["index"] for r in rows]
    assert sorted(set(indices)) == list(range(8))
    assert all(indices.count(i) == 3 for i in range(8))  # every example exactly once

    fresh = tmp_path / "fresh"
    assert main([*args, "--out", str(fresh)]) == 0
    assert _certified_columns(out / "results.tsv") == _certified_columns(fresh / "results.tsv")


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun not on PATH")
def test_torchrun_two_processes_match_one(tmp_path, cache_dir):
    args = ["certify", "--n-examples", "6", *SMALL, "--radii", "0", "0.1", "0.3"]
    # one process: this one (WORLD_SIZE unset); two: torchrun's
    assert main(args + ["--out", str(tmp_path / "one")]) == 0
    two = subprocess.run(
        [
            "torchrun",
            "--standalone",
            "--nproc_per_node=2",
            "-m",
            "captum_certified",
            *args,
            "--out",
            str(tmp_path / "two"),
        ],
        env=_env(cache_dir),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert two.returncode == 0, two.stderr
    parts = sorted(p.name for p in (tmp_path / "two" / "parts").glob("*.tsv"))
    assert parts == ["part-0.tsv", "part-1.tsv"]
    # each rank certified its own shard: even indices on rank 0, odd on rank 1
    rank1 = {r["index"] for r in parse_rows((tmp_path / "two/parts/part-1.tsv").read_text())}
    assert rank1 == {1, 3, 5}
    assert _certified_columns(tmp_path / "one/results.tsv") == _certified_columns(
        tmp_path / "two/results.tsv"
    )


def test_config_validation_names_fields():
    with pytest.raises(ConfigError, match="--target"):
        RunConfig(target="x").validate()
    with pytest.raises(ConfigError, match="unknown configuration keys"):
        RunConfig.from_dict({"sigma": 1})


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([1], "a config file must hold a table of options, got [1]"),
        ({"sigma": 1}, "unknown configuration keys: ['sigma']"),
        ({"seed": "a"}, "config key `seed` must be int, got str 'a'"),
    ],
)
def test_config_files_are_checked_the_same_way_for_certify_and_train(values, message):
    from captum_certified.cli._train_config import TrainConfig

    with pytest.raises(ConfigError) as run_error:
        RunConfig.from_dict(values)
    assert str(run_error.value) == message
    train_message = message.replace("a config file", "a train config").replace(
        "a table of", "an object of"
    )
    train_message = train_message.replace("unknown configuration keys:", "unknown train option(s)")
    with pytest.raises(ConfigError) as train_error:
        TrainConfig.from_dict(values)
    assert str(train_error.value) == train_message
    assert TrainConfig.from_dict({"seed": 3}).seed == 3
    assert RunConfig.from_dict({"seed": 3}).seed == 3


def test_renyi_and_uniform_methods_match_the_api(tmp_path, cache_dir):
    from captum_certified.attr import RenyiRobustSmooth, UniformSmoothedAttribution

    model = default_digits_model()
    _, _, x, y = load_digits_split()
    x0, y0 = x[:1], int(y[0])
    common = dict(nt_samples=256, nt_samples_batch_size=128, return_certificate=True)

    out = tmp_path / "renyi"
    args = [
        "certify",
        "--method",
        "renyi",
        "--noise",
        "laplace",
        "--noise-scale",
        "0.5",
        "--norm",
        "linf",
        "--radii",
        "0",
        "0.01",
        "--n-examples",
        "1",
        "--out",
        str(out),
        *SMALL,
    ]
    assert main(args) == 0
    _, cert = RenyiRobustSmooth(model, sparsity=0.2).attribute(
        x0,
        target=y0,
        noise=LaplaceNoise(),
        noise_scale=0.5,
        generator=torch.Generator().manual_seed(0),
        **common,
    )
    got = [r["certified"] for r in parse_rows((out / "results.tsv").read_text())]
    assert got == [float(cert.topk_overlap(0.2, r, norm="linf")[0]) for r in (0.0, 0.01)]

    out = tmp_path / "uniform"
    args = [
        "certify",
        "--method",
        "uniform",
        "--noise-scale",
        "2.0",
        "--radii",
        "0",
        "0.1",
        "--level",
        "0.9",
        "--n-examples",
        "1",
        "--out",
        str(out),
        *SMALL,
    ]
    assert main(args) == 0
    _, cert = UniformSmoothedAttribution(model).attribute(
        x0,
        target=y0,
        noise_scale=2.0,
        noise=UniformBallNoise(),
        generator=torch.Generator().manual_seed(0),
        **common,
    )
    rows = parse_rows((out / "results.tsv").read_text())
    assert [r["certified"] for r in rows] == [
        float(cert.cosine_lower_bound(r)[0]) for r in (0.0, 0.1)
    ]
    assert rows[0]["metric"] == "cosine_lower_bound"
    assert rows[0]["radius_at_level"] == float(cert.certified_radius(min_cosine=0.9)[0])


@pytest.mark.parametrize(
    "args, message",
    [
        (["--method", "uniform", "--norm", "linf"], "--norm"),
        (["--method", "sparse_smoothgrad", "--noise", "laplace"], "--noise"),
        (["--level", "0"], "--level"),
    ],
)
def test_method_specific_arguments_are_checked(args, message, tmp_path, capsys):
    assert main(["certify", *args, "--out", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err


def test_attack_subcommand_runs_and_resumes(tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    certify = ["certify", "--out", str(out), "--n-examples", "2", "--radii", "0", "1.0", *SMALL]
    assert main(certify) == 0
    attack = [
        "attack",
        str(out),
        "--n-examples",
        "1",
        "--step-num",
        "3",
        "--num-restarts",
        "1",
        "--guide-samples",
        "8",
        "--eval-samples",
        "256",
        "--box",
        "0",
        "1",
        "--no-progress",
    ]
    assert main(attack) == 0
    printed = capsys.readouterr().out
    assert "top-K overlap under the l2 attack" in printed
    from captum_certified.cli._results import ATTACK_COLUMNS

    rows = parse_rows((out / "attack.tsv").read_text(), ATTACK_COLUMNS)
    assert len(rows) == 1 and rows[0]["radius"] == 1.0 and rows[0]["label_kept"] == 1
    assert 0 <= rows[0]["empirical"] <= 1 and rows[0]["attack_norm"] <= 1.0 + 1e-5
    certified = parse_rows((out / "results.tsv").read_text())
    assert rows[0]["certified"] == [r for r in certified if r["radius"] == 1.0][0]["certified"]
    before = (out / "attack.tsv").read_text()
    assert main(attack) == 0  # resumes: nothing left to attack, same file
    assert (out / "attack.tsv").read_text() == before
    assert main(["report", str(out)]) == 0
    assert "attacked" in capsys.readouterr().out


def test_attack_needs_a_sparse_smoothgrad_run(tmp_path, cache_dir, capsys):
    assert main(["attack", str(tmp_path / "missing")]) == 2
    assert "not a finished certify run" in capsys.readouterr().err
    out = tmp_path / "renyi"
    assert (
        main(
            [
                "certify",
                "--method",
                "renyi",
                "--out",
                str(out),
                "--n-examples",
                "1",
                "--radii",
                "0",
                "0.1",
                *SMALL,
            ]
        )
        == 0
    )
    assert main(["attack", str(out), "--no-progress"]) == 2
    assert "sparse_smoothgrad" in capsys.readouterr().err


def test_noise_scale_is_the_one_name_of_the_scale(capsys):
    from captum_certified.cli._main import _parser

    # --stdevs is not a flag of `certify` (one name, --noise-scale, for every noise)
    with pytest.raises(SystemExit):
        _parser().parse_args(["certify", "--stdevs", "0.3"])
    assert "--stdevs" in capsys.readouterr().err
    # nor a configuration key
    with pytest.raises(ConfigError, match="stdevs"):
        RunConfig.from_dict({"stdevs": 0.3, "method": "renyi"})
    assert RunConfig(noise_scale=0.3).validate().scale == 0.3
