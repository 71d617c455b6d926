"""Fixtures of the loop and inference tests: the planted table and a two-tower trained on it
(module-scoped: each test module trains its own once)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from recassets.training.checkpoint import Checkpoint
from recassets.training.loop import train_two_tower
from support import planted

from .tiny import DAYS, N_CATEGORIES, TINY


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("lake") / "training_examples")
    planted.write_days(path, range(4), n_categories=N_CATEGORIES)
    return path


@pytest.fixture(scope="module")
def two_tower(table, tmp_path_factory) -> Checkpoint:
    out = tmp_path_factory.mktemp("models") / "two_tower.pt"
    return train_two_tower(table, DAYS[:3], replace(TINY, epochs=3), output=out)
