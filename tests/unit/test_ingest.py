"""Ingestion: landing files -> Delta tables and the quarantine, with real Spark and Delta.

Spark and Delta commits are slow next to the assertions, so one module fixture lands every case
at once and runs the ingestions in a fixed order (day 1, day 1 again, day 2's users, items
and events in one run, day 3); each test then reads the table version it is about, with delta-rs (an independent
reader).

Day 1 holds a hand-written events file per concern (``a.jsonl``: good rows and one rejected
line per rule; ``b.jsonl``: CRLF lines and cross-file duplicates; ``c.parquet``: a mistyped
column over two row groups) plus files that cannot be read at all. Day 2 is the synthetic
generator's output, which must land unchanged, plus a few bad users and items. Day 3 has blank
lines and JSON arrays, which send ingestion down its other parser (lines, then ``from_json``):
both must give the same answers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from deltalake import DeltaTable

from recassets.ingest import (
    IngestResult,
    LandingMissingError,
    ingest,
    list_landing_files,
    read_lineage,
)
from recassets.ingest import files as landing_files
from recassets.ingest.files import _LineScan
from recassets.ingest.validation import NOT_AN_OBJECT
from recassets.landing import file_digest, write_landing_file
from recassets.paths import Paths
from recassets.synthetic import SyntheticConfig, build_world, generate, generate_day

D1, D2, D3 = "2026-01-01", "2026-01-02", "2026-01-03"
UTC = dt.UTC
ALLOWED_TYPES = "impression, click, like, share, watch, rating"
SYNTHETIC = SyntheticConfig(
    start=dt.date.fromisoformat(D2),
    days=1,
    events_per_day=400,
    initial_users=30,
    initial_items=20,
    n_categories=3,
    n_creators=5,
    max_rows_per_file=150,  # three events files
)


def _line(**fields) -> str:
    return json.dumps(fields)


def _ev(event_id, ts="2026-01-01T01:00:00Z", user_id=1, item_id=1, event_type="click", **more):
    return _line(
        event_id=event_id, ts=ts, user_id=user_id, item_id=item_id, event_type=event_type, **more
    )


# a.jsonl, line n = A_LINES[n - 1].
A_LINES = [
    # 1-4: good rows. Numbers as strings parse; offsets convert to UTC; extra fields are
    # ignored.
    _ev(
        "e1",
        "2026-01-01T00:00:00Z",
        1,
        10,
        "impression",
        surface="home",
        request_id="r1",
        country="US",
        device="ios",
    ),
    _ev("e2", "2026-01-01T23:59:59.999999Z", "2", "20", "watch", value=12.5, surface="explore"),
    _ev("e11", "2026-01-01T04:00:00Z", 11, 110, "click"),
    _ev("e3", "2026-01-01T05:30:00+05:30", 3, 30, "rating", value="4", extra_field={"x": 1}),
    # 5-7: not JSON objects (no array here: day 3 has those).
    '{"event_id": "e90", "ts": ',
    '"just a string"',
    "42",
    # 8-9: a required field absent, or null.
    _line(event_id="e92", ts="2026-01-01T01:00:00Z", item_id=1, event_type="click"),
    _ev("e93", item_id=None),
    # 10-12: wrong types.
    _ev("e94", user_id="abc"),
    _ev("e95", ts="yesterday"),
    _ev("e96", value="high"),
    # 13: an event type outside the contract.
    _ev("e97", event_type="purchase"),
    # 14-15: watch / rating without their value.
    _ev("e98", event_type="watch"),
    _ev("e99", event_type="rating", value=None),
    # 16-17: timestamps on another UTC day (17 is 23:30 UTC the day before).
    _ev("e100", ts="2026-01-02T00:00:00Z"),
    _ev("e101", ts="2026-01-01T00:30:00+01:00"),
    # 18: two problems at once, both named, the first field reported.
    _ev("e102", user_id="abc", event_type="buy"),
    # 19: a later e1.
    _ev("e1", "2026-01-01T02:00:00Z", 5, 50, "click"),
    # 20: JSON null.
    "null",
    # 21-22: a rejected row does not claim its key: the later good e4 is kept.
    _ev("e4", user_id="zzz"),
    _ev("e4", "2026-01-01T03:00:00Z", 4, 40, "share"),
    # 23: e7, repeated on line 1 of b.jsonl: the file name orders before the line.
    _ev("e7", "2026-01-01T07:00:00Z", 7, 77, "like"),
    # 24: an empty object.
    "{}",
]
B_LINES = [  # b.jsonl, written with CRLF line ends
    _ev("e7", "2026-01-01T07:30:00Z", 8, 88, "like"),
    _ev("e5", "2026-01-01T05:00:00Z", 5, 55, "click", device="web"),
    _ev("e1", "2026-01-01T01:00:00Z", 6, 60, "click"),
]
# c.parquet: user_id is a string column; row 2 does not parse. Two row groups of two rows.
C_TABLE = pa.table(
    {
        "event_id": ["e8", "e9", "e1", "e10"],
        "ts": pa.array(
            [dt.datetime(2026, 1, 1, 12, 0, s, tzinfo=UTC) for s in range(4)],
            pa.timestamp("us", tz="UTC"),
        ),
        "user_id": ["7", "x", "8", "9"],
        "item_id": pa.array([70, 71, 72, 73], pa.int64()),
        "event_type": ["click", "click", "like", "watch"],
        "value": pa.array([None, None, None, 30.0], pa.float64()),
    }
)
# Files that cannot be read at all, and files that are not landing files.
UNREADABLE = {
    "d.parquet": b"PAR1 this is not a parquet file",
    "e.jsonl": b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03binary",
    "f.jsonl": '{"event_id": "café"}\n'.encode("latin-1"),
    "notes.txt": b"some notes\n",
    "README": b"no suffix\n",
}
IGNORED = {".a.jsonl.tmp": b"half a fi", "_SUCCESS": b""}
EMPTY = "g.jsonl"  # a landing file with no line at all

# Day 3, a.jsonl (LF, one line with CRLF): blank lines and arrays, so the text parser runs.
D3_LINES = [
    "",
    _ev("e1", "2026-01-03T00:00:00Z", 1, 10, "impression"),
    "   ",
    '[{"event_id": "e91"}]',
    "[]",
    _ev("e1", "2026-01-03T01:00:00Z", 2, 20, "click"),
    _ev("e31", "2026-01-03T02:00:00Z", "x", 30, "click"),
    "42",
    _ev("e2", "2026-01-03T03:00:00Z", 3, 30, "like") + "\r",
    "",
]


def _event(
    event_id,
    ts,
    user_id,
    item_id,
    event_type,
    value=None,
    surface=None,
    request_id=None,
    country=None,
    device=None,
    day=D1,
) -> dict:
    return {
        "event_id": event_id, "ts": ts, "user_id": user_id, "item_id": item_id,
        "event_type": event_type, "value": value, "surface": surface,
        "request_id": request_id, "country": country, "device": device,
        "dt": dt.date.fromisoformat(day),
    }  # fmt: skip


def _t(h, m=0, s=0, us=0) -> dt.datetime:
    return dt.datetime(2026, 1, 1, h, m, s, us, tzinfo=UTC)


EXPECTED_D1 = [
    _event("e1", _t(0), 1, 10, "impression", None, "home", "r1", "US", "ios"),
    _event("e10", _t(12, 0, 3), 9, 73, "watch", 30.0),
    _event("e11", _t(4), 11, 110, "click"),
    _event("e2", _t(23, 59, 59, 999_999), 2, 20, "watch", 12.5, "explore"),
    _event("e3", _t(0), 3, 30, "rating", 4.0),
    _event("e4", _t(3), 4, 40, "share"),
    _event("e5", _t(5), 5, 55, "click", device="web"),
    _event("e7", _t(7), 7, 77, "like"),
    _event("e8", _t(12), 7, 70, "click"),
]


# --- The landing and the runs ---------------------------------------------------------------


@dataclass
class Runs:
    paths: Paths
    day1: dict[str, Path]  # file name -> path, day 1 events
    first: IngestResult
    first_lineage: dict
    second: IngestResult
    day2: IngestResult
    users: IngestResult
    items: IngestResult
    day3: IngestResult

    def file(self, name: str) -> str:
        return str(self.day1[name])


def _land_day1(paths: Paths) -> dict[str, Path]:
    folder = Path(paths.landing_dir("events", D1))
    folder.mkdir(parents=True)
    (folder / "a.jsonl").write_text("\n".join(A_LINES) + "\n")
    (folder / "b.jsonl").write_bytes(("\r\n".join(B_LINES) + "\r\n").encode())
    pq.write_table(C_TABLE, folder / "c.parquet", row_group_size=2)
    for name, data in {**UNREADABLE, **IGNORED, EMPTY: b""}.items():
        (folder / name).write_bytes(data)
    return {p.name: p for p in folder.iterdir() if p.name not in IGNORED}


def _land_day3(paths: Paths) -> None:
    folder = Path(paths.landing_dir("events", D3))
    folder.mkdir(parents=True)
    (folder / "a.jsonl").write_text("\n".join(D3_LINES) + "\n")


# Day 2 extras beside the synthetic files: bad users (JSON Lines) and items (Parquet).
BAD_USERS = [
    _line(user_id=1000, first_seen="2026-01-02T10:00:00Z", country="FR", age_bucket="25-34"),
    _line(user_id=1001, first_seen="2026-01-02T10:00:00Z", age_bucket="17-19"),
    _line(user_id="1", first_seen="2026-01-02T11:00:00Z"),  # user 1 is on synthetic line 1
    _line(user_id=1002, first_seen="2026-01-03T00:00:00Z"),
]


def _land_day2(paths: Paths) -> None:
    generate(paths, SYNTHETIC)
    folder = Path(paths.landing_dir("users", D2))
    (folder / "zz-extra.jsonl").write_text("\n".join(BAD_USERS) + "\n")
    items = pa.table(
        {
            "item_id": [500, 501],
            "first_seen": [
                dt.datetime(2026, 1, 2, 9, tzinfo=UTC),
                dt.datetime(2026, 1, 1, 9, tzinfo=UTC),
            ],
            "category": ["jazz", None],
            "creator": ["c9", None],
            "title": ["Blue", "Early"],
        }
    )
    write_landing_file(
        paths, "items", dt.date.fromisoformat(D2), items, name="zz-extra", fmt="parquet"
    )


@pytest.fixture(scope="module")
def runs(spark, make_home) -> Runs:
    # A space in the home: Spark names files by URI (%20), the quarantine must not.
    paths = make_home("ingest home")
    day1 = _land_day1(paths)
    _land_day2(paths)
    _land_day3(paths)
    first = ingest(spark, paths, "events", [D1])
    first_lineage = read_lineage(paths, "raw_events", D1)
    second = ingest(spark, paths, "events", [dt.date.fromisoformat(D1)])
    # One run ingests all three datasets of a day, as a Dagster run does: they share the run id
    # and the quarantine table (and the events' empty quarantine write commits nothing).
    run = "one-run-for-day-2"
    users = ingest(spark, paths, "users", [D2], run_id=run)
    items = ingest(spark, paths, "items", [D2], run_id=run)
    day2 = ingest(spark, paths, "events", [D2], run_id=run)
    day3 = ingest(spark, paths, "events", [D3])
    return Runs(paths, day1, first, first_lineage, second, day2, users, items, day3)


def _read(path: str, version: int, **equal) -> list[dict]:
    """Rows of a Delta table version whose columns equal ``equal``, in a stable order."""
    rows = [
        r
        for r in DeltaTable(path, version=version).to_pyarrow_table().to_pylist()
        if all(r[k] == v for k, v in equal.items())
    ]
    return sorted(rows, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def _events(runs: Runs, result: IngestResult, day: str = D1) -> list[dict]:
    rows = _read(result.table_path, result.delta_version, dt=dt.date.fromisoformat(day))
    return sorted(rows, key=lambda r: r["event_id"])


def _quarantine(
    runs: Runs, result: IngestResult, dataset: str = "events", day: str = D1
) -> list[dict]:
    rows = _read(
        runs.paths.table("quarantine"), result.quarantine_version,
        dataset=dataset, dt=dt.date.fromisoformat(day),
    )  # fmt: skip
    return sorted(rows, key=lambda r: (r["source_file"], r["line"] or 0))


def _rejected(runs: Runs, name: str, line: int | None, day: str = D1) -> tuple:
    """(reason, field, raw) of the quarantine row for ``name``:``line`` of ``day``, as the day's
    first ingestion wrote it."""
    result = runs.first if day == D1 else runs.day3
    path = str(Path(runs.paths.landing_dir("events", day)) / name)
    hits = [
        (r["reason"], r["field"], r["raw"])
        for r in _quarantine(runs, result, day=day)
        if r["source_file"] == path and r["line"] == line
    ]
    assert len(hits) == 1, f"{name}:{line}: {hits}"
    return hits[0]


# --- One test per rejection rule --------------------------------------------------------------


def test_unparseable_line(runs):
    assert _rejected(runs, "a.jsonl", 5) == (
        NOT_AN_OBJECT,
        None,
        A_LINES[4],
    )


def test_json_values_that_are_not_objects(runs):
    unparseable = NOT_AN_OBJECT
    assert _rejected(runs, "a.jsonl", 6) == (unparseable, None, '"just a string"')
    assert _rejected(runs, "a.jsonl", 7) == (unparseable, None, "42")
    assert _rejected(runs, "a.jsonl", 20) == (unparseable, None, "null")
    # Arrays (day 3, the text parser): one rejected row each, whatever they hold.
    assert _rejected(runs, "a.jsonl", 4, D3) == (unparseable, None, '[{"event_id": "e91"}]')
    assert _rejected(runs, "a.jsonl", 5, D3) == (unparseable, None, "[]")
    assert _rejected(runs, "a.jsonl", 8, D3) == (unparseable, None, "42")


def test_missing_required_field_absent_or_null(runs):
    assert _rejected(runs, "a.jsonl", 8) == ("missing field user_id", "user_id", A_LINES[7])
    assert _rejected(runs, "a.jsonl", 9) == ("missing field item_id", "item_id", A_LINES[8])
    assert _rejected(runs, "a.jsonl", 24) == (
        "missing field event_id; missing field ts; missing field user_id; "
        "missing field item_id; missing field event_type",
        "event_id",
        "{}",
    )


def test_mistyped_field_names_field_and_raw_value(runs):
    assert _rejected(runs, "a.jsonl", 10) == (
        "field user_id: expected bigint, got abc",
        "user_id",
        A_LINES[9],
    )
    assert _rejected(runs, "a.jsonl", 11) == (
        "field ts: expected timestamp, got yesterday",
        "ts",
        A_LINES[10],
    )
    assert _rejected(runs, "a.jsonl", 12) == (
        "field value: expected double, got high",
        "value",
        A_LINES[11],
    )
    assert _rejected(runs, "a.jsonl", 21) == (
        "field user_id: expected bigint, got zzz",
        "user_id",
        A_LINES[20],
    )
    assert _rejected(runs, "a.jsonl", 7, D3) == (
        "field user_id: expected bigint, got x",
        "user_id",
        D3_LINES[6],
    )


def test_unknown_event_type(runs):
    assert _rejected(runs, "a.jsonl", 13) == (
        f"field event_type: unknown value purchase (allowed: {ALLOWED_TYPES})",
        "event_type",
        A_LINES[12],
    )


def test_several_problems_are_all_named_first_field_reported(runs):
    assert _rejected(runs, "a.jsonl", 18) == (
        "field user_id: expected bigint, got abc; "
        f"field event_type: unknown value buy (allowed: {ALLOWED_TYPES})",
        "user_id",
        A_LINES[17],
    )


def test_watch_and_rating_need_a_value(runs):
    assert _rejected(runs, "a.jsonl", 14) == (
        "missing field value (required for watch)",
        "value",
        A_LINES[13],
    )
    assert _rejected(runs, "a.jsonl", 15) == (
        "missing field value (required for rating)",
        "value",
        A_LINES[14],
    )


def test_timestamp_outside_the_partition_day(runs):
    assert _rejected(runs, "a.jsonl", 16) == (
        "ts 2026-01-02T00:00:00.000000Z outside partition 2026-01-01",
        "ts",
        A_LINES[15],
    )
    assert _rejected(runs, "a.jsonl", 17) == (
        "ts 2025-12-31T23:30:00.000000Z outside partition 2026-01-01",
        "ts",
        A_LINES[16],
    )


def test_duplicate_key_keeps_first_by_file_then_line_and_names_it(runs):
    a = runs.file("a.jsonl")
    assert _rejected(runs, "a.jsonl", 19) == (
        f"duplicate event_id (first at {a}:1)",
        "event_id",
        A_LINES[18],
    )
    # CRLF lines: raw has no trailing \r. b.jsonl:1 loses to a.jsonl:23 (file name first).
    assert _rejected(runs, "b.jsonl", 1) == (
        f"duplicate event_id (first at {a}:23)",
        "event_id",
        B_LINES[0],
    )
    assert _rejected(runs, "b.jsonl", 3) == (
        f"duplicate event_id (first at {a}:1)",
        "event_id",
        B_LINES[2],
    )
    assert _rejected(runs, "c.parquet", 3)[:2] == (
        f"duplicate event_id (first at {a}:1)",
        "event_id",
    )
    kept = {r["event_id"]: r for r in _events(runs, runs.first)}
    assert (kept["e1"]["user_id"], kept["e4"]["user_id"], kept["e7"]["user_id"]) == (1, 4, 7)
    a3 = Path(runs.paths.landing_dir("events", D3)) / "a.jsonl"
    assert _rejected(runs, "a.jsonl", 6, D3) == (
        f"duplicate event_id (first at {a3}:2)",
        "event_id",
        D3_LINES[5],
    )


def test_unreadable_files_are_quarantined_whole(runs):
    for name, reason in {
        "e.jsonl": "not UTF-8 text (NUL bytes): binary or compressed file?",
        "notes.txt": "unsupported file type .txt: use .jsonl or .parquet",
        "README": "unsupported file type (none): use .jsonl or .parquet",
    }.items():
        assert _rejected(runs, name, None) == (reason, None, None), name
    reason, field, raw = _rejected(runs, "d.parquet", None)
    assert reason.startswith("unreadable Parquet file: ") and (field, raw) == (None, None)
    reason, field, raw = _rejected(runs, "f.jsonl", None)
    assert reason.startswith("not UTF-8 text: line 1: ") and reason.endswith("(byte 0xe9)")
    assert (field, raw) == (None, None)


def test_parquet_rows_are_validated_with_their_row_number(runs):
    assert _rejected(runs, "c.parquet", 2) == (
        "field user_id: expected bigint, got x",
        "user_id",
        '{"event_id":"e9","ts":"2026-01-01T12:00:01.000Z","user_id":"x","item_id":71,"event_type":"click"}',
    )
    landed = {r["event_id"]: r for r in _events(runs, runs.first)}
    # Row 4 sits in the second row group: the line is the file's row number, not the group's.
    assert (landed["e8"]["user_id"], landed["e10"]["value"]) == (7, 30.0)
    assert "e9" not in landed


# --- What lands, exactly -----------------------------------------------------------------------


def test_every_good_row_lands_with_exact_values(runs):
    assert _events(runs, runs.first) == EXPECTED_D1
    part = runs.first.partitions[D1]
    assert (part.rows, part.quarantined) == (9, 27)


def test_blank_lines_are_skipped_but_counted(runs):
    """Day 3 (text parser): line numbers stay physical around blank lines; CR is dropped."""
    assert [(r["event_id"], r["user_id"]) for r in _events(runs, runs.day3, D3)] == [
        ("e1", 1),
        ("e2", 3),
    ]
    rejected = [(r["line"], r["field"]) for r in _quarantine(runs, runs.day3, day=D3)]
    assert rejected == [(4, None), (5, None), (6, "event_id"), (7, "user_id"), (8, None)]
    assert (runs.day3.rows, runs.day3.quarantined) == (2, 5)


def test_every_rejected_row_is_in_the_quarantine_once(runs):
    rows = _quarantine(runs, runs.first)
    located = [(Path(r["source_file"]).name, r["line"]) for r in rows]
    a_bad = [5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 24]
    assert located == (
        [("README", None)]
        + [("a.jsonl", n) for n in a_bad]
        + [("b.jsonl", 1), ("b.jsonl", 3), ("c.parquet", 2), ("c.parquet", 3)]
        + [("d.parquet", None), ("e.jsonl", None), ("f.jsonl", None), ("notes.txt", None)]
    )
    assert {(r["dataset"], r["run_id"], r["dt"]) for r in rows} == {
        ("events", runs.first.run_id, dt.date(2026, 1, 1))
    }
    assert all(r["quarantined_at"] is not None for r in rows)
    # Every non-blank landed line is in exactly one place.
    non_blank = sum(1 for line in A_LINES + B_LINES if line.strip()) + C_TABLE.num_rows
    assert len(_events(runs, runs.first)) + sum(1 for r in rows if r["line"]) == non_blank


# --- Re-runs, other days, missing days ----------------------------------------------------------


def test_rerun_gives_the_same_table_and_replaces_the_quarantine(runs):
    assert runs.second.delta_version == runs.first.delta_version + 1
    assert _events(runs, runs.second) == _events(runs, runs.first)
    before, after = _quarantine(runs, runs.first), _quarantine(runs, runs.second)

    def content(rows):
        return [(r["source_file"], r["line"], r["raw"], r["reason"], r["field"]) for r in rows]

    assert len(after) == len(before) == 27
    assert content(after) == content(before)
    assert {r["run_id"] for r in after} == {runs.second.run_id} != {runs.first.run_id}


def test_ingesting_day_2_leaves_day_1_alone(runs):
    assert _events(runs, runs.day2, D1) == _events(runs, runs.second, D1)
    assert _quarantine(runs, runs.day2, day=D1) == _quarantine(runs, runs.second, day=D1)
    assert list(runs.day2.partitions) == [D2]
    assert read_lineage(runs.paths, "raw_events", D1)["run_id"] == runs.second.run_id


def test_the_commit_records_each_days_manifest_and_verify_finds_an_edit(runs, monkeypatch, capsys):
    """A manifest edited into other valid JSON (a file taken out, a count changed, a file's
    sha256 rewritten with its bytes) passed ``lineage --verify``: the commit now records each
    day's ``manifest_digest``, and the check compares it with the manifest read."""
    import copy

    from recassets.ingest.lineage import lineage_path, manifest_digest
    from recassets.lineage.records import DeltaLog
    from tests.conftest import run_cli

    table, log = runs.paths.table("raw_events"), DeltaLog()
    m = read_lineage(runs.paths, "raw_events", D2)
    c = log.commit(table, m["delta_version"])
    assert c is not None and c.meta["manifests"] == {D2: manifest_digest(m)}
    assert log.manifest_problem(table, m, D2, c) is None
    edits = (
        lambda f: f.update(rows=f["rows"] + 1),
        lambda f: f.update(quarantined=f["quarantined"] + 1),
        lambda f: f["inputs"].pop(),
        lambda f: f["inputs"][0].update(sha256="0" * 64, size=1),
    )
    for edit in edits:
        forged = copy.deepcopy(m)
        edit(forged)
        status, what = log.manifest_problem(table, forged, D2, c) or ("", "")
        assert status == "changed" and f"not what version {c.version}'s commit recorded" in what
    code, out, _ = run_cli(runs.paths, monkeypatch, capsys, "lineage", "raw_events", D2, "--verify")
    assert code == 0, out
    path = Path(lineage_path(runs.paths, "raw_events", D2))
    text = path.read_text()
    try:
        path.write_text(json.dumps({**m, "rows": m["rows"] + 1}))
        code, out, _ = run_cli(runs.paths, monkeypatch, capsys, "lineage", "raw_events", D2, "--verify")  # fmt: skip
        assert code not in (0, None) and "not what version" in out + str(code)
    finally:
        path.write_text(text)


