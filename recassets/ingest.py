"""Landing files -> a Delta table, one daily partition at a time (or many in one Spark job).

Every landed row ends in exactly one of two places: the dataset's Delta table, or the
``quarantine`` table with its source file, line, raw text and reason. Rules, in order:

* a file that cannot be read at all (unsupported type, corrupt Parquet, not UTF-8 text, a JSON
  Lines file over ``MAX_JSONL_BYTES``) is quarantined whole, ``line`` null;
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

import datetime as dt
import json
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from recassets import __version__
from recassets.events import CONTRACTS, QUARANTINE_DDL, VALUED_EVENT_TYPES, Contract
from recassets.landing import file_digest
from recassets.paths import Paths

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

MAX_JSONL_BYTES = 1 << 30  # Spark reads a JSONL file as one value to number its lines: 2 GB cap
HEAD_BYTES = 1 << 16  # how much of a JSONL file is sniffed for binary content
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)
QUARANTINE_TABLE = "quarantine"
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

    Raises ``LandingMissingError`` naming each folder that is missing or holds no file, unless
    ``allow_missing_days`` (dimensions: a day without new users is normal, and its partition
    is simply empty).
    """
    found: list[LandedFile] = []
    missing = []
    for day in days:
        folder = Path(paths.landing_dir(dataset, day))
        files = sorted(p for p in folder.glob("*") if p.is_file() and not p.name.startswith((".", "_")))
        if not files:
            missing.append(str(folder))
            continue
        for p in files:
            size, sha = file_digest(p)
            found.append(LandedFile(str(p), day, size, sha, *_classify(p, size)))
    if missing and not allow_missing_days:
        raise LandingMissingError(
            f"no landing files for {dataset} on {len(missing)} day(s); looked in: " + ", ".join(missing)
        )
    return found


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
        if size > MAX_JSONL_BYTES:
            return "unreadable", f"JSON Lines file larger than {MAX_JSONL_BYTES} bytes: split it"
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


def _string_frame(spark: SparkSession, contract: Contract, files: list[LandedFile]) -> DataFrame:
    """One row per landed line: source_file, line, raw, ``_corrupt`` and each contract field as
    a string (typing comes later, so every problem can be named)."""
    from pyspark.sql import functions as F

    names = contract.names
    frames = []
    jsonl = [f.path for f in files if f.format == "jsonl"]
    if jsonl:
        # wholetext: one value per file, so posexplode numbers its lines exactly.
        text = spark.read.text(jsonl, wholetext=True)
        lines = text.select(
            F.col("_metadata.file_path").alias("source_file"),
            F.posexplode(F.split(F.col("value"), "\n")).alias("pos", "raw"),
        )
        lines = lines.select(
            "source_file",
            (F.col("pos") + 1).cast("bigint").alias("line"),
            F.regexp_replace("raw", "\r$", "").alias("raw"),
        ).where(F.trim("raw") != "")
        schema = ", ".join(f"`{n}` string" for n in names) + ", _corrupt_record string"
        parsed = F.from_json(
            "raw", schema, {"mode": "PERMISSIVE", "columnNameOfCorruptRecord": "_corrupt_record"}
        )
        lines = lines.withColumn("_p", parsed)
        frames.append(
            lines.select(
                "source_file",
                "line",
                "raw",
                F.col("_p._corrupt_record").isNotNull().alias("_corrupt"),
                *[F.col(f"_p.`{n}`").alias(n) for n in names],
            )
        )
    for f in files:
        if f.format != "parquet":
            continue
        pdf = spark.read.parquet(f.path)
        present = set(pdf.columns)
        frames.append(
            pdf.select(
                F.col("_metadata.file_path").alias("source_file"),
                (F.col("_metadata.row_index") + 1).cast("bigint").alias("line"),
                F.to_json(F.struct(*[F.col(f"`{c}`") for c in pdf.columns])).alias("raw"),
                F.lit(False).alias("_corrupt"),
                *[
                    (F.col(f"`{n}`").cast("string") if n in present else F.lit(None).cast("string")).alias(n)
                    for n in names
                ],
            )
        )
    if not frames:
        return spark.createDataFrame(
            [], "source_file string, line bigint, raw string, _corrupt boolean, "
            + ", ".join(f"`{n}` string" for n in names)
        )
    out = frames[0]
    for other in frames[1:]:
        out = out.unionByName(other)
    # Spark reports file paths as URIs (file:/...); lineage and reasons use plain paths.
    return out.withColumn("source_file", F.regexp_replace("source_file", "^file:(//)?", ""))


