import sys
from pathlib import Path

import pytest
import torch

# Make the tests' shared helpers (tests/_digits.py, ...) importable as top-level modules.
sys.path.insert(0, str(Path(__file__).parent))


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
