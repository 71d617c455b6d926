"""A landing day's files before Spark reads them (``recassets.ingest.files``): lines holding a
second JSON value, lines past Python's own parser limits, and days whose every file is
quarantined whole. Unit tests on the functions, and one run through ``ingest``."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from deltalake import DeltaTable

from recassets.ingest import LandingMissingError, ingest, list_landing_files
from recassets.ingest import files as landing_files
from recassets.ingest.files import _LineScan
from recassets.ingest.lineage import lineage_path
from recassets.ingest.results import TABLE_NAMES
from recassets.landing import file_digest
from recassets.paths import Paths

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DAY = "2026-04-01"
T = f"{DAY}T01:00:00Z"
DEEP = '{"event_id": "deep", "x": ' + "[" * 5000 + "]" * 5000 + "}"
LONG = '{"event_id": "long", "x": ' + "7" * 5000 + "}"


def _ev(event_id: str, **more: object) -> str:
    fields = {"event_id": event_id, "ts": T, "user_id": 1, "item_id": 1, "event_type": "click"}
    return json.dumps(fields | more)


def _check(tmp_path: Path, *lines: str) -> tuple[bool, tuple[str, str] | None]:
    """Whether the sha256 pass suspects the file of ``lines``, and the exact check's verdict."""
    path = tmp_path / "f.jsonl"
    path.write_text("\n".join(lines) + "\n")
    scan = _LineScan()
    file_digest(path, chunk=7, visit=scan)  # a match across a block edge counts too
    return scan.suspect, landing_files._trailing_content(path)


@pytest.mark.parametrize(
    "line, extra",
    [
        ('{"a": 1}][{"b": 2}]', '][{"b": 2}]'),
        ('{"a": 1}],[{"b": 2}]', '],[{"b": 2}]'),
        ('{"a": 1}, [{"b": 2}]', ', [{"b": 2}]'),
        ('{"a": 1},[ [{"b": 2}]]', ',[ [{"b": 2}]]'),
    ],
)
def test_a_record_after_brackets_on_the_line_quarantines_the_file(
    tmp_path: Path, line: str, extra: str
) -> None:
    """Jackson reads the first object and ignores the rest: the second record was in neither
    the table nor the quarantine, the scan not suspecting a '[' between '}]' or '},' and '{'."""
    suspect, verdict = _check(tmp_path, '{"ok": 1}', line)
    assert suspect
    assert verdict is not None and verdict[1].startswith(
        f"line 2: more than one JSON value on one line (after the first object: {extra!r})"
    )


@pytest.mark.parametrize(
    "line, extra",
    [
        ('{"a": 1}, 1', ", 1"),
        ('{"a": 1},null', ",null"),
        ('{"a": 1}, [1, 2]', ", [1, 2]"),
        ('{"a": 1},,', ",,"),
    ],
)
def test_a_value_after_a_comma_that_no_key_can_start_quarantines_the_file(
    tmp_path: Path, line: str, extra: str
) -> None:
    """'}, 1' was not suspected: the first record landed, the rest of the line went nowhere
    (Jackson reads past it), the file counted as JSON Lines."""
    suspect, verdict = _check(tmp_path, '{"ok": 1}', line)
    assert suspect
    assert verdict is not None and verdict[1].startswith(
        f"line 2: more than one JSON value on one line (after the first object: {extra!r})"
    )


def test_a_nested_object_followed_by_the_next_key_is_not_suspected(tmp_path: Path) -> None:
    """The control: '}, "' is every nested object's next key: not suspected, so such files
    keep the fast path; an array of objects is suspected and cleared by the exact parse."""
    line = '{"ctx": {"a": 1}, "ts": 2, "ys": [{"d": 1}], "z": {"e": {"f": 1}}}'
    assert _check(tmp_path, line, line) == (False, None)
    assert _check(tmp_path, '{"xs": [{"b": 1}, {"c": 2}, 3]}') == (True, None)


@pytest.mark.parametrize("token", ["-INF", "+INF", "+Infinity", "-Infinity", "NaN", "Infinity"])
def test_a_line_with_sparks_non_numeric_numbers_is_still_checked(
    tmp_path: Path, token: str
) -> None:
    """Spark's JSON reader takes these numbers (allowNonNumericNumbers), Python's json refused
    the ±INF ones: the line was passed over as unparseable, its first record landed and the
    second was lost."""
    first = '{"a": 1, "score": ' + token + "}"
    assert _check(tmp_path, first + '{"b": 2}')[1] == (
        "unreadable",
        "line 1: more than one JSON value on one line (after the first object: "
        "'{\"b\": 2}'); a missing newline between records? Fix the file and land it again",
    )
    assert _check(tmp_path, first, '{"c": "{name}s"}') == (True, None)  # one value a line


