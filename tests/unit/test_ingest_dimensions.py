"""Bad ``users`` and ``items`` rows are quarantined with their reason, like events: a missing or
null key, a key or timestamp of the wrong type, a duplicate key; the good rows land as they were
written. One ingestion per dataset over one day, each bad kind on a line of its own."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from deltalake import DeltaTable

from recassets.ingest import ingest
from recassets.ingest.parsing import LONE_SURROGATE
from recassets.ingest.validation import NOT_AN_OBJECT, PLACEHOLDER_BEFORE
from recassets.paths import Paths

D2 = "2026-01-02"
SEEN = "2026-01-02T10:00:00Z"
PLACEHOLDER = f"reads as a placeholder, not a time (before {PLACEHOLDER_BEFORE})"


def _lone(field: str) -> str:
    return f"field {field}: {LONE_SURROGATE}"


def _lines(rows: list[dict | str]) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n"


# line -> (row, the reason it is quarantined for, or None: it lands)
USERS: list[tuple[dict | str, tuple[str, str | None] | None]] = [
    ({"user_id": 1, "first_seen": SEEN, "country": "FR"}, None),
    ({"first_seen": SEEN, "country": "DE"}, ("missing field user_id", "user_id")),
    ({"user_id": None, "first_seen": SEEN}, ("missing field user_id", "user_id")),
    (
        {"user_id": "abc", "first_seen": SEEN},
        ("field user_id: expected bigint, got abc", "user_id"),
    ),
    (
        {"user_id": 2.5, "first_seen": SEEN},
        ("field user_id: expected bigint, got 2.5", "user_id"),
    ),
    (
        {"user_id": True, "first_seen": SEEN},
        ("field user_id: expected bigint, got true", "user_id"),
    ),
    (
        {"user_id": 3, "first_seen": "yesterday"},
        ("field first_seen: expected timestamp, got yesterday", "first_seen"),
    ),
    ({"user_id": 4}, ("missing field first_seen", "first_seen")),
    (
        {"user_id": 1, "first_seen": SEEN, "country": "US"},
        ("duplicate user_id (first at {file}:1)", "user_id"),
    ),
    ({"user_id": "5", "first_seen": SEEN}, None),  # a number written as a string parses
    ("[1, 2]", (NOT_AN_OBJECT, None)),
    # placeholders for "unknown" landed as real first_seen values (Go's zero time, the epoch,
    # the Gregorian calendar's first days), an item ~739,000 days old
    *(
        (
            {"user_id": 20 + n, "first_seen": seen},
            (f"first_seen {shown} {PLACEHOLDER}", "first_seen"),
        )
        for n, (seen, shown) in enumerate(
            [
                ("0001-01-01T00:00:00Z", "0001-01-01T00:00:00.000000Z"),
                ("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000000Z"),
                ("1970-01-01T00:00:00.999Z", "1970-01-01T00:00:00.999000Z"),
                ("1969-12-31T23:59:59Z", "1969-12-31T23:59:59.000000Z"),
                ("1582-10-10T00:00:00Z", "1582-10-10T00:00:00.000000Z"),
            ]
        )
    ),
    ({"user_id": 30, "first_seen": "1970-01-01T00:00:01Z"}, None),  # the first second past it
    # a lone surrogate escape (JavaScript's slice of a string cut mid-emoji) had landed as "F?"
    ({"user_id": 31, "first_seen": SEEN, "gender": "F\ud83d"}, (_lone("gender"), "gender")),
]
ITEMS: list[tuple[dict | str, tuple[str, str | None] | None]] = [
    ({"item_id": 10, "first_seen": SEEN, "category": "jazz"}, None),
    ({"first_seen": SEEN, "category": "rock"}, ("missing field item_id", "item_id")),
    ({"item_id": None, "first_seen": SEEN}, ("missing field item_id", "item_id")),
    (
        {"item_id": "x10", "first_seen": SEEN},
        ("field item_id: expected bigint, got x10", "item_id"),
    ),
    (
        {"item_id": 99999999999999999999, "first_seen": SEEN},
        ("field item_id: expected bigint, got 99999999999999999999", "item_id"),
    ),
    (
        {"item_id": 11, "first_seen": 12},
        ("field first_seen: expected timestamp, got 12", "first_seen"),
    ),
    # first seen before the day it lands: lands (a dump of known items, an export after
    # midnight); after it: quarantined
    ({"item_id": 13, "first_seen": "2026-01-01T23:59:59Z"}, None),
    ({"item_id": 17, "first_seen": "2019-05-01T08:00:00Z"}, None),
    (
        {"item_id": 18, "first_seen": "2026-01-03T00:00:00Z"},
        ("first_seen 2026-01-03T00:00:00.000000Z after partition 2026-01-02", "first_seen"),
    ),
    (
        {"item_id": 10, "first_seen": SEEN, "category": "pop"},
        ("duplicate item_id (first at {file}:1)", "item_id"),
    ),
    ({"item_id": 12, "first_seen": SEEN, "title": 7}, None),  # a string field takes a number's text
    # a vocabulary's key of 100 KB ran the evaluation out of memory: keys are capped, titles
    # (text) at 1,000 characters
    (
        {"item_id": 14, "first_seen": SEEN, "category": "c" * 300},
        ("field category: 300 characters, more than 256", "category"),
    ),
    ({"item_id": 15, "first_seen": SEEN, "title": "t" * 1000}, None),
    (
        {"item_id": 16, "first_seen": SEEN, "title": "t" * 1001},
        ("field title: 1001 characters, more than 1000", "title"),
    ),
    ({"item_id": 19, "first_seen": SEEN, "title": "cut emoji \ud83d"}, (_lone("title"), "title")),
    ({"item_id": 20, "first_seen": SEEN, "title": "emoji \ud83d\ude00"}, None),  # a pair
]


def _ingest(
    spark, paths: Paths, dataset: str, rows: list, parquet: pa.Table | None = None
) -> tuple[str, list[dict], list[tuple]]:
    folder = Path(paths.landing_dir(dataset, D2))
    folder.mkdir(parents=True)
    path = folder / "part-00000.jsonl"
    path.write_text(_lines([r for r, _ in rows]))
    if parquet is not None:
        pq.write_table(parquet, folder / "part-00001.parquet")
    result = ingest(spark, paths, dataset, [D2])
    table = DeltaTable(result.table_path).to_pyarrow_table().to_pylist()
    quarantine = [
        (r["line"], r["reason"], r["field"])
        for r in DeltaTable(paths.table("quarantine")).to_pyarrow_table().to_pylist()
        if r["dataset"] == dataset
    ]
    return str(path), table, sorted(quarantine)


def _expected(rows: list, file: str) -> list[tuple]:
    return [
        (line, why[0].format(file=file), why[1])
        for line, (_, why) in enumerate(rows, start=1)
        if why is not None
    ]


def test_bad_users_are_quarantined_with_their_reason(spark, paths):
    file, table, quarantine = _ingest(spark, paths, "users", USERS)
    assert quarantine == _expected(USERS, file)
    assert sorted((r["user_id"], r["country"]) for r in table) == [(1, "FR"), (5, None), (30, None)]
    assert {r["dt"] for r in table} == {dt.date(2026, 1, 2)}
    assert len(table) + len(quarantine) == len(USERS)  # every row in exactly one place


def test_bad_items_are_quarantined_with_their_reason(spark, paths):
    utc = dt.UTC
    seen = [dt.datetime(1, 1, 1, tzinfo=utc), dt.datetime(1500, 6, 1, tzinfo=utc),
            dt.datetime(1970, 1, 2, tzinfo=utc)]  # fmt: skip
    parquet = pa.table({"item_id": pa.array([40, 41, 42], pa.int64()),
                        "first_seen": pa.array(seen, pa.timestamp("us", tz="UTC"))})  # fmt: skip
    file, table, quarantine = _ingest(spark, paths, "items", ITEMS, parquet)
    assert quarantine == sorted(
        [
            *_expected(ITEMS, file),
            (1, f"first_seen 0001-01-01T00:00:00.000000Z {PLACEHOLDER}", "first_seen"),
            (2, f"first_seen 1500-06-01T00:00:00.000000Z {PLACEHOLDER}", "first_seen"),
        ]
    )
    assert sorted((r["item_id"], r["category"], r["title"]) for r in table) == [
        (10, "jazz", None),
        (12, None, "7"),
        (13, None, None),
        (15, None, "t" * 1000),
        (17, None, None),
        (20, None, "emoji \U0001f600"),
        (42, None, None),
    ]
    assert len(table) + len(quarantine) == len(ITEMS) + 3


def _land(paths: Paths, dataset: str, day: str, rows: list[dict]) -> None:
    folder = Path(paths.landing_dir(dataset, day))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "part-00000.jsonl").write_text(_lines(rows))


def _user(user_id: int, day: str, country: str) -> dict:
    return {"user_id": user_id, "first_seen": f"{day}T08:00:00Z", "country": country}


def test_a_user_landed_again_on_a_later_day_is_quarantined_not_doubled(spark, paths):
    """A producer re-sending its profiles: the key already in the table (another partition) or
    on an earlier day of the same run is quarantined naming that day; re-ingesting the day that
    holds it is a replacement, not a repeat. Before, user 1 landed twice and every reader's join
    on users doubled its rows."""
    d1, d3, d4 = "2026-01-01", "2026-01-03", "2026-01-04"
    _land(paths, "users", d1, [_user(1, d1, "DE"), _user(2, d1, "DE")])
    ingest(spark, paths, "users", [d1])
    _land(paths, "users", d3, [_user(1, d3, "FR"), _user(3, d3, "FR")])
    _land(paths, "users", d4, [_user(3, d4, "IT"), _user(4, d4, "IT")])
    result = ingest(spark, paths, "users", [d3, d4])  # 1: in the table; 3: on d3 of this run
    table = DeltaTable(result.table_path).to_pyarrow_table().to_pylist()
    assert sorted((r["user_id"], r["country"]) for r in table) == [
        (1, "DE"), (2, "DE"), (3, "FR"), (4, "IT"),
    ]  # fmt: skip
    why = "({} land once; changes travel on events)".format("users")
    quarantine = sorted(
        (r["dt"].isoformat(), r["line"], r["reason"], r["field"])
        for r in DeltaTable(paths.table("quarantine")).to_pyarrow_table().to_pylist()
    )
    assert quarantine == [
        (d3, 1, f"user_id 1 already landed on {d1} {why}", "user_id"),
        (d4, 1, f"user_id 3 already landed on {d3} {why}", "user_id"),
    ]
    assert (result.rows, result.quarantined) == (2, 2)
    again = ingest(spark, paths, "users", [d1])  # d1 replaced: its own keys are not repeats
    assert (again.rows, again.quarantined) == (2, 0)


def test_an_earlier_day_landing_late_says_how_to_keep_its_row(spark, paths):
    """User 50 landed on d3; its row of d2 lands afterwards (a late folder: the landing
    sensor ingests that day alone). The row of d3 stays and the d2 row is quarantined,
    saying so and naming the one run over both days that keeps the earlier row; that run
    does."""
    d2, d3 = "2026-01-02", "2026-01-03"
    _land(paths, "users", d3, [_user(50, d3, "DE")])
    ingest(spark, paths, "users", [d3])
    _land(paths, "users", d2, [_user(50, d2, "FR")])
    late = ingest(spark, paths, "users", [d2])
    assert (late.rows, late.quarantined) == (0, 1)
    (row,) = DeltaTable(paths.table("quarantine")).to_pyarrow_table().to_pylist()
    assert row["reason"] == (
        f"user_id 50 already landed on {d3}, a later day: that row stays; to keep this earlier "
        f"one, ingest both days in one run (recassets materialize --select lake/users --first "
        f"{d2} --last {d3})"
    )
    both = ingest(spark, paths, "users", [d2, d3])
    table = DeltaTable(both.table_path).to_pyarrow_table().to_pylist()
    assert [(r["user_id"], r["country"], r["dt"].isoformat()) for r in table] == [(50, "FR", d2)]
