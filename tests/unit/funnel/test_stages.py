"""The block-backed candidate stages (trending, fresh, popularity) on a hand-built block.
Retrieval needs a trained two-tower and an index: tests/integration/test_serving.py."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from numpy.testing import assert_array_equal

from recassets.funnel import stages as S
from tests.unit.funnel.blocks import block, empty


def test_trending_is_the_block_in_trending_order():
    ids, scores = S.trending(block(), 3, set())
    assert_array_equal(ids, [50, 10, 30])
    assert_array_equal(scores, [5.0, 4.0, 3.0])
    ids, _ = S.trending(block(), 3, {50, 30})
    assert_array_equal(ids, [10, 40, 20])


def test_trending_of_a_cohort_follows_its_categories():
    # the cohort clicks category b three times as often as a: b items rise, "unknown" sinks
    ctr = np.array([0.25, 0.75, 0.0], np.float32)
    ids, scores = S.trending(block(), 5, set(), ctr)
    assert_array_equal(ids, [50, 10, 20, 40, 30])
    assert_array_equal(scores, [7.5, 2.0, 1.5, 1.0, 0.0])


def test_fresh_is_trending_among_items_first_seen_on_the_day():
    ids, scores = S.fresh(block(), 5, set())
    assert_array_equal(ids, [50, 30])
    assert_array_equal(scores, [5.0, 3.0])
    ids, _ = S.fresh(block(), 5, {50, 30})
    assert ids.tolist() == []


def test_popularity_trailing_7d_and_all_time():
    ids, _ = S.popularity(block(), "trailing_7d", 3, {20})
    assert_array_equal(ids, [40, 10, 50])
    ids, scores = S.popularity(block(), "all_time", 2, set())
    assert_array_equal(ids, [40, 10])
    assert_array_equal(scores, [70.0, 50.0])


def test_popularity_breaks_ties_by_the_other_window_not_by_id():
    """A quiet week: one item engaged in 7 days, the rest tied at 0, ordered by their 28-day
    counts (they were in item-id order, the ones nobody engaged with first); all-time ties by
    the week. The scores stay the variant's counts."""
    quiet = replace(block(), engagements_7d=np.array([0.0, 0.0, 1.0, 0.0, 0.0]))
    ids, scores = S.popularity(quiet, "trailing_7d", 4, set())
    assert_array_equal(ids, [30, 40, 10, 20])  # 28 days: 40 has 70, 10 50, 20 10, 50 3
    assert_array_equal(scores, [1.0, 0.0, 0.0, 0.0])
    tied = replace(block(), engagements_28d=np.array([5.0, 5.0, 5.0, 5.0, 5.0]))
    ids, scores = S.popularity(tied, "all_time", 3, {20})
    assert_array_equal(ids, [40, 10, 50])  # the week: 20 (9) excluded, 40 7, 10 5, 50 3
    assert_array_equal(scores, [5.0, 5.0, 5.0])


def test_stages_of_an_empty_block_return_nothing():
    for ids, _ in (
        S.trending(empty(), 3, set()),
        S.fresh(empty(), 3, set()),
        S.popularity(empty(), "trailing_7d", 3, set()),
    ):
        assert ids.tolist() == []
