"""Tiny model configs and random inputs for the model tests."""

from __future__ import annotations

import pytest
import torch
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recassets.models import ModelInputs, TableSpec

USER = ("user_id", "history_item_ids", "country")
ITEM = ("item_id", "category")
TABLES = (
    TableSpec("user_id", 20, 8, ("user_id",)),
    TableSpec("item_id", 30, 8, ("item_id", "history_item_ids")),
    TableSpec("country", 5, 4, ("country",)),
    TableSpec("category", 6, 4, ("category",)),
)
ROWS = {f: t.num_embeddings for t in TABLES for f in t.features}


def kjt(
    keys: tuple[str, ...], batch: int, generator: torch.Generator, max_len: int = 3
) -> KeyedJaggedTensor:
    """Random ids; list features get 0..max_len ids per row (empty bags included)."""
    lengths, values = [], []
    for key in keys:
        if key == "history_item_ids":
            lens = torch.randint(0, max_len + 1, (batch,), generator=generator)
        else:
            lens = torch.ones(batch, dtype=torch.long)
        lengths.append(lens)
        values.append(torch.randint(0, ROWS[key], (int(lens.sum()),), generator=generator))
    return KeyedJaggedTensor.from_lengths_sync(list(keys), torch.cat(values), torch.cat(lengths))


def features(batch: int, seed: int = 0, *, cross: int = 0) -> ModelInputs:
    g = torch.Generator().manual_seed(seed)
    return ModelInputs(
        sparse=kjt(USER + ITEM, batch, g),
        user_dense=torch.rand(batch, 3, generator=g) * 100,
        item_dense=torch.rand(batch, 2, generator=g) * 100,
        cross_dense=torch.rand(batch, cross, generator=g) if cross else None,
    )


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """One intra-op thread: on 2 shared cores, OpenMP spin-waiting between busy neighbours made
    tiny steps ~10x slower than single-threaded."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