@pytest.mark.parametrize(
    "line",
    [
        '{"a": INF}{"b": 2}',  # INF, +NaN, nan, 01, +1, .5: Spark's corrupt records
        '{"a": +NaN}{"b": 2}',
        '{"a": nan}{"b": 2}',
        '{"a": 01}{"b": 2}',
        '{"a": +1}{"b": 2}',
        '{"a": .5}{"b": 2}',
        "{'a': 1}{'b': 2}",  # allowSingleQuotes is off
        '{"a": 1,}{"b": 2}',
        '{"a": tru}{"b": 2}',
        '{"a" 1}{"b": 2}',
        '{"a": "\x01"}{"b": 2}',
    ],
)
def test_a_line_spark_cannot_parse_is_left_to_its_row_reject(tmp_path: Path, line: str) -> None:
    """Spark quarantines such a line as a row, its text whole, both records in it: the file
    is not quarantined whole."""
    assert _check(tmp_path, line) == (True, None)


@pytest.mark.parametrize("line", [DEEP, LONG])
def test_a_line_past_pythons_json_limits_is_checked_without_crashing(
    tmp_path: Path, line: str
) -> None:
    """Nested 5,000 deep, or a number of 5,000 digits: Python's json raised RecursionError or
    ValueError (not JSONDecodeError), and the whole run failed naming no file. Alone on its
    line it is left to Spark (a row past Jackson's limits, quarantined with its text); with a
    record after it, the file is quarantined whole."""
    suspect, verdict = _check(tmp_path, _ev("e1", country="{name}s"), line)
    assert (suspect, verdict) == (True, None)
    verdict = _check(tmp_path, _ev("e1"), line + '{"b": 2}')[1]
    assert verdict is not None and verdict[1].startswith(
        "line 2: more than one JSON value on one line (after the first object: '{\"b\": 2}')"
    )


def _land(paths: Paths, dataset: str, day: str, files: dict[str, bytes]) -> Path:
    folder = Path(paths.landing_dir(dataset, day))
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


GZ = gzip.compress(b'{"event_id": "e1"}\n', mtime=0)
UNSUPPORTED = "unsupported file type {}: use .jsonl or .parquet"


@pytest.mark.parametrize("dataset", ["events", "users"])
def test_a_day_whose_every_file_is_quarantined_whole_is_refused(paths: Paths, dataset: str) -> None:
    """A day landed again as .gz or .csv was ingested as 0 rows and 1 quarantined file,
    replacing the rows it held, the run a success. Refused, alone, in a range and for a
    dimension alike (a day emptied on purpose is an empty folder), naming the day's folder
    and each file with its reason; a day with one readable file is unaffected."""
    day2 = "2026-04-02"
    folder = _land(paths, dataset, DAY, {"day.jsonl.gz": GZ, "day.csv": b"a,b\n1,2\n"})
    _land(paths, dataset, day2, {"a.jsonl": b'{"x": 1}\n'})
    missing = dataset == "users"
    # never ingested: nothing to lose, the files quarantined whole as before, and the range's
    # other days go on (one such day held back a whole backfill)
    files = list_landing_files(paths, dataset, [DAY, day2], allow_missing_days=missing)
    assert sorted(f.format for f in files) == ["jsonl", "unreadable", "unreadable"]
    manifest = Path(lineage_path(paths, TABLE_NAMES[dataset], DAY))
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text(json.dumps({"rows": 5}))  # its last ingestion landed 5 rows
    for days in ([DAY], [DAY, day2]):
        with pytest.raises(LandingMissingError) as err:
            list_landing_files(paths, dataset, days, allow_missing_days=missing)
        assert str(err.value) == (
            f"no readable landing files for {dataset} on 1 day(s), each file quarantined whole; "
            f"looked in: {folder} (only day.csv (8 bytes): {UNSUPPORTED.format('.csv')}; "
            f"day.jsonl.gz ({len(GZ)} bytes): {UNSUPPORTED.format('.gz')}) (ingested, the day "
            "would lose the rows it holds: fix the files and land them again, or move them "
            "out to leave a day without files)"
        )
    (folder / "empty.jsonl").write_bytes(b"")  # a file of no record changes nothing
    (folder / "hour=10").mkdir()  # nor does a folder, quarantined whole too
    with pytest.raises(LandingMissingError) as err:
        list_landing_files(paths, dataset, [DAY], allow_missing_days=missing)
    assert "empty.jsonl (0 bytes): no record in it" in str(err.value)
    assert "hour=10: a folder inside the day's landing folder" in str(err.value)
    (folder / "b.jsonl").write_bytes(b'{"x": 1}\n')  # one readable file: the day is read
    files = list_landing_files(paths, dataset, [DAY], allow_missing_days=missing)
    assert sorted((Path(f.path).name, f.format) for f in files) == [
        ("b.jsonl", "jsonl"), ("day.csv", "unreadable"), ("day.jsonl.gz", "unreadable"),
        ("empty.jsonl", "jsonl"), ("hour=10", "unreadable"),
    ]  # fmt: skip


