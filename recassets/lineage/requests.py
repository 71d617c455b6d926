"""A served request, found by its id in the decision log, as the root of a lineage tree.

``find_request`` looks in the Delta table ``serving_log`` first (delta-rs, no JVM), then, for
an answer not ingested yet, in the landed JSON Lines files of ``<landing>/serving_log/``
(newest day first; dot-names, files still being written, skipped as ingestion skips them).
``request_node`` makes its node; ``graph`` continues from the bento tag it names into the
bento's own lineage (models, index, feature store, down to the landing files).

A landed file that a day's ingestion read (its manifest lists it, at its size) is not searched:
its records are in the table, or were quarantined, and a quarantined line is no answer. A
landed record that breaks the decision log's contract (``events.SERVING_LOG``: a user id that
is no integer, an endpoint the service has not) is shown ``damaged`` and fails ``--verify``;
so does one whose policy or model versions are not what the bento it names serves
(``disagreement``). Before 2026-12-06 a line appended to a landed file, or a file added to an
ingested day, was shown as a served answer and vouched for.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import re
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
    file: str | None = None  # the landed file it was read from (None: the table)
    problem: str | None = None  # how a landed record breaks the decision log's contract

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

    from recassets.lake import existing_delta

    table = existing_delta(paths.table(DATASET))
    if table is None:
        return None
    import pyarrow as pa

    try:
        rows = (
            table.to_pyarrow_dataset()
            .to_table(filter=pc.field("request_id") == request_id)
            .to_pylist()
        )
    except pa.ArrowNotImplementedError:  # files another writer made (delta-rs's string_view
        # statistics: an UPDATE outside recassets), which the filter's pushdown cannot compare
        whole = table.to_pyarrow_dataset().to_table()
        ids = pc.cast(whole["request_id"], pa.string())
        rows = whole.filter(pc.equal(ids, request_id)).to_pylist()
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
        for file, read in files:
            with open(file, "rb") as raw:  # past what the day's ingestion read, if it did
                start = raw.read(read).count(b"\n") + 1 if read else 1
                f = io.TextIOWrapper(raw, encoding="utf-8", errors="replace")
                for n, line in enumerate(f, start=start):
                    if needle in line and (record := _record(line, request_id)) is not None:
                        problem = _contract_problem(record)
                        found.append(Found(record, f"{file} line {n}", 0, str(file), problem))
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
    record["items"] = _items(record.get("items"), raw=True)
    return record


def _contract_problem(record: Mapping[str, Any]) -> str | None:
    """Why a landed record is no decision record ingestion would land (``events.SERVING_LOG``),
    or None: what a served answer needs, checked as the contract types them."""
    from recassets.events import SERVING_ENDPOINTS, SERVING_ITEMS_RULE, SERVING_LOG

    for f in SERVING_LOG.fields:
        value = record.get(f.name)
        if value is None:
            if f.required:
                return f"breaks the decision log's contract: no {f.name}"
        elif f.type == "bigint" and not (
            (type(value) is int or (type(value) is float and value.is_integer()))
            and -(2**63) <= value < 2**63
        ):
            return f"breaks the decision log's contract: {f.name} {str(value)[:40]!r} is no integer"
        elif f.type != "bigint" and f.name != "items" and not isinstance(value, str):
            return f"breaks the decision log's contract: {f.name} is no string"
        elif f.pattern and not re.fullmatch(f.pattern, str(value)):
            return f"breaks the decision log's contract: {f.name} {str(value)[:40]!r} is not of the form {f.pattern}"
    for name, allowed in SERVING_LOG.allowed.items():
        if record.get(name) is not None and record.get(name) not in allowed:
            return f"breaks the decision log's contract: {name} {str(record.get(name))[:40]!r}"
    if record.get("endpoint") not in SERVING_ENDPOINTS:
        return f"breaks the decision log's contract: endpoint {str(record.get('endpoint'))[:40]!r}"
    if _when(dict(record)) == dt.datetime.min.replace(tzinfo=dt.UTC):
        return f"breaks the decision log's contract: ts {str(record.get('ts'))[:40]!r}"
    if not isinstance(record.get("items"), list):
        return "breaks the decision log's contract: items is no JSON list of items"
    if any(_item_broken(i) for i in record["items"]):
        return f"breaks the decision log's contract: items {SERVING_ITEMS_RULE}"
    return None


def _item_broken(item: Any) -> bool:
    """Whether one of a record's items breaks ``events.SERVING_ITEM_NUMBERS``, as ingestion's
    ``validation._items_broken`` reads it: no object, no integer item id or finite score, or
    an ad's figure that is no finite number (an integer slot)."""
    if not isinstance(item, Mapping) or item.get("item_id") is None or item.get("score") is None:
        return True
    from recassets.events import SERVING_ITEM_NUMBERS

    for name, kind in SERVING_ITEM_NUMBERS.items():
        v = item.get(name)
        if v is None:
            continue
        if type(v) is bool or not isinstance(v, int | float):
            return True
        if kind is int and not (isinstance(v, int) or v.is_integer()):
            return True
        if not math.isfinite(v):
            return True
    return False


