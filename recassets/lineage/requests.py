"""A served request, found by its id in the decision log, as the root of a lineage tree.

``find_request`` looks in the Delta table ``serving_log`` first (delta-rs, no JVM), then, for
an answer not ingested yet, in the landed JSON Lines files of ``<landing>/serving_log/``
(newest day first; dot-names, files still being written, skipped as ingestion skips them).
``request_node`` makes its node; ``graph`` continues from the bento tag it names into the
bento's own lineage (models, index, feature store, down to the landing files).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recassets.bento.decisions import DATASET
from recassets.lineage.graph import ASSET_KEYS, Node
from recassets.paths import Paths

MAX_ITEMS_SHOWN = 10


@dataclass
class Found:
    record: dict[str, Any]  # the decision record (items parsed back from their JSON)
    where: str  # "serving_log@3 dt=2026-01-03", or "<landing file> line 4"
    others: int = 0  # more records with this id (a client reusing an id on another day)

    @property
    def bento(self) -> str | None:
        tag = self.record.get("bento")
        return str(tag).lower() if tag else None


def find_request(paths: Paths, request_id: str) -> Found | None:
    """The decision record of ``request_id`` (the latest, if a client reused the id), or None.
    The table holds the ingested days; a landed record newer than its newest is a later
    answer not ingested yet (before, the table's was taken whenever it had one)."""
    table, landed = _in_table(paths, request_id), _in_landing(paths, request_id)
    if table is None or landed is None:
        return table or landed
    if _when(landed.record) > _when(table.record):
        landed.others += table.others + 1
        return landed
    return table


def _when(record: dict[str, Any]) -> dt.datetime:
    """A record's ``ts`` as a time (the writer's ``...Z``, the table's ``+00:00``)."""
    try:
        when = dt.datetime.fromisoformat(str(record.get("ts")).replace("Z", "+00:00"))
    except ValueError:
        return dt.datetime.min.replace(tzinfo=dt.UTC)
    return when if when.tzinfo else when.replace(tzinfo=dt.UTC)  # no zone: UTC, as written


def _in_table(paths: Paths, request_id: str) -> Found | None:
    import pyarrow.compute as pc

    from recassets.lake import open_delta

    path = paths.table(DATASET)
    if not (Path(path) / "_delta_log").is_dir():
        return None
    table = open_delta(path)
    rows = (
        table.to_pyarrow_dataset().to_table(filter=pc.field("request_id") == request_id).to_pylist()
    )
    if not rows:
        return None
    rows.sort(key=lambda r: r["ts"])
    record = dict(rows[-1])
    record["ts"] = record["ts"].isoformat()
    record["items"] = _items(record.get("items"))
    where = f"{DATASET}@{table.version()} dt={record['dt']}"
    return Found(record, where, len(rows) - 1)


def _in_landing(paths: Paths, request_id: str) -> Found | None:
    needle = json.dumps(request_id)  # as the writer wrote it: "request_id":"<id>"
    for files in _landed_days(paths):  # the newest day that has it
        found: list[Found] = []
        for file in files:
            with open(file, encoding="utf-8", errors="replace") as f:
                for n, line in enumerate(f, start=1):
                    if needle in line and (record := _record(line, request_id)) is not None:
                        found.append(Found(record, f"{file} line {n}"))
        if found:
            found.sort(key=lambda f: str(f.record.get("ts")))
            found[-1].others = len(found) - 1
            return found[-1]
    return None


def _record(line: str, request_id: str) -> dict[str, Any] | None:
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict) or record.get("request_id") != request_id:
        return None
    record["items"] = _items(record.get("items"))
    return record


def _landed_days(paths: Paths) -> Iterator[list[Path]]:
    """The decision log's landed files by day, newest first, listed as ingestion lists them."""
    for day in reversed(paths.landed_days(DATASET)):
        folder = Path(paths.landing_dir(DATASET, day))
        yield sorted(
            p for p in folder.glob("*") if p.is_file() and not p.name.startswith((".", "_"))
        )


def _items(value: Any) -> list[Mapping[str, Any]]:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return []
    return [i for i in value if isinstance(i, Mapping)] if isinstance(value, list) else []


def _served(items: list[Mapping[str, Any]]) -> str:
    def score(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, int | float) else str(v)

    shown = [
        f"{i.get('item_id')} ({score(i.get('score'))}, {i.get('source')})"
        for i in items[:MAX_ITEMS_SHOWN]
    ]
    more = len(items) - MAX_ITEMS_SHOWN
    return ", ".join(shown) + (f", and {more} more" if more > 0 else "")


def request_node(found: Found) -> Node:
    """The node of an answer: who was served what, when, by which policy and models."""
    r = found.record
    rid = str(r.get("request_id"))
    items = list(r.get("items") or [])
    node = Node(f"request {rid}", "request", ASSET_KEYS[DATASET], dataset=found.where)
    node.facts = {
        "day": str(r.get("ts"))[:10],
        "served_at": r.get("ts"),
        "endpoint": r.get("endpoint"),
        "user_id": r.get("user_id"),
        "policy": r.get("policy"),
        "features_day": r.get("features_day"),
        "two_tower": r.get("two_tower"),
        "ranking": r.get("ranking"),
        "bento": found.bento,
        "items": f"{len(items)}: {_served(items)}" if items else 0,
        "found_in": found.where,
    }
    if found.others:
        node.facts["same_id_served"] = f"{found.others} other time(s); this is the latest"
    if not found.bento:
        node.unrecorded.append("the bento that answered (the record names none)")
    return node


__all__ = ["Found", "find_request", "request_node"]
