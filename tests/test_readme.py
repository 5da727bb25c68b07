"""The README's Python blocks each run alone in a fresh interpreter, and its links resolve."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)

# Checks appended to each block (same order as in the README); each compares the block's
# results with an independent reference where one exists.
CHECKS = [
    # Quickstart: shapes, ranges, monotonicity in the radius, the advertised sample count.
    """
assert attr.shape == x.shape and attr.min() >= 0 and attr.max() <= 1
ov = cert.topk_overlap(k=0.2, radius=0.1)
ov0 = cert.topk_overlap(k=0.2, radius=0.0)
assert ov.shape == (2,) and ((ov >= 0) & (ov <= 1)).all() and (ov0 >= ov).all()
assert cert.n == 512
r = cert.certified_radius(k=0.2, overlap=0.5)
assert (cert.topk_overlap(k=0.2, radius=r * 0.999) >= 0.5).all()
print("CHECKED")
""",
    # CertifiedWrapper: identical to Captum's NoiseTunnel from the same random state.
    """
from captum.attr import NoiseTunnel
torch.manual_seed(0)
ref = NoiseTunnel(IntegratedGradients(model)).attribute(
    x, nt_type="smoothgrad", nt_samples=16, stdevs=0.25, target=3,
    baselines=torch.zeros_like(x), n_steps=8)
assert torch.allclose(sg, ref, rtol=1e-5, atol=1e-7)
assert sg_bin.shape == x.shape and cert_ig.bound == "clopper_pearson"
assert sorted(torch.unique(sg_bin * 64).round().tolist())[0] >= 0
print("CHECKED")
""",
    # Metrics and attacks: the attack stays in the l_inf ball and the box.
    """
assert (x_adv - x01).abs().max() <= 8 / 255 + 1e-6
assert x_adv.min() >= 0 and x_adv.max() <= 1
ti = M.topk_intersection(clean, attacked, k=0.1, protocol="ghorbani")
assert ti.shape == (2,) and ((ti >= 0) & (ti <= 1)).all()
c = M.certified_topk_intersection(cert, k=0.2, radius=0.1)
assert torch.equal(c, cert.topk_overlap(k=0.2, radius=0.1))
print("CHECKED")
""",
]


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
