"""``recassets.undo.all_or_none``: a block that raises (an interrupt too) leaves each Delta table
at its version before it and each file as it was; a block that does not raise keeps its
writes; a restore that fails is noted on the run's exception and does not stop the others."""

from __future__ import annotations

import pytest
from deltalake import DeltaTable

from recassets import undo
from recassets.lake import ensure_table, replace_partitions

DDL = "id BIGINT, dt DATE"


def _write(spark, path: str, ids: list[int]) -> None:
    ensure_table(spark, path, DDL, ["dt"])
    rows = spark.createDataFrame([(i,) for i in ids], "id BIGINT").selectExpr(
        "id", "DATE'2026-01-01' AS dt"
    )
    replace_partitions(rows, path, "dt = DATE'2026-01-01'", '{"run_id": "t"}')


def _ids(path: str) -> list[int]:
    return sorted(DeltaTable(path).to_pyarrow_table().column("id").to_pylist())


def test_an_interrupt_restores_the_tables_and_the_files(spark, paths, tmp_path):
    table = paths.table("t")
    _write(spark, table, [1, 2, 3])
    manifest, new = tmp_path / "m.json", tmp_path / "n.json"
    manifest.write_text("before")
    said: list[str] = []

    with pytest.raises(KeyboardInterrupt):
        with undo.all_or_none(spark, [table], [manifest, new], progress=said.append):
            _write(spark, table, [4])
            manifest.write_text("after")
            new.write_text("made by the run")
            raise KeyboardInterrupt

    assert _ids(table) == [1, 2, 3]
    assert manifest.read_text() == "before" and not new.exists()
    assert said == [f"undone: {table} restored to version 1, its state before the run"]


def test_a_table_the_block_created_goes_back_to_its_empty_creation(spark, paths):
    table = paths.table("created")
    with pytest.raises(RuntimeError):
        with undo.all_or_none(spark, [table]):
            _write(spark, table, [7])
            raise RuntimeError("failed after the commit")
    assert _ids(table) == []


def test_a_block_that_does_not_raise_keeps_its_writes(spark, paths, tmp_path):
    table, manifest = paths.table("kept"), tmp_path / "m.json"
    _write(spark, table, [1])
    with undo.all_or_none(spark, [table], [manifest]):
        _write(spark, table, [2])
        manifest.write_text("after")
    assert _ids(table) == [2] and manifest.read_text() == "after"


def test_a_failed_restore_is_noted_and_the_files_still_go_back(spark, paths, tmp_path, monkeypatch):
    table, manifest = paths.table("stuck"), tmp_path / "m.json"
    _write(spark, table, [1])
    manifest.write_text("before")

    def refused(*_args):
        raise OSError("disk full")

    monkeypatch.setattr(undo, "restore_version", refused)
    with pytest.raises(KeyboardInterrupt) as raised:
        with undo.all_or_none(spark, [table], [manifest]):
            _write(spark, table, [2])
            manifest.write_text("after")
            raise KeyboardInterrupt

    # the restore's own error, then what the run left behind (an interrupt keeps its type)
    assert raised.value.__notes__ == [
        f"recassets could not restore {table}: OSError: disk full",
        f"{undo.UNDO_INCOMPLETE}, which stay ahead of what Dagster recorded: {table} at Delta "
        f"version 2, it should be at version 1 (before this run); {undo.AGAIN}",
    ]
    assert manifest.read_text() == "before"
