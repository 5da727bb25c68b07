import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _single_thread():
    """Run this directory's modules single-threaded, restoring the setting afterwards.

    The tensors here are small, and on a shared, loaded 2-core machine OpenMP's thread
    synchronization costs far more than it saves (10x on some tests). Module scope makes it
    apply to the module fixtures too (e.g. training the digits CNN).
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
