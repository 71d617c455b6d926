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
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from recassets import __version__, atomic
from recassets.events import CONTRACTS, QUARANTINE_DDL, VALUED_EVENT_TYPES, Contract
from recassets.lake import days_predicate, ensure_table, recent_commits
from recassets.landing import file_digest
from recassets.paths import Paths

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, DataFrameReader, SparkSession

HEAD_BYTES = 1 << 16  # how much of a JSONL file is sniffed for binary content
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
QUARANTINE_TABLE = "quarantine"
# Up to this many duplicated keys (rejected rows), their list is broadcast to the join that
# marks them (finds their text): no shuffle of the rows. A whole day landed twice falls back to
# a shuffle join.
BROADCAST_ROWS = 200_000
TABLE_NAMES = {"events": "raw_events", "users": "users", "items": "items"}


class LandingMissingError(FileNotFoundError):
    """A requested day has no landing files."""


@dataclass
class LandedFile:
    path: str
    day: str
    size: int
    sha256: str
    format: str  # jsonl | parquet | unreadable
    problem: str | None = None  # why it is quarantined whole


@dataclass
class PartitionResult:
    day: str
    rows: int
    quarantined: int
    files: list[LandedFile]
    # Set when the day had no landing file and became an empty partition: the folder looked in.
    empty_folder: str | None = None

    @property
    def empty(self) -> bool:
        return self.empty_folder is not None


@dataclass
class IngestResult:
    dataset: str
    table_path: str
    delta_version: int
    quarantine_version: int
    partitions: dict[str, PartitionResult] = field(default_factory=dict)
    run_id: str = ""

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.partitions.values())

    @property
    def quarantined(self) -> int:
        return sum(p.quarantined for p in self.partitions.values())


def list_landing_files(
    paths: Paths, dataset: str, days: Sequence[str], allow_missing_days: bool = False
) -> list[LandedFile]:
    """Every landed file of the days, classified, with size and sha256 for lineage.

    Raises ``LandingMissingError`` naming each folder that is missing or holds no file, when
    ``empty_days_allowed`` says no (see there).
    """
    files, _scans, _empty = _landing_files(paths, dataset, days, allow_missing_days)
    return files


def empty_days_allowed(
    days: Sequence[str], missing: Sequence[str], allow_missing_days: bool
) -> bool:
    """Whether the ``missing`` days (no landing file) of a run over ``days`` become empty
    partitions, or fail the run.

    * Dimensions (``allow_missing_days``): always empty; a day without new users is normal.
    * Events, a range of several days: empty, as long as one day of the range has files. Real
      histories have days without a single event (a small product, an outage, a holiday; a
      MovieLens history has several), and a backfill must pass through them.
    * Events, a single day (the landing sensor's path: a day whose files just appeared), or a
      range in which no day has files: fail. That is a folder that should not be empty.
    """
    if not missing or allow_missing_days:
        return True
    return len(days) > 1 and len(missing) < len(days)


def _landing_files(
    paths: Paths, dataset: str, days: Sequence[str], allow_missing_days: bool
) -> tuple[list[LandedFile], dict[str, _LineScan], dict[str, str]]:
    """``list_landing_files``, what each JSON Lines file's sha256 pass saw of its lines, and
    the days left empty (day -> the folder looked in)."""
    files: list[LandedFile] = []
    scans: dict[str, _LineScan] = {}
    missing: dict[str, str] = {}
    for day in days:
        folder = Path(paths.landing_dir(dataset, day))
        found = sorted(
            p for p in folder.glob("*") if p.is_file() and not p.name.startswith((".", "_"))
        )
        if not found:
            missing[day] = str(folder)
            continue
        for p in found:
            scan = _LineScan() if p.suffix.lower() in JSONL_SUFFIXES else None
            size, sha = file_digest(p, visit=scan)
            files.append(LandedFile(str(p), day, size, sha, *_classify(p, size)))
            if scan is not None:
                scans[str(p)] = scan
    if not empty_days_allowed(days, list(missing), allow_missing_days):
        raise LandingMissingError(
            f"no landing files for {dataset} on {len(missing)} day(s); looked in: "
            + ", ".join(missing.values())
        )
    return files, scans, missing


# Where a line starts (the file's first byte, or after a newline), a byte that can make Spark's
# JSON reader give it other than one row: a newline (a blank line: none), JSON whitespace (a
# blank line, or "  [..."), '[' (an array: one row per element), or one that Jackson's encoding
# detection acts on before parsing (BOMs EF BB BF, FE FF, FF FE; NUL bytes: UTF-16 or UTF-32).
# Any other first byte starts one JSON value or one unparseable line: one row either way.
_ODD_LINE = re.compile(rb"\n[\n \t\r\[\x00\xef\xfe\xff]")


