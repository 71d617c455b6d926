"""The evaluation reads its history one day at a time (``eval_history``), and reports what
reading it all at once did: the whole history's rows, and the item columns of every row ever,
grew 50 MB a day of history at 175k examples a day (review, 2026-12-07)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from recassets.training import eval_history as H
from recassets.training import evaluation as E
from recassets.training.cooccurrence import fit_cosine
from recassets.training.heldout import (
    ITEM_COLUMNS,
    engaged_items,
    items_as_of,
    latest_per_day,
    read_days,
    seen_items,
)
from recassets.training.loop import RankingTrainConfig, TrainConfig, train_ranking, train_two_tower
from recassets.training.similarity import ItemSimilarity
from support import planted

from .tiny import TINY, VOCAB
from .torch_threads import one_torch_thread  # noqa: F401

DAYS = [planted.day(i) for i in range(6)]
TRAIN, WINDOW = DAYS[:3], DAYS[4:]  # day 3: neither trained on nor in the window: history


def all_at_once(paths, history_days, window, users, seen_sources):
    """The reading before 2026-12-07: every history day in one read, the item columns of
    every day's every row in another."""
    past = read_days(paths, history_days, ("user_id", "item_id", "label", "source"))
    items = latest_per_day(read_days(paths, [*history_days, *window], (*ITEM_COLUMNS, "ts")))
    return H.History(
        seen_items(past, seen_sources),
        engaged_items(past),
        items,
        past.filter(pc.equal(past["label"], 1)).select(H.POSITIVE_COLUMNS),
    )


@pytest.fixture(scope="module")
def lake(tmp_path_factory):
    """Users change from day to day (a third of them each day, some back two days later),
    item rows too (each row's counters are drawn anew), some items are only on the first day,
    and a rating of any value is seen (``SEEN_SOURCES``) where an impression is not."""
    tmp = tmp_path_factory.mktemp("eval_history")
    path = str(tmp / "training_examples")
    for d in range(len(DAYS)):
        rows = planted.make_day(d, user_offset=24 * (d % 3), n_items=150 if d == 0 else 120)
        src = np.where(rows["item_id"].to_numpy() % 7 == 0, "rating", "impression")
        planted.write_day(path, rows.set_column(rows.schema.get_field_index("source"), "source",
                                                pa.array(src)))  # fmt: skip
    tt = train_two_tower(path, TRAIN, replace(TINY, epochs=1), output=tmp / "tt.pt")
    rk_config = RankingTrainConfig(embedding_dim=8, dense_dim=8, cross_layers=1, low_rank=4,
                                   deep=(16,))  # fmt: skip
    rk = train_ranking(path, TRAIN, TrainConfig(batch_size=64, vocab=VOCAB, ranking=rk_config),
                       output=tmp / "rk.pt")  # fmt: skip
    pos = read_days(path, TRAIN, ("user_id", "item_id", "label"))
    pos = pos.filter(pc.equal(pos["label"], 1))
    users, items = pos["user_id"].to_numpy(), pos["item_id"].to_numpy()
    sim = ItemSimilarity.fit(users, items, meta={"partitions": TRAIN})
    co = fit_cosine(users, items, neighbors=50, max_items=1000, meta={"partitions": TRAIN})
    return path, tt, rk, sim, co


def test_the_history_is_read_one_day_at_a_time(lake, monkeypatch):
    """Every read of the evaluation is one history day or the window's days: it read all
    history days in one go, twice."""
    path, tt, _, _, _ = lake
    calls: list[list[str]] = []

    def spy(paths, days, columns, **kw):
        calls.append(list(days))
        return read_days(paths, days, columns, **kw)

    monkeypatch.setattr(E, "read_days", spy)
    monkeypatch.setattr(H, "read_days", spy, raising=False)
    E.evaluate(path, tt.path, eval_days=WINDOW, k=10, bootstrap=0)
    history = [d for c in calls for d in c if d not in WINDOW]
    assert sorted(history) == DAYS[:4]  # each history day read once
    assert all(len(c) == 1 or set(c) <= set(WINDOW) for c in calls), calls


def test_what_is_kept_of_the_history_is_what_the_whole_history_gave(lake):
    """The same item rows on each eval day, the same seen and engaged items for the window's
    users, the same positives: the others' are not kept."""
    path = lake[0]
    users = read_days(path, WINDOW, ("user_id",))["user_id"]
    got = H.read_history(path, DAYS[:4], WINDOW, users, E.SEEN_SOURCES)
    old = all_at_once(path, DAYS[:4], WINDOW, users, E.SEEN_SOURCES)
    for day in WINDOW:
        assert items_as_of(got.items, day).equals(items_as_of(old.items, day))
    assert np.unique(got.items["item_id"]).tolist() == list(range(150))  # day 0's too
    window_users = set(pc.unique(users).to_pylist())
    assert got.seen == {u: s for u, s in old.seen.items() if u in window_users}
    assert got.engaged == {u: s for u, s in old.engaged.items() if u in window_users}
    assert set(got.seen) < set(old.seen)  # users 0..23 of days 0 and 3 are not in the window
    key = [("user_id", "ascending"), ("item_id", "ascending"), ("dt", "ascending")]
    assert got.positives.sort_by(key).equals(old.positives.sort_by(key))


@pytest.mark.parametrize("window", [[DAYS[3]], WINDOW])
def test_the_report_is_the_same_as_reading_everything_at_once(lake, monkeypatch, window):
    """Every policy (the pair served, the blend, co-occurrence as served, the current pair)
    and every baseline, on one eval day and on two."""
    path, tt, rk, sim, co = lake
    kw = {"eval_days": window, "k": 10, "bootstrap": 20, "current_two_tower": tt.path,
          "similarity": sim, "cooccurrence": co, "candidates": 20, "light_keep": 20}  # fmt: skip
    got = E.evaluate(path, tt.path, rk.path, **kw)
    monkeypatch.setattr(E, "read_history", all_at_once)
    old = E.evaluate(path, tt.path, rk.path, **kw)
    assert got.to_dict() == old.to_dict()
    assert got.retrieval[E.CANDIDATE]["users"] > 0 and E.COOCCURRENCE_SERVED in got.retrieval


def test_the_report_is_the_same_with_training_days_after_the_window(lake, tmp_path, monkeypatch):
    """Models trained on days on both sides of the window: the days after it only add items
    to the catalogue (their rows and positives are no history of the window's days)."""
    path, _, rk, sim, co = lake
    tt = train_two_tower(path, [DAYS[0], DAYS[1], DAYS[5]], replace(TINY, epochs=1),
                         output=tmp_path / "tt.pt")  # fmt: skip
    kw = {"eval_days": [DAYS[3]], "k": 10, "bootstrap": 20, "current_two_tower": tt.path,
          "similarity": sim, "cooccurrence": co, "candidates": 20, "light_keep": 20}  # fmt: skip
    got = E.evaluate(path, tt.path, rk.path, **kw)
    monkeypatch.setattr(E, "read_history", all_at_once)
    old = E.evaluate(path, tt.path, rk.path, **kw)
    assert got.to_dict() == old.to_dict() and got.retrieval[E.CANDIDATE]["users"] > 0
