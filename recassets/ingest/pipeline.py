"""``ingest``: the steps that take a run's landing files to the Delta table and the quarantine.

Owns their order and what passes between them; each step is a function of its own module
(finding files, parsing, validation, writing, lineage) or of this one. The steps:

1. find the landing files of the days (``_landing_files``), hashing each for lineage;
2. parse and check every row, persisted for the later steps, and count them by day and verdict
   in the job that fills the cache (``_parse_and_check``, ``_tally``);
3. index the rows' places (``_row_index``). Spark's JSON reader is trusted to have made one row
   per line only if its row counts match the lines the files hold; if not, the rows are
   dropped and the files parsed again as text (``_checked_rows``: the one fallback);
4. find the repeated keys, if the count found any, and reject each later holder
   (``_later_duplicates``, ``_with_later_rejected``);
5. split the rows into the table's and the quarantine's (``_quarantine_rows``), and replace
   the days' partitions of both, each write checked against the count (``_replace_partitions``),
   both or neither (``_all_or_none``: a failed or miscounted write restores both tables);
6. report per day, and write the lineage manifests (``_partitions``, ``write_lineage``).

All the days of a run go through each step together, not a day at a time.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import time
import uuid
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from recassets import __version__
from recassets.events import INGESTED_CONTRACTS, QUARANTINE_DDL, Contract
from recassets.ingest.files import LandedFile, _landing_files, _LineScan, unchanged_since_digest
from recassets.ingest.lineage import manifest_digest, partition_facts, write_lineage
from recassets.ingest.parsing import (
    INDEX_DDL,
    _located,
    _Parsed,
    _split_counts,
    _split_offsets,
    _string_frame,
)
from recassets.ingest.results import INGESTED_TABLES, IngestResult, PartitionResult
from recassets.ingest.session import _even_splits, _uncompressed_cache
from recassets.ingest.validation import (
    DIMENSIONS,
    _check,
    _duplicates,
    _mark_duplicates,
    _resent,
    duplicate_hash,
)
from recassets.ingest.writes import _all_or_none, _ddl_names, _replace_partitions
from recassets.lake import days_predicate, ensure_table, is_delta_table, partition_day
from recassets.paths import Paths
from recassets.spark import local_frame

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

QUARANTINE_TABLE = "quarantine"
# Up to this many duplicated keys (rejected rows), their list is broadcast to the join that
# marks them (finds their text): no shuffle of the rows. A whole day landed twice falls back to
# a shuffle join.
BROADCAST_ROWS = 200_000


def day_runs(days: Iterable[str]) -> str:
    """ISO days as contiguous runs, ``a..b`` for two or more: a history with months of empty
    item days otherwise prints one line of thousands of characters."""
    ordered = sorted({dt.date.fromisoformat(d) for d in days})
    runs: list[list[dt.date]] = []
    for d in ordered:
        if runs and d - runs[-1][-1] == dt.timedelta(days=1):
            runs[-1].append(d)
        else:
            runs.append([d])
    return ", ".join(
        r[0].isoformat() if len(r) == 1 else f"{r[0].isoformat()}..{r[-1].isoformat()}"
        for r in runs
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
    from pyspark.sql import functions as F

    say = progress or (lambda _msg: None)
    contract = INGESTED_CONTRACTS[dataset]
    # Validated (partition_day) before a path or a predicate is built from them.
    iso_days = sorted({partition_day(d) for d in days})
    run_id = run_id or uuid.uuid4().hex
    started = time.perf_counter()
    files, scans, empty = _landing_files(paths, dataset, iso_days, allow_missing_days)
    say(f"{dataset}: {len(files)} landing file(s) over {len(iso_days)} day(s)")
    if empty:
        say(
            f"{dataset}: {len(empty)} day(s) without landing files become empty partitions: "
            + day_runs(empty)
        )
    table_path = paths.table(INGESTED_TABLES[dataset])
    quarantine_path = paths.table(QUARANTINE_TABLE)
    held = _held_keys(spark, contract, table_path, iso_days)
    # Steps 2 to 5 (see the module docstring). Leaving the block releases what they persisted,
    # the duplicates before the checked rows, and then the session's split setting.
    with (
        _even_splits(spark),
        _checked_rows(spark, contract, files, scans, dataset, say, held) as checked,
        _later_duplicates(checked, contract) as (duplicates, later),
    ):
        unchanged_since_digest(files)  # the rows were read: are they the digested files'?
        counts = _with_later_rejected(checked.tally.counts, later)
        parts = _partitions(iso_days, files, counts, empty)
        # each day's manifest digest rides in the commit: verify recomputes it (an edit that
        # keeps the manifest valid JSON, a file taken out or a count changed, is found)
        digests = {day: manifest_digest(partition_facts(p)) for day, p in parts.items()}
        meta = json.dumps({"run_id": run_id, "dataset": dataset, "days": iso_days,
                           "code_version": __version__, "manifests": digests})  # fmt: skip
        n_good = sum(n for (_, ok), n in counts.items() if ok)
        n_rejected = sum(n for (_, ok), n in counts.items() if not ok)
        validated = (
            _mark_duplicates(checked.rows, duplicates, contract, broadcast=checked.few_candidates)
            if later and duplicates is not None  # later is empty when there are no duplicates
            else checked.rows
        )
        whole_files = [f for f in files if f.problem]
        bad_rows = _quarantine_rows(
            spark, checked, validated, whole_files, dataset, run_id, n_rejected
        )
        good = validated.where(F.col("reason").isNull()).select(
            *[F.col(f"_t_{n}").alias(n) for n in contract.names], "dt"
        )

        ensure_table(spark, quarantine_path, QUARANTINE_DDL, ["dataset", "dt"])
        ensure_table(spark, table_path, contract.spark_ddl(), ["dt"])
        say(f"{dataset}: writing quarantine and table")
        # Both writes or neither: a failed or miscounted one restores both tables.
        with _all_or_none(spark, [quarantine_path, table_path]):
            quarantine_version = _replace_partitions(
                spark,
                bad_rows.select(*_ddl_names(QUARANTINE_DDL)),
                quarantine_path,
                f"dataset = '{contract.name}' AND {days_predicate(iso_days)}",  # a fixed name
                meta,
                f"{dataset} quarantine",
                n_rejected + len(whole_files),
            )
            delta_version = _replace_partitions(
                spark,
                good,
                table_path,
                days_predicate(iso_days),
                meta,
                INGESTED_TABLES[dataset],
                n_good,
            )

    result = IngestResult(
        dataset=dataset,
        table_path=table_path,
        delta_version=delta_version,
        quarantine_version=quarantine_version,
        partitions=parts,
        run_id=run_id,
    )
    write_lineage(paths, result)
    took = time.perf_counter() - started
    say(
        f"{dataset}: {len(iso_days)}/{len(iso_days)} day(s) ({len(empty)} empty), {result.rows} rows, "
        f"{result.quarantined} quarantined in {took:.1f} s "
        f"({(result.rows + result.quarantined) / max(took, 1e-9):,.0f} rows/s), "
        f"Delta version {result.delta_version}"
    )
    return result


def _held_keys(
    spark: SparkSession, contract: Contract, table_path: str, days: Sequence[str]
) -> DataFrame | None:
    """A dimension's keys landed outside ``days`` (the partitions this run replaces), each
    with the first day that holds it (``_t_<key>, _held``); None for events, or no table."""
    from pyspark.sql import functions as F

    if contract.name not in DIMENSIONS or not is_delta_table(spark, table_path):
        return None
    return (
        spark.read.format("delta")
        .load(table_path)
        .where(f"NOT ({days_predicate(days)})")
        .groupBy(F.col(contract.key).alias(f"_t_{contract.key}"))
        .agg(F.min("dt").alias("_held"))
    )


@dataclass
class _Tally:
    """What the job that fills the cache of checked rows counts (``_tally``)."""

    counts: dict[tuple[str, bool], int]  # (day, good) -> rows, before duplicates are rejected
    jsonl_rows: int  # rows read from JSON Lines files
    candidates: int  # keys (by 64-bit hash: see _duplicated_keys) more than one good row holds

    @property
    def locate(self) -> bool:
        """Whether rows must be located (file, line): only where some are rejected or share a
        key, since locating is a join."""
        return self.candidates > 0 or any(not good for _, good in self.counts)


@dataclass
class _Checked:
    """The run's rows parsed, checked and persisted (``_parse_and_check``), what the job that
    cached them counted, and the index that locates them."""

    parsed: _Parsed
    rows: DataFrame  # persisted: _t_<field>s, dt, _uri, _block, _id, raw, reason, field, _jsonl
    tally: _Tally
    index: DataFrame  # INDEX_DDL

    @property
    def few_candidates(self) -> bool:
        """Whether the candidate keys are few enough to broadcast to the joins that find and
        mark their holders (``BROADCAST_ROWS``)."""
        return self.tally.candidates <= BROADCAST_ROWS


@contextlib.contextmanager
def _checked_rows(
    spark: SparkSession,
    contract: Contract,
    files: list[LandedFile],
    scans: dict[str, _LineScan],
    dataset: str,
    say: Callable[[str], None],
    held: DataFrame | None = None,
) -> Generator[_Checked, None, None]:
    """Steps 2 and 3: the rows parsed, checked, counted and indexed, persisted while the caller
    reads them and released after.

    Spark's JSON reader is tried first: about twice as fast as the text parser, and
    ``_string_frame`` takes it only where ``_LineScan`` found no line it could make other than
    one row of. Its row counts are then held against the files' lines (``_row_index``); should
    they differ (never seen: the scan looks for every line known to do that), a line number would be wrong, so
    its rows are released and the files parsed again as text, which numbers each line itself
    and needs no such check.
    """
    parsed, rows = _parse_and_check(spark, contract, files, scans, "json", dataset, say, held)
    try:
        tally = _tally(rows, contract)
        index = _row_index(spark, parsed, rows, tally, dataset, say)
        if index is None:
            rows.unpersist()
            parsed, rows = _parse_and_check(
                spark, contract, files, scans, "text", dataset, say, held
            )
            tally = _tally(rows, contract)
            # The text parser's index came from a count of the lines (_line_index): whole.
            index = local_frame(spark, parsed.index, INDEX_DDL)
        yield _Checked(parsed, rows, tally, index)
    finally:
        rows.unpersist()


def _parse_and_check(
    spark: SparkSession,
    contract: Contract,
    files: list[LandedFile],
    scans: dict[str, _LineScan],
    parser: str,
    dataset: str,
    say: Callable[[str], None],
    held: DataFrame | None = None,
) -> tuple[_Parsed, DataFrame]:
    """Step 2: the files parsed with ``parser`` (``_string_frame``: "text" where the line scan
    rules out "json") and every row checked (``_check``), marked to persist.

    Parsed and checked once, persisted: the duplicate search, the counts and both writes read
    it. Only what they need is kept: no JSON Lines text (joined back for rejected rows only),
    no string copies of typed fields, no file names.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    parsed = _string_frame(spark, contract, files, scans, parser)
    if parsed.lines is not None:
        say(f"{dataset}: JSON Lines read with the {parsed.parser} parser")
    with _uncompressed_cache(spark):
        checked = _check(parsed.frame, contract)
        if contract.name in DIMENSIONS:  # a key lands once: not again on a later day
            checked = _resent(checked, contract, held)
        rows = checked.select(
            *[F.col(f"_t_{n}") for n in contract.names],
            "dt",
            "_uri",
            "_block",
            "_id",
            "raw",
            "reason",
            "field",
            "_jsonl",
        ).persist(StorageLevel.MEMORY_AND_DISK)
    return parsed, rows


