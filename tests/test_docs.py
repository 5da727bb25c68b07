"""The Sphinx docs build without warnings (tutorials executed) and document every public name."""

import importlib
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBPACKAGES = ["attr", "certify", "noise", "transforms", "cli", "robust", "metrics", "interop"]


@pytest.mark.parametrize("name", SUBPACKAGES)
def test_every_public_name_has_an_api_entry(name):
    module = importlib.import_module(f"captum_certified.{name}")
    page = (ROOT / "docs" / "api" / f"{name}.rst").read_text()
    missing = [n for n in module.__all__ if f"captum_certified.{name}.{n}" not in page]
    assert not missing, f"docs/api/{name}.rst lacks {missing}"


def test_sphinx_build_has_no_warnings(tmp_path):
    pytest.importorskip("sphinx")
    out = tmp_path / "html"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            str(ROOT / "docs"),
            str(out),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (out / "index.html").exists()
    tutorial_output = (ROOT / "docs" / "_generated" / "certified_saliency_digits.txt").read_text()
    assert "certified top-K overlap" in tutorial_output
    shutil.rmtree(out)
