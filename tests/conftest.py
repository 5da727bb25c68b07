import pytest
import torch


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