def _tally(rows: DataFrame, contract: Contract) -> _Tally:
    """Step 2's job: one job fills the cache and counts the rows by day and verdict, the JSON
    Lines rows, and the keys that more than one good row holds (by a 64-bit hash: see
    ``_duplicated_keys``). Only when there are any is the duplicate search run."""
    from pyspark.sql import functions as F

    ok = F.col("reason").isNull()
    by_key = rows.groupBy(
        "dt", ok.alias("ok"), F.when(ok, duplicate_hash(contract)).alias("_h")
    ).agg(F.count("*").alias("_n"), F.count_if("_jsonl").alias("_nj"))
    tally = by_key.groupBy("dt", "ok").agg(
        F.sum("_n").alias("n"),
        F.sum("_nj").alias("nj"),
        F.count_if(F.col("_n") > 1).alias("shared"),
    )
    counts: dict[tuple[str, bool], int] = {}
    jsonl_rows = candidates = 0
    for r in tally.collect():
        counts[(r["dt"].isoformat(), r["ok"])] = r["n"]
        jsonl_rows += r["nj"]
        candidates += r["shared"] if r["ok"] else 0
    return _Tally(counts, jsonl_rows, candidates)


def _row_index(
    spark: SparkSession,
    parsed: _Parsed,
    rows: DataFrame,
    tally: _Tally,
    dataset: str,
    say: Callable[[str], None],
) -> DataFrame | None:
    """Step 3: the ``INDEX_DDL`` frame that locates the rows, or None (said why) where Spark's
    JSON reader did not make one row per line, as ``_LineScan`` foresaw.

    The JSON reader's rows are checked file by file where rows are located (each split's
    first id and row count, from the cache: a few rows to collect), which also indexes their
    splits; in total otherwise. The text parser's rows were indexed as they were read.
    """
    found: list[tuple] = []
    if parsed.expected is not None:
        made, lines = {"": tally.jsonl_rows}, {"": sum(parsed.expected.values())}
        if tally.locate:
            found, made = _split_offsets(_split_counts(rows.where("_jsonl")))
            lines = parsed.expected
        if made != lines:
            n_rows, n_lines = sum(made.values()), sum(lines.values())
            say(f"{dataset}: {n_rows} rows from {n_lines} lines; parsing again as text")
            return None
    return local_frame(spark, parsed.index + found, INDEX_DDL)


