"""export_offline_snapshot: the Delta partition of the current table version, flattened for
Feast, with microsecond UTC timestamps. Expected rows are built here from the factories'
dicts, independently of the code under test."""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from recassets.featurestore import export_offline_snapshot, flatten, same_value
from recassets.featurestore.config import snapshot_path
from recassets.featurestore.snapshot import export_offline_snapshots
from tests.unit.featurestore.conftest import DAY1, DAY2, ITEMS, USERS
from tests.unit.featurestore.factories import day_rows, item_row, user_row, write_day

END_OF_DAY1 = dt.datetime(2026, 1, 1, 23, 59, 59, 999999, tzinfo=dt.UTC)


def expected_user(row: dict) -> dict:
    out = {k: v for k, v in row.items() if k not in ("last_engagements", "top_categories", "dt")}
    seq = row["last_engagements"]
    out["last_engagement_item_ids"] = [e["item_id"] for e in seq]
    out["last_engagement_types"] = [e["event_type"] for e in seq]
    out["last_engagement_ts"] = [math.floor(e["ts"].timestamp()) for e in seq]
    out["last_engagement_values"] = [math.nan if e["value"] is None else e["value"] for e in seq]
    out["top_category_names"] = [c["category"] or "unknown" for c in row["top_categories"]]
    out["top_category_weights"] = [c["weight"] for c in row["top_categories"]]
    out["event_timestamp"] = dt.datetime.combine(row["dt"], dt.time.max, tzinfo=dt.UTC)
    return out


def expected_item(row: dict) -> dict:
    out = {k: v for k, v in row.items() if k != "dt"}
    out["embedding"] = [float(np.float32(x)) for x in row["embedding"]]  # stored as float
    out["event_timestamp"] = dt.datetime.combine(row["dt"], dt.time.max, tzinfo=dt.UTC)
    return out


def assert_rows_equal(actual: list[dict], expected: list[dict]) -> None:
    assert [sorted(r) for r in actual] == [sorted(r) for r in expected]
    for a, e in zip(actual, expected, strict=True):
        bad = {k: (a[k], e[k]) for k in e if not same_value(a[k], e[k])}
        assert bad == {}, a


def test_user_snapshot_is_the_partition_flattened(feature_lake):
    snap = export_offline_snapshot(feature_lake, "user_features", DAY1)
    assert snap.path == str(snapshot_path(feature_lake, "user_features", DAY1))
    assert snap.path.endswith(f"artifacts/feast/offline/user_features/dt={DAY1}.parquet")
    assert (snap.rows, snap.day) == (len(USERS), DAY1)
    rows = pq.read_table(snap.path).to_pylist()
    assert_rows_equal(rows, [expected_user(user_row(u, DAY1)) for u in USERS])
    # the awkward cases are really there
    by_id = {r["user_id"]: r for r in rows}
    assert by_id[4]["last_engagement_item_ids"] == [] and by_id[4]["top_category_names"] == []
    assert by_id[5]["country"] is None
    assert math.isnan(by_id[1]["last_engagement_values"][0])  # a like carries no value
    assert by_id[7]["top_category_names"][0] == "unknown"


def test_item_snapshot_holds_only_the_current_delta_version(feature_lake):
    # DAY2 was written twice (item 999, then item 21 instead): the Delta folder still holds
    # the first write's files, tombstoned; a plain Parquet read would return both.
    folder = f"{feature_lake.table('item_features')}/dt={DAY2}"
    assert len(pq.ParquetDataset(folder).read()) == 2 * (len(ITEMS) + 1)
    snap = export_offline_snapshot(feature_lake, "item_features", DAY2)
    rows = pq.read_table(snap.path).to_pylist()
    assert_rows_equal(rows, [expected_item(item_row(i, DAY2)) for i in [*ITEMS, 21]])
    assert snap.delta_version == 2


def test_cohort_snapshot_has_one_composite_key(feature_lake):
    snap = export_offline_snapshot(feature_lake, "cohort_features", DAY1)
    table = pq.read_table(snap.path)
    expected = sorted(
        day_rows(DAY1, [], [])["cohort_features"],
        key=lambda r: (r["country"], r["age_bucket"], r["category"]),
    )
    assert table.column("cohort_id").to_pylist() == [
        f"{r['country']}|{r['age_bucket']}|{r['category']}" for r in expected
    ]
    assert table.column("clicks_28d").to_pylist() == [r["clicks_28d"] for r in expected]


