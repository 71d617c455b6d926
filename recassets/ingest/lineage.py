"""Lineage manifests: one JSON file per table partition, naming the bytes it grew from.

Owns where a manifest lies (``lineage_path``), what it says (``write_lineage``) and reading it
back (``read_lineage``). Written with ``recassets.atomic``, so a reader (the landing sensor,
the CLI, an auditor) never sees half a manifest, and a failed write keeps the previous one.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict
from pathlib import Path

from recassets import __version__, atomic
from recassets.ingest.results import INGESTED_TABLES, IngestResult
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
            "rows": part.rows,
            "quarantined": part.quarantined,
            "run_id": result.run_id,
            "code_version": __version__,
            "written_at": dt.datetime.now(dt.UTC).isoformat(),
            "inputs": [asdict(f) for f in part.files],
            # A day of a range without landing files: an empty partition, not a failure
            # (empty_days_allowed); the raw_events_has_events check flags it in the UI.
            "empty": part.empty,
            "looked_in": part.empty_folder,
        }
        atomic.write_json(target, manifest)


def read_lineage(paths: Paths, table: str, day: str) -> dict:
    """The manifest of ``table``'s partition ``day`` (``write_lineage``)."""
    return json.loads(Path(lineage_path(paths, table, day)).read_text())
