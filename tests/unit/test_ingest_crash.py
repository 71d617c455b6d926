"""Ingestion survives being killed: a run SIGKILLed (with its Spark JVM: the whole process group,
as a lost container or the OOM killer would) before, during and after its table write, then
run again, leaves exactly the tables and lineage of a clean run, nothing lost or duplicated.
And a write that commits other than the counted rows leaves no wrong row behind: both tables
are restored (``recassets.ingest.writes._all_or_none``)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from deltalake import DeltaTable

from recassets.ingest import ingest, pipeline, read_lineage
from recassets.ingest.writes import WrittenCountError
from recassets.paths import Paths

D1 = "2026-01-01"
ROOT = Path(__file__).resolve().parents[2]


def _ev(event_id: str, **more) -> str:
    row = {"event_id": event_id, "ts": "2026-01-01T01:00:00Z", "user_id": 1, "item_id": 2,
           "event_type": "click", **more}  # fmt: skip
    return json.dumps({k: v for k, v in row.items() if v is not None})


# The day as first landed, and a late file: good rows, a bad one, a duplicate in each.
FIRST = [*(_ev(f"e{i}") for i in range(20)), "not json", _ev("e3")]
LATE = [*(_ev(f"e{i}") for i in range(20, 30)), _ev("e30", ts=None), _ev("e5")]


def _land(paths: Paths, name: str, lines: list[str]) -> None:
    folder = Path(paths.landing_dir("events", D1))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("\n".join(lines) + "\n")


def _rows(path: str, home: str, drop: tuple[str, ...] = ()) -> list[dict]:
    rows = []
    for r in DeltaTable(path).to_pyarrow_table().to_pylist():
        # Paths without the home (source files, a duplicate's "first at"): homes differ.
        rows.append({k: v.replace(home, "~") if isinstance(v, str) else v
                     for k, v in r.items() if k not in drop})  # fmt: skip
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def _state(paths: Paths) -> dict:
    """What a reader sees: the table's and the quarantine's rows (less the run's id and time),
    and which files the lineage manifest says the partition grew from."""
    try:
        inputs = sorted(Path(f["path"]).name for f in read_lineage(paths, "raw_events", D1)["inputs"])  # fmt: skip
    except FileNotFoundError:
        inputs = None
    return {
        "table": _rows(paths.table("raw_events"), paths.home),
        "quarantine": _rows(
            paths.table("quarantine"), paths.home, drop=("run_id", "quarantined_at")
        ),
        "lineage": inputs,
    }


@pytest.fixture(scope="module")
def clean(spark, make_home) -> dict:
    """A clean run over both files."""
    paths = make_home("clean")
    _land(paths, "a.jsonl", FIRST)
    _land(paths, "b.jsonl", LATE)
    ingest(spark, paths, "events", [D1])
    state = _state(paths)
    assert len(state["table"]) == 30 and len(state["quarantine"]) == 4
    return state


# The child: ingest the day, and SIGKILL its process group (Python and the Spark JVM) at a point.
CHILD = """
import os, signal, sys, threading, time
from pathlib import Path
from recassets.ingest import pipeline
from recassets.spark import get_spark
from tests.conftest import TEST_SPARK_CONF, home_at

home, point, day = sys.argv[1:4]
paths = home_at(Path(home))

def die(*_args, **_kwargs):
    os.killpg(0, signal.SIGKILL)

def files(table):
    try:
        return {p for p in table.rglob("*") if ".parquet" in p.name}
    except OSError:  # a folder removed while listed
        return set()

def watch(table):  # dies as soon as the table write has put a data file down, before it commits
    known = files(table)
    while not files(table) - known:
        time.sleep(0.001)
    die()

real, calls = pipeline._replace_partitions, []
def replace(*args, **kwargs):
    calls.append(args[2])
    if len(calls) == 2 and point == "before_table_write":
        die()
    if len(calls) == 2 and point == "mid_table_write":
        threading.Thread(target=watch, args=(Path(args[2]),), daemon=True).start()
    return real(*args, **kwargs)

pipeline._replace_partitions = replace
if point == "before_lineage":
    pipeline.write_lineage = die
pipeline.ingest(get_spark(conf=TEST_SPARK_CONF), paths, "events", [day])
print("not killed")
"""


@pytest.mark.parametrize("point", ["before_table_write", "mid_table_write", "before_lineage"])
def test_a_killed_ingestion_run_again_equals_a_clean_run(spark, paths, clean, point):
    _land(paths, "a.jsonl", FIRST)
    ingest(spark, paths, "events", [D1])  # the day as it was before the late file
    before = _state(paths)
    _land(paths, "b.jsonl", LATE)
    child = subprocess.run(
        [sys.executable, "-c", CHILD, paths.home, point, D1],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        start_new_session=True,  # its own process group: the kill takes the JVM, not pytest
    )
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr[-3000:]
    crashed = _state(paths)
    assert crashed["lineage"] == ["a.jsonl"]  # the killed run wrote no manifest
    if point == "before_table_write":  # the quarantine committed, the table not yet
        assert crashed["table"] == before["table"]
        assert crashed["quarantine"] == clean["quarantine"]
    if point == "before_lineage":  # both committed
        assert (crashed["table"], crashed["quarantine"]) == (clean["table"], clean["quarantine"])
    ingest(spark, paths, "events", [D1])  # the retry
    assert _state(paths) == clean


def test_a_miscounted_write_restores_both_tables(spark, paths, monkeypatch):
    _land(paths, "a.jsonl", FIRST)
    ingest(spark, paths, "events", [D1])
    before = _state(paths)
    _land(paths, "b.jsonl", LATE)
    real = pipeline._with_later_rejected

    def one_good_row_too_many(counts, later):  # as if a file changed between reads
        moved = real(counts, later)
        moved[(D1, True)] += 1
        return moved

    monkeypatch.setattr(pipeline, "_with_later_rejected", one_good_row_too_many)
    with pytest.raises(WrittenCountError, match="raw_events: wrote 30 rows, expected 31"):
        ingest(spark, paths, "events", [D1])
    # The quarantine had committed the late file's rejects: restored too.
    assert _state(paths) == before