def test_a_day_landed_again_unreadable_keeps_its_rows_and_deep_lines_are_row_rejects(
    spark: SparkSession, paths: Paths
) -> None:
    """Through ``ingest``: a day whose file is suspected (``"{name}s"``) and holds a line
    nested 5,000 deep and one of a 5,000-digit number lands its records and quarantines those
    two lines, named (the run failed, naming nothing); landed again as .gz alone, it is
    refused and its rows stay."""
    lines = [_ev(f"e{i}") for i in range(1, 6)] + [_ev("e6", country="{name}s"), DEEP, LONG]
    folder = _land(paths, "events", DAY, {"day.jsonl": ("\n".join(lines) + "\n").encode()})
    result = ingest(spark, paths, "events", [DAY])
    quarantine = DeltaTable(paths.table("quarantine"), version=result.quarantine_version)
    rejected = sorted(
        (r["line"], r["reason"].startswith("unparseable JSON"))
        for r in quarantine.to_pyarrow_table().to_pylist()
    )
    assert (result.rows, rejected) == (6, [(7, True), (8, True)])
    (folder / "day.jsonl").unlink()
    (folder / "day.jsonl.gz").write_bytes(GZ)
    with pytest.raises(LandingMissingError, match=r"day\.jsonl\.gz \(\d+ bytes\): unsupported"):
        ingest(spark, paths, "events", [DAY])
    table = DeltaTable(paths.table("raw_events")).to_pyarrow_table().to_pylist()
    assert sorted(r["event_id"] for r in table) == [f"e{i}" for i in range(1, 7)]
    assert {r["dt"] for r in table} == {dt.date.fromisoformat(DAY)}


def test_the_scan_flags_a_surrogates_escape_even_across_two_blocks():
    """Only a file that holds a \\ud800-\\udfff escape pays the second pass that finds lone
    surrogates (``parsing._lone_surrogate``)."""
    from recassets.ingest.files import _LineScan

    def scanned(*blocks: bytes) -> bool:
        scan = _LineScan()
        for block in blocks:
            scan(block)
        return scan.surrogate

    assert scanned(b'{"title": "cut \\ud83d"}\n')
    assert scanned(b'{"title": "cut \\u', b'D83D"}\n')  # the escape split by the read
    assert not scanned(b'{"title": "caf\\u00e9 \\\\ud"}\n')  # another escape; an escaped "\"


@pytest.mark.parametrize("chunk", [7, 1000, 1 << 20])
def test_the_scan_flags_a_text_field_given_an_object_or_array_and_not_a_flat_file(
    tmp_path: Path, chunk: int
) -> None:
    """The scan sends a file to the value check (``parsing._nested_in_text``) only where a
    text field of the contract is given an object or an array, at any block size; a flat file
    and a brace inside a string are not flagged (another field's nested key of the same name
    is: the parse tells it apart, ``test_ingest.py``)."""
    from recassets.events import EVENTS

    pattern = landing_files.nested_pattern(EVENTS.plain_strings)
    flat = [_ev(f"e{i}", surface="{home}") for i in range(200)]
    cases = {
        "flat": (flat, False),
        "another field's key": ([*flat, _ev("x", ctx={"surface": {"a": 1}})], True),
        "another field's object": ([*flat, _ev("x", ctx={"a": [1]})], False),
        "an object": ([*flat[:100], _ev("x", surface={"a": 1}), *flat[100:]], True),
        "an array": ([*flat[:100], _ev("x", country=[1, 2]), *flat[100:]], True),
        "after a blank line": ([*flat[:100], "", _ev("x", device={"b": 2}), *flat[100:]], True),
    }
    for name, (lines, flagged) in cases.items():
        path = tmp_path / "f.jsonl"
        path.write_text("\n".join(lines) + "\n")
        scan = _LineScan(pattern)
        file_digest(path, chunk=chunk, visit=scan)
        assert scan.nested is flagged, name
