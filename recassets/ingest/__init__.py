"""Landing files -> a Delta table, one daily partition at a time (or many in one Spark job).

Every landed row ends in exactly one of two places: the dataset's Delta table, or the
``quarantine`` table with its source file, line, raw text and reason. Rules, in order:

* a file that cannot be read at all (unsupported type, corrupt Parquet, not UTF-8 text) is
  quarantined whole, ``line`` null;
* a line that is not a JSON object: ``unparseable JSON``;
* a required field absent or null: ``missing field <f>``;
* a value of the wrong type: ``field <f>: expected <type>, got <raw>`` (JSON numbers written
  as strings, ``"5"``, are accepted for numeric fields when they parse exactly);
* a value outside its allowed set: ``field <f>: unknown value <v>``;
* a ``watch`` or ``rating`` without ``value``;
* the row's timestamp outside the partition's UTC day;
* a repeated key (``event_id``): the first occurrence (by file name, then line) is kept, each
  later one quarantined naming where the first stands.

Blank lines are skipped (JSON Lines allows a trailing newline); unknown extra fields are
ignored, so producers can add fields before the contract does.

Writes are atomic per table: a partition range is replaced with Delta's ``replaceWhere`` in one
commit, so a failed run leaves the previous version in place and a re-run yields the same rows.

One module per concept, in the order a run meets them:

* ``files``: finding the landing files, classifying them, and the line scan on the sha256 pass;
* ``parsing``: the files as string rows, each locatable (file, line) by an index of splits;
* ``validation``: the contract's rules and the duplicate search, a verdict per row;
* ``writes``: replacing partitions in one Delta commit, checked against the counts;
* ``lineage``: the per-partition manifests;
* ``results``: what a run reports; ``session``: the Spark settings a run holds;
* ``pipeline``: ``ingest`` itself, the steps in order.

This module re-exports the names the rest of the codebase uses.
"""

from recassets.ingest.files import (
    HEAD_BYTES,
    JSONL_SUFFIXES,
    PARQUET_SUFFIXES,
    LandedFile,
    LandingChangedError,
    LandingMissingError,
    empty_days_allowed,
    list_landing_files,
)
from recassets.ingest.lineage import lineage_path, read_lineage, write_lineage
from recassets.ingest.parsing import INDEX_DDL
from recassets.ingest.pipeline import BROADCAST_ROWS, QUARANTINE_TABLE, ingest
from recassets.ingest.results import (
    INGESTED_TABLES,
    SERVING_LOG,
    TABLE_NAMES,
    IngestResult,
    PartitionResult,
)
from recassets.ingest.validation import validate

__all__ = [
    "BROADCAST_ROWS",
    "HEAD_BYTES",
    "INDEX_DDL",
    "INGESTED_TABLES",
    "JSONL_SUFFIXES",
    "PARQUET_SUFFIXES",
    "QUARANTINE_TABLE",
    "SERVING_LOG",
    "TABLE_NAMES",
    "IngestResult",
    "LandedFile",
    "LandingChangedError",
    "LandingMissingError",
    "PartitionResult",
    "empty_days_allowed",
    "ingest",
    "lineage_path",
    "list_landing_files",
    "read_lineage",
    "validate",
    "write_lineage",
]