def test_one_run_ingests_several_datasets(runs):
    assert runs.users.run_id == runs.items.run_id == runs.day2.run_id == "one-run-for-day-2"
    assert [(r.dataset, r.quarantined) for r in (runs.users, runs.items, runs.day2)] == [
        ("users", 3),
        ("items", 0),  # its row first seen the day before lands (dimensions: that day or later)
        ("events", 0),
    ]
    quarantine = _read(
        runs.paths.table("quarantine"), runs.day2.quarantine_version, dt=dt.date(2026, 1, 2)
    )
    assert sorted(r["dataset"] for r in quarantine) == ["users", "users", "users"]


def test_synthetic_day_lands_unchanged(runs):
    events, users, items = generate_day(build_world(SYNTHETIC), SYNTHETIC, 0)
    landed = _events(runs, runs.day2, D2)
    assert [{k: v for k, v in r.items() if k != "dt"} for r in landed] == events.sort_by(
        "event_id"
    ).to_pylist()
    assert (runs.day2.rows, runs.day2.quarantined) == (events.num_rows, 0)
    assert len(runs.day2.partitions[D2].files) == 3


def test_users_contract(runs):
    synthetic = generate_day(build_world(SYNTHETIC), SYNTHETIC, 0)[1].to_pylist()
    landed = sorted(
        _read(runs.users.table_path, runs.users.delta_version), key=lambda r: r["user_id"]
    )
    extra = {"user_id": 1000, "first_seen": dt.datetime(2026, 1, 2, 10, tzinfo=UTC), "country": "FR",
             "device": None, "age_bucket": "25-34", "gender": None, "occupation": None}  # fmt: skip
    assert [{k: v for k, v in r.items() if k != "dt"} for r in landed] == synthetic + [extra]
    assert {r["dt"] for r in landed} == {dt.date(2026, 1, 2)}
    folder = runs.paths.landing_dir("users", D2)
    rejected = [
        (r["line"], r["reason"], r["field"]) for r in _quarantine(runs, runs.users, "users", D2)
    ]
    assert rejected == [
        (
            2,
            "field age_bucket: unknown value 17-19 (allowed: <18, 18-24, 25-34, 35-44, 45-54, 55+)",
            "age_bucket",
        ),
        (3, f"duplicate user_id (first at {folder}/part-00000.jsonl:1)", "user_id"),
        (4, "first_seen 2026-01-03T00:00:00.000000Z after partition 2026-01-02", "first_seen"),
    ]
    assert runs.users.table_path == runs.paths.table("users")


