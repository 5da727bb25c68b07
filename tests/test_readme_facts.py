"""The README's facts checked against the code, so that they cannot go stale (issue 27):
extras vs ``pyproject.toml``, commands vs ``--help``, tutorials vs ``tutorials/``, subpackages
vs the Layout paragraph, output files vs real run folders."""

import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: no stdlib TOML reader
    tomllib = None


def _between(text: str, start: str, end: str) -> str:
    i = text.index(start) + len(start)
    return text[i : text.index(end, i)]


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower()


def test_extras_match_pyproject():
    if tomllib is None:
        pytest.skip("reading pyproject.toml needs Python >= 3.11 (tomllib)")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    sentence = " ".join(_between(README, "Extras (a test", "There is no").split())
    listed = {
        name: {p.strip().lower() for p in packages.split(":")[0].split(",")}
        for name, packages in re.findall(r"`(\w+)` \(([^)]*)\)", sentence)
    }
    assert set(listed) == set(extras)
    for name, requirements in extras.items():
        assert listed[name] == {_name(r) for r in requirements}, name
    install = (ROOT / "docs" / "install.rst").read_text()
    documented = set(re.findall(r"^``(\w+)``$", install, flags=re.M))
    assert documented == set(extras)


def test_command_line_block_lists_every_subcommand():
    from captum_certified.cli._main import _parser

    parser = _parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    block = _between(README, "## Command line\n\n```bash\n", "```")
    shown = set(re.findall(r"captum[-_]certified (\w+)", block))
    assert shown == set(sub.choices)
    help_text = parser.format_help()
    for command in sub.choices:
        assert f"({command})" in help_text  # the top-level description names each command


def test_tutorial_list_matches_the_folder():
    linked = set(re.findall(r"\(tutorials/(t\d+_\w+\.py)\)", README))
    assert linked == {p.name for p in (ROOT / "tutorials").glob("t*.py")}


def test_layout_names_every_subpackage():
    layout = _between(README, "## Layout\n", "## License")
    packages = {
        p.parent.name
        for p in (ROOT / "captum_certified").glob("*/__init__.py")
        if not p.parent.name.startswith("_")
    }
    named = set(re.findall(r"`(?:captum_certified)?\.(\w+)`", layout))
    assert named == packages


def test_no_stale_not_implemented_claim():
    assert "Not yet implemented" not in README
    assert "same numbers from the same random state)" not in README  # it is ~1e-9, not bitwise


def _files(sentence: str) -> set[str]:
    return {t for t in re.findall(r"`([\w.]+/?)`", sentence) if "." in t or t.endswith("/")}


BOOKKEEPING = {".captum-certified-run", ".lock"}


def _listing(folder: Path) -> set[str]:
    """The files of a run folder; the two bookkeeping files every run folder holds are checked
    here and left out (the README names them once, for every command)."""
    names = {p.name + ("/" if p.is_dir() else "") for p in folder.iterdir()}
    assert BOOKKEEPING <= names, (folder, names)
    assert all(f"`{name}`" in README for name in BOOKKEEPING)
    return names - BOOKKEEPING


def test_output_files_match_real_run_folders(tmp_path, cache_dir):
    from captum_certified.cli import load_digits_split
    from captum_certified.cli._main import main

    paragraph = " ".join(_between(README, "Each `certify` run writes", "Ctrl-C").split())
    certify_files = _files(paragraph.split("`attack` adds")[0])
    attack_files = _files(_between(paragraph, "`attack` adds", "`train` writes"))
    train_files = _files(_between(paragraph, "`train` writes", "`compare` writes"))
    compare_files = _files(_between(paragraph, "`compare` writes", "`certify` and `train` also"))
    recorded = _between(paragraph, "`certify` and `train` also record", "`attack` its options")
    certify_files |= _files(recorded)
    train_files |= _files(recorded)
    attack_files |= _files(_between(paragraph, "`attack` its options", "Every run folder"))

    run = tmp_path / "run"
    small = ["--nt-samples", "64", "--nt-samples-batch-size", "64", "--no-progress"]
    assert main(["certify", "--out", str(run), "--n-examples", "2", *small]) == 0
    assert _listing(run) == certify_files
    tiny = [
        "--step-num",
        "1",
        "--num-restarts",
        "1",
        "--guide-samples",
        "4",
        "--eval-samples",
        "16",
    ]
    assert main(["attack", str(run), "--n-examples", "1", *tiny, "--no-progress"]) == 0
    assert _listing(run) == certify_files | attack_files

    x, y, _, _ = load_digits_split(seed=0)
    torch.save((x[:40], y[:40]), tmp_path / "d.pt")
    trained = tmp_path / "trained"
    data = ["--data", f"tensors:{tmp_path / 'd.pt'}"]
    assert main(["train", "--out", str(trained), "--epochs", "1", *data, "--no-progress"]) == 0
    assert _listing(trained) == train_files
    cmp = tmp_path / "cmp"
    args = ["compare", str(trained), "--out", str(cmp), "--n-examples", "4", "--step-num", "1"]
    assert main([*args, "--n-steps", "2", "--nt-samples", "16", "--no-progress"]) == 0
    assert _listing(cmp) == compare_files
