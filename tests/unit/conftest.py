"""Unit-test fixtures."""
import pytest
import torch


@pytest.fixture(scope="module")
def one_thread():
    """Closed-form tests use tiny tensors: one intra-op thread is several times faster on a busy 2-core machine."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
