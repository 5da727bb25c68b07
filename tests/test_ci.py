"""CI runs the README's test command, and its lowest-Captum step tests what pyproject claims."""

import importlib.util
import os
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _readme_test_command() -> str:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, flags=re.S)
    commands = [b.strip() for b in blocks if "pytest" in b]
    assert len(commands) == 1, commands
    return commands[0]


def test_ci_runs_exactly_the_readme_test_command():
    command = _readme_test_command()
    assert "\n" not in command
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == command
    for step in ("pytest", "ruff check .", "ruff format --check .", "mypy", ".ci/lowest-captum"):
        assert f"&& {step}" in command, step


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
