"""The rule stage of ``Recommender`` (``_rules``, which every path calls: model, blend,
popularity, cold start) wired to ``FunnelConfig``: without a bundle or a store, on the
hand-built block and a stand-in for the online reader's ``items``."""

from __future__ import annotations

import numpy as np

from recassets.funnel.items import ItemBlock
from recassets.funnel.recommender import FunnelConfig, Recommender
from tests.unit.funnel.blocks import block

# the reader's item columns of items 10..50 (the block's): creator, age, content embedding
CREATOR = {10: "x", 20: "x", 30: "x", 40: None, 50: "y"}
AGE = {10: 30.0, 20: 30.0, 30: 0.5, 40: 30.0, 50: 30.0}
EMB = {10: [1.0, 0.0], 20: [1.0, 0.01], 30: [1.0, 0.02], 40: [0.0, 1.0], 50: [0.0, 1.0]}


class Reader:
    def __init__(self, embedding: bool = True) -> None:
        self.calls = 0
        self.embedding = embedding

    def items(self, ids: np.ndarray) -> dict[str, np.ndarray]:
        self.calls += 1
        got = {
            "creator": np.array([CREATOR[i] for i in ids.tolist()], dtype=object),
            "age_days": np.array([AGE[i] for i in ids.tolist()]),
        }
        if self.embedding:
            got["embedding"] = np.array([EMB[i] for i in ids.tolist()], np.float32)
        return got


def _recommender(reader: Reader, **config: float) -> Recommender:
    rec = object.__new__(Recommender)  # the rule stage needs only its config and reader
    rec.config = FunnelConfig(max_per_category=0, **config)  # type: ignore[arg-type]
    rec.reader = reader  # type: ignore[assignment]
    return rec


IDS = np.array([10, 20, 30, 40, 50])
SCORES = np.array([1.0, 0.99, 0.98, 0.9, 0.5])


def _rules(rec: Recommender, k: int, notes: list[str] | None = None) -> list[tuple[int, list[str]]]:
    out = rec._rules(block(), IDS, SCORES, None, k, ["ranking"], notes if notes is not None else [])  # fmt: skip
    return [(e["item_id"], e["stages"]) for e in out]


def test_rules_with_the_defaults_read_nothing_more_and_keep_the_score_order():
    reader = Reader()
    assert [i for i, _ in _rules(_recommender(reader), 3)] == [10, 20, 30]
    assert reader.calls == 0  # no list-wise rule on: no gather of the item columns


def test_rules_cap_items_per_creator_from_the_config():
    notes: list[str] = []
    assert [i for i, _ in _rules(_recommender(Reader(), max_per_creator=1), 3, notes)] == [10, 40, 50]  # fmt: skip
    assert notes == []
    got = _rules(_recommender(Reader(), max_per_creator=1), 4, notes)
    assert got[-1] == (20, ["ranking", "rules:creator_cap_relaxed"])
    assert notes == ["creator cap 1 relaxed for 1 item(s)"]


def test_rules_boost_fresh_items_from_the_config():
    got = _rules(_recommender(Reader(), fresh_boost=0.05, fresh_days=1.0), 2)
    assert got == [(30, ["ranking", "rules:fresh_boost", "rules"]), (10, ["ranking", "rules"])]


def test_rules_diversify_over_the_content_embeddings_or_else_the_categories():
    got = _rules(_recommender(Reader(), mmr_lambda=0.5), 3)
    assert got == [
        (10, ["ranking", "rules"]),
        (40, ["ranking", "rules:mmr", "rules"]),
        (20, ["ranking", "rules"]),
    ]
    # no embedding column: the block's categories are the similarity (10 and 40: a, 20: b)
    rec = _recommender(Reader(embedding=False), mmr_lambda=0.5)
    ids, scores = np.array([10, 40, 20]), np.array([1.0, 0.99, 0.98])
    out = rec._rules(block(), ids, scores, None, 2, ["ranking"], [])
    assert [(e["item_id"], e["stages"]) for e in out] == [
        (10, ["ranking", "rules"]),
        (20, ["ranking", "rules:mmr", "rules"]),
    ]
    off = _recommender(Reader(embedding=False))._rules(block(), ids, scores, None, 2, ["r"], [])
    assert [e["item_id"] for e in off] == [10, 40]


def test_the_light_cut_keeps_the_best_by_the_light_ranker_in_retrieval_order():
    from dataclasses import replace

    from recassets.training.light import LightRanker
    from recassets.training.schema import ITEM_DENSE

    f = 1 + len(ITEM_DENSE)
    e7 = 1 + ITEM_DENSE.index("i_engagements_7d")
    w1 = np.zeros((f, 1), np.float32)
    w1[e7, 0] = 1.0  # the light score: log1p(engagements over 7 days), nothing else
    light = LightRanker(np.zeros(f, np.float32), np.ones(f, np.float32), w1,
                        np.zeros(1, np.float32), np.ones(1, np.float32), 0.0)  # fmt: skip
    b = block()
    dense = np.zeros((5, len(ITEM_DENSE)), np.float32)
    dense[:, e7 - 1] = b.engagements_7d
    b = replace(b, dense=dense)
    rec = _recommender(Reader(), light_keep=2)
    rec.light = light
    rec._light_rows = None
    ids = np.array([50, 10, 20, 99, 40])  # retrieval's order; 99: not in the block
    retrieval = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    kept, scores, light_scores = rec.light_cut(b, ids, retrieval)
    assert kept.tolist() == [20, 40] and scores.tolist() == [0.7, 0.5]  # 9 and 7 engagements
    np.testing.assert_allclose(light_scores, np.log1p([9.0, 7.0]), rtol=1e-5)  # their logits
    rec.config = FunnelConfig(max_per_category=0, light_keep=4)
    kept, _, _ = rec.light_cut(b, ids, retrieval)
    assert kept.tolist() == [50, 10, 20, 40]  # 99 reads zero counters: the one cut
    rec.config = FunnelConfig(max_per_category=0, light_keep=10)  # no cut: every logit comes back
    kept, _, light_scores = rec.light_cut(b, ids, retrieval)
    assert kept.tolist() == ids.tolist() and len(light_scores) == 5 and light_scores[3] == 0.0


