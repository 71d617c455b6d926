"""Lineage manifests: one JSON file per table partition, naming the bytes it grew from.

Owns where a manifest lies (``lineage_path``), what it says (``write_lineage``) and reading it
back (``read_lineage``). Written with ``recassets.atomic``, so a reader (the landing sensor,
the CLI, an auditor) never sees half a manifest, and a failed write keeps the previous one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any, NamedTuple

from recassets import __version__, atomic
from recassets.ingest.results import INGESTED_TABLES, IngestResult, PartitionResult
from recassets.lake import partition_day
from recassets.paths import Paths

# The tables that have manifests: what ``recassets lineage TABLE DAY`` accepts.
LINEAGE_TABLES = tuple(sorted(INGESTED_TABLES.values()))


def lineage_path(paths: Paths, table: str, day: str) -> str:
    """Where the manifest of ``table``'s partition ``day`` lies. ``table`` must be one of
    ``LINEAGE_TABLES`` and ``day`` a date (``partition_day``), else ``ValueError``: what a user
    types (the CLI, an auditor's script) never becomes a path outside the lineage folder."""
    if table not in LINEAGE_TABLES:
        raise ValueError(f"no lineage for table {table[:80]!r}: one of {', '.join(LINEAGE_TABLES)}")
    return f"{paths.lineage}/{table}/dt={partition_day(day)}.json"


def write_lineage(paths: Paths, result: IngestResult) -> None:
    """One manifest per partition: the landing files read (size, sha256), the Delta versions
    written, the run and the code version. An auditor walks back from a table version to the
    exact bytes it grew from."""
    table = INGESTED_TABLES[result.dataset]
    for day, part in result.partitions.items():
        target = Path(lineage_path(paths, table, day))
        target.parent.mkdir(parents=True, exist_ok=True)
        manifest = {
            "table": table,
            "partition": day,
            "table_path": result.table_path,
            "delta_version": result.delta_version,
            "quarantine_version": result.quarantine_version,
            "run_id": result.run_id,
            "code_version": __version__,
            "written_at": dt.datetime.now(dt.UTC).isoformat(),
            # rows, quarantined, inputs; empty: a day of a range without landing files, an
            # empty partition, not a failure (the raw_events_has_events check flags it)
            **partition_facts(part),
            "looked_in": part.empty_folder,
        }
        atomic.write_json(target, manifest)


# The version of ``manifest_digest`` a manifest is written under (its ``digest_version``):
# 2 (2026-12-07) adds the code version to the digest, and marks a manifest whose run id and
# quarantine version ``recassets lineage --verify`` checks against the Delta logs (those two
# are known only once the commits are made, after the digest rides in them). A manifest
# without the field was written before, and is checked as then.
DIGEST_VERSION = 2


def partition_facts(part: PartitionResult) -> dict[str, Any]:
    """What a day's manifest vouches for that is known before the commit: the rows landed
    and quarantined, whether the day was empty, the landing files read, the code version,
    and the version of the digest taken of them (``manifest_digest``)."""
    inputs = [asdict(f) for f in part.files]
    return {
        "rows": part.rows,
        "quarantined": part.quarantined,
        "inputs": inputs,
        "empty": part.empty,
        "code_version": __version__,
        "digest_version": DIGEST_VERSION,
    }


def manifest_digest(manifest: Mapping[str, Any]) -> str:
    """What an ingestion's commit records of each day's manifest (its ``userMetadata``'s
    ``manifests``, since 2026-12-06): 16 hex digits of the sha256 of ``partition_facts`` (each
    file by path, size, sha256 and problem). ``recassets lineage --verify`` recomputes it from
    the manifest: an edit that keeps the JSON valid (a file taken out, its sha256 rewritten
    with its bytes, a count changed) no longer matches what the Delta log recorded. A manifest
    of ``digest_version`` 2 (``DIGEST_VERSION``) adds that field and its ``code_version``; one
    without it is digested as before (version 1), so records written then still verify, and
    a version-2 manifest whose field is removed no longer matches its commit's digest."""
    inputs = manifest.get("inputs")
    if isinstance(inputs, list):
        keys = ("path", "size", "sha256", "problem")
        inputs = [[f.get(k) for k in keys] if isinstance(f, dict) else f for f in inputs]
    facts = {k: manifest.get(k) for k in ("rows", "quarantined")}
    facts.update(empty=bool(manifest.get("empty")), inputs=inputs)
    if "digest_version" in manifest:  # version 2 on (a field removed changes the digest)
        facts.update({k: manifest.get(k) for k in ("digest_version", "code_version")})
    text = json.dumps(facts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def read_lineage(paths: Paths, table: str, day: str) -> dict:
    """The manifest of ``table``'s partition ``day`` (``write_lineage``)."""
    return json.loads(Path(lineage_path(paths, table, day)).read_text())


class LandingChanges(NamedTuple):
    """How a day's landing differs from what its last ingestion read (``landing_changes``)."""

    lost: list[str]  # read by the manifest, now gone or shorter
    new: list[str]  # here, not read by the manifest
    unchanged: bool  # ingested by this code version from exactly these files (names, sizes)
    rows: int  # the rows the manifest vouches for


def landing_changes(paths: Paths, table: str, day: str, landing_dir: str) -> LandingChanges:
    """What a day's landing lost and gained since its last ingestion: the names of the files
    its manifest read that are gone from ``landing_dir`` or shorter than they were (lost),
    and the names of those it holds that the manifest did not read (new); ``unchanged`` when
    the day was ingested by this code version (``__version__``, which changes with the
    validation rules) from exactly the files it holds now, each of the size read. Nothing lost
    or new and not unchanged when the day was never ingested (no manifest).

    For a log the service writes and never corrects (``serving_log``) the lake is the record
    once a day is ingested, and its landing files may be cleaned up or compressed: a lost file
    is retention, not a withdrawal, and re-ingesting the day would replace its rows with
    fewer (``assets.serving_log``). Its files are published whole and never rewritten
    (``recassets.bento.decisions``), so names and sizes tell an unchanged day without hashing
    a day's gigabytes again."""
    try:
        manifest = read_lineage(paths, table, day)
    except (OSError, ValueError):  # never ingested, or a manifest ``--verify`` will name
        return LandingChanges([], [], False, 0)
    read: dict[str, int] = {}
    for f in manifest.get("inputs") or []:
        if isinstance(f, dict) and f.get("path") and f.get("sha256"):  # read, not a folder
            read[Path(str(f["path"])).name] = int(f.get("size") or 0)
    folder = Path(landing_dir)
    here: dict[str, int] = {}
    if folder.is_dir():
        for p in folder.iterdir():
            if not p.name.startswith((".", "_")) and p.is_file():
                here[p.name] = p.stat().st_size
    lost = sorted(n for n, size in read.items() if here.get(n, -1) < size)
    new = sorted(n for n in here if n not in read)
    same = here == read and manifest.get("code_version") == __version__
    rows = manifest.get("rows")
    return LandingChanges(lost, new, same, rows if isinstance(rows, int) else 0)
