"""The training tests' thread setting, imported by the modules that train (``from
.torch_threads import one_torch_thread``) so that it applies to them alone."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread: on 2 shared cores, OpenMP spin-waiting between busy neighbours made
    tiny training steps ~10x slower than single-threaded."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
