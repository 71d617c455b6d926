"""What the lineage says when retention or a reset took away what it reads: a Delta log whose
early commits were cleaned up, and a Dagster instance lost or reset (probe, 2026-12-06: it
said "none in the Delta log" of a removed commit, and "no Dagster instance has no record")."""

from __future__ import annotations

import os

import pyarrow as pa
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