def test_items_contract(runs):
    items = generate_day(build_world(SYNTHETIC), SYNTHETIC, 0)[2]
    landed = sorted(
        _read(runs.items.table_path, runs.items.delta_version), key=lambda r: r["item_id"]
    )
    extra = {"item_id": 500, "first_seen": dt.datetime(2026, 1, 2, 9, tzinfo=UTC), "category": "jazz",
             "creator": "c9", "title": "Blue"}  # fmt: skip
    # 501, first seen the day before the folder it landed in, lands there (a dimension lands
    # on the day first seen or later)
    early = {"item_id": 501, "first_seen": dt.datetime(2026, 1, 1, 9, tzinfo=UTC),
             "category": None, "creator": None, "title": "Early"}  # fmt: skip
    assert [{k: v for k, v in r.items() if k != "dt"} for r in landed] == items.to_pylist() + [
        extra,
        early,
    ]
    assert _quarantine(runs, runs.items, "items", D2) == []
    # The users and items runs replaced their own quarantine rows only.
    assert _quarantine(runs, runs.items, "events", D1) == _quarantine(
        runs, runs.second, "events", D1
    )
    assert len(_quarantine(runs, runs.items, "users", D2)) == 3


def test_a_single_day_without_files_raises_and_writes_nothing(spark, paths):
    empty = Path(paths.landing_dir("events", "2026-01-04"))
    empty.mkdir(parents=True)
    (empty / "_SUCCESS").write_bytes(b"")  # not a landing file
    with pytest.raises(LandingMissingError) as err:
        ingest(spark, paths, "events", ["2026-01-04"])
    assert "1 day(s)" in str(err.value) and str(empty) in str(err.value)
    assert not Path(paths.lake).exists() and not Path(paths.lineage).exists()


def test_a_day_whose_files_hold_no_record_is_a_day_without_files(spark, paths):
    """A producer that truncated its file (zero bytes), wrote blank lines, or a Parquet of no
    row: the day was ingested as 0 rows, replacing what it held, without a word. Alone it is
    refused as a day without files, naming them; in a range it is an empty partition."""
    day = "2026-01-04"
    folder = Path(paths.landing_dir("events", day))
    folder.mkdir(parents=True)
    (folder / "a.jsonl").write_bytes(b"")
    (folder / "b.jsonl").write_bytes(b"\n \n\t\n")
    pq.write_table(pa.table({"event_id": pa.array([], pa.string())}), folder / "c.parquet")
    with pytest.raises(LandingMissingError) as err:
        ingest(spark, paths, "events", [day])
    assert f"{folder} (only a.jsonl (0 bytes), b.jsonl (5 bytes), c.parquet (" in str(err.value)
    assert not Path(paths.lake).exists()
    day1 = Path(paths.landing_dir("events", D1))
    day1.mkdir(parents=True)
    (day1 / "a.jsonl").write_text(A_LINES[0] + "\n")
    result = ingest(spark, paths, "events", [D1, day])
    assert {d: (p.rows, p.empty) for d, p in result.partitions.items()} == {
        D1: (1, False), day: (0, True)
    }  # fmt: skip
    (folder / "b.jsonl").write_text(A_LINES[0].replace(D1, day) + "\n")  # one record: a day
    again = ingest(spark, paths, "events", [day])
    assert (again.partitions[day].rows, again.partitions[day].empty) == (1, False)


def test_a_range_in_which_no_day_has_files_raises(spark, paths):
    with pytest.raises(LandingMissingError) as err:
        ingest(spark, paths, "events", ["2026-01-03", "2026-01-04"])
    assert "2 day(s)" in str(err.value)
    assert paths.landing_dir("events", "2026-01-03") in str(err.value)
    assert not Path(paths.lake).exists()


def test_days_without_files_inside_a_range_become_empty_partitions(spark, paths):
    day1 = Path(paths.landing_dir("events", D1))
    day1.mkdir(parents=True)
    (day1 / "a.jsonl").write_text(A_LINES[0] + "\n")
    empty = Path(paths.landing_dir("events", "2026-01-04"))
    empty.mkdir(parents=True)
    (empty / "_SUCCESS").write_bytes(b"")  # not a landing file
    result = ingest(spark, paths, "events", [D1, "2026-01-03", "2026-01-04"])
    assert {d: (p.rows, p.empty) for d, p in result.partitions.items()} == {
        D1: (1, False),
        "2026-01-03": (0, True),
        "2026-01-04": (0, True),
    }
    gap = read_lineage(paths, "raw_events", "2026-01-03")
    assert (gap["empty"], gap["rows"], gap["inputs"]) == (True, 0, [])
    assert gap["looked_in"] == paths.landing_dir("events", "2026-01-03")
    assert read_lineage(paths, "raw_events", "2026-01-04")["looked_in"] == str(empty)
    full = read_lineage(paths, "raw_events", D1)
    assert (full["empty"], full["looked_in"], full["rows"]) == (False, None, 1)
    assert spark.read.format("delta").load(paths.table("raw_events")).count() == 1


def test_a_day_withdrawn_by_emptying_its_folder_leaves_the_lake_when_its_range_is_ingested(
    spark, paths
):
    """The documented way to withdraw a landed day (docs/automation.md, known limits): empty
    its folder, keep the folder, and ingest a range that holds it and a day with files. The
    day's rows leave the table in that run's one commit; the other day's stay."""
    for day, event in ((D1, "e1"), ("2026-01-03", "e2")):
        folder = Path(paths.landing_dir("events", day))
        folder.mkdir(parents=True)
        (folder / "a.jsonl").write_text(_ev(event, f"{day}T10:00:00Z") + "\n")
    ingest(spark, paths, "events", [D1, "2026-01-03"])
    table = paths.table("raw_events")
    assert sorted(r.event_id for r in spark.read.format("delta").load(table).collect()) == [
        "e1",
        "e2",
    ]
    (Path(paths.landing_dir("events", D1)) / "a.jsonl").unlink()  # withdrawn: the folder stays
    with pytest.raises(LandingMissingError):  # alone, an empty day is a folder in error
        ingest(spark, paths, "events", [D1])
    result = ingest(spark, paths, "events", [D1, "2026-01-03"])
    assert result.partitions[D1].empty
    assert [r.event_id for r in spark.read.format("delta").load(table).collect()] == ["e2"]


