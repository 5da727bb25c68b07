"""The README's Python blocks each run alone in a fresh interpreter, and its links resolve."""

import os
import re
import subprocess
import sys

import pytest
from _readme import BLOCKS, CHECKS, README, ROOT


def test_every_block_has_a_check():
    assert len(BLOCKS) == len(CHECKS)


@pytest.mark.parametrize("index", range(len(CHECKS)))
def test_readme_block_runs_alone(index, tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    result = subprocess.run(
        [sys.executable, "-c", BLOCKS[index] + CHECKS[index]],
        cwd=tmp_path,  # no access to the repository's files except through the package
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.rstrip().endswith("CHECKED")


def test_readme_links_resolve():
    links = re.findall(r"\]\(([^)#]+)\)", README.read_text())
    local = [link for link in links if not link.startswith(("http://", "https://"))]
    assert "tutorials/" in local and "docs/" in local
    missing = [link for link in local if not (ROOT / link).exists()]
    assert not missing, f"README links to missing paths: {missing}"


def test_ci_runs_the_readme_test_command():
    ci = (README.parent / ".ci" / "run").read_text()
    command = 'pip install torch==2.13.0 && pip install -e ".[test]" && pytest'
    assert command in README.read_text()
    assert command in ci


def test_ci_runs_the_static_checks_exactly_as_the_readme_says():
    ci = (README.parent / ".ci" / "run").read_text()
    command = (
        'pip install torch==2.13.0 && pip install -e ".[test]" && pytest && ruff check . && '
        "ruff format --check . && mypy && .ci/lowest-captum"
    )
    lines = [line for line in ci.splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert lines == [command]
    assert f"```bash\n{command}\n```" in README.read_text()
