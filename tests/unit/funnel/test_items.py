"""The item block's lookups by item id, on a hand-built block."""

from __future__ import annotations

import numpy as np
from numpy.testing import assert_array_equal

from tests.unit.funnel.blocks import block, empty


def test_positions_finds_the_rows_of_held_items():
    pos, found = block().positions(np.array([40, 10, 50]))
    assert_array_equal(pos, [3, 0, 4])
    assert_array_equal(found, [True, True, True])


def test_positions_marks_items_the_block_lacks():
    _, found = block().positions(np.array([5, 20, 35, 99]))
    assert_array_equal(found, [False, True, False, False])
    pos, found = empty().positions(np.array([10, 20]))
    assert_array_equal(pos, [0, 0])
    assert_array_equal(found, [False, False])


def test_category_of_and_is_fresh():
    b = block()
    assert b.category_of(np.array([20, 30, 99, 40])).tolist() == ["b", None, None, "a"]
    assert_array_equal(b.is_fresh(np.array([30, 10, 99, 50])), [True, False, False, True])


def test_category_of_and_is_fresh_on_an_empty_block():
    assert empty().category_of(np.array([10])).tolist() == [None]
    assert_array_equal(empty().is_fresh(np.array([10, 20])), [False, False])


# -- the cohort cache: bounded, and never memoizing a store failure ---------------------------


class _Reader:
    """The reader surface ``Catalog`` uses, over no items; counts cohort reads, and fails
    them while ``down``."""

    def __init__(self) -> None:
        from types import SimpleNamespace

        self._items = SimpleNamespace(ids=np.zeros(0, np.int64), day=None)
        self.reads = 0
        self.down = False
        self._backend = self  # what the cache read through before the reader had read_one

    def maybe_refresh(self) -> bool:
        return False

    def items(self, ids):  # pragma: no cover - the block is empty: never asked
        raise AssertionError

    def read_one(self, view, join_key, value, features):
        from recassets.featurestore.online import OnlineStoreUnavailable

        if self.down:
            raise OnlineStoreUnavailable("down")
        self.reads += 1
        return None


def test_the_cohort_cache_is_a_bounded_lru():
    from recassets.funnel.items import COHORT_CACHE_SIZE, Catalog

    reader = _Reader()
    catalog = Catalog(reader)  # type: ignore[arg-type]
    b = block()  # 3 categories: 3 reads per cohort not cached
    catalog.cohort_ctr(b, "fr", "18-24")
    for i in range(COHORT_CACHE_SIZE + 500):  # made-up countries, as a client may send
        catalog.cohort_ctr(b, f"x{i}", "18-24")
        if i % 100 == 0:
            catalog.cohort_ctr(b, "fr", "18-24")  # kept warm: never evicted
    assert len(catalog._cohorts) == COHORT_CACHE_SIZE
    before = reader.reads
    catalog.cohort_ctr(b, "fr", "18-24")
    catalog.cohort_ctr(b, f"x{COHORT_CACHE_SIZE + 499}", "18-24")  # the newest
    assert reader.reads == before
    catalog.cohort_ctr(b, "x0", "18-24")  # the oldest: evicted, read again
    assert reader.reads == before + len(b.categories)


def test_a_cohort_read_while_the_store_is_down_is_not_memoized():
    from recassets.funnel.items import Catalog

    reader = _Reader()
    catalog = Catalog(reader)  # type: ignore[arg-type]
    reader.down = True
    assert_array_equal(catalog.cohort_ctr(block(), "fr", "18-24"), [0, 0, 0])
    assert not catalog._cohorts
    reader.down = False
    catalog.cohort_ctr(block(), "fr", "18-24")
    assert reader.reads == 3 and len(catalog._cohorts) == 1