class _LineScan:
    """Counts a JSON Lines file's lines and looks for odd ones (``_ODD_LINE``) in the blocks that
    ``file_digest`` reads for the sha256: no read of its own, and two tenths of a second per
    200 MiB (a regex search for a newline-led pair, and a count of newlines), where a text
    pass of Spark over the files to count and inspect each split's lines took a second."""

    def __init__(self) -> None:
        self.newlines = 0
        self.plain = True  # no odd line: the JSON reader makes exactly one row per line
        self.last = b"\n"  # the byte before the block; the first line starts at byte 0

    def __call__(self, block: bytes) -> None:
        self.newlines += block.count(b"\n")
        if self.plain and (_ODD_LINE.search(self.last + block[:1]) or _ODD_LINE.search(block)):
            self.plain = False
        self.last = block[-1:]

    @property
    def lines(self) -> int:
        """The file's lines, a last one without a newline included (Spark reads it too)."""
        return self.newlines + (self.last != b"\n")


def _classify(path: Path, size: int) -> tuple[str, str | None]:
    suffix = path.suffix.lower()
    if suffix in PARQUET_SUFFIXES:
        import pyarrow.parquet as pq

        try:
            pq.read_metadata(path)
        except Exception as exc:  # any footer error means Spark cannot read it either
            return "unreadable", f"unreadable Parquet file: {exc}"
        return "parquet", None
    if suffix in JSONL_SUFFIXES:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
        if b"\x00" in head:
            return "unreadable", "not UTF-8 text (NUL bytes): binary or compressed file?"
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            # A multibyte char cut at the 64 KiB edge is fine; only when the read stopped
            # there, though: a short file ending in a Latin-1 byte is not UTF-8.
            cut_at_edge = len(head) == HEAD_BYTES and exc.reason == "unexpected end of data"
            if not cut_at_edge:
                return "unreadable", f"not UTF-8 text: {exc}"
        return "jsonl", None
    return "unreadable", f"unsupported file type {suffix or '(none)'}: use .jsonl or .parquet"


# Where rows come from: the index's schema. A row is ``(_uri, _block, _id)``: its file as Spark
# names it (a URI), the byte offset of the split it was read in, and an id that counts up by one
# per row within the split (Parquet rows: the landed path, 0 and the row number). Its index entry
# gives ``source_file`` (the landed path) and ``line = _id + _offset``.
INDEX_DDL = "_uri string, _block bigint, source_file string, _offset bigint"


@dataclass
class _Parsed:
    """A run's readable files as strings, and how to locate their rows and find the text of a
    JSON Lines line again."""

    frame: DataFrame  # _uri, _block, _id, dt, raw, _corrupt, _jsonl, then each field as a string
    lines: DataFrame | None  # _uri, _block, _id, raw of every JSON Lines line (None: no such file)
    index: list[tuple]  # INDEX_DDL rows known before the rows are read
    # JSON reader: the lines of each file (absolute path; empty files left out), which the rows
    # must match, their splits to be indexed from the rows themselves. None: ``index`` is whole.
    expected: dict[str, int] | None
    parser: str  # "json": Spark's JSON reader; "text": lines, then from_json


