"""A Delta commit that recassets did not make (an overwrite with a predicate, an UPDATE, a
DELETE, a RESTORE) and that changes an ingested partition after the commit recassets wrote it
in is a ``--verify`` failure naming its version and operation; OPTIMIZE, VACUUM, a later
recassets ingestion of the day and ingestion's own all-or-none undo are not. Each with the
case that must fail (``recassets.lineage.changes``)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, write_deltalake

from recassets.lineage import graph as G
from recassets.lineage.verify import failures, verify
from recassets.paths import Paths

from . import home as H


@pytest.fixture
def home(paths: Paths) -> Paths:
    return H.build(paths)


def _bad(home: Paths, day: str, table: str = "raw_events") -> list:
    return failures(verify(G.trace(home, G.parse_target(table, day))))


def _rows(day: str, n: int = 1) -> pa.Table:
    return pa.table({"n": list(range(n)), "dt": [dt.date.fromisoformat(day)] * n})


def _ours(home: Paths, day: str, run: str, table: str = "raw_events") -> None:
    """A commit recassets' ingestion makes of ``day`` (its userMetadata names the day)."""
    meta = {"run_id": run, "dataset": "events", "days": [day], "code_version": "t"}
    write_deltalake(home.table(table), _rows(day), mode="overwrite",
                    predicate=f"dt = '{day}'",
                    commit_properties=CommitProperties(custom_metadata={
                        "userMetadata": json.dumps(meta)}))  # fmt: skip


def test_a_partition_overwritten_outside_recassets_fails_naming_the_commit(home: Paths):
    assert _bad(home, H.DAYS[1]) == []
    write_deltalake(home.table("raw_events"), _rows(H.DAYS[1], 5), mode="overwrite",
                    predicate=f"dt = '{H.DAYS[1]}'")  # fmt: skip
    bad = _bad(home, H.DAYS[1])
    assert [Path(v.path).name for v in bad] == ["00000000000000000001.json"]
    assert "changed outside recassets at version 1 (WRITE" in bad[0].what
    assert bad[0].status == "changed"
    assert _bad(home, H.DAYS[0]) == []  # the other day was not touched


@pytest.mark.parametrize("change", ["update", "delete"])
def test_an_update_or_a_delete_outside_recassets_fails(home: Paths, change: str):
    t = DeltaTable(home.table("raw_events"))
    if change == "update":
        t.update(updates={"n": "7"}, predicate=f"dt = '{H.DAYS[0]}'")
    else:
        t.delete(f"dt = '{H.DAYS[0]}'")
    bad = _bad(home, H.DAYS[0])
    assert bad and f"at version 1 ({change.upper()}" in bad[0].what
    assert _bad(home, H.DAYS[1]) == []


def test_a_bento_traced_at_its_recorded_versions_is_not_failed_by_a_later_change(home: Paths):
    """What a model read at version 0 is still what its manifest vouches for."""
    write_deltalake(home.table("raw_events"), _rows(H.DAYS[1], 5), mode="overwrite",
                    predicate=f"dt = '{H.DAYS[1]}'")  # fmt: skip
    bad = failures(verify(G.trace(home, G.parse_target("latest"))))
    assert not [v for v in bad if "outside recassets" in v.what]


def test_compaction_and_vacuum_change_no_data(home: Paths):
    path = home.table("raw_events")
    write_deltalake(path, _rows(H.DAYS[1]), mode="append")  # a second file: foreign, so
    assert _bad(home, H.DAYS[1])  # the day fails (the case that must fail) ...
    assert _bad(home, H.DAYS[0]) == []
    t = DeltaTable(path)
    t.optimize.z_order(["n"])  # rewrites every partition's files, dataChange false
    t.vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    ops = [h["operation"] for h in DeltaTable(path).history()]
    assert "OPTIMIZE" in ops and "VACUUM END" in ops
    assert _bad(home, H.DAYS[0]) == []  # ... and neither made the untouched day fail
    assert len(_bad(home, H.DAYS[1])) == 1  # nor added a failure


def test_a_later_recassets_ingestion_of_the_day_is_the_writer_again(home: Paths):
    write_deltalake(home.table("raw_events"), _rows(H.DAYS[1], 5), mode="overwrite",
                    predicate=f"dt = '{H.DAYS[1]}'")  # fmt: skip
    assert _bad(home, H.DAYS[1])
    _ours(home, H.DAYS[1], "rerun")  # its manifest not written here: stale, said
    tree = G.trace(home, G.parse_target("raw_events", H.DAYS[1]))
    results = verify(tree)
    assert failures(results) == []
    assert [v.status for v in results if "manifest" in v.what] == ["stale"]
    assert not [v for v in results if "outside recassets" in v.what]


def test_ingestions_own_undo_is_no_change_and_a_foreign_restore_is(home: Paths):
    path = home.table("raw_events")
    _ours(home, H.DAYS[1], "failed-run")  # version 1, undone by a RESTORE to 0 (writes.py)
    DeltaTable(path).restore(0)  # version 2
    assert _bad(home, H.DAYS[1]) == []
    _ours(home, H.DAYS[1], "run-3")  # version 3, a complete run ...
    _ours(home, H.DAYS[0], "run-4")  # version 4, another run
    DeltaTable(path).restore(2)  # ... undone by someone else, with a later run's commit
    bad = _bad(home, H.DAYS[1])
    assert bad and "at version 5 (RESTORE to version 2" in bad[0].what


def test_a_lake_at_a_url_says_the_check_did_not_run():
    """The commits' actions are read from local log files: on an s3a:// lake the check cannot
    run, and the node says so instead of passing in silence; a local lake gets no such line."""
    from recassets.lineage.changes import outside
    from recassets.lineage.nodes import Node
    from recassets.lineage.records import DeltaLog

    def unrecorded(table_path: str) -> list[str]:
        node = Node("raw_events@1 dt=2026-01-02", "partition", "raw_events dt=2026-01-02")
        assert outside(DeltaLog(), node, "raw_events", table_path, "2026-01-02", 1) == []
        return node.unrecorded

    (said,) = unrecorded("s3a://bucket/lake/raw_events")
    assert "not checked on a lake at a URL" in said
    assert unrecorded("/nonexistent/lake/raw_events") == []
