"""Bad ``users`` and ``items`` rows are quarantined with their reason, like events: a missing or
null key, a key or timestamp of the wrong type, a duplicate key; the good rows land as they were
written. One ingestion per dataset over one day, each bad kind on a line of its own."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

from deltalake import DeltaTable

from recassets.ingest import ingest
from recassets.paths import Paths

D2 = "2026-01-02"
SEEN = "2026-01-02T10:00:00Z"


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
    ("[1, 2]", ("unparseable JSON: not a JSON object", None)),
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
    (
        {"item_id": 13, "first_seen": "2026-01-01T23:59:59Z"},
        ("first_seen 2026-01-01T23:59:59.000000Z outside partition 2026-01-02", "first_seen"),
    ),
    (
        {"item_id": 10, "first_seen": SEEN, "category": "pop"},
        ("duplicate item_id (first at {file}:1)", "item_id"),
    ),
    ({"item_id": 12, "first_seen": SEEN, "title": 7}, None),  # a string field takes a number's text
]


def _ingest(spark, paths: Paths, dataset: str, rows: list) -> tuple[str, list[dict], list[tuple]]:
    folder = Path(paths.landing_dir(dataset, D2))
    folder.mkdir(parents=True)
    path = folder / "part-00000.jsonl"
    path.write_text(_lines([r for r, _ in rows]))
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
    assert sorted((r["user_id"], r["country"]) for r in table) == [(1, "FR"), (5, None)]
    assert {r["dt"] for r in table} == {dt.date(2026, 1, 2)}
    assert len(table) + len(quarantine) == len(USERS)  # every row in exactly one place


def test_bad_items_are_quarantined_with_their_reason(spark, paths):
    file, table, quarantine = _ingest(spark, paths, "items", ITEMS)
    assert quarantine == _expected(ITEMS, file)
    assert sorted((r["item_id"], r["category"], r["title"]) for r in table) == [
        (10, "jazz", None),
        (12, None, "7"),
    ]
    assert len(table) + len(quarantine) == len(ITEMS)