def _string_frame(
    spark: SparkSession,
    contract: Contract,
    files: list[LandedFile],
    scans: dict[str, _LineScan],
    parser: str = "json",
) -> _Parsed:
    """One row per landed line, each contract field as a string (typing comes later, so every
    problem can be named), with its partition day and where it comes from.

    JSON Lines rows carry no ``raw`` (null): it is the bulk of a row and only rejected rows
    need it, so ``ingest`` joins it back from ``lines`` for those alone. Parquet rows carry
    theirs (the row as JSON). ``dt`` is the day of the ``dt=YYYY-MM-DD`` folder: for JSON Lines
    Spark's partition discovery gives it, a constant per file (a regex over each row's file
    name cost 0.5 to 1 CPU second per million events).

    ``parser="json"`` parses with Spark's JSON reader, about twice as fast as ``from_json``
    (which decodes each string through a ``Reader``). That reader makes one row per line
    except for blank lines (none) and top-level arrays (one per element), so it is used only
    when the sha256 pass found no line that could be either (``_LineScan``): then a row's line
    is its split's first line plus its rank in the split, and ``ingest`` takes both from the
    parsed rows, checking each file's row count against its lines. Otherwise, or with
    ``parser="text"``, lines are read as text, numbered by a first pass over them
    (``_line_index``), and parsed with ``from_json``.
    """
    from pyspark.sql import functions as F

    names = contract.names
    fields = ", ".join(f"`{n}` string" for n in names) + ", _corrupt_record string"
    frames = []
    lines = None
    index: list[tuple] = []
    expected = None
    jsonl = [f.path for f in files if f.format == "jsonl"]
    if jsonl:
        if not all(scans[p].plain for p in jsonl):
            parser = "text"
        text = _positioned(_jsonl_reader(spark, jsonl).text(jsonl))
        lines = text.select("_uri", "_block", "_id", _without_cr("value").alias("raw"))
        if parser == "json":
            rows = _positioned(
                _jsonl_reader(spark, jsonl)
                .schema(f"{fields}, dt date")
                .option("mode", "PERMISSIVE")
                .option("columnNameOfCorruptRecord", "_corrupt_record")
                .json(jsonl)
            )
            expected = {os.path.abspath(p): scans[p].lines for p in jsonl if scans[p].lines}
        else:
            index = _line_index(text)
            rows = (
                text.select("_uri", "_block", "_id", "dt", _without_cr("value").alias("raw"))
                .where(F.trim("raw") != "")
                .withColumn(
                    "_p",
                    F.from_json(
                        "raw",
                        fields,
                        {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record"},
                    ),
                )
                .select("_uri", "_block", "_id", "dt", "_p.*")
            )
        frames.append(
            rows.select(
                "_uri",
                "_block",
                "_id",
                F.col("dt").cast("date").alias("dt"),
                F.lit(None).cast("string").alias("raw"),
                F.col("_corrupt_record").isNotNull().alias("_corrupt"),
                F.lit(True).alias("_jsonl"),
                *[F.col(f"`{n}`") for n in names],
            )
        )
    for f in files:
        if f.format != "parquet":
            continue
        pdf = spark.read.parquet(f.path)
        present = set(pdf.columns)
        index.append((f.path, 0, f.path, 1))
        frames.append(
            pdf.select(
                F.lit(f.path).alias("_uri"),
                F.lit(0).cast("bigint").alias("_block"),
                F.col("_metadata.row_index").cast("bigint").alias("_id"),
                F.lit(f.day).cast("date").alias("dt"),
                F.to_json(F.struct(*[F.col(f"`{c}`") for c in pdf.columns])).alias("raw"),
                F.lit(False).alias("_corrupt"),
                F.lit(False).alias("_jsonl"),
                *[
                    (
                        F.col(f"`{n}`").cast("string")
                        if n in present
                        else F.lit(None).cast("string")
                    ).alias(n)
                    for n in names
                ],
            )
        )
    if not frames:
        empty = spark.createDataFrame(
            [],
            "_uri string, _block bigint, _id bigint, dt date, raw string, _corrupt boolean, "
            "_jsonl boolean, " + ", ".join(f"`{n}` string" for n in names),
        )
        return _Parsed(empty, None, [], None, parser)
    out = frames[0]
    for other in frames[1:]:
        out = out.unionByName(other)
    return _Parsed(out, lines, index, expected, parser)


def _jsonl_reader(spark: SparkSession, paths: list[str]) -> DataFrameReader:
    """The reader of both JSON Lines reads (text and JSON), alike in every option that could
    plan other splits: rows of the one are matched to lines of the other by position.

    ``basePath``: the dataset's landing folder, so that partition discovery adds ``dt`` from
    the ``dt=YYYY-MM-DD`` folder of each file.
    """
    bases = {os.path.dirname(os.path.dirname(p)) for p in paths}
    folders = {os.path.basename(os.path.dirname(p)) for p in paths}
    if len(bases) != 1 or not all(f.startswith("dt=") for f in folders):
        raise ValueError(f"JSON Lines files outside one dataset's dt= folders: {paths[:3]}...")
    return spark.read.option("lineSep", "\n").option("basePath", bases.pop())


def _line_index(text: DataFrame) -> list[tuple]:
    """The ``INDEX_DDL`` rows of the text files read as ``text`` (``_positioned`` lines).

    Spark reads a big file in splits, one task each, and does not number lines. This first,
    cheap pass (no JSON parsing) counts the lines of each split (file, byte offset); the line
    of a row is then its split's first line plus its position in the split, which
    ``monotonically_increasing_id`` gives: one task reads one split in order, its ids
    consecutive, and every later read of the same files plans the same splits in the same
    tasks. (Reading each file as one value and exploding it ran one file per core, with the
    whole file in memory.) Only the text parser needs it: where the JSON reader makes one row
    per line, its own rows give the same counts (``ingest``).
    """
    return _split_offsets(_split_counts(text))[0]


def _split_counts(rows: DataFrame) -> list:
    """``_uri, _block, n, first_id`` of each split ``rows`` (``_positioned``) were read in."""
    from pyspark.sql import functions as F

    return (
        rows.groupBy("_uri", "_block")
        .agg(F.count("*").alias("n"), F.min("_id").alias("first_id"))
        .collect()
    )


def _split_offsets(splits: list) -> tuple[list[tuple], dict[str, int]]:
    """The ``INDEX_DDL`` rows of the splits (``_split_counts``), and the rows of each file."""
    seen: dict[str, int] = {}
    index = []
    for r in sorted(splits, key=lambda r: (r["_uri"], r["_block"])):
        # Spark names files by URI (file:/a%20b/...); lineage and reasons use the landed paths.
        path = _uri_to_path(r["_uri"])
        before = seen.get(path, 0)
        seen[path] = before + r["n"]
        index.append((r["_uri"], r["_block"], path, 1 + before - r["first_id"]))
    return index, seen


def _positioned(df: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return df.select(
        "*",
        F.col("_metadata.file_path").alias("_uri"),
        F.col("_metadata.file_block_start").alias("_block"),
        F.monotonically_increasing_id().alias("_id"),
    )


def _located(df: DataFrame, index: DataFrame) -> DataFrame:
    """``df`` (rows of ``_string_frame``) with ``source_file`` and ``line``. For the few rows that
    need them (rejected ones, holders of a repeated key), not all: a join per row cost more."""
    from pyspark.sql import functions as F

    return (
        df.join(F.broadcast(index), ["_uri", "_block"])
        .withColumn("line", F.col("_id") + F.col("_offset"))
        .drop("_offset")
    )


def _without_cr(name: str) -> Column:
    """The text less one trailing CR (CRLF files). Not a regex: this runs on every line."""
    from pyspark.sql import functions as F

    value = F.col(name)
    return F.when(
        value.endswith("\r"), F.expr(f"substring({name}, 1, length({name}) - 1)")
    ).otherwise(value)


def _uri_to_path(uri: str) -> str:
    from urllib.parse import unquote, urlparse

    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme in ("", "file") else uri


def _typed(name: str, type_: str) -> Column:
    from pyspark.sql import functions as F

    if type_ == "string":
        return F.col(name)
    if type_ == "timestamp":
        return F.expr(f"try_cast(`{name}` as timestamp)")
    return F.expr(f"try_cast(`{name}` as {type_})")


def validate(frame: DataFrame, contract: Contract, index: DataFrame) -> DataFrame:
    """Type the string frame and attach ``reason`` (null for a good row), ``field``,
    ``source_file`` and ``line``.

    ``index`` (``INDEX_DDL``) locates the frame's rows; the typed fields are ``_t_<name>``.
    Lazy: ``ingest`` runs the same steps with the checked rows persisted in between, so the
    files are parsed once, and locates only the rows that need it.
    """
    checked = _check(frame, contract)
    marked = _mark_duplicates(checked, _duplicates(checked, contract, index), contract)
    return _located(marked, index)


def _check(frame: DataFrame, contract: Contract) -> DataFrame:
    """Every rule but duplicates: ``_t_<name>`` typed fields, ``reason`` and ``field``."""
    from pyspark.sql import functions as F

    # One select, not a withColumn per field: each withColumn re-analyses the whole plan.
    df = frame.select("*", *[_typed(f.name, f.type).alias(f"_t_{f.name}") for f in contract.fields])
    checks: list[tuple[str, Column, Column]] = []  # (field, fails, reason): reason read if fails
    for f in contract.fields:
        raw = F.col(f"`{f.name}`")
        if f.required:
            checks.append((f.name, raw.isNull(), F.lit(f"missing field {f.name}")))
        if f.type != "string":
            checks.append(
                (
                    f.name,
                    raw.isNotNull() & F.col(f"_t_{f.name}").isNull(),
                    F.concat(
                        F.lit(f"field {f.name}: expected {f.type}, got "), F.substring(raw, 1, 200)
                    ),
                )
            )
    for name, allowed in contract.allowed.items():
        value = F.col(f"`{name}`")
        checks.append(
            (
                name,
                value.isNotNull() & ~value.isin(*allowed),
                F.concat(
                    F.lit(f"field {name}: unknown value "),
                    value,
                    F.lit(f" (allowed: {', '.join(allowed)})"),
                ),
            )
        )
    if contract.name == "events":
        checks.append(
            (
                "value",
                F.col("event_type").isin(*VALUED_EVENT_TYPES) & F.col("value").isNull(),
                F.concat(
                    F.lit("missing field value (required for "), F.col("event_type"), F.lit(")")
                ),
            )
        )
    ts = F.col(f"_t_{contract.ts_field}")
    checks.append(
        (
            contract.ts_field,
            ts.isNotNull() & (F.to_date(ts) != F.col("dt")),
            F.concat(
                F.lit(f"{contract.ts_field} "),
                F.date_format(ts, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'"),
                F.lit(" outside partition "),
                F.col("dt").cast("string"),
            ),
        )
    )
    # concat_ws skips nulls, coalesce takes the first: every failed rule, joined, and the field
    # of the first. Kept small on purpose: not filter(array(...), lambda), whose higher-order
    # function is not compiled and evaluated every rule several times per row; and the joined
    # text in a column of its own, read once below, not an expression repeated in both
    # branches. The generated method then stays under HotSpot's 8000-byte limit for JIT
    # compilation; above it, the whole parse-and-check stage ran interpreted, 1.5x slower.
    corrupt = F.col("_corrupt")
    df = df.select(
        "*",
        F.concat_ws("; ", *[F.when(fails, why) for _, fails, why in checks]).alias("_reasons"),
        F.when(~corrupt, F.coalesce(*[F.when(fails, F.lit(n)) for n, fails, _ in checks])).alias(
            "field"
        ),
    )
    reasons = F.col("_reasons")
    return df.withColumn(
        "reason",
        F.when(corrupt, F.lit("unparseable JSON: not a JSON object")).otherwise(
            F.when(reasons != "", reasons)
        ),
    ).drop("_reasons")


def _duplicated_keys(checked: DataFrame, contract: Contract) -> DataFrame:
    """``dt, _h, _n``: the 64-bit hash of each key held by more than one good row of a day.

    Only good rows count, so a rejected row never claims its key: a good row that follows a
    rejected one with the same key still lands (a window over all rows ranked the rejected
    one first, and neither landed). A count by hashed key (hash aggregation of fixed-width
    values), not a window over whole rows (a wide shuffle and a sort) nor
    ``min(struct(file, line))`` over every row (a sort aggregation: strings in the buffer).
    Usually it finds nothing; a hash collision only adds a candidate that ``_duplicates``
    drops.
    """
    from pyspark.sql import functions as F

    return (
        checked.where(F.col("reason").isNull())
        .groupBy("dt", F.xxhash64(f"_t_{contract.key}").alias("_h"))
        .agg(F.count("*").alias("_n"))
        .where(F.col("_n") > 1)
    )


def _duplicates(
    checked: DataFrame,
    contract: Contract,
    index: DataFrame,
    candidates: DataFrame | None = None,
    broadcast: bool = False,
) -> DataFrame:
    """``dt, _t_<key>, _n, _first``: each key held by more than one good row of a day, how many
    hold it and where the first stands (``struct(source_file, line, _uri, _block, _id)``, the
    least), looked up among the rows of the candidate keys only, which alone are located."""
    from pyspark.sql import functions as F

    key = f"_t_{contract.key}"
    candidates = (_duplicated_keys(checked, contract) if candidates is None else candidates).select(
        "dt", "_h"
    )
    holders = (
        checked.where(F.col("reason").isNull())
        .withColumn("_h", F.xxhash64(key))
        .join(F.broadcast(candidates) if broadcast else candidates, ["dt", "_h"])
    )
    first = F.min(F.struct("source_file", "line", "_uri", "_block", "_id"))
    return (
        _located(holders, index)
        .groupBy("dt", key)
        .agg(F.count("*").alias("_n"), first.alias("_first"))
        .where(F.col("_n") > 1)
    )


def _mark_duplicates(
    checked: DataFrame, duplicates: DataFrame, contract: Contract, broadcast: bool = False
) -> DataFrame:
    """Reject each good row whose key an earlier good row of the day holds, naming where the
    first stands (``duplicate <key> (first at <file>:<line>)``). Rows are told apart by
    ``(_uri, _block, _id)``, so that only the first needs locating."""
    from pyspark.sql import functions as F

    key = f"_t_{contract.key}"
    dups = duplicates.select("dt", key, "_first")
    out = checked.join(F.broadcast(dups) if broadcast else dups, ["dt", key], "left")
    first = F.col("_first")
    out = out.withColumn(
        "_later",
        first.isNotNull()
        & F.col("reason").isNull()
        & (
            (F.col("_uri") != first["_uri"])
            | (F.col("_block") != first["_block"])
            | (F.col("_id") != first["_id"])
        ),
    )
    later = F.col("_later")
    return (
        out.withColumn(
            "reason",
            F.when(
                later,
                F.concat(
                    F.lit(f"duplicate {contract.key} (first at "),
                    first["source_file"],
                    F.lit(":"),
                    first["line"].cast("string"),
                    F.lit(")"),
                ),
            ).otherwise(F.col("reason")),
        )
        .withColumn("field", F.when(later, F.lit(contract.key)).otherwise(F.col("field")))
        .drop("_first", "_later")
    )


@contextlib.contextmanager
def _session_conf(spark: SparkSession, key: str, value: str) -> Iterator[None]:
    """The session's ``key`` is ``value`` inside; its own value is restored after."""
    before = spark.conf.get(key, None)
    spark.conf.set(key, value)
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)


def _uncompressed_cache(spark: SparkSession) -> contextlib.AbstractContextManager[None]:
    """Caches declared inside (``persist``) are not compressed.

    Compressing the cache cost a third of the parse-and-check stage (2.5 of 9 CPU seconds per
    million events) to save memory that the cache holds for one ingestion only. ``persist``
    plans the cached query on a copy of the session's settings, so the setting only needs to
    hold while it is called.
    """
    return _session_conf(spark, "spark.sql.inMemoryColumnarStorage.compressed", "false")


def _even_splits(spark: SparkSession) -> contextlib.AbstractContextManager[None]:
    """File reads inside are cut into about four splits per core, not one.

    Spark packs files into splits of about (total bytes / cores), plus an open cost per file,
    which rarely comes out even: five files of 44 MiB on two cores made three splits, the
    third read alone while the other core idled, so each stage that reads the files or their
    cache (parsing, writing) took a fifth longer than even work would. Four per core leave at
    worst a small split to finish alone; tiny inputs stay one split (the open cost, 4 MiB, is
    the floor). The table gets more files per day (one per split of the day: ten instead of
    three for a million events). Set around the whole ingestion: its text and JSON reads of
    the same files are matched split by split, so they must plan alike. A value the session
    chose is kept, and so is Spark's plan where there is no SparkContext to count cores
    (Spark Connect).
    """
    key = "spark.sql.files.minPartitionNum"
    try:
        cores = spark.sparkContext.defaultParallelism
    except Exception:  # Spark Connect has no SparkContext
        return contextlib.nullcontext()
    if spark.conf.get(key, None) is not None:
        return contextlib.nullcontext()
    return _session_conf(spark, key, str(4 * cores))


def _commit_of(spark: SparkSession, path: str, meta: str) -> tuple[int, dict[str, str] | None]:
    """(version, operation metrics) of this write's commit: the latest whose userMetadata is
    ``meta`` (run, dataset, days), not assumed to be the newest (another writer may have
    followed) nor any commit of the run (one Dagster run ingests several datasets, and they
    share the quarantine).

    Delta commits nothing for a write that neither adds nor removes a file (an empty
    quarantine replacing an empty one): then the table's latest version and no metrics.
    """
    wanted = json.loads(meta)
    commits = recent_commits(spark, path)
    for version, user_metadata, metrics in commits:
        try:
            found = json.loads(user_metadata or "null")
        except ValueError:
            continue
        if found == wanted:
            return version, dict(metrics or {})
    return max(version for version, _, _ in commits), None


def _check_written(what: str, metrics: dict[str, str] | None, expected: int) -> None:
    written = 0 if metrics is None else metrics.get("numOutputRows")
    if written is not None and int(written) != expected:
        raise RuntimeError(
            f"{what}: wrote {written} rows, expected {expected}; did a landing file change while "
            "it was read? Re-run the partition."
        )


def ingest(
    spark: SparkSession,
    paths: Paths,
    dataset: str,
    days: Sequence[str | dt.date],
    run_id: str | None = None,
    progress: Callable[[str], None] | None = None,
    allow_missing_days: bool = False,
) -> IngestResult:
    """Ingest the landing files of ``days`` into the dataset's Delta table, in one Spark job.

    Replaces exactly those partitions of the table and of the quarantine (for this dataset),
    and writes one lineage manifest per day. A day without landing files becomes an empty
    partition (its manifest says ``"empty": true``) where ``empty_days_allowed`` permits it;
    otherwise ``LandingMissingError`` is raised before anything is written.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    say = progress or (lambda _msg: None)
    contract = CONTRACTS[dataset]
    days = sorted({d if isinstance(d, str) else d.isoformat() for d in days})
    run_id = run_id or uuid.uuid4().hex
    started = time.perf_counter()
    files, scans, empty = _landing_files(paths, dataset, days, allow_missing_days)
    say(f"{dataset}: {len(files)} landing file(s) over {len(days)} day(s)")
    if empty:
        say(
            f"{dataset}: {len(empty)} day(s) without landing files become empty partitions: "
            + ", ".join(sorted(empty))
        )
    table_path = paths.table(TABLE_NAMES[dataset])
    quarantine_path = paths.table(QUARANTINE_TABLE)
    meta = json.dumps(
        {"run_id": run_id, "dataset": dataset, "days": days, "code_version": __version__}
    )

    with _even_splits(spark):
        for parser in ("json", "text"):
            parsed = _string_frame(spark, contract, files, scans, parser)
            if parsed.lines is not None:
                say(f"{dataset}: JSON Lines read with the {parsed.parser} parser")
            # Parsed and checked once, persisted: the duplicate search, the counts and both
            # writes read it. Only what they need is kept: no JSON Lines text (joined back for
            # rejected rows only), no string copies of typed fields, no file names.
            with _uncompressed_cache(spark):
                checked = (
                    _check(parsed.frame, contract)
                    .select(
                        *[F.col(f"_t_{n}") for n in contract.names],
                        "dt",
                        "_uri",
                        "_block",
                        "_id",
                        "raw",
                        "reason",
                        "field",
                        "_jsonl",
                    )  # fmt: skip
                    .persist(StorageLevel.MEMORY_AND_DISK)
                )
            duplicates = None
            later: dict[str, int] = {}  # day -> later duplicates: from good to rejected
            try:
                # One job fills the cache and counts the rows by day and verdict, the JSON
                # Lines rows, and the keys that more than one good row holds (by a 64-bit hash:
                # see _duplicated_keys). Only when there are any is the duplicate search run.
                ok = F.col("reason").isNull()
                by_key = checked.groupBy(
                    "dt", ok.alias("ok"), F.when(ok, F.xxhash64(f"_t_{contract.key}")).alias("_h")
                ).agg(F.count("*").alias("_n"), F.count_if("_jsonl").alias("_nj"))
                tally = by_key.groupBy("dt", "ok").agg(
                    F.sum("_n").alias("n"),
                    F.sum("_nj").alias("nj"),
                    F.count_if(F.col("_n") > 1).alias("shared"),
                )
                counts: dict[tuple[str, bool], int] = {}
                jsonl_rows = n_candidates = 0
                for r in tally.collect():
                    counts[(r["dt"].isoformat(), r["ok"])] = r["n"]
                    jsonl_rows += r["nj"]
                    n_candidates += r["shared"] if r["ok"] else 0
                # Rows are located (file, line) only where some are rejected or share a key.
                locate = n_candidates > 0 or any(not good for _, good in counts)
                found: list[tuple] = []
                if parsed.expected is not None:
                    # The JSON reader made one row per line, as _LineScan foresaw: checked file
                    # by file where rows are located (each split's first id and row count, from
                    # the cache: a few rows to collect), in total otherwise.
                    rows, lines = {"": jsonl_rows}, {"": sum(parsed.expected.values())}
                    if locate:
                        found, rows = _split_offsets(_split_counts(checked.where("_jsonl")))
                        lines = parsed.expected
                    if rows != lines:  # never seen; the safe path exists
                        n_rows, n_lines = sum(rows.values()), sum(lines.values())
                        say(f"{dataset}: {n_rows} rows from {n_lines} lines; parsing again as text")
                        continue
                index = spark.createDataFrame(parsed.index + found, INDEX_DDL)
                small = n_candidates <= BROADCAST_ROWS
                if n_candidates:
                    duplicates = _duplicates(checked, contract, index, broadcast=small).persist(
                        StorageLevel.MEMORY_AND_DISK
                    )
                    later = {
                        r["dt"].isoformat(): r["later"]
                        for r in duplicates.groupBy("dt")
                        .agg(F.sum(F.col("_n") - 1).alias("later"))
                        .collect()
                    }
                for day, n in later.items():
                    counts[(day, True)] -= n
                    counts[(day, False)] = counts.get((day, False), 0) + n
                n_good = sum(n for (_, ok), n in counts.items() if ok)
                n_rejected = sum(n for (_, ok), n in counts.items() if not ok)

                validated = (
                    _mark_duplicates(checked, duplicates, contract, broadcast=small)
                    if later
                    else checked
                )
                rejected = _located(validated.where(F.col("reason").isNotNull()), index)
                now = dt.datetime.now(dt.UTC)
                quarantine_cols = [
                    F.lit(dataset).alias("dataset"), "source_file", "line", "raw", "reason",
                    "field", F.lit(run_id).alias("run_id"),
                    F.lit(now).cast("timestamp").alias("quarantined_at"), "dt",
                ]  # fmt: skip
                whole = [
                    (
                        dataset,
                        f.path,
                        None,
                        None,
                        f.problem,
                        None,
                        run_id,
                        now,
                        dt.date.fromisoformat(f.day),
                    )
                    for f in files
                    if f.problem
                ]
                parts = [spark.createDataFrame(whole, QUARANTINE_DDL)]
                if n_rejected:
                    parts.append(rejected.where(~F.col("_jsonl")).select(*quarantine_cols))
                    if parsed.lines is not None:
                        # The text of rejected JSON Lines rows, from a second read of the
                        # files (no parsing): the rejected rows are few, the broadcast side.
                        wanted = rejected.where(F.col("_jsonl")).drop("raw")
                        wanted = F.broadcast(wanted) if n_rejected <= BROADCAST_ROWS else wanted
                        parts.append(
                            parsed.lines.join(wanted, ["_uri", "_block", "_id"]).select(
                                *quarantine_cols
                            )
                        )
                bad_rows = parts[0]
                for part in parts[1:]:
                    bad_rows = bad_rows.unionByName(part)
                good = validated.where(F.col("reason").isNull()).select(
                    *[F.col(f"_t_{n}").alias(n) for n in contract.names], "dt"
                )

                ensure_table(spark, quarantine_path, QUARANTINE_DDL, ["dataset", "dt"])
                ensure_table(spark, table_path, contract.spark_ddl(), ["dt"])
                say(f"{dataset}: writing quarantine and table")
                bad_rows.select(*_ddl_names(QUARANTINE_DDL)).write.format("delta").mode(
                    "overwrite"
                ).option(
                    "replaceWhere", f"dataset = '{dataset}' AND {days_predicate(days)}"
                ).option("userMetadata", meta).save(quarantine_path)
                quarantine_version, metrics = _commit_of(spark, quarantine_path, meta)
                _check_written(f"{dataset} quarantine", metrics, n_rejected + len(whole))
                good.write.format("delta").mode("overwrite").option(
                    "replaceWhere", days_predicate(days)
                ).option("userMetadata", meta).save(table_path)
                delta_version, metrics = _commit_of(spark, table_path, meta)
                _check_written(TABLE_NAMES[dataset], metrics, n_good)
            finally:
                if duplicates is not None:
                    duplicates.unpersist()
                checked.unpersist()
            break

    result = IngestResult(
        dataset=dataset,
        table_path=table_path,
        delta_version=delta_version,
        quarantine_version=quarantine_version,
        run_id=run_id,
    )
    for day in days:
        day_files = [f for f in files if f.day == day]
        result.partitions[day] = PartitionResult(
            day=day,
            rows=counts.get((day, True), 0),
            quarantined=counts.get((day, False), 0) + sum(1 for f in day_files if f.problem),
            files=day_files,
            empty_folder=empty.get(day),
        )
    write_lineage(paths, result)
    took = time.perf_counter() - started
    say(
        f"{dataset}: {len(days)}/{len(days)} day(s) ({len(empty)} empty), {result.rows} rows, "
        f"{result.quarantined} quarantined in {took:.1f} s "
        f"({(result.rows + result.quarantined) / max(took, 1e-9):,.0f} rows/s), "
        f"Delta version {result.delta_version}"
    )
    return result


def _ddl_names(ddl: str) -> list[str]:
    return [part.strip().split()[0] for part in ddl.split(",")]


def lineage_path(paths: Paths, table: str, day: str) -> str:
    return f"{paths.lineage}/{table}/dt={day}.json"


def write_lineage(paths: Paths, result: IngestResult) -> None:
    """One manifest per partition: the landing files read (size, sha256), the Delta versions
    written, the run and the code version. An auditor walks back from a table version to the
    exact bytes it grew from."""
    table = TABLE_NAMES[result.dataset]
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
    return json.loads(Path(lineage_path(paths, table, day)).read_text())