def test_list_landing_files_classifies_and_skips_hidden(runs):
    files = list_landing_files(runs.paths, "events", [D1])
    assert [(Path(f.path).name, f.format) for f in files] == [
        ("README", "unreadable"), ("a.jsonl", "jsonl"), ("b.jsonl", "jsonl"), ("c.parquet", "parquet"),
        ("d.parquet", "unreadable"), ("e.jsonl", "unreadable"), ("f.jsonl", "unreadable"),
        ("g.jsonl", "jsonl"), ("notes.txt", "unreadable"),
    ]  # fmt: skip


def _big_day(paths: Paths, day: str, blank_at: int | None) -> Path:
    """3000 events of ~130 bytes: e<n> at line n, but line 777 and 2222 mistyped and line 2999
    a second e7. With ``blank_at``, a blank line goes in there (later lines shift by one)."""
    lines = [
        _ev(f"e{n}", f"{day}T10:00:00Z", n, n, "click", surface="home" * 10) for n in range(1, 3001)
    ]
    lines[776] = _ev("e777", f"{day}T10:00:00Z", "bad", 1, "click")
    lines[2221] = _ev("e2222", f"{day}T10:00:00Z", 1, "bad", "click")
    lines[2998] = _ev("e7", f"{day}T11:00:00Z", 2, 2, "click")
    if blank_at:
        lines.insert(blank_at - 1, "")
    folder = Path(paths.landing_dir("events", day))
    folder.mkdir(parents=True)
    (folder / "big.jsonl").write_text("\n".join(lines) + "\n")
    return folder / "big.jsonl"


def test_lines_are_numbered_across_file_splits(spark, paths):
    """A file read in many splits (tasks) numbers its lines like one read, with either parser:
    the JSON reader (no blank line) and the text parser (a blank line at 1000)."""
    regular, irregular = "2026-02-01", "2026-02-02"
    files = {regular: _big_day(paths, regular, None), irregular: _big_day(paths, irregular, 1000)}
    previous = spark.conf.get("spark.sql.files.maxPartitionBytes")
    spark.conf.set("spark.sql.files.maxPartitionBytes", "50000")
    try:
        assert spark.read.text(str(files[regular])).rdd.getNumPartitions() >= 8  # the premise
        results = {day: ingest(spark, paths, "events", [day]) for day in files}
    finally:
        spark.conf.set("spark.sql.files.maxPartitionBytes", previous)
    for day, shift in ((regular, 0), (irregular, 1)):
        result = results[day]
        rows = _read(
            paths.table("quarantine"), result.quarantine_version, dt=dt.date.fromisoformat(day)
        )
        got = sorted((r["line"], r["field"], r["reason"]) for r in rows)
        assert got == [
            (777, "user_id", "field user_id: expected bigint, got bad"),
            (2222 + shift, "item_id", "field item_id: expected bigint, got bad"),
            (2999 + shift, "event_id", f"duplicate event_id (first at {files[day]}:7)"),
        ], day
        assert {r["raw"] for r in rows if r["line"] == 777} == {
            _ev("e777", f"{day}T10:00:00Z", "bad", 1, "click")
        }
        assert (result.rows, result.quarantined) == (2997, 3)


# --- Which parser: the JSON reader where each line is one row, else lines and from_json ----------


@pytest.mark.parametrize(
    "data, lines, plain",
    [
        (b"", 0, True),
        (b'{"a": 1}', 1, True),  # the last line needs no newline
        (b'{"a": 1}\n{"b": 2}\n', 2, True),  # one final newline is no blank line
        (b'{"a": 1}\r\n{"b": 2}\r\n', 2, True),
        (b'"s"\n42\nnull\n{"a": \nx [\n{"a": "\\n["}\n', 6, True),  # one row each
        (b"\n", 1, False),  # blank lines: no row
        (b'\n{"a": 1}\n', 2, False),
        (b'{"a": 1}\n\n{"b": 2}\n', 3, False),
        (b'{"a": 1}\n\n', 2, False),
        (b'{"a": 1}\r\n\r\n', 2, False),
        (b'{"a": 1}\n   \n', 2, False),
        (b'{"a": 1}\n {"b": 2}\n', 2, False),  # led by whitespace: maybe "  [..."
        (b'{"a": 1}\n\t{"b": 2}', 2, False),
        (b'{"a": 1}\n[{"b": 2}, {"c": 3}]\n', 2, False),  # arrays: a row per element
        (b"[]", 1, False),
        (b'\xef\xbb\xbf{"a": 1}\n', 1, False),  # a BOM or NUL bytes: Jackson's sniffing
        (b'{"a": 1}\n\x00[\x00]\x00\n', 2, False),
    ],
)
def test_line_scan_counts_lines_and_finds_those_that_are_not_one_json_row(
    tmp_path, data, lines, plain
):
    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    for chunk in range(1, len(data) + 2):  # every boundary between two blocks
        scan = _LineScan()
        assert file_digest(path, chunk=chunk, visit=scan) == _digest(path)
        assert (scan.lines, scan.plain) == (lines, plain), chunk


def _land_lines(paths: Paths, day: str, files: dict[str, list[str]]) -> str:
    folder = Path(paths.landing_dir("events", day))
    folder.mkdir(parents=True)
    for name, lines in files.items():
        (folder / name).write_text("\n".join(lines) + "\n")
    return str(folder)


def _ingest_day(spark, paths: Paths, day: str) -> tuple[IngestResult, list[str], list[tuple]]:
    """The result, the parser(s) said, and (file, line, field, reason, raw) of each rejected row."""
    said: list[str] = []
    result = ingest(spark, paths, "events", [day], progress=said.append)
    parsers = [m.rsplit(" ", 2)[1] for m in said if m.endswith(" parser")]
    rows = _read(
        paths.table("quarantine"), result.quarantine_version, dt=dt.date.fromisoformat(day)
    )
    rejected = sorted((Path(r["source_file"]).name, r["line"], r["field"], r["reason"], r["raw"])
                      for r in rows)  # fmt: skip
    return result, parsers, rejected


def _landed(paths: Paths, result: IngestResult, day: str) -> list[str]:
    rows = _read(result.table_path, result.delta_version, dt=dt.date.fromisoformat(day))
    return sorted(r["event_id"] for r in rows)


MISTYPED = "field user_id: expected bigint, got bad"


def test_plain_lines_are_parsed_by_the_json_reader_and_numbered_from_its_rows(spark, paths):
    """No blank, whitespace-led or array line: the JSON reader's rows are the lines, and rows
    are numbered from them (split counts, file by file), a last line without newline included.
    Would fail if these lines were taken for odd ones (text parser) or miscounted."""
    day = "2026-03-01"
    a = [
        _ev("e1", f"{day}T01:00:00Z"),
        '"[not an array]"',
        "x [",
        _ev("e2", f"{day}T02:00:00Z", surface="\n[ "),  # an escaped newline, not a line
        _ev("e3", f"{day}T03:00:00Z", user_id="bad"),
    ]
    b = [_ev("e1", f"{day}T04:00:00Z"), _ev("e4", f"{day}T05:00:00Z")]
    folder = _land_lines(paths, day, {"a.jsonl": a})
    (Path(folder) / "b.jsonl").write_text("\n".join(b))  # no final newline
    result, parsers, rejected = _ingest_day(spark, paths, day)
    assert parsers == ["json"]
    assert _landed(paths, result, day) == ["e1", "e2", "e4"]
    assert rejected == [
        ("a.jsonl", 2, None, NOT_AN_OBJECT, a[1]),
        ("a.jsonl", 3, None, NOT_AN_OBJECT, a[2]),
        ("a.jsonl", 5, "user_id", MISTYPED, a[4]),
        ("b.jsonl", 1, "event_id", f"duplicate event_id (first at {folder}/a.jsonl:1)", b[0]),
    ]
    assert (result.rows, result.quarantined) == (3, 4)


@pytest.mark.parametrize(
    "odd",
    [
        # A blank line (no row) and an array of two events (two rows): as many rows as lines.
        ["", "[{}, {}]"],
        # Led by spaces: a line of spaces (no row), an array (two rows), an object (one row).
        ["   ", " [{}, {}]", " {}"],
        # Tabs count as blank as spaces do (a tab-only line was a "missing field" row).
        ["\t \t", "[{}, {}]"],
    ],
    ids=["blank-and-array", "space-led", "tab-blank"],
)
def test_lines_that_are_not_one_json_row_go_to_the_text_parser(spark, paths, odd):
    """Each case keeps as many rows as lines under the JSON reader, so no count would notice
    it: only the line scan sends it to the text parser. There an array is one unparseable
    line, blank lines are skipped, and later lines keep their numbers."""
    day = "2026-03-02"
    lines = [_ev("e1", f"{day}T01:00:00Z")]
    events = iter(_ev(f"e{n}", f"{day}T0{n}:00:00Z") for n in range(2, 9))
    for template in odd:
        line = template
        while "{}" in line:
            line = line.replace("{}", next(events), 1)
        lines.append(line)
    lines.append(_ev("e9", f"{day}T09:00:00Z", user_id="bad"))
    _land_lines(paths, day, {"a.jsonl": lines})
    result, parsers, rejected = _ingest_day(spark, paths, day)
    assert parsers == ["text"]
    array = next(n for n, line in enumerate(lines, 1) if line.lstrip().startswith("["))
    assert rejected == [
        ("a.jsonl", array, None, NOT_AN_OBJECT, lines[array - 1]),
        ("a.jsonl", len(lines), "user_id", MISTYPED, lines[-1]),
    ]
    # The array's events never land; a space-led object does.
    assert _landed(paths, result, day) == (["e1", "e4"] if len(odd) == 3 else ["e1"])


def test_rows_counted_against_lines_catch_what_the_scan_missed(spark, paths, monkeypatch):
    """With the line scan blinded, the JSON reader's row counts still send a day with a blank
    line to the text parser: in total, or file by file where rows must be located (here a
    blank line in one file and an array in another make as many rows as lines in all)."""
    monkeypatch.setattr(landing_files, "_ODD_LINE", re.compile(b"(?!)"))  # matches nothing
    total, by_file = "2026-03-03", "2026-03-04"
    _land_lines(paths, total, {"a.jsonl": [_ev("e1", f"{total}T01:00:00Z"), ""]})
    b = [_ev("e1", f"{by_file}T01:00:00Z"), "", _ev("e2", f"{by_file}T02:00:00Z")]
    c = [
        f"[{_ev('e3', f'{by_file}T03:00:00Z')}, {_ev('e4', f'{by_file}T04:00:00Z')}]",
        _ev("e5", f"{by_file}T05:00:00Z", user_id="bad"),
    ]
    _land_lines(paths, by_file, {"b.jsonl": b, "c.jsonl": c})
    result, parsers, rejected = _ingest_day(spark, paths, total)
    assert (parsers, rejected, _landed(paths, result, total)) == (["json", "text"], [], ["e1"])
    result, parsers, rejected = _ingest_day(spark, paths, by_file)
    assert parsers == ["json", "text"]
    assert rejected == [
        ("c.jsonl", 1, None, NOT_AN_OBJECT, c[0]),
        ("c.jsonl", 2, "user_id", MISTYPED, c[1]),
    ]
    assert _landed(paths, result, by_file) == ["e1", "e2"]


