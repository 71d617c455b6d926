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
