from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest

from recassets.training import evaluation as E
from recassets.training.loop import (
    RankingTrainConfig,
    TrainConfig,
    train_ranking,
    train_two_tower,
)
from support import planted

from .tiny import N_CATEGORIES, VOCAB
from .tiny import TINY as TINY_TT
from .torch_threads import one_torch_thread  # noqa: F401

TINY_RK = TrainConfig(
    batch_size=64,
    vocab=VOCAB,
    ranking=RankingTrainConfig(
        embedding_dim=8, dense_dim=8, cross_layers=1, low_rank=4, deep=(16,)
    ),
)


# --- metrics on hand-made cases -----------------------------------------------------------------


def test_retrieval_metrics_exact_values():
    ranked = {1: [10, 11, 12], 2: [20, 21, 22], 3: [30, 31]}
    truth = {1: {11, 99}, 2: {20}, 3: {77}, 4: set()}  # user 4: empty truth, not counted
    m = E.retrieval_metrics(ranked, truth, k=3)
    assert m["users"] == 3
    assert m["recall@3"] == pytest.approx((1 / 2 + 1 + 0) / 3)
    assert m["hit_rate@3"] == pytest.approx(2 / 3)
    ndcg_1 = (1 / math.log2(3)) / (1 + 1 / math.log2(3))  # hit at rank 2, 2 relevant
    assert m["ndcg@3"] == pytest.approx((ndcg_1 + 1.0 + 0.0) / 3)


def test_retrieval_metrics_cut_at_k_and_missing_user():
    m = E.retrieval_metrics({1: [5, 6, 7]}, {1: {7}, 2: {1}}, k=2)
    assert m == {"recall@2": 0.0, "ndcg@2": 0.0, "hit_rate@2": 0.0, "users": 2}
    assert math.isnan(E.retrieval_metrics({}, {}, k=5)["recall@5"])


def test_top_k_excluding_breaks_ties_by_id_and_drops_seen():
    ids = np.array([7, 3, 5, 9], dtype=np.int64)
    scores = np.array([0.5, 0.9, 0.5, 0.1])
    assert E.top_k_excluding(scores, ids, None, 3) == [3, 5, 7]
    assert E.top_k_excluding(scores, ids, {3}, 3) == [5, 7, 9]
    assert E.top_k_excluding(scores, ids, {3, 5, 7, 9}, 3) == []
    # ties at the cut by id too (argpartition picked among them: [2, 3, 5] of ten zeros)
    assert E.top_k_excluding(np.zeros(10), np.arange(10), {0, 1}, 3) == [2, 3, 4]
    assert E.top_k_excluding(np.zeros(1000), np.arange(1000), None, 50) == list(range(50))
    # a score that is not finite is said, not ranked (NaN dropped, +inf kept over a finite one)
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match="1 of 4 scores are not finite"):
            E.top_k_excluding(np.array([bad, 1.0, 2.0, 3.0]), ids, None, 4)


def test_baselines_fill_their_lists_from_the_catalog_as_the_model_does():
    """A 60-item catalog, 20 seen: the model listed all 40 unseen items (Recall@50 1 whatever
    its order) where popularity listed its 30 items with positives; filled, the baseline
    lists them too, and the gate compares like with like."""
    from recassets.models.metrics import roc_auc
    from recassets.training.heldout import filled, padded

    catalog = np.arange(60, dtype=np.int64)
    order = filled(np.array([40, 7, 3]), catalog)
    assert order[:3].tolist() == [40, 7, 3] and sorted(order.tolist()) == catalog.tolist()
    assert order[3:6].tolist() == [0, 1, 2]  # then the catalog's order
    listed = E.popularity_ranking(order, [0], {0: set(range(20))}, 50)[0]
    assert listed == [40, *range(20, 40), *range(41, 60)]  # every unseen item, as the model
    assert padded([40], order, {7}, 4) == [40, 3, 0, 1]
    assert padded([1, 2, 3, 4], order, None, 4) == [1, 2, 3, 4]
    assert math.isnan(roc_auc(np.array([np.nan, np.nan, 0.5, 0.2]), np.array([1, 0, 1, 0])))


def test_popularity_counts_positives_only_ties_by_id():
    rows = pa.table(
        {"item_id": [4, 4, 2, 2, 8, 8, 8], "label": [1, 1, 1, 1, 1, 0, 0], "user_id": [0] * 7}
    )
    ids, counts = E.popularity(rows)
    assert ids.tolist() == [2, 4, 8] and counts.tolist() == [2, 2, 1]
    assert E.popularity_ranking(ids, [0, 1], {0: {2}}, 2) == {0: [4, 8], 1: [2, 4]}


