"""Run folders and checkpoints the tool can trust (issue 29): no code from data files, one
writer per run, resumes that check what they resume, ``--out`` that never clobbers, no writes
through links, and the odds and ends of robustness."""

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
TINY_TRAIN = ["--epochs", "1", "--no-progress", "--steps", "1", "--n-steps", "4"]


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
    attack = ["attack", str(out), *ATTACK_FAST, "--no-progress", "--restarts", "1"]
    assert main([*attack, "--steps", "1"]) == 0
    before = (out / "attack.tsv").read_text()
    capsys.readouterr()
    assert main([*attack, "--steps", "3"]) == 2
    err = capsys.readouterr().err
    assert "steps" in err and "1 then, 3 now" in err
    assert (out / "attack.tsv").read_text() == before
    assert main([*attack, "--steps", "1"]) == 0  # the same options resume


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
    attack = ["attack", str(out), *ATTACK_FAST, "--steps", "1", "--restarts", "1", "--no-progress"]
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