def _typed(name: str, type_: str) -> Column:
    from pyspark.sql import functions as F

    if type_ == "string":
        return F.col(name)
    if type_ == "timestamp":
        return F.expr(f"try_cast(`{name}` as timestamp)")
    return F.expr(f"try_cast(`{name}` as {type_})")


def validate(frame: DataFrame, contract: Contract) -> DataFrame:
    """Type the string frame and attach ``reason`` (null for a good row) and ``field``.

    ``dt`` (the partition day) is read from the ``dt=YYYY-MM-DD`` folder of the source file.
    """
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    df = frame.withColumn("dt", F.to_date(F.regexp_extract("source_file", r"/dt=(\d{4}-\d{2}-\d{2})/", 1)))
    problems: list[tuple[str, Column]] = []  # (field, reason-or-null)
    for f in contract.fields:
        raw, typed = F.col(f"`{f.name}`"), _typed(f.name, f.type)
        df = df.withColumn(f"_t_{f.name}", typed)
        if f.required:
            problems.append((f.name, F.when(raw.isNull(), F.lit(f"missing field {f.name}"))))
        if f.type != "string":
            problems.append(
                (
                    f.name,
                    F.when(
                        raw.isNotNull() & F.col(f"_t_{f.name}").isNull(),
                        F.concat(F.lit(f"field {f.name}: expected {f.type}, got "), F.substring(raw, 1, 200)),
                    ),
                )
            )
    for name, allowed in contract.allowed.items():
        allowed_sql = ", ".join(f"'{a}'" for a in allowed)
        problems.append(
            (
                name,
                F.when(
                    F.col(f"`{name}`").isNotNull() & ~F.expr(f"`{name}` IN ({allowed_sql})"),
                    F.concat(F.lit(f"field {name}: unknown value "), F.col(f"`{name}`"),
                             F.lit(f" (allowed: {', '.join(allowed)})")),
                ),
            )
        )
    if contract.name == "events":
        valued = ", ".join(f"'{t}'" for t in VALUED_EVENT_TYPES)
        problems.append(
            (
                "value",
                F.when(
                    F.expr(f"event_type IN ({valued})") & F.col("value").isNull(),
                    F.concat(F.lit("missing field value (required for "), F.col("event_type"), F.lit(")")),
                ),
            )
        )
    ts = F.col(f"_t_{contract.ts_field}")
    problems.append(
        (
            contract.ts_field,
            F.when(
                ts.isNotNull() & (F.to_date(ts) != F.col("dt")),
                F.concat(F.lit(f"{contract.ts_field} "), F.date_format(ts, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'"),
                         F.lit(" outside partition "), F.col("dt").cast("string")),
            ),
        )
    )
    reasons = F.filter(F.array(*[r for _, r in problems]), lambda x: x.isNotNull())
    fields = F.filter(
        F.array(*[F.when(r.isNotNull(), F.lit(n)) for n, r in problems]), lambda x: x.isNotNull()
    )
    df = df.withColumn(
        "reason",
        F.when(F.col("_corrupt"), F.lit("unparseable JSON: not a JSON object")).otherwise(
            F.when(F.size(reasons) > 0, F.array_join(reasons, "; "))
        ),
    ).withColumn("field", F.when(~F.col("_corrupt") & (F.size(fields) > 0), fields[0]))

    # Duplicates among otherwise good rows: keep the first by (file, line). The window is
    # split by goodness too, so a rejected row never claims its key: a good row that follows
    # a rejected one with the same key still lands (else neither would).
    key = f"_t_{contract.key}"
    good = F.col("reason").isNull()
    df = df.withColumn("_good", good)
    w = Window.partitionBy("dt", key, "_good").orderBy("source_file", "line")
    df = df.withColumn("_rank", F.when(good, F.row_number().over(w)))
    df = df.withColumn("_first", F.when(good, F.first(F.concat_ws(":", "source_file", "line")).over(w)))
    return df.withColumn(
        "reason",
        F.when(
            F.col("_rank") > 1,
            F.concat(F.lit(f"duplicate {contract.key} (first at "), F.col("_first"), F.lit(")")),
        ).otherwise(F.col("reason")),
    ).withColumn("field", F.when(F.col("_rank") > 1, F.lit(contract.key)).otherwise(F.col("field")))


def _ensure_table(spark: SparkSession, path: str, ddl: str, partition_cols: Sequence[str]) -> None:
    """Create the Delta table with an explicit schema, so nullability is the contract's and not
    whatever the first write happened to hold."""
    from delta.tables import DeltaTable
    from pyspark.sql.types import StructType

    if DeltaTable.isDeltaTable(spark, path):
        return
    builder = DeltaTable.createIfNotExists(spark).location(path)
    for f in StructType.fromDDL(ddl).fields:
        builder = builder.addColumn(f.name, f.dataType, nullable=f.nullable)
    builder.partitionedBy(*partition_cols).execute()


def _in_days(days: Sequence[str]) -> str:
    return "dt IN (" + ", ".join(f"DATE'{d}'" for d in days) + ")"


def _latest_version(spark: SparkSession, path: str) -> int:
    from delta.tables import DeltaTable

    return int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])


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
    and writes one lineage manifest per day. Raises ``LandingMissingError`` before writing
    anything when a day has no files.
    """
    from pyspark.sql import functions as F

    say = progress or (lambda _msg: None)
    contract = CONTRACTS[dataset]
    days = sorted({d if isinstance(d, str) else d.isoformat() for d in days})
    run_id = run_id or uuid.uuid4().hex
    files = list_landing_files(paths, dataset, days, allow_missing_days)
    say(f"{dataset}: {len(files)} landing file(s) over {len(days)} day(s)")

    validated = validate(_string_frame(spark, contract, files), contract).persist()
    try:
        now = dt.datetime.now(dt.UTC)
        bad_rows = validated.where(F.col("reason").isNotNull()).select(
            F.lit(dataset).alias("dataset"),
            "source_file",
            "line",
            "raw",
            "reason",
            "field",
            F.lit(run_id).alias("run_id"),
            F.lit(now).cast("timestamp").alias("quarantined_at"),
            "dt",
        )
        whole = [
            (dataset, f.path, None, None, f.problem, None, run_id, now, dt.date.fromisoformat(f.day))
            for f in files
            if f.problem
        ]
        if whole:
            bad_rows = bad_rows.unionByName(spark.createDataFrame(whole, QUARANTINE_DDL))
        good = validated.where(F.col("reason").isNull()).select(
            *[F.col(f"_t_{n}").alias(n) for n in contract.names], "dt"
        )
        counts = {
            (r["dt"].isoformat(), r["ok"]): r["n"]
            for r in validated.groupBy("dt", F.col("reason").isNull().alias("ok")).count()
            .withColumnRenamed("count", "n").collect()
        }

        table_path = paths.table(TABLE_NAMES[dataset])
        quarantine_path = paths.table(QUARANTINE_TABLE)
        _ensure_table(spark, quarantine_path, QUARANTINE_DDL, ["dataset", "dt"])
        _ensure_table(spark, table_path, contract.spark_ddl(), ["dt"])
        meta = json.dumps({"run_id": run_id, "dataset": dataset, "days": days, "code_version": __version__})
        say(f"{dataset}: writing quarantine and table")
        bad_rows.select(*_ddl_names(QUARANTINE_DDL)).write.format("delta").mode("overwrite").option(
            "replaceWhere", f"dataset = '{dataset}' AND {_in_days(days)}"
        ).option("userMetadata", meta).save(quarantine_path)
        good.write.format("delta").mode("overwrite").option("replaceWhere", _in_days(days)).option(
            "userMetadata", meta
        ).save(table_path)
    finally:
        validated.unpersist()

    result = IngestResult(
        dataset=dataset,
        table_path=table_path,
        delta_version=_latest_version(spark, table_path),
        quarantine_version=_latest_version(spark, quarantine_path),
        run_id=run_id,
    )
    for day in days:
        day_files = [f for f in files if f.day == day]
        result.partitions[day] = PartitionResult(
            day=day,
            rows=counts.get((day, True), 0),
            quarantined=counts.get((day, False), 0) + sum(1 for f in day_files if f.problem),
            files=day_files,
        )
    write_lineage(paths, result)
    say(f"{dataset}: {result.rows} rows, {result.quarantined} quarantined, Delta version {result.delta_version}")
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
        }
        tmp = target.with_suffix(".tmp")
        tmp.write_text(json.dumps(manifest, indent=2, sort_keys=True))
        os.replace(tmp, target)


def read_lineage(paths: Paths, table: str, day: str) -> dict:
    return json.loads(Path(lineage_path(paths, table, day)).read_text())