@pytest.mark.parametrize(
    "line, extra",
    [
        ('{"a": 1}{"b": 2}', '{"b": 2}'),  # two files concatenated without a newline
        ('{"a": 1} {"b": 2}', '{"b": 2}'),
        ('{"a": {"x": 1}} xyz', "xyz"),  # text after the record
        ('{"a": 1},{"b": 2}', ',{"b": 2}'),  # two records joined by a comma
        ('{"a": 1}, {"b": 2}', ', {"b": 2}'),
        ('{"a": 1}]{"b": 2}', ']{"b": 2}'),  # ']' and ',' are legal after '}' only in arrays
        ('{"a": 1},,{"b": 2}', ',,{"b": 2}'),
        ('{"a": 1}] {"b": 2}', '] {"b": 2}'),
        ('{"a": 1}],{"b": 2}', '],{"b": 2}'),
    ],
)
def test_a_line_with_two_json_values_quarantines_its_file_naming_the_line(tmp_path, line, extra):
    """Jackson parses a line's first value and ignores the rest: the second record would be
    lost with no trace. The scan suspects such lines; the exact parse names the first."""
    path = tmp_path / "f.jsonl"
    path.write_text('{"ok": 1}\n' + line + "\n")  # the second line alone is suspected
    scan = _LineScan()
    file_digest(path, chunk=7, visit=scan)  # a match across a block edge counts too
    assert scan.suspect
    fmt, problem = landing_files._trailing_content(path)
    assert fmt == "unreadable"
    assert problem.startswith(
        f"line 2: more than one JSON value on one line (after the first object: {extra!r})"
    )


def test_a_bom_before_two_records_on_the_first_line_quarantines_the_file(tmp_path):
    """Hadoop's line reader drops a BOM and Jackson read the first of {..}{..}; the check
    passed over the line (it did not start with "{"), and the second record was lost."""
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}{"b": 2}\n{"c": 3}\n')
    assert landing_files._trailing_content(path) is not None
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n{"c": 3}\n')  # one record a line: not refused
    assert landing_files._trailing_content(path) is None


@pytest.mark.parametrize("text_parser", [False, True])
def test_single_quotes_ids_past_a_double_and_zone_abbreviations_are_quarantined(
    spark, paths, text_parser
):
    """Three ways rows landed other than written, on either parser. Jackson read single-quoted
    records, so {'..'}{'..'} on one line kept its first record and lost the second without a
    trace; from_json (the parser of a run with any odd line in any file) re-printed ids through
    a double, 4.9999999999999999 landing as user 5 where the JSON reader quarantined it; and a
    zone abbreviation was read as Java's pick (BST as Dhaka, CST as Chicago)."""
    day = "2026-03-09"
    t = f"{day}T01:00:00Z"
    sq = f"{{'event_id': 'q1', 'ts': '{t}', 'user_id': 1, 'item_id': 2, 'event_type': 'click'}}"
    row = '{"event_id": "%s", "ts": "%s", "user_id": %s, "item_id": %s, "event_type": "click"}'
    files = {
        "sq.jsonl": [sq + sq.replace("q1", "q2"), _ev("q3", t)],
        "ids.jsonl": [row % ("i1", t, "4.9999999999999999", "1"),
                      row % ("i2", t, "1", "7.0000000000000001"),
                      row % ("i3", t, "5.0", "1e3"), row % ("i4", t, "01", "1")],
        "tz.jsonl": [_ev("z1", f"{day} 12:30:00 BST"), _ev("z2", f"{day} 07:00:00 CST"),
                     _ev("z3", f"{day} 10:00:00 UTC"), _ev("z4", f"{day}T10:00:00 Europe/London")],
    }  # fmt: skip
    if text_parser:
        files["blank.jsonl"] = [_ev("b1", t), ""]  # a blank line: the text parser for the run
    _land_lines(paths, day, files)
    result, parsers, rejected = _ingest_day(spark, paths, day)
    assert parsers == ["text" if text_parser else "json"]
    assert _landed(paths, result, day) == ["b1"] * text_parser + ["i3", "q3", "z3", "z4"]
    why = {(f, n): (fld, reason, raw) for f, n, fld, reason, raw in rejected}
    assert set(why) == {("sq.jsonl", 1), ("ids.jsonl", 1), ("ids.jsonl", 2), ("ids.jsonl", 4),
                        ("tz.jsonl", 1), ("tz.jsonl", 2)}  # fmt: skip
    assert "'q2'" in why[("sq.jsonl", 1)][2]  # the line kept whole, both records
    assert why[("ids.jsonl", 1)][:2] == ("user_id", "field user_id: expected bigint, got "
                                         "4.9999999999999999")  # fmt: skip
    assert why[("ids.jsonl", 2)][0] == "item_id"
    assert all("CST names several zones" in why[("tz.jsonl", n)][1] for n in (1, 2))
    rows = {r["event_id"]: r for r in _read(result.table_path, result.delta_version)}
    assert (rows["i3"]["user_id"], rows["i3"]["item_id"]) == (5, 1000)


def test_both_parsers_land_the_same_table_from_the_same_file(spark, paths):
    """One file, read once by each parser (a blank line, here at its end, sends a run to the
    text parser): the same rows land with the same values, and the same are quarantined for
    the same reasons. ``from_json`` re-printed a number in a string field through a double
    (``"event_id": 7e2`` landed as "700.0", ``1.10`` as "1.1", ``0.30000000000000001`` and
    ``0.3`` as one id, ``"request_id": 1e2`` as "100.0") and NaN as ``"NaN"`` in quotes (no
    double, where the JSON reader said no finite number); a lone surrogate escape landed as
    "?" on both (the ids ``s\ud83d`` and ``s\ud83e`` as one, the second a "duplicate")."""
    row = '{"event_id": %s, "ts": "%s", "user_id": 1, "item_id": 1, "event_type": "%s"%s}'
    cases = [
        ("7e2", "click", ""), ("1.10", "click", ""), ("0.30000000000000001", "click", ""),
        ("0.3", "click", ""),
        ('"n1"', "click", ', "request_id": 1e2, "country": 1.50, "surface": -0'),
        ('"n2"', "watch", ', "value": 1e3'),
        ('"nan"', "impression", ', "value": NaN'), ('"inf"', "click", ', "value": +INF'),
        ('"ninf"', "click", ', "value": -Infinity'), ('"big"', "click", ', "value": 1e400'),
        (r'"s\ud83d"', "click", ""), (r'"s\ud83e"', "click", ""),
        ('"p1"', "click", r', "surface": "cut emoji \ud83d"'),
        ('"p2"', "click", r', "surface": "a low \udE00 alone", "country": "\ud83d\ude00"'),
        # a pair is a character; an escaped backslash's "\ud83d" is text; a field outside the
        # contract is not landed
        ('"p3"', "click", r', "surface": "pair \ud83d\ude00", "country": "\\ud83d"'),
        ('"p4"', "click", r', "extra": "\ud83d"'),
        ('"old"', "click", ""),  # at Go's zero time: an event before 1970 is off its day
        # an object or array given to a plain string field: its text differed by parser
        ('"o1"', "click", ', "surface": {"en" :  "X",  "n": 1.50}'),
        ('"o2"', "click", ', "country": [1,  2]'),
        # a string holding JSON's text lands as written; a nested key of a field's name is not
        # the field
        ('"o3"', "click", r', "surface": "{\"en\" :  \"X\"}"'),
        ('"o4"', "click", ', "ctx": {"surface": {"a": 1}}, "surface": "home"'),
    ]  # fmt: skip
    by_parser = {}
    for day, blank in (("2026-03-20", []), ("2026-03-21", [""])):
        lines = [row % (eid, "0001-01-01T00:00:00Z" if eid == '"old"' else f"{day}T01:00:00Z",
                        kind, more) for eid, kind, more in cases]  # fmt: skip
        _land_lines(paths, day, {"a.jsonl": [*lines, *blank]})
        result, parsers, rejected = _ingest_day(spark, paths, day)
        rows = _read(result.table_path, result.delta_version, dt=dt.date.fromisoformat(day))
        landed = sorted(
            json.dumps({k: v for k, v in r.items() if k not in ("ts", "dt")}, sort_keys=True)
            for r in rows
        )
        why = [tuple(str(v).replace(day, "DAY") for v in r) for r in rejected]
        by_parser[parsers[0]] = (landed, why)
    assert set(by_parser) == {"json", "text"}
    assert by_parser["json"] == by_parser["text"]
    landed, why = by_parser["text"]
    rows = {r["event_id"]: r for r in map(json.loads, landed)}
    assert sorted(rows) == [
        "0.3", "0.30000000000000001", "1.10", "7e2", "n1", "n2", "o3", "o4", "p3", "p4"
    ]  # fmt: skip
    assert (rows["o3"]["surface"], rows["o4"]["surface"]) == ('{"en" :  "X"}', "home")
    assert (rows["n1"]["request_id"], rows["n1"]["country"], rows["n1"]["surface"]) == (
        "1e2", "1.50", "-0"
    )  # fmt: skip
    assert (rows["n2"]["value"], rows["p4"]["surface"]) == (1000.0, None)
    assert (rows["p3"]["surface"], rows["p3"]["country"]) == ("pair \U0001f600", "\\ud83d")
    lone = "a lone surrogate escape (\\ud800-\\udfff without its pair: text cut mid-character)"
    scale = " is not a finite number, a watch of 0 to 604,800 s, or a rating in 0..5"
    assert [(n, fld, reason) for _f, n, fld, reason, _raw in why] == [
        ("7", "value", f"field value: NaN{scale}"),
        ("8", "value", f"field value: +INF{scale}"),
        ("9", "value", f"field value: -Infinity{scale}"),
        ("10", "value", f"field value: 1e400{scale}"),
        ("11", "event_id", f"field event_id: {lone}"),
        ("12", "event_id", f"field event_id: {lone}"),
        ("13", "surface", f"field surface: {lone}"),
        ("14", "surface", f"field surface: {lone}"),
        ("17", "ts", "ts 0001-01-01T00:00:00.000000Z outside partition DAY"),
        ("18", "surface", "field surface: a JSON object or array, not text"),
        ("19", "country", "field country: a JSON object or array, not text"),
    ]


@pytest.mark.parametrize(
    "data",
    [
        b'{"a": 1}\n{"b": {"c": 2}, "d": [{"e": 3}]}\n',  # '}' before ',', ']', '}' or the end
        b'{"title": "x}y"}\n{"t": "} {"}\n',  # '}' inside strings: suspected, then cleared
        b'{"a": 1}\r\n{"b": 2}   \r\n',
        b'{"a": [{"x": 1}, {"y": 2}], "b": [{"z": {}},{"w": 3}]}\n',  # '},{' inside arrays
    ],
)
def test_one_value_per_line_is_not_quarantined(tmp_path, data):
    path = tmp_path / "f.jsonl"
    path.write_bytes(data)
    assert landing_files._trailing_content(path) is None
    assert landing_files._classify(path, len(data)) == ("jsonl", None)


