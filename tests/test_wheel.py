"""What ``pip install captum-certified`` gets: ``python -m build`` (the sdist, then the wheel
built from the sdist), ``twine check``, the wheel's contents and metadata, and the wheel installed
in a fresh virtual environment running the main job and the README's blocks, away from the
checkout.

The distributions are built once per test session (a file lock shares them between pytest-xdist
workers) without build isolation, so no network is needed: the build backend is the installed
setuptools (the ``test`` extra requires it).
"""

import email.parser
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from _readme import BLOCKS, CHECKS, README, ROOT
from _shared import session_shared_dir
from filelock import FileLock

import captum_certified

pytest.importorskip("build")
pytest.importorskip("twine")

NAME = f"captum_certified-{captum_certified.__version__}"


def _run(args, **kwargs):
    result = subprocess.run(args, capture_output=True, text=True, timeout=600, **kwargs)
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture(scope="session")
def dists(tmp_path_factory):
    """(sdist, wheel), built once per session."""
    out = session_shared_dir(tmp_path_factory) / "dist"
    with FileLock(f"{out}.lock"):
        if not out.exists():
            _run(
                [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
                cwd=ROOT,
            )
    return out / f"{NAME}.tar.gz", out / f"{NAME}-py3-none-any.whl"


def test_twine_check_passes(dists):
    result = _run([sys.executable, "-m", "twine", "check", "--strict", *map(str, dists)])
    assert result.stdout.count("PASSED") == 2


def test_wheel_holds_the_package_and_nothing_else(dists):
    names = set(zipfile.ZipFile(dists[1]).namelist())
    package = ROOT / "captum_certified"
    # every file of the package (a data file missing from the wheel fails here)
    expected = {
        p.relative_to(ROOT).as_posix()
        for p in package.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    }
    assert "captum_certified/py.typed" in expected and "captum_certified/cli/_main.py" in expected
    ours = {n for n in names if n.startswith("captum_certified/")}
    assert ours == expected
    others = names - ours
    assert others and all(n.startswith(f"{NAME}.dist-info/") for n in others), others
    assert f"{NAME}.dist-info/licenses/LICENSE" in others
    # the source distribution carries the whole project, build outputs excluded
    members = {m.split("/", 1)[1] for m in tarfile.open(dists[0]).getnames() if "/" in m}
    for path in ("README.md", "LICENSE", "tests/conftest.py", "docs/conf.py", "tutorials"):
        assert path in members, path
    assert not any(m.startswith(("docs/_generated/", "docs/_build/")) for m in members)
    assert not any("__pycache__" in m for m in members)


def test_wheel_metadata(dists):
    text = zipfile.ZipFile(dists[1]).read(f"{NAME}.dist-info/METADATA").decode()
    meta = email.parser.Parser().parsestr(text)
    assert meta["Name"] == "captum-certified"
    assert meta["Version"] == captum_certified.__version__
    # the version has one source: the package's __version__ (pyproject reads it)
    pyproject = (ROOT / "pyproject.toml").read_text()
    project = re.search(r"^\[project\]\n(.*?)^\[", pyproject, re.M | re.S).group(1)
    assert 'dynamic = ["version"]' in project and not re.search(r"^version\s*=", project, re.M)
    assert 'version = { attr = "captum_certified.__version__" }' in pyproject
    sources = [
        p for p in (ROOT / "captum_certified").rglob("*.py") if "__version__ =" in p.read_text()
    ]
    assert sources == [ROOT / "captum_certified" / "__init__.py"]
    assert "Captum" in meta["Summary"] and meta["Description-Content-Type"] == "text/markdown"
    assert meta.get_payload().strip() == README.read_text().strip()
    assert meta["License-Expression"] == "BSD-3-Clause" and meta["License-File"] == "LICENSE"
    assert meta["Requires-Python"] == ">=3.10"
    classifiers = meta.get_all("Classifier")
    for minor in (10, 11, 12, 13):
        assert f"Programming Language :: Python :: 3.{minor}" in classifiers
    assert "Typing :: Typed" in classifiers
    assert {"captum", "pytorch", "attribution"} <= set(meta["Keywords"].split(","))
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert "Documentation" in urls
    requires = meta.get_all("Requires-Dist")
    assert {r.split(";")[0].split("<")[0].split(">")[0] for r in requires} >= {"torch", "captum"}
    scripts = zipfile.ZipFile(dists[1]).read(f"{NAME}.dist-info/entry_points.txt").decode()
    assert "captum-certified = captum_certified.cli._main:console_main" in scripts


@pytest.mark.slow
def test_installed_wheel_runs_the_main_job_and_the_readme(dists, tmp_path, cache_dir):
    venv = tmp_path / "venv"
    # torch and the other dependencies come from the environment the tests run in
    _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    pip = [sys.executable, "-m", "pip", "--python", str(python), "install", "-q"]
    _run([*pip, "--no-deps", "--no-index", "--ignore-installed", str(dists[1])])
    # every requirement of the installed wheel is met without installing anything else
    unmet = _run([str(python), str(ROOT / ".ci" / "unmet_requirements.py"), "captum-certified"])
    assert unmet.stdout.strip() == ""

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "WORLD_SIZE")}
    env.update(CAPTUM_CERTIFIED_CACHE=str(cache_dir), OMP_NUM_THREADS="1", MPLBACKEND="Agg")
    work = tmp_path / "work"  # not the checkout: the package comes from the wheel
    work.mkdir()
    where = _run(
        [str(python), "-c", "import captum_certified, torch; print(captum_certified.__file__)"],
        cwd=work,
        env=env,
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout

    # the main job: `captum-certified certify` on the embedded default, small
    out = work / "run"
    job = _run(
        [
            str(venv / "bin" / "captum-certified"),
            "certify",
            "--out",
            str(out),
            "--n-examples",
            "2",
            "--nt-samples",
            "128",
            "--nt-samples-batch-size",
            "128",
            "--radii",
            "0",
            "0.1",
            "--no-progress",
        ],
        cwd=work,
        env=env,
    )
    assert "certified top-K overlap" in job.stdout and "clean accuracy" in job.stdout
    rows = (out / "results.tsv").read_text().strip().splitlines()
    assert len(rows) == 1 + 2 * 2  # header, 2 examples x 2 radii
    assert (out / "certified_vs_radius.png").read_bytes()[:4] == b"\x89PNG"

    # the README's blocks and their checks, one after the other in one interpreter
    script = "\n".join(block + check for block, check in zip(BLOCKS, CHECKS))
    readme = _run([str(python), "-c", script], cwd=work, env=env)
    assert readme.stdout.count("CHECKED") == len(BLOCKS) == 3