def test_snapshot_timestamps_are_utc_microseconds(feature_lake):
    snap = export_offline_snapshot(feature_lake, "user_features", DAY1)
    parquet = pq.ParquetFile(snap.path)
    column = parquet.schema.column(parquet.schema_arrow.get_field_index("event_timestamp"))
    logical = column.logical_type.to_json()
    assert '"timeUnit": "microseconds"' in logical and '"isAdjustedToUTC": true' in logical
    assert parquet.schema_arrow.field("event_timestamp").type == pa.timestamp("us", tz="UTC")
    assert set(pq.read_table(snap.path).column("event_timestamp").to_pylist()) == {END_OF_DAY1}
    # struct timestamps inside sequences: whole epoch seconds
    assert parquet.schema_arrow.field("last_engagement_ts").type == pa.list_(pa.int64())


def test_re_export_replaces_the_file_with_the_same_rows(feature_lake):
    first = pq.read_table(export_offline_snapshot(feature_lake, "item_features", DAY1).path)
    again = export_offline_snapshot(feature_lake, "item_features", DAY1)
    assert pq.read_table(again.path).equals(first)
    folder = snapshot_path(feature_lake, "item_features", DAY1).parent
    assert [
        p.name for p in folder.iterdir() if not p.name.startswith("dt=")
    ] == []  # no temp file left


def test_a_null_id_inside_a_sequence_fails_naming_the_user():
    engagement = pa.struct(
        [
            ("item_id", pa.int64()),
            ("event_type", pa.string()),
            ("ts", pa.timestamp("us", tz="UTC")),
            ("value", pa.float64()),
        ]
    )
    ts = dt.datetime(2026, 1, 1, 9, tzinfo=dt.UTC)
    rows = pa.table(
        {
            "user_id": pa.array([1, 2], pa.int64()),
            "last_engagements": pa.array(
                [
                    [{"item_id": 5, "event_type": "click", "ts": ts, "value": None}],
                    [{"item_id": None, "event_type": "click", "ts": ts, "value": None}],
                ],
                pa.list_(engagement),
            ),  # fmt: skip
            "dt": pa.array([dt.date(2026, 1, 1)] * 2, pa.date32()),
        }
    )
    with pytest.raises(
        ValueError,
        match=r"user_features.last_engagements: null item_id inside the list of user_id=2",
    ):
        flatten("user_features", rows, DAY1)


def test_a_day_without_cohorts_exports_an_empty_snapshot(lake_copy, spark):
    """After a quiet month no cohort has events in its window: an empty cohort day is a true
    fact (an empty snapshot with the view's columns), an empty user day is a lost write."""
    day = "2026-01-03"
    rows = day_rows(day, USERS, ITEMS)
    write_day(
        spark, lake_copy, day, {"cohort_features": [], "user_features": rows["user_features"]}
    )
    snap = export_offline_snapshot(lake_copy, "cohort_features", day)
    empty = pq.read_table(snap.path)
    assert snap.rows == 0 and empty.num_rows == 0
    full = pq.read_table(export_offline_snapshot(lake_copy, "cohort_features", DAY1).path)
    assert empty.schema.remove_metadata() == full.schema.remove_metadata()
    write_day(spark, lake_copy, "2026-01-04", {"user_features": [], "cohort_features": []})
    with pytest.raises(ValueError, match="user_features has no rows for dt=2026-01-04"):
        export_offline_snapshot(lake_copy, "user_features", "2026-01-04")


def test_a_missing_partition_or_table_fails_loudly(feature_lake, paths):
    with pytest.raises(ValueError, match="user_features has no rows for dt=2026-01-09"):
        export_offline_snapshot(feature_lake, "user_features", "2026-01-09")
    with pytest.raises(FileNotFoundError, match="no Delta table item_features"):
        export_offline_snapshot(paths, "item_features", DAY1)


@pytest.mark.parametrize("table", ["user_features", "item_features", "cohort_features"])
def test_a_range_export_writes_what_day_by_day_writes(feature_lake, table):
    """One read of the table split by day gives each day exactly its own partition (DAY2's
    replaced rows stay out): the same file, byte for byte, as exporting the day alone."""
    single = {}
    for day in (DAY1, DAY2):
        snap = export_offline_snapshot(feature_lake, table, day)
        single[day] = (Path(snap.path).read_bytes(), snap.rows)
    both = export_offline_snapshots(feature_lake, table, [DAY2, DAY1])
    assert sorted(both) == [DAY1, DAY2]
    for day, snap in both.items():
        assert snap.day == day
        assert (Path(snap.path).read_bytes(), snap.rows) == single[day]


def test_a_range_with_an_empty_day_fails_naming_that_day(feature_lake):
    with pytest.raises(ValueError, match="user_features has no rows for dt=2026-01-05"):
        export_offline_snapshots(feature_lake, "user_features", [DAY1, "2026-01-05", DAY2])
