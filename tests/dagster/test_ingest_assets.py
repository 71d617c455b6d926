"""raw_events, users and items materialized by Dagster on a temporary home, with real Spark
and Delta: a two-day single-run backfill with a landing file full of bad rows, then a re-run."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, materialize

from assets.ingest import items, raw_events, users
from assets.partitions import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from recassets.ingest.validation import NOT_AN_OBJECT
from recassets.landing import file_digest
from recassets.synthetic import SyntheticConfig, generate
from resources import LakeResource, SparkResource

DAY1, DAY2 = "2026-01-01", "2026-01-02"

BAD_LINES = [
    '{"event_id": "bad-1", "ts": "2026-01-01T10:00:00Z", "user_id": "abc", "item_id": 1, "event_type": "click"}',
    "this is not json",
    '{"event_id": "bad-3", "ts": "2026-01-01T10:00:00Z", "user_id": 1, "item_id": 1, "event_type": "poke"}',
    '{"event_id": "bad-4", "ts": "2026-01-02T10:00:00Z", "user_id": 1, "item_id": 1, "event_type": "click"}',
    '{"ts": "2026-01-01T10:00:00Z", "user_id": 1, "item_id": 1, "event_type": "click"}',
    '{"event_id": "e20260101-00000000", "ts": "2026-01-01T10:00:00Z", "user_id": 1, "item_id": 1, "event_type": "click"}',
    '{"event_id": "bad-7", "ts": "2026-01-01T10:00:00Z", "user_id": 1, "item_id": 1, "event_type": "watch"}',
]
EXPECTED_REASONS = [
    "field user_id: expected bigint, got abc",
    NOT_AN_OBJECT,
    "field event_type: unknown value poke (allowed: impression, click, like, share, watch, rating)",
    "ts 2026-01-02T10:00:00.000000Z outside partition 2026-01-01",
    "missing field event_id",
    "duplicate event_id (first at {first}:1)",
    "missing field value (required for watch)",
]


def _run(paths, tags):
    return materialize(
        [raw_events, users, items],
        resources={"spark": SparkResource(), "lake": LakeResource(home=paths.home)},
        instance=DagsterInstance.ephemeral(),
        tags=tags,
    )


@pytest.fixture(scope="module")
def landed(make_home):
    paths = make_home("ingest_assets")
    summary = generate(
        paths, SyntheticConfig(days=2, events_per_day=3000, initial_users=200, initial_items=100)
    )
    bad = Path(paths.landing_dir("events", DAY1)) / "zz-bad.jsonl"
    bad.write_text("\n".join(BAD_LINES) + "\n")
    return paths, summary


@pytest.fixture(scope="module")
def first_run(landed, spark):
    paths, _ = landed
    tags = {PARTITION_RANGE_START_TAG: DAY1, PARTITION_RANGE_END_TAG: DAY2}
    result = _run(paths, tags)
    assert result.success
    return result


def _table(spark, path):
    return spark.read.format("delta").load(path)


def test_every_good_row_lands_and_every_bad_row_is_quarantined_with_its_reason(
    landed, first_run, spark
):
    paths, summary = landed
    events = _table(spark, paths.table("raw_events"))
    assert events.count() == summary.events  # every generated event is good
    assert sorted(r.dt.isoformat() for r in events.select("dt").distinct().collect()) == [
        DAY1,
        DAY2,
    ]

    q = (
        _table(spark, paths.table("quarantine"))
        .where("dataset = 'events'")
        .orderBy("line")
        .collect()
    )
    bad_file = str(Path(paths.landing_dir("events", DAY1)) / "zz-bad.jsonl")
    first = str(Path(paths.landing_dir("events", DAY1)) / "part-00000.jsonl")
    assert [r.source_file for r in q] == [bad_file] * len(BAD_LINES)
    assert [r.line for r in q] == list(range(1, len(BAD_LINES) + 1))
    assert [r.raw for r in q] == BAD_LINES
    assert [r.reason for r in q] == [r.format(first=first) for r in EXPECTED_REASONS]
    assert [r.field for r in q] == [
        "user_id",
        None,
        "event_type",
        "ts",
        "event_id",
        "event_id",
        "value",
    ]


def test_materialization_metadata_and_lineage(landed, first_run, spark):
    paths, summary = landed
    mats = {m.partition: m for m in first_run.asset_materializations_for_node("lake__raw_events")}
    assert set(mats) == {DAY1, DAY2}
    # Each day carries its own figures, not the range's totals.
    per_day = {
        r.dt.isoformat(): r["count"]
        for r in _table(spark, paths.table("raw_events")).groupBy("dt").count().collect()
    }
    assert {d: m.metadata["dagster/row_count"].value for d, m in mats.items()} == per_day
    assert sum(per_day.values()) == summary.events and min(per_day.values()) > 0
    assert {d: m.metadata["quarantined_rows"].value for d, m in mats.items()} == {
        DAY1: len(BAD_LINES),
        DAY2: 0,
    }
    assert "zz-bad.jsonl" in mats[DAY1].metadata["files"].value
    assert "zz-bad.jsonl" not in mats[DAY2].metadata["files"].value
    assert mats[DAY2].metadata["lineage_manifest"].value.endswith(f"dt={DAY2}.json")
    meta = mats[DAY1].metadata
    assert meta["delta_version"].value >= 1
    # the table's schema once a run, on its last day (the asset's latest materialization)
    assert "dagster/column_schema" not in meta
    assert [c.name for c in mats[DAY2].metadata["dagster/column_schema"].schema.columns][:3] == [
        "event_id",
        "ts",
        "user_id",
    ]
    assert "event_id" in meta["preview"].value

    manifest = json.loads(Path(paths.lineage, "raw_events", f"dt={DAY1}.json").read_text())
    assert manifest["delta_version"] == meta["delta_version"].value
    inputs = {Path(i["path"]).name: i for i in manifest["inputs"]}
    assert set(inputs) == {"part-00000.jsonl", "zz-bad.jsonl"}
    for i in inputs.values():
        assert (i["size"], i["sha256"]) == file_digest(i["path"])


def test_rerun_gives_the_same_table(landed, first_run, spark):
    paths, _ = landed
    before_events = sorted(map(tuple, _table(spark, paths.table("raw_events")).collect()))
    before_q = sorted(
        (r.source_file, r.line, r.reason)
        for r in _table(spark, paths.table("quarantine")).collect()
    )
    version = (
        first_run.asset_materializations_for_node("lake__raw_events")[0]
        .metadata["delta_version"]
        .value
    )
    again = _run(paths, {PARTITION_RANGE_START_TAG: DAY1, PARTITION_RANGE_END_TAG: DAY2})
    assert again.success
    assert sorted(map(tuple, _table(spark, paths.table("raw_events")).collect())) == before_events
    after_q = sorted(
        (r.source_file, r.line, r.reason)
        for r in _table(spark, paths.table("quarantine")).collect()
    )
    assert after_q == before_q
    new_version = (
        again.asset_materializations_for_node("lake__raw_events")[0].metadata["delta_version"].value
    )
    assert new_version == version + 1


def test_dimensions_hold_every_user_and_item(landed, first_run, spark):
    paths, summary = landed
    assert _table(spark, paths.table("users")).count() == summary.users
    assert _table(spark, paths.table("items")).count() == summary.items
    ids = [r.user_id for r in _table(spark, paths.table("users")).select("user_id").collect()]
    assert len(ids) == len(set(ids))


def test_a_day_without_landing_files_fails_naming_the_folder(landed, first_run, spark):
    paths, _ = landed
    missing = "2026-01-05"
    with pytest.raises(Exception, match=f"landing/events/dt={missing}"):
        materialize(
            [raw_events],
            resources={"spark": SparkResource(), "lake": LakeResource(home=paths.home)},
            instance=DagsterInstance.ephemeral(),
            partition_key=missing,
        )
    assert _table(spark, paths.table("raw_events")).where(f"dt = DATE'{missing}'").count() == 0


# --- a run launched by hand waits for files still being written (RECASSETS_LANDING_SETTLE_*) ---


def _late_event(i: int) -> str:
    return json.dumps({"event_id": f"late-{i}", "ts": f"{DAY2}T23:00:00Z", "user_id": 1,
                       "item_id": 1, "event_type": "click"})  # fmt: skip


def _write_in_place(path: Path, lines: int, every_s: float) -> threading.Thread:
    """A producer without the dot-name-and-rename convention: appends to ``path`` in place."""

    def write() -> None:
        with open(path, "a") as f:
            for i in range(lines):
                f.write(_late_event(i) + "\n")
                f.flush()
                time.sleep(every_s)

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    return thread


def _late_rows(spark, paths) -> int:
    table = _table(spark, paths.table("raw_events"))
    return table.where(f"dt = DATE'{DAY2}' AND event_id LIKE 'late-%'").count()


def test_a_manual_run_waits_for_a_file_written_in_place_and_reads_it_whole(
    landed, first_run, spark, monkeypatch
):
    paths, _ = landed
    monkeypatch.setenv("RECASSETS_LANDING_SETTLE_SECONDS", "2")
    late = Path(paths.landing_dir("events", DAY2)) / "zz-late.jsonl"
    try:
        writer = _write_in_place(late, lines=20, every_s=0.2)  # 4 s of writing
        result = materialize(
            [raw_events],
            resources={"spark": SparkResource(), "lake": LakeResource(home=paths.home)},
            instance=DagsterInstance.ephemeral(),
            partition_key=DAY2,
        )
        writer.join()
        assert result.success
        assert _late_rows(spark, paths) == 20  # whole, not the lines written when the run began
    finally:
        late.unlink(missing_ok=True)


def test_a_manual_run_gives_up_on_a_file_that_never_settles(landed, first_run, spark, monkeypatch):
    paths, _ = landed
    monkeypatch.setenv("RECASSETS_LANDING_SETTLE_SECONDS", "2")
    monkeypatch.setenv("RECASSETS_LANDING_SETTLE_TIMEOUT_SECONDS", "3")
    before = _table(spark, paths.table("raw_events")).where(f"dt = DATE'{DAY2}'").count()
    late = Path(paths.landing_dir("events", DAY2)) / "zz-late.jsonl"
    try:
        writer = _write_in_place(late, lines=40, every_s=0.2)  # 8 s of writing
        with pytest.raises(Exception, match=f"still changing after 3 s: .*events/dt={DAY2}"):
            materialize(
                [raw_events],
                resources={"spark": SparkResource(), "lake": LakeResource(home=paths.home)},
                instance=DagsterInstance.ephemeral(),
                partition_key=DAY2,
            )
        writer.join()
        # nothing was read: the partition is as it was
        assert (
            _table(spark, paths.table("raw_events")).where(f"dt = DATE'{DAY2}'").count() == before
        )
    finally:
        late.unlink(missing_ok=True)
