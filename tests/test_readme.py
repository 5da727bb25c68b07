"""The README's Python blocks must run as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)
    assert len(blocks) >= 2
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, str(README), "exec"), namespace)
    cert = namespace["cert"]
    overlap = namespace["cert"].topk_overlap(k=0.2, radius=0.1)
    assert overlap.shape == (2,) and ((overlap >= 0) & (overlap <= 1)).all()
    assert cert.n == 512 and namespace["cert_ig"].bound == "clopper_pearson"


def test_ci_runs_the_readme_test_command():
    ci = (README.parent / ".ci" / "run").read_text()
    command = 'pip install torch==2.13.0 && pip install -e ".[test]" && pytest'
    assert command in README.read_text()
    assert command in ci


def test_ci_runs_the_static_checks_exactly_as_the_readme_says():
    ci = (README.parent / ".ci" / "run").read_text()
    command = (
        'pip install torch==2.13.0 && pip install -e ".[test]" && pytest && ruff check . && '
        "ruff format --check . && mypy"
    )
    lines = [line for line in ci.splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert lines == [command]
    assert f"```bash\n{command}\n```" in README.read_text()
