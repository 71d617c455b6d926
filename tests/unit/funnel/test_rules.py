"""The funnel's rules on tiny arrays, with exact expected outputs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

from recassets.funnel import rules as R

ROOT = Path(__file__).resolve().parents[3]


def test_rules_import_no_torch_or_model_code():
    probe = (
        "import sys, recassets.funnel.rules\n"
        "print(','.join(m for m in ('torch', 'torchrec', 'faiss', 'recassets.models')"
        " if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


# -- trending_score ---------------------------------------------------------------------------


def test_trending_score_is_the_ratio_times_log_volume():
    trending = np.array([2.0, 0.5, 0.0])
    e7 = np.array([np.e - 1, 3.0, 4.0])
    assert_allclose(
        R.trending_score(trending, e7),
        [2.0 + 1e-6 * (np.e - 1), 0.5 * np.log(4.0) + 3e-6, 4e-6],
        rtol=1e-12,
    )


def test_trending_score_does_not_crown_one_engagement_and_reads_gaps_as_zero():
    # a 10x trend on one engagement loses to a 1.5x trend on a thousand
    one, many = R.trending_score(np.array([10.0, 1.5]), np.array([1.0, 1000.0]))
    assert one < many
    # nan and negative trend or volume count as 0 (the volume tie-break then decides)
    assert_array_equal(
        R.trending_score(np.array([np.nan, -3.0, 2.0]), np.array([2.0, 1.0, np.nan])),
        [2e-6, 1e-6, 0.0],
    )


# -- cohort_lift ------------------------------------------------------------------------------


def test_cohort_lift_weights_by_category_rate_over_the_cohort_mean():
    ctr = np.array([0.25, 0.75, 0.0])  # mean over rated categories: 0.5
    score = np.array([1.0, 1.0, 1.0, 2.0])
    code = np.array([0, 1, 2, 1])
    assert_array_equal(R.cohort_lift(score, ctr, code), [0.5, 1.5, 0.0, 3.0])


def test_cohort_lift_without_any_rate_leaves_the_score():
    score = np.array([3.0, 1.0])
    out = R.cohort_lift(score, np.zeros(2), np.array([0, 1]))
    assert out is score


# -- exclude_seen -----------------------------------------------------------------------------


def test_exclude_seen_drops_seen_items_and_keeps_the_order():
    ids, scores = R.exclude_seen(np.array([5, 3, 9, 1]), np.array([0.9, 0.8, 0.7, 0.6]), {3, 1, 42})
    assert_array_equal(ids, [5, 9])
    assert_array_equal(scores, [0.9, 0.7])


def test_exclude_seen_with_nothing_seen_and_with_everything_seen():
    ids, scores = np.array([5, 3]), np.array([0.9, 0.8])
    assert R.exclude_seen(ids, scores, set()) == (ids, scores)
    left, left_scores = R.exclude_seen(ids, scores, {3, 5})
    assert left.tolist() == [] and left_scores.tolist() == []


# -- top_k ------------------------------------------------------------------------------------


def test_top_k_is_best_first_with_ties_to_the_smaller_id():
    ids = np.array([10, 11, 12, 13, 14])
    score = np.array([1.0, 3.0, 3.0, 0.0, 2.0])
    top, s = R.top_k(ids, score, 3, set())
    assert_array_equal(top, [11, 12, 14])
    assert_array_equal(s, [3.0, 3.0, 2.0])
    top, s = R.top_k(ids, score, 3, {11})  # excluded: the next one moves up
    assert_array_equal(top, [12, 14, 10])
    assert_array_equal(s, [3.0, 2.0, 1.0])


def test_top_k_never_returns_ineligible_items_so_may_return_fewer():
    ids = np.array([10, 11, 12])
    top, s = R.top_k(ids, np.array([-np.inf, 1.0, -np.inf]), 5, set())
    assert_array_equal(top, [11])
    assert_array_equal(s, [1.0])
    top, s = R.top_k(ids, np.array([1.0, 2.0, 3.0]), 2, {10, 11, 12})
    assert top.tolist() == [] and s.tolist() == []
    top, _ = R.top_k(np.zeros(0, np.int64), np.zeros(0), 3, set())
    assert top.tolist() == []


def test_top_k_leaves_the_score_untouched():
    score = np.array([1.0, 2.0])
    R.top_k(np.array([1, 2]), score, 1, {2})
    assert_array_equal(score, [1.0, 2.0])


# -- select -----------------------------------------------------------------------------------

IDS = np.array([1, 2, 3, 2, 4, 5])
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
CATEGORY = np.array(["a", "a", "a", None, "b", None], dtype=object)


def test_select_dedupes_and_caps_per_category():
    notes: list[str] = []
    out = R.select(IDS, SCORES, None, CATEGORY, k=3, cap=2, stages=["x"], notes=notes)
    assert out == [
        {"item_id": 1, "score": 0.9, "stages": ["x", "rules"], "category": "a"},
        {"item_id": 2, "score": 0.8, "stages": ["x", "rules"], "category": "a"},
        {"item_id": 4, "score": 0.5, "stages": ["x", "rules"], "category": "b"},
    ]
    assert notes == []


def test_select_relaxes_the_cap_only_to_reach_k():
    notes: list[str] = []
    retrieval = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    out = R.select(IDS, SCORES, retrieval, CATEGORY, k=5, cap=2, stages=["x"], notes=notes)
    assert out == [
        {"item_id": 1, "score": 0.9, "retrieval_score": 0.1, "stages": ["x", "rules"], "category": "a"},
        {"item_id": 2, "score": 0.8, "retrieval_score": 0.2, "stages": ["x", "rules"], "category": "a"},
        {"item_id": 4, "score": 0.5, "retrieval_score": 0.5, "stages": ["x", "rules"], "category": "b"},
        {"item_id": 5, "score": 0.4, "retrieval_score": 0.6, "stages": ["x", "rules"], "category": "unknown"},
        {"item_id": 3, "score": 0.7, "retrieval_score": 0.3, "stages": ["x", "rules:category_cap_relaxed"]},
    ]  # fmt: skip
    assert notes == ["category cap 2 relaxed for 1 item(s)"]


def test_select_without_a_cap_takes_the_first_k_distinct():
    out = R.select(IDS, SCORES, None, CATEGORY, k=4, cap=0, stages=["x"], notes=[])
    assert [e["item_id"] for e in out] == [1, 2, 3, 4]


# -- fresh slots ------------------------------------------------------------------------------


def test_fresh_slots_are_a_share_of_k_rounded_up():
    assert [R.fresh_slots(20, 0.25), R.fresh_slots(6, 0.5), R.fresh_slots(3, 0.25)] == [5, 3, 1]


def test_fresh_slots_at_least_one_unless_the_share_is_zero():
    assert R.fresh_slots(1, 0.01) == 1
    assert R.fresh_slots(20, 0.0) == 0


def _picked(*ids: int) -> list[R.Entry]:
    return [{"item_id": i, "score": 1.0 / i, "stages": ["trending", "rules"]} for i in ids]


def test_insert_fresh_replaces_the_weakest_non_fresh_entries():
    out = R.insert_fresh(
        _picked(1, 2, 3, 4), [False, True, False, False], 4, np.array([7, 8]), np.array([0.5, 0.25])
    )
    assert out == [
        {"item_id": 1, "score": 1.0, "stages": ["trending", "rules"]},
        {"item_id": 2, "score": 0.5, "stages": ["trending", "fresh", "rules"]},
        {"item_id": 7, "score": 0.5, "stages": ["trending", "fresh", "rules"]},
        {"item_id": 8, "score": 0.25, "stages": ["trending", "fresh", "rules"]},
    ]


def test_insert_fresh_without_candidates_only_marks_and_a_short_list_only_grows():
    picked = _picked(1, 2)
    out = R.insert_fresh(picked, [True, False], 4, np.zeros(0, np.int64), np.zeros(0))
    assert out is picked
    assert [e["stages"] for e in out] == [["trending", "fresh", "rules"], ["trending", "rules"]]
    out = R.insert_fresh(_picked(1, 2), [False, False], 4, np.array([9]), np.array([0.1]))
    assert [e["item_id"] for e in out] == [1, 2, 9]


# -- select: the per-creator cap, the walk order and the marks --------------------------------

C_IDS = np.array([1, 2, 3, 4, 5, 6])
C_SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
C_CATEGORY = np.array(["a", "b", "c", "d", "e", "f"], dtype=object)  # no category cap bites
C_CREATOR = np.array(["x", "x", "x", None, "y", None], dtype=object)


def _ids(out: list[R.Entry]) -> list[int]:
    return [e["item_id"] for e in out]


def test_select_caps_items_per_creator_and_leaves_items_without_a_creator_alone():
    notes: list[str] = []
    out = R.select(C_IDS, C_SCORES, None, C_CATEGORY, k=4, cap=0, stages=["x"], notes=notes,
                   creator=C_CREATOR, creator_cap=1)  # fmt: skip
    assert _ids(out) == [1, 4, 5, 6]  # x once; the two without a creator both taken
    assert [e["stages"] for e in out] == [["x", "rules"]] * 4
    assert notes == []  # k reached: nothing relaxed, nothing said


def test_select_without_a_creator_cap_takes_one_creator_s_run():
    out = R.select(C_IDS, C_SCORES, None, C_CATEGORY, k=4, cap=0, stages=["x"], notes=[],
                   creator=C_CREATOR, creator_cap=0)  # fmt: skip
    assert _ids(out) == [1, 2, 3, 4]


def test_select_relaxes_the_creator_cap_in_score_order_only_to_reach_k():
    notes: list[str] = []
    out = R.select(C_IDS, C_SCORES, None, C_CATEGORY, k=6, cap=0, stages=["x"], notes=notes,
                   creator=C_CREATOR, creator_cap=1)  # fmt: skip
    assert _ids(out) == [1, 4, 5, 6, 2, 3]
    assert out[4] == {"item_id": 2, "score": 0.8, "stages": ["x", "rules:creator_cap_relaxed"]}
    assert notes == ["creator cap 1 relaxed for 2 item(s)"]


def test_select_names_both_caps_when_an_item_passed_both():
    category = np.array(["a", "a", "b", "c"], dtype=object)
    creator = np.array(["x", "x", "y", "x"], dtype=object)
    notes: list[str] = []
    out = R.select(C_IDS[:4], C_SCORES[:4], None, category, k=4, cap=1, stages=["x"],
                   notes=notes, creator=creator, creator_cap=1)  # fmt: skip
    assert _ids(out) == [1, 3, 2, 4]
    assert out[2]["stages"] == ["x", "rules:category_cap_relaxed", "rules:creator_cap_relaxed"]
    assert out[3]["stages"] == ["x", "rules:creator_cap_relaxed"]
    assert notes == ["category cap 1 relaxed for 1 item(s)", "creator cap 1 relaxed for 2 item(s)"]


def test_select_dedupes_across_sources_keeping_the_first_place():
    # one item proposed twice (two sources' lists concatenated): it is served once, at its
    # first place, and its second copy neither fills a slot nor counts against a cap
    ids = np.array([7, 8, 7, 9])
    sources = [["two_tower"], ["ease"], ["popularity"], ["ease"]]
    category = np.array(["a", "b", "a", "c"], dtype=object)
    notes: list[str] = []
    out = R.select(ids, np.array([0.9, 0.8, 0.7, 0.6]), None, category, k=4, cap=1,
                   stages=["x"], notes=notes, sources=sources)  # fmt: skip
    assert [(e["item_id"], e["sources"]) for e in out] == [
        (7, ["two_tower"]),
        (8, ["ease"]),
        (9, ["ease"]),
    ]
    assert notes == []


def test_select_walks_the_given_order_and_lists_the_marks_before_rules():
    marks = {"rules:fresh_boost": np.array([False, False, True]), "rules:mmr": np.array([False, True, True])}  # fmt: skip
    out = R.select(np.array([1, 2, 3]), np.array([0.9, 0.8, 0.7]), None, C_CATEGORY[:3], k=3,
                   cap=0, stages=["x"], notes=[], order=np.array([2, 1, 0]), marks=marks)  # fmt: skip
    assert [(e["item_id"], e["stages"]) for e in out] == [
        (3, ["x", "rules:fresh_boost", "rules:mmr", "rules"]),
        (2, ["x", "rules:mmr", "rules"]),
        (1, ["x", "rules"]),
    ]


def test_select_reads_only_the_positions_its_walk_reaches_and_crosses_chunks_alike():
    """20,000 candidates whose first 300 share category "a": with a cap of 5 the walk takes
    five of them, then must pass the first chunk to reach other categories. The categories
    are asked of the ids the walk reaches (a function, as serving passes
    ``ItemBlock.category_of``), a chunk at a time, and the page is the one an array gives."""
    n = 20_000
    ids = np.arange(n, dtype=np.int64) + 7
    scores = -np.arange(n, dtype=np.float64)
    category = np.array(["a"] * 300 + [f"c{i % 3}" for i in range(n - 300)], dtype=object)
    asked: list[int] = []

    def category_of(some: np.ndarray) -> np.ndarray:
        asked.append(len(some))
        return category[some - 7]

    def page(cat: object) -> list[R.Entry]:
        return R.select(ids, scores, None, cat, k=20, cap=5, stages=["s"], notes=[])  # type: ignore[arg-type]

    lazily, whole = page(category_of), page(category)
    assert lazily == whole
    assert [e["item_id"] - 7 for e in whole] == [0, 1, 2, 3, 4, *range(300, 315)]
    assert sum(asked) <= 315 + R.WALK_CHUNK and len(asked) >= 2  # two chunks, never all n
    # a page the cap cannot fill relaxes it from the same walk, to the end of the list
    few = np.array(["a"] * 30, dtype=object)
    got = R.select(
        ids[:30], scores[:30], None, lambda s: few[s - 7], k=8, cap=5, stages=[], notes=[]
    )
    assert [e["item_id"] - 7 for e in got] == list(range(8))
