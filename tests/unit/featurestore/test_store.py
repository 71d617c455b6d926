"""apply / materialize_day / online_features / skew_check against the SQLite online store."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from recassets.featurestore import (
    Mismatch,
    apply,
    end_of_day,
    export_offline_snapshot,
    get_store,
    materialize_day,
    offline_rows,
    online_features,
    same_value,
    served_day,
    skew_check,
)
from recassets.featurestore import config as cfg
from tests.unit.featurestore.conftest import DAY1, DAY2, ITEMS, USERS

TABLE_OF = {"user": "user_features", "item": "item_features", "cohort": "cohort_features"}
KEY_OF = {"user": "user_id", "item": "item_id", "cohort": "cohort_id"}


def sqlite_key(join_key: str, value) -> bytes:
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    v = Value(string_val=value) if isinstance(value, str) else Value(int64_val=value)
    return serialize_entity_key(EntityKey(join_keys=[join_key], entity_values=[v]), 3)


def set_online_value(paths, view: str, join_key: str, key, feature: str, value) -> None:
    from feast.protos.feast.types.Value_pb2 import Value

    with sqlite3.connect(cfg.sqlite_path(paths)) as conn:
        n = conn.execute(
            f"UPDATE recassets_{view} SET value = ? WHERE entity_key = ? AND feature_name = ?",
            (Value(int64_val=value).SerializeToString(), sqlite_key(join_key, key), feature),
        ).rowcount
    assert n == 1


def test_materialize_reports_what_it_loaded(materialized):
    paths, first, second = materialized
    assert first.counts == {
        "user_daily_features": len(USERS),
        "item_daily_features": len(ITEMS),
        "cohort_daily_features": 8,
    }
    assert second.counts["item_daily_features"] == len(ITEMS) + 1
    assert (first.wrote_online, second.wrote_online, second.served_day) == (True, True, DAY2)
    assert second.online_store == f"sqlite:{paths.artifacts}/feast/online.db"
    assert (
        Path(second.registry).is_file()
        and second.registry == f"{paths.artifacts}/feast/registry.db"
    )
    assert served_day(paths) == DAY2
    marker = json.loads(cfg.marker_path(paths).read_text())
    assert (marker["day"], marker["generation"], marker["counts"]) == (DAY2, 2, second.counts)
    lineage = json.loads(Path(second.lineage).read_text())
    assert {i["table"]: i["delta_version"] for i in lineage["inputs"]} == second.delta_versions == {
        "user_features": 2, "item_features": 2, "cohort_features": 2,
    }  # fmt: skip


@pytest.mark.parametrize("entity", ["user", "item", "cohort"])
def test_online_values_equal_the_offline_rows_of_the_day(materialized, entity):
    paths, _, _ = materialized
    offline = offline_rows(paths, TABLE_OF[entity], DAY2).to_pydict()
    key = KEY_OF[entity]
    online = online_features(paths, entity, offline[key])
    assert online[key] == offline[key]
    features = set(online) - {key}
    assert len(features) >= 7
    for name in features:
        bad = [
            (k, a, b)
            for k, a, b in zip(offline[key], offline[name], online[name], strict=True)
            if not same_value(a, b)
        ]
        assert bad == [], name


def test_unknown_entities_read_as_none(materialized):
    paths, _, _ = materialized
    got = online_features(
        paths, "user", [1, 424242], ["clicks_7d", "user_daily_features:history_item_ids"]
    )
    assert got["user_id"] == [1, 424242]
    assert got["clicks_7d"][1] is None and got["history_item_ids"][1] is None
    assert got["clicks_7d"][0] is not None


def test_a_service_reads_its_share_of_a_view(materialized):
    paths, _, _ = materialized
    got = online_features(paths, "item", [1, 2], "retrieval_v1")
    assert set(got) == {
        "item_id",
        "category",
        "creator",
        "age_days",
        "impressions_7d",
        "clicks_7d",
        "engagements_7d",
        "engagements_28d",
    }
    with pytest.raises(ValueError, match="has no feature 'nope'"):
        online_features(paths, "item", [1], ["nope"])
    with pytest.raises(ValueError, match="unknown entity 'shop'"):
        online_features(paths, "shop", [1])


def test_skew_check_passes_on_a_fresh_materialization(materialized):
    paths, _, _ = materialized
    report = skew_check(paths, DAY2, sample=100, seed=3)
    assert report.passed, report.markdown()
    assert report.checked == {
        "user_daily_features": len(USERS),
        "item_daily_features": len(ITEMS) + 1,
        "cohort_daily_features": 8,
    }
    sampled = skew_check(paths, DAY2, sample=5, seed=3)
    assert sampled.passed and set(sampled.checked.values()) == {5}


def test_skew_check_fails_against_a_day_the_store_no_longer_serves(materialized):
    paths, _, _ = materialized
    report = skew_check(paths, DAY1, sample=3, seed=0)
    assert not report.passed
    stale_ts = [m for m in report.mismatches if m.feature == "event_timestamp"]
    assert len(stale_ts) == 9  # 3 entities x 3 views, each served with DAY2's event time
    assert {m.offline for m in stale_ts} == {int(end_of_day(DAY1).timestamp())}
    assert {tuple(m.online) for m in stale_ts} == {(int(end_of_day(DAY2).timestamp()),)}


def test_skew_check_fails_when_the_online_store_is_tampered_with(lake_copy):
    paths = lake_copy
    materialize_day(paths, DAY1)
    assert skew_check(paths, DAY1, sample=100).passed
    truth = offline_rows(paths, "user_features", DAY1).to_pydict()
    clicks = dict(zip(truth["user_id"], truth["clicks_7d"], strict=True))
    set_online_value(paths, "user_daily_features", "user_id", 3, "clicks_7d", clicks[3] + 1)
    with sqlite3.connect(cfg.sqlite_path(paths)) as conn:  # an item vanishes from the store
        conn.execute(
            "DELETE FROM recassets_item_daily_features WHERE entity_key = ?",
            (sqlite_key("item_id", 5),),
        )

    report = skew_check(paths, DAY1, sample=100)
    assert not report.passed
    assert report.mismatches[0] == Mismatch(
        "user_daily_features", 3, "clicks_7d", clicks[3], clicks[3] + 1
    )
    assert report.mismatched_entities() == {"user_daily_features": 1, "item_daily_features": 1}
    item = [m for m in report.mismatches if m.view == "item_daily_features"]
    assert {m.key for m in item} == {5} and all(m.online in (None, [0]) for m in item)
    from recassets.featurestore import repo

    assert (
        len(item) == len(repo.item_daily_features.features) + 1
    )  # every feature, and the event time
    assert "| user_daily_features | 3 | clicks_7d |" in report.markdown()


def test_an_older_day_never_rolls_the_online_store_back(lake_copy):
    paths = lake_copy
    newer = materialize_day(paths, DAY2)
    older = materialize_day(paths, DAY1)
    assert (older.wrote_online, older.served_day, served_day(paths)) == (False, DAY2, DAY2)
    assert Path(older.snapshots["user_features"]).is_file()  # history still goes offline
    assert skew_check(paths, DAY2, sample=100).passed
    assert json.loads(cfg.marker_path(paths).read_text())["generation"] == 1
    assert newer.counts == older.counts | {"item_daily_features": len(ITEMS) + 1}


def test_apply_is_idempotent_and_deletes_what_the_repository_dropped(lake_copy):
    from feast import FeatureService

    from recassets.featurestore import repo

    paths = lake_copy
    assert apply(paths).deleted == []
    store = get_store(paths)
    store.apply([FeatureService(name="ranking_v0", features=[repo.item_daily_features])])
    assert {s.name for s in store.list_feature_services()} == {
        "retrieval_v1",
        "ranking_v1",
        "ranking_v0",
    }
    result = apply(paths)
    assert result.deleted == ["FeatureService:ranking_v0"]
    assert {s.name for s in store.list_feature_services()} == {"retrieval_v1", "ranking_v1"}
    assert apply(paths).deleted == []
    catalog = json.loads(cfg.catalog_path(paths).read_text())
    assert list(catalog["views"]["user_daily_features"]["features"])[:2] == [
        "impressions_1d",
        "clicks_1d",
    ]


def test_snapshot_only_days_leave_the_online_store_alone(lake_copy):
    """A backfill range loads only its last day online; earlier days only export snapshots."""
    paths = lake_copy
    first = materialize_day(paths, DAY1, online=False)
    assert (first.wrote_online, first.served_day, served_day(paths)) == (False, None, None)
    assert Path(first.snapshots["user_features"]).is_file()
    last = materialize_day(paths, DAY2, online=True)
    assert (last.wrote_online, served_day(paths)) == (True, DAY2)
    assert skew_check(paths, DAY2, sample=100).passed


def test_a_snapshot_of_an_older_schema_is_brought_to_the_current_one(lake_copy):
    """DuckDB reads the snapshot glob with the first file's schema: one day exported before a
    column existed (an older release) failed every later materialization, naming no file. It
    is exported again from the lake, or moved aside when the lake no longer holds its day."""
    import pyarrow.parquet as pq

    paths = lake_copy
    old = export_offline_snapshot(paths, "user_features", DAY1)
    pq.write_table(pq.read_table(old.path).drop_columns(["seen_item_ids"]), old.path)
    orphan = Path(old.path).with_name("dt=2025-12-01.parquet")  # a day the lake lacks
    pq.write_table(pq.read_table(old.path), orphan)
    summary = materialize_day(paths, DAY2)
    assert summary.wrote_online and skew_check(paths, DAY2, sample=100).passed
    assert "seen_item_ids" in pq.read_schema(old.path).names  # exported again
    assert not orphan.exists() and (orphan.parent / "stale" / orphan.name).is_file()


def test_a_materialization_that_fails_half_way_is_said_until_one_ends(lake_copy, monkeypatch):
    """Feast writes a day view by view, in place: a run that failed half-way left the users
    of the new day over the items of the last, and every reader said healthy. The marker now
    says a day is being written before its rows are; readers keep what they hold and say why."""
    from feast import FeatureStore

    from recassets.featurestore import OnlineFeatureReader

    paths = lake_copy
    materialize_day(paths, DAY1)
    reader = OnlineFeatureReader(paths, check_interval_s=0)
    assert (reader.day, reader.unfinished, reader.marker_error) == (DAY1, None, None)

    def half_way(self, *args, **kwargs):
        raise ConnectionError("the online store went away half-way")

    monkeypatch.setattr(FeatureStore, "materialize", half_way)
    with pytest.raises(ConnectionError):
        materialize_day(paths, DAY2)
    marker = json.loads(cfg.marker_path(paths).read_text())
    assert (marker["day"], marker["writing"]) == (DAY1, DAY2)
    assert served_day(paths) == DAY1
    reader.maybe_refresh()
    assert reader.day == DAY1 and f"the materialization of {DAY2} began" in reader.marker_error
    fresh = OnlineFeatureReader(paths)  # a pod starting now loads what is there, and says so
    assert fresh.day == DAY1 and "has not ended" in fresh.unfinished
    monkeypatch.undo()
    assert materialize_day(paths, DAY2).wrote_online
    assert "writing" not in json.loads(cfg.marker_path(paths).read_text())
    reader.maybe_refresh()
    assert (reader.day, reader.unfinished, reader.marker_error) == (DAY2, None, None)


def test_a_store_emptied_under_its_marker_is_said_at_the_first_load_too(lake_copy):
    """A pod starting against a store restarted empty (or flushed) under a marker that names a
    day served an empty catalog and said ready; a reader that held items already said so."""
    from recassets.featurestore import OnlineFeatureReader

    paths = lake_copy
    materialize_day(paths, DAY1)
    assert OnlineFeatureReader(paths).day == DAY1
    with sqlite3.connect(cfg.sqlite_path(paths)) as conn:
        conn.execute("DELETE FROM recassets_item_daily_features")
    fresh = OnlineFeatureReader(paths)
    assert fresh.day is None and f"holds no item of {DAY1}" in fresh.marker_error