@contextlib.contextmanager
def _later_duplicates(
    checked: _Checked, contract: Contract
) -> Generator[tuple[DataFrame | None, dict[str, int]], None, None]:
    """Step 4: the repeated keys and where each first stands (``_duplicates``), persisted while
    the caller marks their later holders, and per day how many later holders there are.

    Run only where the tally found a key held twice: ``(None, {})`` otherwise. A candidate can
    still come to nothing (a hash collision): then the day count is empty too.
    """
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    if not checked.tally.candidates:
        yield None, {}
        return
    duplicates = _duplicates(
        checked.rows, contract, checked.index, broadcast=checked.few_candidates
    ).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        later = {
            r["dt"].isoformat(): r["later"]
            for r in duplicates.groupBy("dt").agg(F.sum(F.col("_n") - 1).alias("later")).collect()
        }
        yield duplicates, later
    finally:
        duplicates.unpersist()


def _with_later_rejected(
    counts: dict[tuple[str, bool], int], later: dict[str, int]
) -> dict[tuple[str, bool], int]:
    """``counts`` (day, good) with each day's later duplicates moved from good to rejected."""
    moved = dict(counts)
    for day, n in later.items():
        moved[(day, True)] -= n
        moved[(day, False)] = moved.get((day, False), 0) + n
    return moved


