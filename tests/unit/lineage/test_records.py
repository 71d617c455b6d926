"""What the lineage says when retention or a reset took away what it reads: a Delta log whose
early commits were cleaned up, and a Dagster instance lost or reset (probe, 2026-12-06: it
said "none in the Delta log" of a removed commit, and "no Dagster instance has no record")."""

from __future__ import annotations

import json
import os

import pyarrow as pa
import pytest
from deltalake import DeltaTable, write_deltalake

from recassets.lineage.records import DagsterRecords, DeltaLog

REMOVED = "its commits before version 2 were removed (log cleanup, delta.logRetentionDuration)"


def test_commits_removed_by_log_cleanup_are_said_as_removed_not_as_never_made(tmp_path):
    path = str(tmp_path / "t")
    for i in range(3):
        write_deltalake(path, pa.table({"x": [i]}), mode="append")
    whole = DeltaLog()
    assert whole.not_held(path, 1) == "none in the Delta log at or before version 1"
    assert whole.not_held(path, 5, exact=True) == "has no Delta version 5"

    DeltaTable(path).create_checkpoint()
    for v in (0, 1):
        os.remove(os.path.join(path, "_delta_log", f"{v:020d}.json"))
    cleaned = DeltaLog()
    assert [c.version for c in cleaned.history(path)] == [2]
    assert cleaned.not_held(path, 1) == f"not in the Delta log at or before version 1: {REMOVED}"
    assert cleaned.not_held(path, 0, exact=True) == f"version 0 is not in its Delta log: {REMOVED}"
    assert cleaned.not_held(path, 5, exact=True) == "has no Delta version 5"  # never made


def test_a_run_the_lineage_cannot_show_is_said_with_why(tmp_path):
    lost = DagsterRecords(str(tmp_path / "dagster"))
    storage = tmp_path / "dagster" / "history" / "runs.db"
    assert lost.no_run("84587cde", "built it") == (
        f"run 84587cde and what launched it: no Dagster run storage at {storage} to look it "
        "up (the instance lost or reset, or kept elsewhere: Postgres)"
    )
    assert lost.no_run(None, "built it").startswith("the run that built it: no Dagster run ")
    storage.parent.mkdir(parents=True)
    storage.touch()  # an instance there, which knows nothing of it
    kept = DagsterRecords(str(tmp_path / "dagster"))
    assert kept.no_run("84587cde", "built it") == (
        "run 84587cde and what launched it (the Dagster instance has no record of it: reset since?)"
    )
    assert kept.no_run(None, "built it") == (
        "the run that built it (no run id in its record, and no materialization of it in the "
        "instance)"
    )
    kept.close()


def test_a_record_edited_into_another_shape_is_named_with_its_field(tmp_path):
    """What the trace reads of each record is checked before it is used: a version written as
    a word ended the trace with "invalid literal for int()", naming no file."""
    from recassets.lineage.records import (
        EMBEDDINGS_SHAPE,
        FEATURE_STORE_SHAPE,
        RecordError,
        read_record,
    )

    path = tmp_path / "manifest.json"
    good = {"two_tower": "/h/models/two_tower/0001.pt", "features_day": "2026-01-02",
            "item_features_version": 3, "items": 10}  # fmt: skip
    path.write_text(json.dumps(good))
    assert read_record(path, EMBEDDINGS_SHAPE) == good
    path.write_text(json.dumps({**good, "item_features_version": "x"}))
    with pytest.raises(RecordError, match=r'item_features_version is "x", not int'):
        read_record(path, EMBEDDINGS_SHAPE)
    path.write_text(json.dumps({**good, "item_features_version": True}))  # a bool is no version
    with pytest.raises(RecordError, match="item_features_version is true, not int"):
        read_record(path, EMBEDDINGS_SHAPE)
    store = {"inputs": [{"table": "users", "day": "2026-01-02", "delta_version": 1}]}
    path.write_text(json.dumps(store))
    assert read_record(path, FEATURE_STORE_SHAPE) == store
    path.write_text(json.dumps({"inputs": [store["inputs"][0], "users@1"]}))
    with pytest.raises(RecordError, match=r"manifest\.json is not in the shape recassets writes: "
                       r"inputs\[1\] is str, not an object"):  # fmt: skip
        read_record(path, FEATURE_STORE_SHAPE)


def test_the_quarantine_beside_an_object_store_table_keeps_its_url():
    """The manifest check looks up the quarantine table beside the ingested one: on an
    ``s3a://`` lake ``Path(...).parent`` made ``s3a:/lakebkt/lake/quarantine`` (one slash), a
    URL no reader opens (review, 2026-12-07)."""
    from recassets.lineage.records import Commit, sibling_table

    looked: list[str] = []

    class Log(DeltaLog):
        def history(self, table_path):
            looked.append(table_path)
            return ()

    c = Commit(version=3, timestamp_ms=0, operation="WRITE", meta={"run_id": "r1"})
    assert Log()._run_problem("s3a://lakebkt/lake/raw_events", {"run_id": "r1"}, c) is None
    assert looked == ["s3a://lakebkt/lake/quarantine"]
    assert sibling_table("s3a://lakebkt/lake/raw_events/", "quarantine") == (
        "s3a://lakebkt/lake/quarantine"
    )
    assert sibling_table("/home/me/lake/raw_events", "quarantine") == "/home/me/lake/quarantine"
    assert sibling_table("file:///home/me/lake/users", "quarantine") == (
        "file:///home/me/lake/quarantine"
    )