def test_records_separated_by_carriage_returns_alone_quarantine_the_file(tmp_path):
    """Spark splits on \\n: a file of CR-ended records was one line, its first record landed and
    the others were lost without a trace. CRLF stays fine (above)."""
    path = tmp_path / "f.jsonl"
    path.write_bytes(b'{"a": 1}\r{"b": 2}\r{"c": 3}\r')
    scan = _LineScan()
    file_digest(path, chunk=5, visit=scan)
    assert scan.suspect
    fmt, problem = landing_files._trailing_content(path)
    assert fmt == "unreadable" and problem.startswith(
        'line 1: more than one JSON value on one line (after the first object: \'{"b": 2}\\r'
    )
    assert "records separated by a carriage return alone? Lines must end in \\n" in problem


@pytest.mark.parametrize("at", [10, 70_000, 200_000])
def test_a_byte_that_is_not_utf8_anywhere_in_the_file_quarantines_it(tmp_path, at):
    """The whole file is checked as the sha256 pass reads it (only its first 64 KiB were): a
    Windows-1252 'é' on the line after byte ``at`` names that line; the same file in UTF-8 is
    JSON Lines."""
    good = b'{"event_id": "e", "country": "FR"}\n'
    n = at // len(good) + 1
    for text, verdict in ((b"Caf\xc3\xa9", ("jsonl", None)), (b"Caf\xe9", None)):
        path = tmp_path / "f.jsonl"
        path.write_bytes(good * n + b'{"country": "' + text + b'"}\n' + good)
        scan = _LineScan()
        size, _ = file_digest(path, chunk=4096, visit=scan)
        got = landing_files._classify(path, size, scan)
        if verdict is not None:
            assert got == verdict
        else:
            assert got == (
                "unreadable", f"not UTF-8 text: line {n + 1}: invalid continuation byte (byte 0xe9)"
            )  # fmt: skip