def _quarantine_rows(
    spark: SparkSession,
    checked: _Checked,
    validated: DataFrame,
    whole_files: list[LandedFile],
    dataset: str,
    run_id: str,
    n_rejected: int,
) -> DataFrame:
    """Step 5: the quarantine's rows, in ``QUARANTINE_DDL``'s columns (any order): one per file
    quarantined whole (``line`` null), then each rejected row of ``validated``, located, with
    its raw text."""
    from pyspark.sql import functions as F

    rejected = _located(validated.where(F.col("reason").isNotNull()), checked.index)
    now = dt.datetime.now(dt.UTC)
    quarantine_cols = [
        F.lit(dataset).alias("dataset"), "source_file", "line", "raw", "reason",
        "field", F.lit(run_id).alias("run_id"),
        F.lit(now).cast("timestamp").alias("quarantined_at"), "dt",
    ]  # fmt: skip
    whole = [
        (dataset, f.path, None, None, f.problem, None, run_id, now, dt.date.fromisoformat(f.day))
        for f in whole_files
    ]
    parts = [local_frame(spark, whole, QUARANTINE_DDL)]
    if n_rejected:
        parts.append(rejected.where(~F.col("_jsonl")).select(*quarantine_cols))
        lines = checked.parsed.lines
        if lines is not None:
            # The text of rejected JSON Lines rows, from a second read of the files (no
            # parsing): the rejected rows are few, the broadcast side.
            wanted = rejected.where(F.col("_jsonl")).drop("raw")
            wanted = F.broadcast(wanted) if n_rejected <= BROADCAST_ROWS else wanted
            parts.append(lines.join(wanted, ["_uri", "_block", "_id"]).select(*quarantine_cols))
    bad_rows = parts[0]
    for part in parts[1:]:
        bad_rows = bad_rows.unionByName(part)
    return bad_rows


def _partitions(
    days: list[str],
    files: list[LandedFile],
    counts: dict[tuple[str, bool], int],
    empty: dict[str, str],
) -> dict[str, PartitionResult]:
    """Step 6: each day's report: rows landed, rows quarantined (files quarantined whole
    included), the files read, and the folder looked in if it had none."""
    partitions = {}
    for day in days:
        day_files = [f for f in files if f.day == day]
        partitions[day] = PartitionResult(
            day=day,
            rows=counts.get((day, True), 0),
            quarantined=counts.get((day, False), 0) + sum(1 for f in day_files if f.problem),
            files=day_files,
            empty_folder=empty.get(day),
        )
    return partitions
