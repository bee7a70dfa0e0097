"""Engine tests run single-threaded: the CI machine has two shared cores and the nets are tiny."""

import pytest
import torch


@pytest.fixture(autouse=True)
def _one_thread():
    """The CI machine has two shared cores; small nets are fastest single-threaded."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
