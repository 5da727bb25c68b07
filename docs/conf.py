"""Sphinx configuration. Tutorials are executed at build time and their output included."""

import contextlib
import io
import os
import runpy
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import captum_certified  # noqa: E402

project = "captum-certified"
author = "the captum-certified developers"
copyright = "2026, the captum-certified developers"
release = captum_certified.__version__
version = release

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.mathjax"]
autodoc_typehints = "none"
autodoc_member_order = "bysource"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
exclude_patterns = ["_build", "_generated/*.txt"]
html_theme = "alabaster"
html_static_path: list = []

# Execute every tutorial and store what it printed, so the pages show real output.
GENERATED = Path(__file__).parent / "_generated"
GENERATED.mkdir(exist_ok=True)

# The option table of the user guide, from the module the certification walk test reads.
from captum_certified.attr._core.option_table import options_rst  # noqa: E402

(GENERATED / "options.inc").write_text(options_rst())
if not os.environ.get("CAPTUM_CERTIFIED_SKIP_TUTORIALS"):
    os.environ.setdefault("MPLBACKEND", "Agg")
    scripts = sorted((ROOT / "tutorials").glob("*.py"))
    for number, script in enumerate(scripts, 1):
        # the build is otherwise silent for minutes: one line per tutorial on stderr
        print(
            f"docs: running tutorial {number}/{len(scripts)} {script.name} ...",
            file=sys.stderr,
            flush=True,
        )
        started = time.perf_counter()
        buffer = io.StringIO()
        cwd = os.getcwd()
        os.chdir(GENERATED)  # the tutorials save their figures in the working directory
        try:
            with contextlib.redirect_stdout(buffer):
                runpy.run_path(str(script), run_name="__main__")
        finally:
            os.chdir(cwd)
        (GENERATED / f"{script.stem}.txt").write_text(buffer.getvalue())
        print(
            f"docs: {script.name} done in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
            flush=True,
        )

# The matched-accuracy training comparison (docs/train_comparison.rst), executed at its tiny
# size so the page shows that the script runs; the full numbers are committed in figures/.
COMPARISON = GENERATED / "train_comparison"
if not os.environ.get("CAPTUM_CERTIFIED_SKIP_TUTORIALS"):
    os.environ.setdefault("MPLBACKEND", "Agg")
    study = runpy.run_path(str(ROOT / "benchmarks" / "train_comparison.py"), run_name="tc")
    with contextlib.redirect_stdout(io.StringIO()):
        study["main"](["--size", "tiny", "--tasks", "digits", "--out", str(COMPARISON)])
else:
    COMPARISON.mkdir(exist_ok=True)
    (COMPARISON / "table.txt").write_text("(not run: CAPTUM_CERTIFIED_SKIP_TUTORIALS is set)\n")
