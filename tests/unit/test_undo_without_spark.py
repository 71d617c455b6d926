"""``recassets.undo``: a table whose restore failed because Spark went with it is said at its
version all the same, read through delta-rs.

The CLI's first SIGTERM used to reach the Spark JVM too (``cli_args.stopping_with``): the
restore failed, and so did the version read that says where the table stays (Delta's history,
through Spark, for a table on an object store): the operator read "at an unknown Delta
version" where the log said it to any reader (review, 2026-12-07). Spark's failure is stood
in for by ``latest_version`` raising what py4j raises once the JVM is gone."""

from __future__ import annotations

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from recassets import undo


def _gone(*_args):
    raise ConnectionRefusedError(111, "Connection refused")  # py4j, the JVM gone


@pytest.fixture
def table(tmp_path) -> str:
    """A Delta table at version 2 (created, then two appends)."""
    path = str(tmp_path / "raw_events")
    for n in range(3):
        write_deltalake(path, pa.table({"n": [n]}), mode="append")
    return path


def test_a_table_left_behind_is_said_at_its_version_when_spark_is_gone(table, monkeypatch):
    monkeypatch.setattr(undo, "latest_version", _gone)
    left = undo._table_left(None, table, 1)  # type: ignore[arg-type] - Spark unused: gone
    assert left is not None and left.now == "at Delta version 2"  # before: "an unknown"
    assert undo._table_left(None, table, 2) is None  # type: ignore[arg-type] - at it: not left


def test_a_table_no_reader_can_read_is_said_at_an_unknown_version(tmp_path, monkeypatch):
    monkeypatch.setattr(undo, "latest_version", _gone)
    left = undo._table_left(None, str(tmp_path / "nothing"), 1)  # type: ignore[arg-type]
    assert left is not None and left.now == "at an unknown Delta version"
