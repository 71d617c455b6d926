"""What a user types never becomes SQL or a path of its own: partition days are validated where
a Delta predicate or a path is built from them (``recassets.lake.partition_day``), and
``recassets lineage TABLE DAY`` takes its table from a fixed set and its day as a date."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from unittest import mock

import pytest

from recassets.ingest import ingest, lineage
from recassets.lake import days_predicate, partition_day
from recassets.lineage import command
from recassets.paths import Paths
from tests.conftest import run_cli

HOSTILE_DAYS = [
    "2026-01-01' OR '1'='1",
    "2026-01-01') OR (dt IS NOT NULL",
    "../../../etc/passwd",
    "2026-01-01/../../x",
    "2026-1-1",
    "20260101",
    "2026-02-30",
    "",
    " 2026-01-01",
    "2026-01-01\n",
]


def test_partition_day_passes_dates_only():
    assert partition_day("2026-01-31") == "2026-01-31"
    assert partition_day(dt.date(2026, 1, 31)) == "2026-01-31"
    for bad in [*HOSTILE_DAYS, dt.datetime(2026, 1, 1, 12), None, 20260101]:
        with pytest.raises(ValueError, match="partition day"):
            partition_day(bad)  # type: ignore[arg-type]


def test_days_predicate_validates_every_key():
    assert days_predicate(["2026-01-01", dt.date(2026, 1, 2)]) == (
        "dt IN (DATE'2026-01-01', DATE'2026-01-02')"
    )
    for bad in HOSTILE_DAYS:
        with pytest.raises(ValueError):
            days_predicate(["2026-01-01", bad])
    with pytest.raises(ValueError, match="no days"):
        days_predicate([])


def test_ingest_refuses_a_hostile_day_before_touching_spark_or_files(paths):
    spark = mock.MagicMock()
    for bad in HOSTILE_DAYS[:4]:
        with pytest.raises(ValueError, match="partition day"):
            ingest(spark, paths, "events", ["2026-01-01", bad])
    assert spark.mock_calls == []
    assert not Path(paths.lake).exists()


def test_lineage_paths_stay_in_the_lineage_folder(paths):
    assert lineage.lineage_path(paths, "users", "2026-01-02") == f"{paths.lineage}/users/dt=2026-01-02.json"  # fmt: skip
    for table, day in [("../../etc", "2026-01-01"), ("users", "../../../etc/passwd"),
                       ("quarantine", "2026-01-01"), ("users/..", "2026-01-01")]:  # fmt: skip
        with pytest.raises(ValueError):
            lineage.read_lineage(paths, table, day)


def _lineage_cli(home: Paths, monkeypatch, capsys, *argv: str) -> tuple[int | str | None, str]:
    code, out, err = run_cli(home, monkeypatch, capsys, "lineage", *argv)
    return code, out + err


def test_cli_lineage_takes_a_known_table_and_a_date(paths, monkeypatch, capsys):
    assert command.LINEAGE_TABLES == lineage.LINEAGE_TABLES
    manifest = Path(paths.lineage) / "users" / "dt=2026-01-02.json"
    manifest.parent.mkdir(parents=True)
    manifest.write_text(json.dumps({"table": "users", "partition": "2026-01-02"}))
    # A file outside the lineage folder a traversal would reach.
    (Path(paths.home) / "secret.json").write_text('{"secret": 1}')
    # --manifest prints the manifest as written; without it, the upstream tree (its own tests:
    # tests/unit/lineage/test_lineage.py), refused the same way.
    code, out = _lineage_cli(paths, monkeypatch, capsys, "users", "2026-01-02", "--manifest")
    assert code == 0 and json.loads(out) == {"table": "users", "partition": "2026-01-02"}
    for flag in ("--manifest", "--verify"):
        code, out = _lineage_cli(paths, monkeypatch, capsys, "..", "secret", flag)
        assert code == 2 and "recassets lineage: error:" in out
        code, out = _lineage_cli(paths, monkeypatch, capsys, "users", "../../secret", flag)
        assert code == 2 and "expected a date as YYYY-MM-DD" in out
    code, out = _lineage_cli(paths, monkeypatch, capsys, "users", "2026-01-03", "--manifest")
    assert code == "recassets lineage: no manifest for users on 2026-01-03"
