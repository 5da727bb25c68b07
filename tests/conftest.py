import os

import _digits
import pytest
import torch
from _digits import trained_digits_cnn
from _shared import session_shared_dir

from captum_certified.cli._digits import cached_model_path, save_cached_model


def pytest_collection_modifyitems(items):
    """Run the tests marked ``slow`` first (stable order otherwise).

    With pytest-xdist the long end-to-end tests then start at once on different workers,
    instead of one of them arriving last and leaving the other workers idle.
    """
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


@pytest.fixture(autouse=True, scope="session")
def _share_the_digits_model(tmp_path_factory):
    """Train the digits CNN once per session, not once per worker (tests/_digits.py)."""
    old = _digits.SHARED_DIR
    _digits.SHARED_DIR = session_shared_dir(tmp_path_factory)
    yield
    _digits.SHARED_DIR = old


@pytest.fixture(autouse=True, scope="session")
def _single_thread():
    """Run the suite single-threaded, restoring the setting afterwards.

    The tensors here are small; on a shared 2-core machine OpenMP's thread synchronization
    costs far more than it saves (10x on some tests when the machine is loaded).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
    """The command-line tests' model cache, one per test module, so the digits CNN is not
    retrained in every process.

    The tests' copy of the same deterministic training is saved where the CLI looks for it.
    """
    path = tmp_path_factory.mktemp("model_cache")
    old = os.environ.get("CAPTUM_CERTIFIED_CACHE")
    os.environ["CAPTUM_CERTIFIED_CACHE"] = str(path)
    save_cached_model(trained_digits_cnn()[0].state_dict(), cached_model_path())
    yield path
    if old is None:
        os.environ.pop("CAPTUM_CERTIFIED_CACHE")
    else:
        os.environ["CAPTUM_CERTIFIED_CACHE"] = old