def test_latest_rows_keeps_the_latest_day_per_key():
    import datetime as dt

    rows = pa.table(
        {
            "item_id": [1, 1, 2],
            "x": [10, 20, 30],
            "dt": [dt.date(2026, 1, 1), dt.date(2026, 1, 2), dt.date(2026, 1, 1)],
        }
    )
    out = E.latest_rows(rows, "item_id")
    assert out["item_id"].to_pylist() == [1, 2] and out["x"].to_pylist() == [20, 30]


# --- evaluate on a planted table ----------------------------------------------------------------


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("lake") / "training_examples")
    planted.write_days(path, range(4), n_categories=N_CATEGORIES)
    models = tmp_path_factory.mktemp("models")
    days = [planted.day(i) for i in range(3)]
    tt = train_two_tower(path, days, replace(TINY_TT, epochs=3), output=models / "tt.pt")
    rk = train_ranking(path, days, replace(TINY_RK, epochs=2), output=models / "rk.pt")
    return path, tt, rk


def test_available_days_lists_the_partitions(lake):
    path, _, _ = lake
    assert E.available_days(path) == [planted.day(i) for i in range(4)]
    assert E.available_days(path + "_missing") == []


def test_evaluate_scores_candidate_and_baselines_on_the_next_day(lake):
    path, tt, rk = lake
    report = E.evaluate(path, tt.path, rk.path, k=10, current_two_tower=tt.path)
    assert report.eval_days == [planted.day(3)]  # default: the day after the last consumed
    assert report.train_days == [planted.day(i) for i in range(3)]
    assert set(report.retrieval) == {
        "candidate",
        "candidate_served",
        "current",
        "popularity_all_time",
        "popularity_trailing_7d",
        "cooccurrence",
    }
    cand = report.retrieval["candidate"]
    assert cand["users"] > 0 and 0.0 <= cand["recall@10"] <= 1.0
    assert cand["user_days"] >= cand["users"]
    assert cand["recall@10_lo"] <= cand["recall@10"] <= cand["recall@10_hi"]
    assert "ndcg@10" in cand
    # the same checkpoint as "current" (served without a ranker: the two-tower alone)
    assert report.retrieval["current"] == cand
    # the planted category preference: the model beats popularity (uniform impressions)
    assert cand["recall@10"] > report.retrieval["popularity_all_time"]["recall@10"]
    assert set(report.reranking) == {"dcn_v2", "two_tower", "popularity"}
    assert (
        0.0 <= report.ranking["candidate"]["auc"] <= 1.0
        and report.ranking["candidate"]["examples"] > 0
    )
    assert report.catalog_size == 120
    md = report.to_markdown()
    assert "| candidate |" in md and "Recall@10" in md and "| cooccurrence |" in md
    # the order that would serve (the pair) minus each baseline, unit by unit: the mean of the
    # differences is the difference of the means, and its interval holds it
    served, gate_keys = report.retrieval[report.served_key], ("recall@10", "ndcg@10")
    assert report.served_key == "candidate_served" and set(report.paired) == set(E.BASELINES)
    for name, got in report.paired.items():
        for m in gate_keys:
            d = got[m]
            assert d["mean"] == pytest.approx(served[m] - report.retrieval[name][m], abs=1e-12)
            assert d["lo"] <= d["mean"] <= d["hi"] and d["users"] == served["users"]
    again = E.EvaluationReport.from_dict(report.to_dict())
    assert again == report


def test_evaluate_refuses_eval_days_with_a_day_left_out_between_them(tmp_path):
    """Each eval day's history is every day before the first: with days 3 and 5, day 4 was in
    neither (popularity "as of" day 5 never counted it)."""
    path = str(tmp_path / "training_examples")
    planted.write_days(path, range(6), n_categories=N_CATEGORIES)
    days = [planted.day(i) for i in range(3)]
    tt = train_two_tower(path, days, replace(TINY_TT, epochs=1), output=tmp_path / "tt.pt")
    with pytest.raises(ValueError, match=rf"leave out \['{planted.day(4)}'\]"):
        E.evaluate(path, tt.path, eval_days=[planted.day(3), planted.day(5)], bootstrap=0)
    report = E.evaluate(path, tt.path, eval_days=[planted.day(3), planted.day(4)], bootstrap=0)
    assert report.retrieval[E.CANDIDATE]["users"] > 0


def test_evaluate_refuses_trained_or_missing_days(lake):
    path, tt, rk = lake
    with pytest.raises(ValueError, match="trained on"):
        E.evaluate(path, tt.path, rk.path, eval_days=[planted.day(2)])
    with pytest.raises(ValueError, match="not in"):
        E.evaluate(path, tt.path, rk.path, eval_days=[planted.day(9)])