def disagreement(record: Mapping[str, Any], served: Mapping[str, Any]) -> str | None:
    """How a decision record's policy and model versions differ from what the bento it names
    serves (``served``: the bento manifest's ``policy``), or None. A record is the service's
    copy of what it did: one naming another policy or model than its bento's is no copy."""
    said = {"policy": record.get("policy")} if record.get("policy") != "cold_start" else {}
    if served.get("policy") == "popularity" and said.get("policy") not in (None, "popularity"):
        return f"it says policy {said['policy']!r}; the bento serves popularity"
    if served.get("policy") == "model":
        for kind in ("two_tower", "ranking"):
            version, path = record.get(kind), str(served.get(kind) or "")
            if version and not path.endswith(f"/{version}.pt"):
                return f"it says {kind} {str(version)[:40]!r}; the bento serves {Path(path).stem}"
    return None


def _landed_days(paths: Paths) -> Iterator[list[tuple[Path, int]]]:
    """The decision log's landed files by day, newest first, listed as ingestion lists them,
    each with the bytes that day's ingestion read of it (``_ingested``; 0: none): a file read
    whole is left out, one that grew since is searched past what was read."""
    for day in reversed(paths.landed_days(DATASET)):
        folder = Path(paths.landing_dir(DATASET, day))
        read = _ingested(paths, day.isoformat())
        files = sorted(p for p in folder.glob("*") if p.is_file() and not p.name.startswith((".", "_")))  # fmt: skip
        yield [(p, n) for p in files if (n := _read_part(read.get(str(p)), _size(p))) is not None]


def _read_part(read: int | None, size: int | None) -> int | None:
    """How much of a file to skip: what ingestion read of it when the file still starts with
    it (it grew), 0 when it read none or the file shrank (rewritten), None when read whole."""
    if read is None or size is None or size < read:
        return 0
    return None if size == read else read


def _ingested(paths: Paths, day: str) -> dict[str, int]:
    """The files the latest ingestion of ``day`` read, by path, with their size then (its
    lineage manifest's inputs; none when the day was not ingested or its manifest is damaged:
    then every file is searched, as before)."""
    from recassets.ingest.lineage import lineage_path

    try:
        manifest = json.loads(Path(lineage_path(paths, DATASET, day)).read_text())
        inputs = manifest["inputs"]
        return {str(f["path"]): f["size"] for f in inputs if isinstance(f, dict) and "path" in f}
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _size(p: Path) -> int | None:
    try:
        return p.stat().st_size
    except OSError:
        return None


def _items(value: Any, *, raw: bool = False) -> Any:
    """The items of a record: its JSON text (the table's column, the writer's field) parsed
    back, keeping the mappings; ``raw``: kept as it is (no list, or a list of other than
    mappings), for the contract check to name."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value if raw else []
    if not isinstance(value, list):
        return value if raw else []
    return value if raw else [i for i in value if isinstance(i, Mapping)]


def _served(items: list[Mapping[str, Any]]) -> str:
    def score(v: Any) -> str:
        return f"{v:.4g}" if isinstance(v, int | float) else str(v)

    shown = [
        f"{i.get('item_id')} ({score(i.get('score'))}, {i.get('source')})"
        for i in items[:MAX_ITEMS_SHOWN]
    ]
    more = len(items) - MAX_ITEMS_SHOWN
    return ", ".join(shown) + (f", and {more} more" if more > 0 else "")


def request_node(found: Found, paths: Paths | None = None) -> Node:
    """The node of an answer: who was served what, when, by which policy and models; with
    ``paths``, checked against what the bento it names serves (``disagreement``)."""
    r = found.record
    rid = str(r.get("request_id"))
    items = (
        [i for i in r["items"] if isinstance(i, Mapping)]
        if isinstance(r.get("items"), list)
        else []
    )
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
    if found.problem and found.file:  # a landed line that is no decision record
        node.manifest = (found.file, "damaged", f"{found.where}: {found.problem}")
    elif paths is not None and (served := _served_by(paths, found.bento)) is not None:
        if (why := disagreement(r, served)) is not None:
            node.manifest = (found.file or found.where, "changed", f"{found.where}: {why}")
    return node


def _served_by(paths: Paths, tag: str | None) -> dict[str, Any] | None:
    """The policy the bento ``tag`` serves (its bundle manifest's ``policy``), or None when
    there is no such bento or its manifest cannot be read (the bento's node says so)."""
    from recassets.bento.store import bento_folder
    from recassets.lineage.targets import is_bento_tag

    if not tag or not is_bento_tag(tag):
        return None
    try:
        manifest = json.loads(
            (bento_folder(paths, tag) / "src" / "bundle" / "manifest.json").read_text()
        )
        policy = manifest.get("policy")
    except (OSError, ValueError, AttributeError):
        return None
    return policy if isinstance(policy, dict) else None


__all__ = ["Found", "disagreement", "find_request", "request_node"]