def test_names_hadoop_cannot_read_and_columns_spark_cannot_tell_apart_quarantine_the_file(
    tmp_path,
):
    """A ':' in a file name failed the day's run (URISyntaxException); Parquet columns
    ``device`` and ``Device`` failed it too (COLUMN_ALREADY_EXISTS), naming no file."""
    colon = tmp_path / "events-2026-01-03T10:00:00.jsonl"
    colon.write_bytes(b'{"a": 1}\n')
    assert landing_files._classify(colon, 9) == (
        "unreadable", "the file name holds ':', which Hadoop cannot read as a path: rename it"
    )  # fmt: skip
    latin1 = Path(os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9.jsonl"))  # no UTF-8 name
    latin1.write_bytes(b'{"a": 1}\n')
    assert landing_files._classify(latin1, 9) == (
        "unreadable", "the file name is not UTF-8: rename it"
    )  # fmt: skip
    twins = tmp_path / "t.parquet"
    pq.write_table(pa.table({"device": ["ios"], "Device": ["web"], "event_id": ["e"]}), twins)
    assert landing_files._classify(twins, twins.stat().st_size) == (
        "unreadable",
        "columns device, Device differ only in case, which Spark reads as one name: rename or "
        "drop one",
    )
    fine = tmp_path / "f.parquet"
    pq.write_table(pa.table({"device": ["ios"], "event_id": ["e"]}), fine)
    assert landing_files._classify(fine, fine.stat().st_size) == ("parquet", None)


def _scanned(path) -> _LineScan:
    scan = _LineScan()
    file_digest(path, visit=scan)
    return scan


def test_a_pretty_printed_json_document_is_quarantined_whole_saying_what_it_is(tmp_path):
    """A ``.json`` export written with indentation gave one reject per line, each
    "unparseable JSON", with no word that the file was a JSON document, not JSON Lines."""
    import json

    rows = [{"event_id": "e1", "user_id": 1}, {"event_id": "e2", "user_id": 2}]
    why = "a JSON document over several lines (pretty-printed), not JSON Lines"
    for name, text in (("array.json", json.dumps(rows, indent=2)),
                       ("objects.jsonl", "\n".join(json.dumps(r, indent=1) for r in rows)),
                       ("bom.json", "\ufeff" + json.dumps(rows, indent=2))):  # fmt: skip
        path = tmp_path / name
        path.write_text(text + "\n")
        fmt, problem = landing_files._classify(path, path.stat().st_size)
        assert fmt == "unreadable" and problem is not None and problem.startswith(why), name
    path = tmp_path / "compact.json"  # the array on one line: one file, not one line's reject
    path.write_text(json.dumps(rows) + "\n")
    for scan in (None, _scanned(path)):
        assert landing_files._classify(path, path.stat().st_size, scan) == (
            "unreadable", "one JSON array on one line, not JSON Lines: write one object per line "
            "(jq -c '.[]' FILE)")  # fmt: skip
    for text in ("\n".join(json.dumps(r) for r in rows), '[1, 2]\n{"event_id": "e3"}'):
        path = tmp_path / "lines.jsonl"  # JSON Lines, a line that is an array included
        path.write_text(text + "\n")
        assert landing_files._classify(path, path.stat().st_size) == ("jsonl", None)
        assert landing_files._classify(path, path.stat().st_size, _scanned(path)) == ("jsonl", None)


def _extra(column: pa.Array, name: str = "extra") -> pa.Table:
    base = {"event_id": ["e"], "ts": ["2026-03-05T01:00:00Z"], "user_id": [1], "item_id": [1],
            "event_type": ["click"]}  # fmt: skip
    return pa.table({**base, name: column})


@pytest.mark.parametrize(
    ("table", "why"),
    [
        (_extra(pa.array([36_000_000_000], pa.time64("us"))),
         "column extra: a time of day (TIME), a type Spark cannot read"),
        (_extra(pa.array([1.5], pa.float16())),
         "column extra: half precision (FLOAT16), a type Spark cannot read"),
        (_extra(pa.array([1], pa.decimal256(60, 2))),
         "column extra: a decimal of 60 digits; Spark reads 38 at most"),
        (_extra(pa.array([1]), "_metadata"), "column name '_metadata': Spark's reader"),
        (_extra(pa.array([1]), "_Metadata"), "column name '_Metadata': Spark's reader"),
        (_extra(pa.array([b"0123456789abcdef"], pa.uuid())),
         "column extra: a UUID, a type Spark cannot read"),
        (_extra(pa.array([1]), "a`b"), "column name 'a`b': Spark's reader"),
        (pa.table([pa.array([1]), pa.array([2])], names=["user_id", "user_id"]),
         "column user_id appears twice"),
        (pa.table({}), "no columns"),
    ],
)  # fmt: skip
def test_parquet_that_spark_would_fail_the_run_on_is_quarantined_whole(tmp_path, table, why):
    """pyarrow reads these footers, Spark 4 does not read the files: each failed the whole
    run with Spark's error and no file named (probe, 2026-12-05). A decimal of 38 digits and
    an ordinary extra column are read (and ignored)."""
    path = tmp_path / "x.parquet"
    pq.write_table(table, path)
    fmt, problem = landing_files._classify(path, path.stat().st_size)
    assert fmt == "unreadable" and problem is not None and problem.startswith(why)
    for fine in (_extra(pa.array([1], pa.decimal128(38, 2))), _extra(pa.array(["x"]))):
        pq.write_table(fine, path)
        assert landing_files._classify(path, path.stat().st_size) == ("parquet", None)


def test_a_parquet_file_spark_cannot_read_leaves_the_days_other_files_landing(spark, paths):
    day = "2026-03-07"
    folder = _land_lines(paths, day, {"b.jsonl": [_ev("ok", f"{day}T01:00:00Z")]})
    table = _extra(pa.array([36_000_000_000], pa.time64("us")))
    pq.write_table(table.set_column(1, "ts", pa.array([f"{day}T02:00:00Z"])),
                   Path(folder) / "a.parquet")  # fmt: skip
    result, _parsers, rejected = _ingest_day(spark, paths, day)
    assert _landed(paths, result, day) == ["ok"]
    assert [(f, n) for f, n, *_ in rejected] == [("a.parquet", None)]


def test_parquet_codecs_encodings_and_pages_spark_cannot_decode_are_quarantined_whole(tmp_path):
    """pyarrow reads and writes these, Spark 4 does not read them: brotli (no Hadoop codec),
    byte_stream_split (no decoder in its vectorized reader) and a damaged page under a sound
    footer each failed the whole run with a Java error and no file named (probe,
    2026-12-06). The codecs Spark reads pass."""
    path = tmp_path / "x.parquet"
    table = _extra(pa.array([1.5]))

    def classify() -> tuple[str, str | None]:
        return landing_files._classify(path, path.stat().st_size)

    for options, why in (
        ({"compression": "brotli"}, "column event_id: BROTLI compression, which Spark cannot"),
        ({"use_byte_stream_split": ["extra"], "use_dictionary": False},
         "column extra: BYTE_STREAM_SPLIT encoding, which Spark's reader cannot decode"),
    ):  # fmt: skip
        pq.write_table(table, path, **options)
        fmt, problem = classify()
        assert fmt == "unreadable" and problem is not None and problem.startswith(why), problem
    for options in ({}, {"compression": "zstd"}, {"compression": "gzip"}, {"compression": "lz4"}):
        pq.write_table(table, path, **options)
        assert classify() == ("parquet", None)
    pq.write_table(pa.table({"event_id": [f"event-{i}" for i in range(5_000)]}), path)
    data = bytearray(path.read_bytes())
    data[200:2000] = b"\xab" * 1800  # a damaged page; the footer at the end still reads
    path.write_bytes(bytes(data))
    assert pq.read_metadata(path).num_rows == 5_000
    fmt, problem = classify()
    assert fmt == "unreadable" and problem is not None
    assert problem.startswith("a page of the Parquet file cannot be decoded ("), problem


def test_parquet_binary_text_lands_and_bytes_no_text_or_nested_values_are_named(spark, paths):
    """A binary column (strings as Hive and Impala write them) lands as text; a value whose
    bytes are not UTF-8 had landed as given, and the lake's readers then failed on the table;
    a struct had landed as "{1}" (two structs as one key). Each such row is quarantined,
    naming its field, and the others land."""
    day = "2026-03-09"
    t = f"{day}T02:00:00Z"
    folder = Path(_land_lines(paths, day, {"a.jsonl": [_ev("ok", f"{day}T01:00:00Z")]}))
    base = {"ts": [t] * 3, "user_id": [1] * 3, "item_id": [1] * 3, "event_type": ["click"] * 3}
    pq.write_table(pa.table({
        **base,
        "event_id": pa.array([b"bin-ok", b"rbin\xff\xfe", b"bin-c"], pa.binary()),
        "country": pa.array([b"FR", b"FR", b"F\xe9"], pa.binary()),
    }), folder / "b.parquet")  # fmt: skip
    pq.write_table(pa.table({**{k: v[:1] for k, v in base.items()},
                             "event_id": pa.array([{"a": 1}])}), folder / "c.parquet")  # fmt: skip
    result, _parsers, rejected = _ingest_day(spark, paths, day)
    assert _landed(paths, result, day) == ["bin-ok", "ok"]
    assert [(f, n, fld, why) for f, n, fld, why, _raw in rejected] == [
        ("b.parquet", 2, "event_id", "field event_id: not UTF-8 text"),
        ("b.parquet", 3, "country", "field country: not UTF-8 text"),
        ("c.parquet", 1, "event_id", "field event_id: a struct, not a single value"),
    ]


def test_a_nul_byte_in_a_value_rejects_its_line_and_utf16_stays_a_whole_file(spark, paths):
    """One raw NUL byte inside a value in the first 64 KiB had sent the whole file to
    quarantine ("binary or compressed file?", no line), its good lines with it. Now that line
    alone is rejected, with its number (a raw control character is no JSON), and the others
    land; an escaped one in an id (``"n4\\u0000x"``) is refused by name; UTF-16 text (a NUL in
    every other byte) is still quarantined whole."""
    from recassets.ingest.validation import NOT_AN_OBJECT

    day = "2026-03-10"
    t = f"{day}T01:00:00Z"
    folder = Path(_land_lines(paths, day, {}))
    raw = _ev("n2", t).replace('"n2"', '"n2\x00x"')  # the byte itself, not JSON's escape
    assert "\x00" in raw
    lines = [_ev("n1", t), raw, _ev("n3", t), _ev("n4\x00x", t)]  # json.dumps escapes n4's
    # an object or array as the id: its text, spaced as written or as re-printed, was the key
    lines += [_ev("x", t).replace('"x"', '{"a": 1}'), _ev("x", t).replace('"x"', " [1, 2]")]
    lines.append(_ev("{3F2504E0-4F89-11D3-9A0C-0305E82C3301}", t))  # a braced GUID is an id
    (folder / "a.jsonl").write_bytes(("\n".join(lines) + "\n").encode())
    assert (folder / "a.jsonl").read_bytes().count(b"\x00") == 1
    (folder / "b.jsonl").write_bytes((_ev("w1", t) + "\n").encode("utf-16-le"))
    result, _parsers, rejected = _ingest_day(spark, paths, day)
    assert sorted(_landed(paths, result, day)) == sorted(
        ["n1", "n3", "{3F2504E0-4F89-11D3-9A0C-0305E82C3301}"]
    )
    assert [(f, n, fld, why) for f, n, fld, why, _raw in rejected] == [
        ("a.jsonl", 2, None, NOT_AN_OBJECT),
        ("a.jsonl", 4, "event_id", "field event_id: holds a control character"),
        ("a.jsonl", 5, "event_id", "field event_id: a JSON object or array, not an id"),
        ("a.jsonl", 6, "event_id", "field event_id: a JSON object or array, not an id"),
        ("b.jsonl", None, None, "not UTF-8 text (NUL bytes): binary or compressed file?"),
    ]


def test_a_file_appended_to_while_the_run_reads_it_fails_the_run_writing_nothing(
    spark, paths, monkeypatch
):
    """Lines appended after the file's digest was taken had landed with the rest, while its
    lineage recorded the sha256 of a prefix (``--verify`` then said "changed" of a table
    landed as it should). The run now checks, once Spark has read the rows and before it
    writes, that each file is what it digested; the same day, settled, lands whole."""
    from recassets.ingest import LandingChangedError, pipeline

    day = "2026-03-11"
    t = f"{day}T01:00:00Z"
    folder = Path(_land_lines(paths, day, {"a.jsonl": [_ev("c1", t), _ev("c2", t)]}))
    real = pipeline._tally

    def tally_then_append(rows, contract):
        got = real(rows, contract)
        with open(folder / "a.jsonl", "a") as f:
            f.write(_ev("c3", t) + "\n")
        return got

    monkeypatch.setattr(pipeline, "_tally", tally_then_append)
    with pytest.raises(
        LandingChangedError, match=r"a\.jsonl \(\S+ bytes when read, \S+ bytes now\)"
    ):
        ingest(spark, paths, "events", [day])
    assert not (Path(paths.table("raw_events")) / "_delta_log").exists()  # nothing written
    monkeypatch.setattr(pipeline, "_tally", real)
    result, _parsers, rejected = _ingest_day(spark, paths, day)
    assert _landed(paths, result, day) == ["c1", "c2", "c3"] and rejected == []

    def tally_then_touch(rows, contract):  # a new time, the same bytes (a sync tool): fine
        got = real(rows, contract)
        os.utime(folder / "a.jsonl", ns=(1, 1))
        return got

    monkeypatch.setattr(pipeline, "_tally", tally_then_touch)
    again = ingest(spark, paths, "events", [day])
    assert again.rows == 3


def test_whole_number_ids_written_as_floats_land_and_others_are_named(spark, paths):
    """pandas writes an id column holding a missing value as float64: ``5.0`` in JSON and in
    Parquet, and every such row was rejected ("expected bigint, got 5.0"). A whole number
    below 10^15 lands, judged by its value: Spark's JSON reader keeps a number as written,
    the text parser (``from_json``) and a Parquet double re-print it (``1.23456789012345E14``).
    A fraction, or a float too long to hold the id exactly, is refused."""
    ok = [("1", 5.0, 5, 1), ("2", "7.00", 7, 3), ("5", 123456789012345.0, 123456789012345, 1),
          ("6", 1.0e3, 1000, 1)]  # fmt: skip
    # 4.99999999999 rounded to 5 at 10 decimals and landed as user 5
    bad = [
        ("3", 2.5),
        ("4", "1234567890123456.0"),
        ("7", 4.99999999999),
        ("8", "5.00000000001"),
        ("9", "4.999999999999999999999"),
    ]  # 21 decimals: the cast's rounding to 20 made 5
    for day, blank, parser in (("2026-03-12", [], "json"), ("2026-03-13", [""], "text")):
        t = f"{day}T01:00:00Z"
        lines = [_ev(f"f{n}", t, user_id=u, item_id=" 3.0 " if n == "2" else 1) for n, u, *_ in ok]
        lines += [_ev(f"f{n}", t, user_id=u) for n, u in bad]
        folder = Path(_land_lines(paths, day, {"a.jsonl": [*blank, *lines]}))
        pq.write_table(pa.table({"event_id": ["p1", "p2", "p3"], "ts": [t] * 3,
                                 "user_id": pa.array([8.0, None, 12345678.0], pa.float64()),
                                 "item_id": [1.0, 2.0, 3.0], "event_type": ["click"] * 3}),
                       folder / "c.parquet")  # fmt: skip
        result, parsers, rejected = _ingest_day(spark, paths, day)
        assert parsers == [parser]
        rows = _read(result.table_path, result.delta_version, dt=dt.date.fromisoformat(day))
        assert sorted((r["event_id"], r["user_id"], r["item_id"]) for r in rows) == sorted(
            [
                *((f"f{n}", want, item) for n, _u, want, item in ok),
                ("p1", 8, 1),
                ("p3", 12345678, 3),
            ]
        ), parser
        first = len(blank) + len(ok) + 1
        assert [(f, n, fld) for f, n, fld, _why, _raw in rejected] == [
            *(("a.jsonl", first + i, "user_id") for i in range(len(bad))),
            ("c.parquet", 2, "user_id"),
        ], parser  # fmt: skip


def test_links_pipes_and_linked_folders_in_a_day_are_named_not_passed_over(spark, paths, tmp_path):
    """A dangling link, a link loop and a pipe were skipped without a trace (a day of only
    those said "no landing files"); a link to a folder was walked to count its files (a link
    to / would walk the whole disk). Each is quarantined, named; the day's files land."""
    day = "2026-03-08"
    folder = Path(_land_lines(paths, day, {"a.jsonl": [_ev("ok", f"{day}T01:00:00Z")]}))
    (folder / "dangling.jsonl").symlink_to(tmp_path / "nowhere.jsonl")
    (folder / "loop.jsonl").symlink_to(folder / "loop.jsonl")
    os.mkfifo(folder / "pipe.jsonl")
    (folder / "elsewhere").symlink_to(tmp_path)
    result, _parsers, rejected = _ingest_day(spark, paths, day)
    assert _landed(paths, result, day) == ["ok"]
    land = f"land regular files in dt={day}/"
    assert [(f, n, why) for f, n, _fld, why, _raw in rejected] == [
        ("dangling.jsonl", None, f"a dangling symbolic link: not read; {land}"),
        ("elsewhere", None, f"a symbolic link to a folder: not read; {land}"),
        ("loop.jsonl", None, f"a dangling symbolic link: not read; {land}"),
        (
            "pipe.jsonl",
            None,
            f"not a regular file (a pipe, a socket or a device): not read; {land}",
        ),
    ]


def test_names_spark_would_read_as_patterns_and_folders_in_a_day(spark, paths):
    """``part-0000[0].jsonl`` beside ``part-00000.jsonl``: Spark's glob read the second for the
    first, and the first's rows were lost; a name with spaces and brackets failed the day. A
    folder in the day (``hour=10/``) was passed over: now quarantined whole, named. Timestamps
    without a time of day, and an empty event_id, are quarantined (a cast made midnight, or
    today, of them)."""
    day = "2026-03-06"
    t = f"{day}T01:00:00Z"
    folder = _land_lines(
        paths, day,
        {"part-00000.jsonl": [_ev("p0", t)], "part-0000[0].jsonl": [_ev("p1", t)],
         "events [1].jsonl": [_ev("p2", t)],
         "short.jsonl": [_ev("s1", day), _ev("s2", "2026"), _ev("s3", "10:00:00"),
                         _ev("", t), _ev(" \t", t), _ev("s4", f"{day} 01:00")]},
    )  # fmt: skip
    (Path(folder) / "hour=10").mkdir()
    (Path(folder) / "hour=10" / "x.jsonl").write_text(_ev("h1", t) + "\n")
    result, _parsers, rejected = _ingest_day(spark, paths, day)
    assert _landed(paths, result, day) == ["p0", "p1", "p2", "s4"]
    iso = (
        "is not a date and a time of day (ISO 8601: 2026-01-01T10:00:00Z, or an offset, "
        "+01:00; an abbreviation such as CST names several zones)"
    )
    got = [(f, n, fld, why) for f, n, fld, why, _raw in rejected]
    assert got[0] == (
        "hour=10", None, None,
        "a folder inside the day's landing folder, holding 1 file(s): not read; land files "
        f"directly in dt={day}/",
    )  # fmt: skip
    assert got[1:3] == [
        ("short.jsonl", 1, "ts", f"field ts: {day} {iso}"),
        ("short.jsonl", 2, "ts", f"field ts: 2026 {iso}; ts 2026-01-01T00:00:00.000000Z outside "
         f"partition {day}"),
    ]  # fmt: skip
    assert got[3][:3] == ("short.jsonl", 3, "ts") and got[3][3].startswith(
        f"field ts: 10:00:00 {iso}"
    )
    assert got[4:] == [
        ("short.jsonl", 4, "event_id", "field event_id: empty"),
        ("short.jsonl", 5, "event_id", "field event_id: empty"),
    ]
    assert result.partitions[day].quarantined == 6


def test_a_time_without_its_date_never_lands_on_the_day_it_is_ingested(spark, paths):
    """A cast reads "10:00:00Z" or "T10:00" as today and a date padded with spaces as its
    midnight: on the day of the run they landed (a length rule let them by), on any other day
    they were refused as outside the partition, naming a date the producer never wrote. Keys
    of white space, control or invisible characters alone are empty keys."""
    day = dt.datetime.now(dt.UTC).date().isoformat()
    lines = [_ev("t1", "10:00:00.000000Z"), _ev("t2", f"{day}      "),
             _ev("t3", "T10:00:00.000000"), _ev("t4", "10:00:00.000+00:00"),
             _ev("ok1", f"{day}T10:00:00Z"), _ev("ok2", f"{day} 10:00"),
             _ev("\n", f"{day}T10:00:00Z"), _ev("\u00a0\u200b", f"{day}T10:00:00Z")]  # fmt: skip
    _land_lines(paths, day, {"a.jsonl": lines})
    result, _parsers, rejected = _ingest_day(spark, paths, day)
    assert _landed(paths, result, day) == ["ok1", "ok2"]
    fields = [(n, fld, why.split(": ")[0]) for _f, n, fld, why, _raw in rejected]
    assert fields == [(1, "ts", "field ts"), (2, "ts", "field ts"), (3, "ts", "field ts"),
                      (4, "ts", "field ts"), (7, "event_id", "field event_id"),
                      (8, "event_id", "field event_id")]  # fmt: skip
    assert all("is not a date and a time of day" in r[3] for r in rejected[:4])


def test_rfc3339_times_without_seconds_or_in_lower_case_land_at_their_instant(spark, paths):
    """``OffsetDateTime.toString()`` leaves out zero seconds (``10:00Z``, ``10:00+01:00``) and
    RFC 3339 allows a lower-case ``t`` and ``z``: Spark's cast read none of them, so those
    events were quarantined. An hour alone or an offset past 18 hours stays refused."""
    day = "2024-02-29"
    lines = [_ev("a", f"{day}T10:00Z"), _ev("b", f"{day}T10:00+01:00"),
             _ev("c", f"{day}t10:00:00z"), _ev("d", f"{day}T10:00-0100"),
             _ev("e", f" {day}T10:00Z "), _ev("f", f"{day}T10Z"),
             _ev("g", f"{day}T10:00:00+19:00")]  # fmt: skip
    _land_lines(paths, day, {"a.jsonl": lines})
    result, _parsers, rejected = _ingest_day(spark, paths, day)
    rows = _read(result.table_path, result.delta_version, dt=dt.date.fromisoformat(day))
    got = {r["event_id"]: r["ts"].astimezone(dt.UTC).strftime("%H:%M:%S") for r in rows}
    assert got == {"a": "10:00:00", "b": "09:00:00", "c": "10:00:00", "d": "11:00:00",
                   "e": "10:00:00"}  # fmt: skip
    assert [(n, fld) for _f, n, fld, _why, _raw in rejected] == [(6, "ts"), (7, "ts")]


def test_the_preview_of_a_day_past_pandas_calendar_is_made(spark, paths, tmp_path):
    """Pandas' nanosecond times end at 2262-04-11: the preview of a later day (a window opened
    to it on purpose) failed the step after both tables had committed."""
    from types import SimpleNamespace

    from assets.ingest import _preview

    table = str(tmp_path / "events")
    spark.sql(
        "select 'e1' as event_id, timestamp'9998-12-31 23:59:59' as ts, date'9998-12-31' as dt"
    ).write.format("delta").save(table)
    shown = _preview(
        spark, SimpleNamespace(partitions={dt.date(9998, 12, 31): None}, table_path=table)
    )
    assert "9998-12-31 23:59:59" in shown and "e1" in shown


def test_values_off_their_scale_and_nanosecond_parquet_are_quarantined(spark, paths):
    """NaN and infinities parse as doubles but poison every average; a negative watch and a
    rating off 0..5 are nonsense; Java's number literals ("4f", "0x1p2") are not decimals. A pandas Parquet file (nanosecond times, which Spark 4
    refuses for the whole read) is quarantined whole, naming the column, and the day's other
    files still land."""
    day = "2026-03-05"
    t = f"{day}T01:00:00Z"
    a = [
        _ev("e1", t, event_type="rating", value=4.5),  # ok
        _ev("e2", t, event_type="rating", value="NaN"),
        '{"event_id": "e3", "ts": "' + t + '", "user_id": 1, "item_id": 1, '
        '"event_type": "watch", "value": Infinity}',
        _ev("e4", t, event_type="watch", value=-3600),
        _ev("e5", t, event_type="rating", value=6),
        _ev("e6", t, event_type="rating", value=0),  # ok: the scale's floor
        _ev("e7", t, event_type="watch", value=0),  # ok
        _ev("e8", t, event_type="click", value="-Infinity"),
        # Java's literals, which Spark's cast reads as 4.0, are not numbers a producer means
        _ev("e9", t, event_type="rating", value="4f"),
        _ev("e10", t, event_type="watch", value="0x1p2"),
        _ev("e11", t, event_type="rating", value=" 3.5 "),  # ok: a decimal in a string
        _ev("e12", t, event_type="watch", value="1e3"),  # ok
        _ev("e13", t, event_type="watch", value=1e308),  # finite; summed, inf
        _ev("e14", t, event_type="watch", value=604_800),  # ok: a week
    ]
    folder = _land_lines(paths, day, {"a.jsonl": a, "b.jsonl": ['{"x": 1}{"event_id": "e9"}']})
    pq.write_table(
        pa.table(
            {
                "event_id": ["p1"],
                "ts": pa.array([dt.datetime(2026, 3, 5, 2, tzinfo=UTC)], pa.timestamp("ns", "UTC")),
                "user_id": [1], "item_id": [1], "event_type": ["click"],
            }
        ),
        Path(folder) / "c.parquet",
    )  # fmt: skip
    result, _parsers, rejected = _ingest_day(spark, paths, day)
    assert _landed(paths, result, day) == ["e1", "e11", "e12", "e14", "e6", "e7"]
    scale = "is not a finite number, a watch of 0 to 604,800 s, or a rating in 0..5"
    assert [(f, n, fld, why) for f, n, fld, why, _raw in rejected] == [
        ("a.jsonl", 2, "value", f"field value: NaN {scale}"),
        ("a.jsonl", 3, "value", f"field value: Infinity {scale}"),
        ("a.jsonl", 4, "value", f"field value: -3600 {scale}"),
        ("a.jsonl", 5, "value", f"field value: 6 {scale}"),
        ("a.jsonl", 8, "value", f"field value: -Infinity {scale}"),
        ("a.jsonl", 9, "value", "field value: expected double, got 4f"),
        ("a.jsonl", 10, "value", "field value: expected double, got 0x1p2"),
        ("a.jsonl", 13, "value", f"field value: 1e+308 {scale}"),
        ("b.jsonl", None, None,
         "line 1: more than one JSON value on one line (after the first object: "
         "'{\"event_id\": \"e9\"}'); a missing newline between records? Fix the file and land "
         "it again"),
        ("c.parquet", None, None,
         "column ts: nanosecond timestamps, which Spark cannot read; write microseconds "
         "(pandas: df.to_parquet(..., coerce_timestamps='us', allow_truncated_timestamps=True); "
         "pyarrow: pq.write_table(..., coerce_timestamps='us'))"),
    ]  # fmt: skip


# --- Lineage -------------------------------------------------------------------------------------


def _digest(path: Path) -> tuple[int, str]:
    data = path.read_bytes()
    return len(data), hashlib.sha256(data).hexdigest()


def test_lineage_records_each_file_and_the_delta_version(runs):
    manifest = runs.first_lineage
    assert (manifest["table"], manifest["partition"], manifest["run_id"]) == (
        "raw_events",
        D1,
        runs.first.run_id,
    )
    assert (manifest["delta_version"], manifest["quarantine_version"]) == (1, 1)
    assert (manifest["delta_version"], manifest["quarantine_version"]) == (
        runs.first.delta_version, runs.first.quarantine_version
    )  # fmt: skip
    assert (manifest["rows"], manifest["quarantined"]) == (9, 27)
    assert manifest["table_path"] == runs.paths.table("raw_events")
    inputs = {Path(i["path"]).name: i for i in manifest["inputs"]}
    assert sorted(inputs) == sorted(runs.day1)
    for name, path in runs.day1.items():
        entry = inputs[name]
        assert (entry["size"], entry["sha256"]) == _digest(path), name
        assert (entry["path"], entry["day"]) == (str(path), D1)
    assert (inputs["a.jsonl"]["format"], inputs["c.parquet"]["format"], inputs["notes.txt"]["format"]) == (
        "jsonl", "parquet", "unreadable"
    )  # fmt: skip
    assert inputs["a.jsonl"]["problem"] is None
    assert (inputs[EMPTY]["size"], inputs[EMPTY]["format"]) == (0, "jsonl")
    assert inputs["notes.txt"]["problem"] == "unsupported file type .txt: use .jsonl or .parquet"
    # The recorded version holds exactly these rows; the next run recorded its own.
    table = DeltaTable(
        runs.paths.table("raw_events"), version=manifest["delta_version"]
    ).to_pyarrow_table()
    assert table.num_rows == 9
    assert (
        read_lineage(runs.paths, "raw_events", D2)["delta_version"] == runs.day2.delta_version == 3
    )
    day2 = read_lineage(runs.paths, "raw_events", D2)["inputs"]
    assert [(i["size"], i["sha256"]) for i in day2] == [_digest(Path(i["path"])) for i in day2]
    assert read_lineage(runs.paths, "users", D2)["delta_version"] == runs.users.delta_version == 1


def test_day_runs_names_contiguous_empty_days_as_ranges():
    from recassets.ingest.pipeline import day_runs

    days = ["2026-01-05", "2026-01-01", "2026-01-02", "2026-01-03", "2026-01-09", "2026-01-10"]
    assert day_runs(days) == "2026-01-01..2026-01-03, 2026-01-05, 2026-01-09..2026-01-10"
    assert day_runs(["2026-01-31", "2026-02-01"]) == "2026-01-31..2026-02-01"  # across a month
    assert day_runs(["2026-01-01", "2026-01-03"]) == "2026-01-01, 2026-01-03"  # a gap: two runs
    assert day_runs([]) == ""
