"""The SQLite online store holds exactly the day its marker names, whatever happened to its
files: deleted, replaced, lost, damaged, or entities gone from the newest day."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from recassets.featurestore import (
    FOUND,
    OnlineFeatureReader,
    materialize_day,
    online_features,
    served_day,
    skew_check,
    store,
    upkeep,
)
from recassets.featurestore import config as cfg
from recassets.featurestore.online import OnlineStoreUnavailable
from tests.unit.featurestore.conftest import DAY1, DAY2
from tests.unit.featurestore.factories import item_row, user_row


def user_clicks(paths, user_id: int):
    return online_features(paths, "user", [user_id], ["clicks_7d"])["clicks_7d"][0]


def test_a_reader_never_reads_a_deleted_or_replaced_sqlite_file(lake_copy):
    """An open connection kept reading online.db after it was deleted (healthy, day 1's
    values), then read the old file under the rebuilt day's marker."""
    paths = lake_copy
    materialize_day(paths, DAY1)
    reader = OnlineFeatureReader(paths, check_interval_s=0)
    assert reader.user(1)["clicks_7d"] == user_row(1, DAY1)["clicks_7d"]
    os.remove(cfg.sqlite_path(paths))
    with pytest.raises(OnlineStoreUnavailable, match=f"{cfg.sqlite_path(paths)}: the file is"):
        reader.user(1)
    assert not reader.ping() and "missing" in (reader.health.error or "")
    materialize_day(paths, DAY2)  # rebuilt: a new file at the path
    assert reader.maybe_refresh() and reader.day == DAY2
    assert reader.user(1)["clicks_7d"] == user_row(1, DAY2)["clicks_7d"]
    got = reader.items([1, 21])
    assert got[FOUND].all() and got["clicks_7d"][0] == item_row(1, DAY2)["clicks_7d"]
    assert reader.ping() and reader.health.error is None


def test_a_deleted_online_db_is_rebuilt_from_the_day_materialized(lake_copy):
    """apply() recreated an empty online.db first, so an older day then said "not loaded,
    serving DAY2" over an empty store."""
    paths = lake_copy
    materialize_day(paths, DAY2)
    os.remove(cfg.sqlite_path(paths))
    summary = materialize_day(paths, DAY1)
    assert (summary.wrote_online, summary.served_day, served_day(paths)) == (True, DAY1, DAY1)
    assert skew_check(paths, DAY1, sample=100).passed


def test_a_store_without_its_marker_is_cleared_before_a_day_is_loaded(lake_copy):
    """A lost materialized.json let an older day be loaded over the newer day's rows: item 21
    (of DAY2 only) stayed, under a marker naming DAY1."""
    paths = lake_copy
    materialize_day(paths, DAY2)
    cfg.marker_path(paths).unlink()
    summary = materialize_day(paths, DAY1)
    assert (summary.wrote_online, served_day(paths)) == (True, DAY1)
    assert online_features(paths, "item", [21], ["clicks_7d"])["clicks_7d"] == [None]
    assert skew_check(paths, DAY1, sample=100).passed


def test_entities_gone_from_the_day_are_no_longer_served(lake_copy, monkeypatch):
    from deltalake import DeltaTable

    paths = lake_copy
    materialize_day(paths, DAY1)
    DeltaTable(paths.table("item_features")).delete(f"dt = '{DAY2}' AND item_id = 7")
    DeltaTable(paths.table("user_features")).delete(f"dt = '{DAY2}' AND user_id = 8")
    with monkeypatch.context() as mp:  # as before: Feast only upserts
        mp.setattr(upkeep, "prune", lambda *a, **k: {})
        materialize_day(paths, DAY2)
    report = skew_check(paths, DAY2, sample=100)  # the check sees them now
    absent = {(m.view, m.key) for m in report.mismatches if m.feature == store.ABSENT_FROM_DAY}
    assert not report.passed
    assert absent == {("item_daily_features", 7), ("user_daily_features", 8)}

    materialize_day(paths, DAY2)
    assert user_clicks(paths, 8) is None and user_clicks(paths, 9) is not None
    assert online_features(paths, "item", [7], ["clicks_7d"])["clicks_7d"] == [None]
    reader = OnlineFeatureReader(paths)
    assert reader.items([7, 6])[FOUND].tolist() == [False, True]
    assert reader.user(8)["clicks_7d"] is None
    assert skew_check(paths, DAY2, sample=100).passed


def test_a_damaged_marker_is_named_with_what_to_do(lake_copy):
    paths = lake_copy
    materialize_day(paths, DAY1)
    marker = cfg.marker_path(paths)
    marker.write_text('{"day": "2026-01-0')
    with pytest.raises(RuntimeError, match=f"marker {marker} is damaged.*delete it"):
        materialize_day(paths, DAY2)
    with pytest.raises(RuntimeError, match=f"marker {marker} is damaged"):
        served_day(paths)
    marker.write_text("[]")
    with pytest.raises(RuntimeError, match="a JSON list, not an object"):
        served_day(paths)
    marker.unlink()  # what the message says to do
    assert materialize_day(paths, DAY2).wrote_online and served_day(paths) == DAY2
    assert skew_check(paths, DAY2, sample=100).passed


def test_a_damaged_registry_is_named_and_rebuilt_by_the_next_materialization(lake_copy):
    paths = lake_copy
    materialize_day(paths, DAY1)
    registry = cfg.registry_path(paths)
    registry.write_bytes(b"\x00garbage\xff" * 100)
    store._forget_stores(paths)  # as a new process
    with pytest.raises(RuntimeError, match=f"registry {registry} is damaged.*rebuilds it"):
        user_clicks(paths, 1)
    assert materialize_day(paths, DAY2).wrote_online
    assert user_clicks(paths, 1) == user_row(1, DAY2)["clicks_7d"]
    assert [p.name.split("-")[0] for p in registry.parent.glob("registry.db.damaged-*")] == [
        "registry.db.damaged"
    ]


def test_a_damaged_online_db_is_set_aside_and_rebuilt(lake_copy):
    paths = lake_copy
    materialize_day(paths, DAY2)
    db = cfg.sqlite_path(paths)
    with open(db, "r+b") as f:
        f.write(b"garbage" * 1000)
    reader = OnlineFeatureReader(paths)
    with pytest.raises(OnlineStoreUnavailable, match=str(db)):
        reader.user(1)
    summary = materialize_day(paths, DAY1)  # the store is empty: rebuilt from the day asked
    assert (summary.wrote_online, served_day(paths)) == (True, DAY1)
    assert len(list(Path(db).parent.glob("online.db.damaged-*"))) == 1
    assert skew_check(paths, DAY1, sample=100).passed
    assert json.loads(cfg.marker_path(paths).read_text())["generation"] == 1
