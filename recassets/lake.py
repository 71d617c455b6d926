"""Delta table helpers shared by every writer: explicit schemas, partition tests, versions."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, cast

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def ensure_table(spark: SparkSession, path: str, ddl: str, partition_cols: Sequence[str]) -> None:
    """Create the Delta table with an explicit schema, so nullability is the contract's and not
    whatever the first write happened to hold (Spark marks columns non-nullable on a first
    write, and later appends with nulls then fail)."""
    from delta.tables import DeltaTable
    from pyspark.sql.types import StructType

    if DeltaTable.isDeltaTable(spark, path):
        return
    builder = DeltaTable.createIfNotExists(spark).location(path)
    # fromDDL is typed as any DataType; a table's column list parses to a StructType
    for f in cast(StructType, StructType.fromDDL(ddl)).fields:
        builder = builder.addColumn(f.name, f.dataType, nullable=f.nullable)
    builder.partitionedBy(*partition_cols).execute()


def latest_version(spark: SparkSession, path: str) -> int:
    """The table's newest Delta version. On a local path it is the highest commit file in
    ``_delta_log`` (a directory listing: microseconds, where ``history(1)`` is a Spark job of
    about a second, run several times per partition for lineage); elsewhere (s3://, ...)
    Delta's own history."""
    local = _local_path(path)
    if local is not None:
        log = os.path.join(local, "_delta_log")
        versions = (
            [int(n[:-5]) for n in os.listdir(log) if _COMMIT.match(n)] if os.path.isdir(log) else []
        )
        if versions:
            return max(versions)
    from delta.tables import DeltaTable

    row = DeltaTable.forPath(spark, path).history(1).select("version").first()
    assert row is not None  # a Delta table has at least its creation commit
    return int(row[0])


_COMMIT = re.compile(r"^\d{20}\.json$")


def recent_commits(
    spark: SparkSession, path: str, n: int = 20
) -> list[tuple[int, str | None, dict[str, str] | None]]:
    """``(version, userMetadata, operationMetrics)`` of the table's newest ``n`` commits, the
    newest first. On a local path they are read from the commit files (what Delta's
    ``history`` reads, in milliseconds where ``history`` takes two tenths of a second);
    elsewhere (s3://, ...), Delta's history."""
    local = _local_path(path)
    log = os.path.join(local, "_delta_log") if local is not None else None
    if log is not None and os.path.isdir(log):
        names = sorted(name for name in os.listdir(log) if _COMMIT.match(name))[-n:]
        commits = []
        for name in reversed(names):
            info: dict = {}
            with open(os.path.join(log, name), encoding="utf-8") as f:
                for line in f:  # one action per line; commitInfo is usually the first
                    action = json.loads(line)
                    if "commitInfo" in action:
                        info = action["commitInfo"]
                        break
            commits.append((int(name[:-5]), info.get("userMetadata"), info.get("operationMetrics")))
        return commits
    from delta.tables import DeltaTable

    history = DeltaTable.forPath(spark, path).history(n)
    return [
        (int(r["version"]), r["userMetadata"], r["operationMetrics"])
        for r in history.select("version", "userMetadata", "operationMetrics").collect()
    ]


def _local_path(path: str) -> str | None:
    if path.startswith("file://"):
        return path[len("file://") :]
    return None if "://" in path else path


def has_partition(spark: SparkSession, path: str, day: dt.date | str) -> bool:
    """Whether the table exists and holds at least one row in partition ``dt = day``."""
    from delta.tables import DeltaTable

    if not DeltaTable.isDeltaTable(spark, path):
        return False
    rows = spark.read.format("delta").load(path).where(days_predicate([day]))
    return bool(rows.limit(1).count())


_ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def partition_day(day: dt.date | str) -> str:
    """``day`` as the ISO date of a daily partition, or ``ValueError``.

    The one gate through which a partition key (a Dagster partition, a CLI argument, a tag a
    user can set from the UI) enters a Delta predicate string (``days_predicate``,
    ``replaceWhere``) or a path: only ``YYYY-MM-DD`` of a real date passes, so no quote,
    ``OR 1=1`` or ``../`` ever reaches SQL or the file system."""
    if isinstance(day, dt.datetime):
        raise ValueError(f"partition day {day!r}: expected a date, not a timestamp")
    if isinstance(day, dt.date):
        return day.isoformat()
    if _ISO_DAY.fullmatch(str(day)):  # str(): keys from untyped callers (tags, JSON) too
        try:
            return dt.date.fromisoformat(day).isoformat()
        except ValueError:
            pass
    raise ValueError(f"partition day {str(day)[:80]!r}: expected a date as YYYY-MM-DD")


def days_predicate(days: Sequence[dt.date | str]) -> str:
    """The Delta predicate selecting the daily partitions ``days`` (``replaceWhere``, reads),
    each validated by ``partition_day``: callers pass partition keys, never SQL."""
    if not days:
        raise ValueError("days_predicate: no days (an empty IN list would select nothing)")
    return "dt IN (" + ", ".join(f"DATE'{partition_day(d)}'" for d in days) + ")"


def conform(df: DataFrame, ddl: str) -> DataFrame:
    """Select and cast to the table's DDL, so a write matches the declared schema exactly."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StructType

    schema = cast(StructType, StructType.fromDDL(ddl))  # a column list parses to a StructType
    return df.select(*[F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields])
