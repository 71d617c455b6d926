"""The list-wise rules that move items (freshness boost, MMR) on tiny arrays, with exact
expected orders, and what ``rules.select`` makes of them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
from numpy.testing import assert_allclose, assert_array_equal

from recassets.funnel import diversity as Dv
from recassets.funnel import rules as R

ROOT = Path(__file__).resolve().parents[3]


def test_diversity_and_config_import_no_torch_or_model_code():
    probe = (
        "import sys, recassets.funnel.diversity, recassets.funnel.config\n"
        "print(','.join(m for m in ('torch', 'torchrec', 'faiss', 'recassets.models')"
        " if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == ""


def _page(ids: np.ndarray, scores: np.ndarray, k: int, **kw: Any) -> list[R.Entry]:
    order, scores, marks = Dv.arrange(ids, scores, k, **kw)
    category = np.array([None] * len(ids), dtype=object)
    return R.select(ids, scores, None, category, k=k, cap=0, stages=["x"], notes=[],
                    order=order, marks=marks)  # fmt: skip


# -- freshness boost --------------------------------------------------------------------------

IDS = np.array([1, 2, 3])
AGE = np.array([30.0, 0.5, 0.5])  # 2 and 3 first seen within the day


def test_fresh_boost_adds_to_fresh_items_only_and_reads_nan_as_stale():
    boosted, fresh = Dv.fresh_boost(np.array([1.0, 0.5, 0.2]), np.array([3.0, 1.0, np.nan]), 1.0, 0.25)  # fmt: skip
    assert_allclose(boosted, [1.0, 0.75, 0.2])
    assert_array_equal(fresh, [False, True, False])


def test_fresh_boost_lifts_a_fresh_item_over_a_slightly_better_stale_one():
    out = _page(IDS, np.array([1.0, 0.95, 0.5]), 3, boost=0.1, fresh_days=1.0, age_days=AGE)
    assert [(e["item_id"], e["stages"]) for e in out] == [
        (2, ["x", "rules:fresh_boost", "rules"]),
        (1, ["x", "rules"]),
        (3, ["x", "rules:fresh_boost", "rules"]),  # boosted too, but 0.6 stays below 1.0
    ]
    assert_allclose([e["score"] for e in out], [1.05, 1.0, 0.6])


def test_fresh_boost_does_not_lift_a_fresh_item_over_a_much_better_one_nor_when_off():
    much = _page(IDS, np.array([1.0, 0.5, 0.4]), 3, boost=0.1, fresh_days=1.0, age_days=AGE)
    assert [e["item_id"] for e in much] == [1, 2, 3]
    off = Dv.arrange(IDS, np.array([1.0, 0.95, 0.5]), 3, boost=0.0, age_days=AGE)
    assert off[0] is None and off[2] == {}
    stale = Dv.arrange(IDS, np.array([1.0, 0.95, 0.5]), 3, boost=0.1, fresh_days=0.25, age_days=AGE)  # fmt: skip
    assert stale[0] is None and stale[2] == {}  # none first seen within a quarter day


# -- MMR --------------------------------------------------------------------------------------

# a run of three near-duplicates (one creator's items), then two of another kind
RUN_IDS = np.array([11, 12, 13, 14, 15])
RUN_SCORES = np.array([1.0, 0.99, 0.98, 0.9, 0.5])
RUN_EMB = np.array([[1, 0], [1, 0.01], [1, 0.02], [0, 1], [0.01, 1]], np.float32)


def test_mmr_with_lambda_one_is_the_score_order():
    assert_array_equal(Dv.mmr(RUN_IDS, RUN_SCORES, 5, 1.0, embedding=RUN_EMB), [0, 1, 2, 3, 4])
    order, scores, marks = Dv.arrange(RUN_IDS, RUN_SCORES, 3, mmr_lambda=1.0, embedding=RUN_EMB)
    assert order is None and marks == {} and scores is RUN_SCORES


def test_mmr_breaks_up_a_run_of_near_duplicates():
    # scores normalised over the pool: 1, .98, .96, .8, 0; lambda .5: after 11, 12 scores
    # .49 - .5 * ~1 while 14 scores .4 - .5 * 0: the other kind comes second
    assert_array_equal(Dv.mmr(RUN_IDS, RUN_SCORES, 3, 0.5, embedding=RUN_EMB), [0, 3, 1])
    out = _page(RUN_IDS, RUN_SCORES, 3, mmr_lambda=0.5, embedding=RUN_EMB)
    assert [(e["item_id"], e["stages"]) for e in out] == [
        (11, ["x", "rules"]),
        (14, ["x", "rules:mmr", "rules"]),  # moved up past 12 and 13
        (12, ["x", "rules"]),
    ]
    order, _, marks = Dv.arrange(RUN_IDS, RUN_SCORES, 3, mmr_lambda=0.5, embedding=RUN_EMB)
    assert_array_equal(order, [0, 3, 1, 2, 4])  # MMR's k, then the rest in score order
    assert_array_equal(marks["rules:mmr"], [False, False, False, True, False])


def test_mmr_uses_category_equality_without_embeddings():
    category = np.array(["a", "a", "b"], dtype=object)
    scores = np.array([1.0, 0.9, 0.8])
    assert_array_equal(Dv.mmr(np.array([1, 2, 3]), scores, 2, 0.5, category=category), [0, 2])
    assert_array_equal(Dv.mmr(np.array([1, 2, 3]), scores, 2, 1.0, category=category), [0, 1])


def test_mmr_is_deterministic_with_ties_to_the_smaller_id():
    same = np.array(["a", "a", "a"], dtype=object)
    flat = np.zeros(3)
    got = [Dv.mmr(ids, flat, 3, 0.5, category=same) for ids in (np.array([30, 10, 20]), np.array([20, 30, 10]))]  # fmt: skip
    assert np.array([30, 10, 20])[got[0]].tolist() == [10, 20, 30]
    assert np.array([20, 30, 10])[got[1]].tolist() == [10, 20, 30]
    # not ties: the score decides, whatever the ids
    assert_array_equal(Dv.mmr(np.array([30, 10, 20]), np.array([3.0, 2.0, 1.0]), 3, 0.5, category=same), [0, 1, 2])  # fmt: skip


def test_mmr_looks_only_at_the_first_pool_of_distinct_candidates():
    # 2k x MMR_POOL = 8 near-duplicates lead (one of them listed twice); the two of another
    # kind after them are outside MMR's pool, so nothing moves
    n = Dv.MMR_POOL * 2
    ids = np.array([*range(1, n + 1), 1, 100, 101])
    scores = np.linspace(1.0, 0.5, len(ids))
    emb = np.array([[1.0, 0.0]] * (n + 1) + [[0.0, 1.0]] * 2)
    order, _, marks = Dv.arrange(ids, scores, 2, mmr_lambda=0.5, embedding=emb)
    assert order is None and marks == {}
    # one more slot in the pool (k = 3: 12 candidates) and the other kind comes second
    order, _, _ = Dv.arrange(ids, scores, 3, mmr_lambda=0.5, embedding=emb)
    assert order is not None and ids[order[:3]].tolist() == [1, 100, 2]


def test_boost_then_mmr_each_mark_the_items_they_moved():
    age = np.array([9.0, 9.0, 9.0, 0.0, 9.0])  # 14 is fresh: 0.9 + 0.05, still behind 13
    out = _page(RUN_IDS, RUN_SCORES, 3, mmr_lambda=0.5, embedding=RUN_EMB, boost=0.05, age_days=age)  # fmt: skip
    assert [(e["item_id"], e["stages"]) for e in out] == [
        (11, ["x", "rules"]),
        (14, ["x", "rules:fresh_boost", "rules:mmr", "rules"]),
        (12, ["x", "rules"]),
    ]
    assert_allclose([e["score"] for e in out], [1.0, 0.95, 0.99])


def _capped_page(k: int, config: Any) -> list[R.Entry]:
    """A page of k over 100 candidates whose best 60 share one category ("a")."""
    ids = np.arange(100, dtype=np.int64)
    category = np.array(["a"] * 60 + [f"c{i % 8}" for i in range(40)], dtype=object)
    return Dv.page(ids, -ids.astype(np.float32), None, category, k, config, stages=[], notes=[])


def test_the_category_cap_grows_with_the_page():
    from recassets.funnel.config import FunnelConfig

    def held(k: int, config: FunnelConfig) -> int:  # items of "a" taken before any relaxing
        return sum(e.get("category") == "a" for e in _capped_page(k, config))

    default = FunnelConfig()
    # up to 20 items the count holds (5); a larger page may hold a quarter of itself
    assert [default.category_cap(k) for k in (1, 10, 20, 21, 50, 200)] == [5, 5, 5, 6, 13, 50]
    assert held(20, default) == 5 and held(50, default) == 13
    # a share of 0 holds the count on every page; no count is no cap, whatever the share
    assert held(50, FunnelConfig(category_share=0)) == 5
    assert FunnelConfig(max_per_category=0).category_cap(50) == 0
    assert held(50, FunnelConfig(max_per_category=0)) == 50
