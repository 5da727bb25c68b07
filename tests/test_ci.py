"""CI's lowest-Captum step tests what pyproject claims (tests/test_readme.py: CI = README)."""

import importlib.util
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_lowest_captum_step_installs_the_claimed_minimum_without_dependencies():
    script = ROOT / ".ci" / "lowest-captum"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    # the version comes from pyproject (no second copy to drift), torch is never reinstalled
    assert '"captum==$lowest"' in text and "--no-deps" in text and "torch==" not in text
    pyproject = (ROOT / "pyproject.toml").read_text()
    (captum,) = re.findall(r'^\s*"(captum[^"]*)"', pyproject, flags=re.M)
    assert re.search(r">=\s*[0-9.]+", captum), captum
    assert "tests/attr" in text


def test_unmet_requirements_reports_exactly_the_unmet_ones(monkeypatch):
    spec = importlib.util.spec_from_file_location(
        "unmet_requirements", ROOT / ".ci" / "unmet_requirements.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    import numpy

    major = int(numpy.__version__.split(".")[0])
    fake = {
        "demo": [
            f"numpy<{major}",  # unmet
            f"numpy>={major}",  # met
            "no-such-distribution-xyz>=1",  # missing
            'pytest; extra == "test"',  # an extra's: ignored
            'numpy<0; python_version < "3"',  # another platform's: ignored
        ]
    }
    monkeypatch.setattr(module.metadata, "requires", lambda dist: fake[dist])
    assert module.unmet("demo") == [f"numpy<{major}", "no-such-distribution-xyz>=1"]
