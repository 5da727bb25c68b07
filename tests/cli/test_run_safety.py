"""Run folders and checkpoints the tool can trust (issue 29): no code from data files, one
writer per run, resumes that check what they resume, ``--out`` that never clobbers, no writes
through links, and the odds and ends of robustness."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from captum_certified.cli import load_digits_split, main

ROOT = Path(__file__).resolve().parents[2]
SMALL = ["--nt-samples", "64", "--nt-samples-batch-size", "64", "--no-progress"]
TINY_TRAIN = ["--epochs", "1", "--no-progress", "--step-num", "1", "--n-steps", "4"]


class _Payload:
    """Unpickling this calls ``open(path, "w")``: the file appears iff the payload runs."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def small_digits(tmp_path):
    x, y, _, _ = load_digits_split(seed=0)
    path = tmp_path / "digits.pt"
    torch.save((x[:100], y[:100]), path)
    return ["--data", f"tensors:{path}"]


def _env(cache_dir):
    env = dict(os.environ, CAPTUM_CERTIFIED_CACHE=str(cache_dir), OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.pop("WORLD_SIZE", None)
    return env


# 1. no code from checkpoints ----------------------------------------------------------------
def test_train_out_with_a_malicious_checkpoint_runs_no_code(tmp_path, small_digits, capsys):
    marker = tmp_path / "payload-ran"
    planted = tmp_path / "planted"
    planted.mkdir()
    torch.save({"epoch": 0, "payload": _Payload(marker)}, planted / "last.pt")
    code = main(["train", "--out", str(planted), *TINY_TRAIN, *small_digits])
    assert not marker.exists()
    assert code == 2 and "did not create" in capsys.readouterr().err

    # a folder of a real train run whose checkpoint was replaced by a crafted one
    run = tmp_path / "run"
    assert main(["train", "--out", str(run), *TINY_TRAIN, *small_digits]) == 0
    state = torch.load(run / "last.pt", weights_only=True)
    state["payload"] = _Payload(marker)
    torch.save(state, run / "last.pt")
    code = main(["train", "--out", str(run), *TINY_TRAIN, *small_digits])
    assert not marker.exists()
    assert code == 2 and "not a plain checkpoint" in capsys.readouterr().err


# 2. one writer per run folder ---------------------------------------------------------------
def _wait_for_rows(part, proc, timeout=120):
    start = time.time()
    while time.time() - start < timeout:
        if part.exists() and part.read_text().count("\n") >= 2:
            return
        if proc.poll() is not None:
            raise AssertionError(f"the first run ended early: {proc.stderr.read()}")
        time.sleep(0.05)
    raise AssertionError("the first run made no progress")


def test_two_processes_cannot_write_one_run_folder(tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    slow = ["certify", "--out", str(out), "--n-examples", "300", "--nt-samples", "2048"]
    command = [sys.executable, "-m", "captum_certified", *slow, "--no-progress"]
    first = subprocess.Popen(command, env=_env(cache_dir), stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_rows(out / "parts" / "part-0.tsv", first)
        config_before = (out / "config.toml").read_text()
        second = subprocess.run(
            [sys.executable, "-m", "captum_certified", "certify", "--out", str(out),
             "--n-examples", "2", *SMALL],
            env=_env(cache_dir), capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert first.poll() is None, "the first run must still be running"
        assert second.returncode == 2, second.stderr
        assert "in use by another captum-certified process" in second.stderr
        assert f"pid {first.pid}" in second.stderr  # names the other process
        assert len(second.stderr.strip().splitlines()) == 1
        assert (out / "config.toml").read_text() == config_before  # not deleted or rewritten
    finally:
        first.kill()  # SIGKILL: its lock file stays behind, stale
        first.communicate()
    assert f"pid {first.pid}" in (out / ".lock").read_text()
    # the stale lock of the dead process is recovered: the next command gets the folder
    # (and is refused only for its different configuration)
    capsys.readouterr()
    assert main(["certify", "--out", str(out), "--n-examples", "2", *SMALL]) == 2
    err = capsys.readouterr().err
    assert "different configuration" in err and "in use" not in err


def test_a_stale_lock_file_is_recovered(tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    args = ["certify", "--out", str(out), "--n-examples", "1", *SMALL]
    assert main(args) == 0
    (out / ".lock").write_text("pid 999999999 on elsewhere, command: certify\n")
    capsys.readouterr()
    assert main(args) == 0  # no live process holds it: the run resumes
    assert "resuming" in capsys.readouterr().out
    assert f"pid {os.getpid()}" in (out / ".lock").read_text()


# 3. a resume or rerun checks what it resumes ------------------------------------------------
def test_a_rerun_with_other_data_is_refused(tmp_path, cache_dir, capsys):
    x, y, _, _ = load_digits_split(seed=0)
    data = tmp_path / "data.pt"
    torch.save((x[:2], y[:2]), data)
    args = ["certify", "--data", f"tensors:{data}", "--out", str(tmp_path / "run")]
    args += ["--n-examples", "2", *SMALL]
    assert main(args) == 0
    torch.save((x[2:4], y[2:4]), data)  # same shapes, other examples
    capsys.readouterr()
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "different data" in err and "model" not in err.split("(")[0]


def test_a_rerun_with_other_model_weights_is_refused(tmp_path, cache_dir, capsys, monkeypatch):
    (tmp_path / "shifted_models29.py").write_text(
        "import torch\n"
        "from captum_certified.cli import default_digits_model\n"
        "def factory():\n"
        "    net = default_digits_model()\n"
        "    with torch.no_grad():\n"
        "        net.head.bias += float(open('shift.txt').read())\n"
        "    return net\n"
    )
    (tmp_path / "shift.txt").write_text("0.0")
    monkeypatch.chdir(tmp_path)
    args = ["certify", "--model", "shifted_models29:factory", "--out", str(tmp_path / "run")]
    args += ["--n-examples", "1", *SMALL]
    assert main(args) == 0
    (tmp_path / "shift.txt").write_text("0.5")  # the weights behind the factory changed
    capsys.readouterr()
    assert main(args) == 2
    assert "different model" in capsys.readouterr().err


ATTACK_FAST = ["--n-examples", "1", "--guide-samples", "4", "--eval-samples", "16"]


def test_an_attack_rerun_with_other_options_is_refused(tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    assert main(["certify", "--out", str(out), "--n-examples", "1", *SMALL]) == 0
    attack = ["attack", str(out), *ATTACK_FAST, "--no-progress", "--num-restarts", "1"]
    assert main([*attack, "--step-num", "1"]) == 0
    before = (out / "attack.tsv").read_text()
    capsys.readouterr()
    assert main([*attack, "--step-num", "3"]) == 2
    err = capsys.readouterr().err
    assert "step_num" in err and "1 then, 3 now" in err
    assert (out / "attack.tsv").read_text() == before
    assert main([*attack, "--step-num", "1"]) == 0  # the same options resume


# 4. --out never clobbers what is not a run --------------------------------------------------
def test_out_into_a_folder_the_tool_did_not_create_is_refused(tmp_path, cache_dir, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "results.tsv").write_text("my own table\n")
    (mine / "model.pt").write_bytes(b"my weights")
    assert main(["certify", "--out", str(mine), "--n-examples", "1", *SMALL]) == 2
    assert "did not create" in capsys.readouterr().err
    assert main(["train", "--out", str(mine), *TINY_TRAIN]) == 2
    assert sorted(p.name for p in mine.iterdir()) == ["model.pt", "results.tsv"]
    assert (mine / "results.tsv").read_text() == "my own table\n"
    assert (mine / "model.pt").read_bytes() == b"my weights"


def test_a_hand_written_config_is_never_rewritten(tmp_path, cache_dir, capsys):
    folder = tmp_path / "exp"
    folder.mkdir()
    config = folder / "config.toml"
    text = f'# my notes\nn_examples = 1\nnt_samples = 64\nout = "{folder}"\n'
    config.write_text(text)
    assert main(["certify", "--config", str(config), "--no-progress"]) == 2
    assert config.read_text() == text
    # next to a run of the tool, the same configuration (with its comments) is kept as it is
    run = tmp_path / "run"
    assert main(["certify", "--out", str(run), "--n-examples", "1", *SMALL]) == 0
    commented = "# my notes\n" + (run / "config.toml").read_text()
    (run / "config.toml").write_text(commented)
    assert main(["certify", "--config", str(run / "config.toml"), "--no-progress"]) == 0
    assert (run / "config.toml").read_text() == commented


def test_empty_out_is_refused_and_tilde_is_expanded(tmp_path, cache_dir, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["certify", "--out", "", "--n-examples", "1", *SMALL]) == 2
    assert "empty path" in capsys.readouterr().err
    assert main(["train", "--out", " ", *TINY_TRAIN]) == 2
    assert "empty path" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    config = tmp_path / "c.toml"
    config.write_text('out = "~/run"\nn_examples = 1\nnt_samples = 64\n')
    assert main(["certify", "--config", str(config), "--no-progress"]) == 0
    assert not (tmp_path / "~").exists()
    assert (home / "run" / "results.tsv").exists()


def test_a_folder_where_nothing_was_computed_takes_a_corrected_command(tmp_path, cache_dir):
    out = tmp_path / "run"
    assert main(["certify", "--out", str(out), "--n-examples", "1", *SMALL]) == 0
    part = out / "parts" / "part-0.tsv"
    part.write_text(part.read_text().splitlines(keepends=True)[0])  # nothing certified
    assert main(["certify", "--out", str(out), "--n-examples", "1", "--noise-scale", "0.3",
                 *SMALL]) == 0  # fmt: skip
    assert "noise_scale = 0.3" in (out / "config.toml").read_text()


# 5. no writes through symbolic links --------------------------------------------------------
def test_links_planted_in_a_run_folder_are_never_written_through(tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    args = ["certify", "--out", str(out), "--n-examples", "1", *SMALL]
    assert main(args) == 0
    part = out / "parts" / "part-0.tsv"
    part.write_text(part.read_text().splitlines(keepends=True)[0])  # example 0 is redone
    victims = {}
    for name in ("maps/example-0.pt", "summary.json", "meta.json", "results.tsv"):
        victim = tmp_path / f"victim-{name.replace('/', '-')}"
        victim.write_text("keep")
        (out / name).unlink()
        (out / name).symlink_to(victim)
        victims[name] = victim
    dangling = tmp_path / "dangling-target"
    (out / "results.tmp").symlink_to(dangling)  # 8d0fcd9's fixed temporary name
    assert main(args) == 0
    for name, victim in victims.items():
        assert victim.read_text() == "keep", name
        assert not (out / name).is_symlink() and (out / name).stat().st_size > 4
    assert not dangling.exists()

    part.unlink()
    part.symlink_to(tmp_path / "outside-part")  # a dangling link where rows are appended
    capsys.readouterr()
    assert main(args) == 2
    assert "symbolic link" in capsys.readouterr().err
    assert not (tmp_path / "outside-part").exists()


# 6. saved maps hold their example, not the data set -----------------------------------------
def test_saved_maps_store_clones_not_the_whole_data_set(tmp_path, cache_dir):
    x, y, _, _ = load_digits_split(seed=0)
    data = tmp_path / "data.pt"
    torch.save((x.repeat(20, 1, 1, 1), y.repeat(20)), data)  # ~2.8 MB of examples
    out = tmp_path / "run"
    args = ["certify", "--data", f"tensors:{data}", "--out", str(out), "--n-examples", "1"]
    assert main([*args, *SMALL]) == 0
    saved = torch.load(out / "maps" / "example-0.pt", weights_only=True)
    assert saved["input"].untyped_storage().nbytes() == 64 * 4
    assert (out / "maps" / "example-0.pt").stat().st_size < 20_000


# 7. a run folder is not code ----------------------------------------------------------------
def _plant_module(folder, name, marker):
    (folder / f"{name}.py").write_text(
        f"open({str(marker)!r}, 'a').write('imported\\n')\n"
        "from captum_certified.cli._digits import DigitsCNN, default_digits_model\n"
        "def factory():\n    return default_digits_model()\n"
        "def untrained():\n    return DigitsCNN()\n"
    )


def test_attack_imports_no_model_that_only_the_run_folder_names(
    tmp_path, cache_dir, capsys, monkeypatch
):
    marker = tmp_path / "imported"
    _plant_module(tmp_path, "folder_model29", marker)
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    certify = ["certify", "--model", "folder_model29:factory", "--out", str(out)]
    assert main([*certify, "--n-examples", "1", *SMALL]) == 0
    marker.unlink()
    monkeypatch.delitem(sys.modules, "folder_model29")
    attack = [
        "attack",
        str(out),
        *ATTACK_FAST,
        "--step-num",
        "1",
        "--num-restarts",
        "1",
        "--no-progress",
    ]
    capsys.readouterr()
    assert main(attack) == 2
    assert "--model folder_model29:factory" in capsys.readouterr().err
    assert not marker.exists()
    assert main([*attack, "--model", "other:factory"]) == 2
    assert not marker.exists()
    assert main([*attack, "--model", "folder_model29:factory"]) == 0  # named: it runs
    assert marker.exists()


def test_compare_imports_no_model_that_only_a_run_folder_names(
    tmp_path, cache_dir, capsys, monkeypatch, small_digits
):
    marker = tmp_path / "imported"
    _plant_module(tmp_path, "folder_model29c", marker)
    monkeypatch.chdir(tmp_path)
    run = tmp_path / "trained"
    train = ["train", "--model", "folder_model29c:untrained", "--out", str(run)]
    assert main([*train, *TINY_TRAIN, *small_digits]) == 0
    marker.unlink()
    monkeypatch.delitem(sys.modules, "folder_model29c")
    capsys.readouterr()
    assert main(["compare", str(run), "--out", str(tmp_path / "cmp"), "--no-progress"]) == 2
    assert "--model folder_model29c:untrained" in capsys.readouterr().err
    assert not marker.exists()


# 8. odds and ends ---------------------------------------------------------------------------
def test_a_planted_file_in_the_weights_cache_is_not_used(tmp_path, cache_dir, monkeypatch):
    from captum_certified.cli import default_digits_model
    from captum_certified.cli._digits import cached_model_path

    good = default_digits_model()  # the module's cache (hash recorded by the fixture)
    monkeypatch.setenv("CAPTUM_CERTIFIED_CACHE", str(tmp_path / "cache"))
    path = cached_model_path()
    path.parent.mkdir()
    torch.save({k: torch.zeros_like(v) for k, v in good.state_dict().items()}, path)
    model = default_digits_model()  # the planted file has no matching hash: retrained
    _, _, x, y = load_digits_split(seed=0)
    with torch.no_grad():
        accuracy = (model(x).argmax(1) == y).float().mean().item()
    assert accuracy > 0.9  # the planted zeros would give one class: about 0.1
    assert (path.with_suffix(".sha256")).is_file()


def test_non_ascii_out_round_trips_through_config_toml(tmp_path, cache_dir, capsys):
    from captum_certified.cli._config import RunConfig

    out = tmp_path / "run-\U0001f600-é"
    assert main(["certify", "--out", str(out), "--n-examples", "1", *SMALL]) == 0
    assert RunConfig.load(out / "config.toml").out == str(out)
    assert main(["report", str(out)]) == 0
    assert main(["certify", "--out", str(out), "--n-examples", "1", *SMALL]) == 0  # resumes


def test_sizes_and_threads_are_bounded_before_the_folder_exists(tmp_path, capsys):
    from captum_certified.cli._config import ConfigError, RunConfig
    from captum_certified.cli._train_config import TrainConfig

    with pytest.raises(ConfigError, match="--nt-samples must be at most"):
        RunConfig(nt_samples=3 * 10**11).validate()
    with pytest.raises(ConfigError, match="--threads must be at most"):
        RunConfig(threads=5000).validate()
    with pytest.raises(ConfigError, match="--threads must be at most"):
        TrainConfig(threads=5000).validate()
    out = tmp_path / "run"
    assert main(["certify", "--out", str(out), "--nt-samples", str(3 * 10**11)]) == 2
    assert main(["certify", "--out", str(out), "--threads", "5000"]) == 2
    assert not out.exists()
    assert os.cpu_count() * 4 >= 4  # the documented cap: four threads per core


def test_nan_in_the_data_is_found_up_front(tmp_path, cache_dir, capsys):
    x, y, _, _ = load_digits_split(seed=0)
    x = x[:6].clone()
    x[3, 0, 2, 2] = float("nan")
    torch.save((x, y[:6]), tmp_path / "data.pt")
    out = tmp_path / "run"
    args = ["certify", "--data", f"tensors:{tmp_path / 'data.pt'}", "--out", str(out)]
    assert main([*args, "--n-examples", "6", *SMALL]) == 2
    err = capsys.readouterr().err
    assert "NaN" in err and "index 3" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_a_model_with_nan_scores_is_refused(tmp_path, cache_dir, capsys, monkeypatch):
    (tmp_path / "nan_model29.py").write_text(
        "import torch\n"
        "class NaNs(torch.nn.Module):\n"
        "    def forward(self, x):\n"
        "        return torch.full((len(x), 10), float('nan')) + 0 * x.flatten(1)[:, :1]\n"
        "def factory():\n    return NaNs()\n"
    )
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    assert main(["certify", "--model", "nan_model29:factory", "--out", str(out), *SMALL]) == 2
    assert "NaN" in capsys.readouterr().err
    assert not out.exists()


def test_invalid_values_in_parts_are_not_accepted(tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    args = ["certify", "--out", str(out), "--n-examples", "2", *SMALL, "--radii", "0", "0.1"]
    assert main(args) == 0
    part = out / "parts" / "part-0.tsv"
    lines = part.read_text().splitlines(keepends=True)
    cells = lines[1].split("\t")
    cells[6] = "5.0"  # a top-K overlap of 5
    lines[1] = "\t".join(cells)
    cells = lines[3].split("\t")
    cells[6] = "nan"
    lines[3] = "\t".join(cells)
    part.write_text("".join(lines))
    capsys.readouterr()
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "invalid row" in captured.err
    summary = json.loads((out / "summary.json").read_text())
    assert summary["n_examples"] == 2
    values = [
        float(line.split("\t")[6]) for line in (out / "results.tsv").read_text().splitlines()[1:]
    ]
    assert len(values) == 4 and all(0 <= v <= 1 for v in values)


def test_a_row_deleted_from_results_is_reported(tmp_path, cache_dir, capsys):
    out = tmp_path / "run"
    assert main(["certify", "--out", str(out), "--n-examples", "2", *SMALL]) == 0
    results = out / "results.tsv"
    lines = results.read_text().splitlines(keepends=True)
    results.write_text("".join(lines[:-1]))  # the last example loses a radius
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    err = capsys.readouterr().err
    assert "lacks rows of 1 example(s) (1)" in err


def test_a_full_disk_is_one_line_and_leaves_no_temporary_file(tmp_path, cache_dir, capsys,
                                                              monkeypatch):  # fmt: skip
    import errno

    from captum_certified.cli import _run_folder

    out = tmp_path / "run"
    args = ["certify", "--out", str(out), "--n-examples", "1", *SMALL]
    assert main(args) == 0
    real = _run_folder._write_all

    def full(fd, data):
        real(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(_run_folder, "_write_all", full)
    (out / "summary.json").unlink()
    capsys.readouterr()
    assert main(args) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("captum-certified: error: no space left") and "\n" not in err
    assert [p for p in out.rglob("*") if ".tmp" in p.name] == []


def test_unwritable_folder_bad_type_and_yaml_tag_are_one_line(tmp_path, cache_dir, capsys,
                                                              monkeypatch):  # fmt: skip
    import errno
    import tempfile

    from captum_certified.cli import _run_folder

    def denied(*args, dir=None, **kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(dir))

    with monkeypatch.context() as patch:  # a read-only folder (the tests may run as root)
        patch.setattr(_run_folder.tempfile, "mkstemp", denied)
        assert main(["certify", "--out", str(tmp_path / "ro"), *SMALL]) == 1
    err = capsys.readouterr().err.strip()
    assert "permission denied" in err and "\n" not in err
    assert tempfile.mkstemp is not denied
    (tmp_path / "bad.toml").write_text('n_examples = "ten"\n')
    assert main(["certify", "--config", str(tmp_path / "bad.toml")]) == 2
    err = capsys.readouterr().err.strip()
    assert "`n_examples` must be int" in err and "\n" not in err
    (tmp_path / "tag.yaml").write_text("n_examples: !!python/object/apply:os.getpid []\n")
    assert main(["certify", "--config", str(tmp_path / "tag.yaml")]) == 2
    err = capsys.readouterr().err.strip()
    assert "cannot be read" in err and "\n" not in err


def test_meta_keeps_the_first_start_time(tmp_path, cache_dir):
    out = tmp_path / "run"
    args = ["certify", "--out", str(out), "--n-examples", "1", *SMALL]
    assert main(args) == 0
    meta = json.loads((out / "meta.json").read_text())
    meta["started"] = "2001-01-01T00:00:00+0000"  # as if the first start was long ago
    (out / "meta.json").write_text(json.dumps(meta))
    assert main(args) == 0
    again = json.loads((out / "meta.json").read_text())
    assert again["started"] == "2001-01-01T00:00:00+0000"
    assert again["last_started"] != again["started"]


def test_temporary_files_of_a_killed_write_are_removed(tmp_path, cache_dir):
    out = tmp_path / "run"
    args = ["certify", "--out", str(out), "--n-examples", "1", *SMALL]
    assert main(args) == 0
    left = [out / ".tmp-results.tsv.k1ll3d.partial", out / "parts" / ".tmp-part-0.tsv.x.partial"]
    for path in left:
        path.write_text("half a file")
    assert main(args) == 0
    assert not any(path.exists() for path in left)
