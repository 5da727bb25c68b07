"""A folder that every process of one test session shares (all pytest-xdist workers)."""

import os
from pathlib import Path

import pytest


def session_shared_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The session's base temporary folder, the same in every pytest-xdist worker."""
    base = tmp_path_factory.getbasetemp()
    # under xdist each worker's base folder is <session folder>/popen-gwN
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