# -- /rank: unknown users and unknown items -------------------------------------------------


def _ranker(users: dict[int, dict], scores: dict[int, float]) -> Recommender:
    """``rank_request``'s parts: the block, a model policy whose ranker scores each item from
    ``scores`` (an item outside the block gets a high default-feature score: the case that
    must not outrank known items), and the users the online store knows."""
    from dataclasses import replace
    from types import SimpleNamespace

    b = replace(block(), prepared=object())

    def ranking(
        blk: ItemBlock, user_id: int, values: object, ids: np.ndarray, cohort: object
    ) -> tuple[np.ndarray, np.ndarray]:
        _, found = blk.positions(ids)
        return np.array([scores.get(i, 100.0) for i in ids.tolist()]), found

    rec = object.__new__(Recommender)
    rec.model = True
    rec.catalog = SimpleNamespace(block=lambda: b)  # type: ignore[assignment]
    rec.user_row = users.get  # type: ignore[method-assign]
    rec._ranking = ranking  # type: ignore[assignment]
    rec._cohort_of = lambda blk, values: None  # type: ignore[method-assign]
    return rec


def test_rank_puts_unknown_items_after_every_known_one_and_says_so():
    from recassets.funnel.notes import RANK_UNKNOWN_ITEMS

    rec = _ranker({1: {"u": 1}}, {10: 0.5, 20: 2.0, 30: -1.0})
    notes: list[str] = []
    got = rec.rank_request(1, [10, 999, 20, 30, 998], notes)
    assert [(i["item_id"], i["stages"]) for i in got] == [
        (20, ["ranking"]),
        (10, ["ranking"]),
        (30, ["ranking"]),
        (998, ["ranking", "missing_features"]),  # scored 100 on defaults: still last
        (999, ["ranking", "missing_features"]),
    ]
    assert notes == [RANK_UNKNOWN_ITEMS.format(n=2)]
    # every item known: score order alone, and nothing to note
    notes = []
    assert [i["item_id"] for i in rec.rank_request(1, [30, 10, 20], notes)] == [20, 10, 30]
    assert notes == []


def test_rank_notes_an_unknown_user_ranked_on_default_features():
    from recassets.funnel.notes import RANK_COLD_USER

    rec = _ranker({1: {"u": 1}}, {10: 1.0})
    notes: list[str] = []
    assert [i["item_id"] for i in rec.rank_request(777, [10], notes)] == [10]
    assert notes == [RANK_COLD_USER]
    notes = []
    rec.rank_request(1, [10], notes)  # a known user: no note
    assert notes == []


def test_rank_with_no_item_in_memory_marks_every_item_and_says_so():
    """A model serves but no item is in memory (before the first load): every item is
    unknown, in id order, with the note; it was an IndexError, a 500."""
    from types import SimpleNamespace

    from recassets.funnel.notes import NO_ITEMS, RANK_UNKNOWN_ITEMS
    from tests.unit.funnel.blocks import empty

    rec = _ranker({1: {"u": 1}}, {})
    rec.catalog = SimpleNamespace(block=empty)  # type: ignore[assignment]
    rec.policy = {"policy": "model"}
    notes: list[str] = []
    got = rec.rank_request(1, [30, 10], notes)
    assert [(i["item_id"], i["score"], i["stages"]) for i in got] == [
        (10, 0.0, ["popularity", "missing_features"]),
        (30, 0.0, ["popularity", "missing_features"]),
    ]
    assert notes == [NO_ITEMS, RANK_UNKNOWN_ITEMS.format(n=2)]


def test_rank_without_a_model_orders_by_the_policys_counts():
    """The popularity policy's counts decide /rank's order too: the bundle's positives of its
    variant where it has them, else the online week (block(): 7 days 5, 9, 1, 7, 3 for items
    10..50)."""
    from dataclasses import replace
    from types import SimpleNamespace

    rec = _ranker({1: {"u": 1}}, {})
    rec.model = False
    counts = np.array([1.0, 0.0, 8.0, 2.0, 0.0])
    counted = replace(block(), positives=counts, positives_variant="all_time")
    rec.catalog = SimpleNamespace(block=lambda: counted)  # type: ignore[assignment]
    rec.policy = {"policy": "popularity", "variant": "trailing_7d"}
    assert [i["item_id"] for i in rec.rank_request(1, [10, 20, 30, 40])] == [20, 40, 10, 30]
    rec.policy = {"policy": "popularity", "variant": "all_time"}
    assert [i["item_id"] for i in rec.rank_request(1, [10, 20, 30, 40])] == [30, 40, 10, 20]
