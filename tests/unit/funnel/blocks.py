"""A hand-built item block for the tests of the item side and the stages."""

from __future__ import annotations

import numpy as np

from recassets.funnel.items import ItemBlock


def block() -> ItemBlock:
    """Items 10..50: categories a, b, none, a, b (codes over ["a", "b", "unknown"]); 30 and 50
    first seen on the feature day."""
    return ItemBlock(
        ids=np.array([10, 20, 30, 40, 50], np.int64),
        day="2026-01-03",
        category=np.array(["a", "b", None, "a", "b"], dtype=object),
        category_code=np.array([0, 1, 2, 0, 1], np.int64),
        categories=["a", "b", "unknown"],
        rows={},
        dense=np.zeros((5, 0), np.float32),
        engagements_7d=np.array([5.0, 9.0, 1.0, 7.0, 3.0]),
        engagements_28d=np.array([50.0, 10.0, 1.0, 70.0, 3.0]),
        trending=np.array([4.0, 1.0, 3.0, 2.0, 5.0]),
        fresh=np.array([False, False, True, False, True]),
        found=np.ones(5, bool),
    )


def empty() -> ItemBlock:
    """No items at all (an online store before its first materialization)."""
    return ItemBlock(
        ids=np.zeros(0, np.int64),
        day=None,
        category=np.empty(0, object),
        category_code=np.zeros(0, np.int64),
        categories=["unknown"],
        rows={},
        dense=np.zeros((0, 0), np.float32),
        engagements_7d=np.zeros(0),
        engagements_28d=np.zeros(0),
        trending=np.zeros(0),
        fresh=np.zeros(0, bool),
        found=np.zeros(0, bool),
    )
