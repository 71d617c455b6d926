"""Checking a partition of a lake table: read it and the history its bounds need from Delta,
build the suite, validate it with Spark.

These are what the Dagster asset checks call (``assets/quality.py``), and what a notebook
calls to re-check a day by hand.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING

from recassets.paths import Paths
from recassets.quality.runner import QualityReport, validate
from recassets.quality.suites import TRAILING_DAYS, feature_suite, raw_events_suite

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

RAW_EVENTS_TABLE = "raw_events"


def _as_date(day: dt.date | str) -> dt.date:
    return day if isinstance(day, dt.date) else dt.date.fromisoformat(day)


def _table(spark: SparkSession, paths: Paths, name: str) -> DataFrame:
    return spark.read.format("delta").load(paths.table(name))


def trailing_daily_counts(
    spark: SparkSession,
    paths: Paths,
    day: dt.date | str,
    days: int = TRAILING_DAYS,
    table: str = RAW_EVENTS_TABLE,
) -> list[int]:
    """Row counts of the partitions of ``table`` among the ``days`` days before ``day``, oldest
    first. A day without a partition is left out rather than counted as 0: it is usually a
    day not ingested yet, and a zero would drag the mean down and let a real drop through."""
    from pyspark.sql import functions as F

    day = _as_date(day)
    rows = (
        _table(spark, paths, table)
        .where((F.col("dt") >= F.lit(day - dt.timedelta(days=days))) & (F.col("dt") < F.lit(day)))
        .groupBy("dt")
        .count()
        .orderBy("dt")
        .collect()
    )
    return [int(r["count"]) for r in rows]


def previous_partition(
    spark: SparkSession, paths: Paths, table: str, day: dt.date | str
) -> tuple[dt.date, int] | None:
    """``(dt, row count)`` of the latest partition of ``table`` before ``day``, None when
    there is none."""
    from pyspark.sql import functions as F

    day = _as_date(day)
    rows = (
        _table(spark, paths, table)
        .where(F.col("dt") < F.lit(day))
        .groupBy("dt")
        .count()
        .orderBy(F.col("dt").desc())
        .limit(1)
        .collect()
    )
    return (rows[0]["dt"], int(rows[0]["count"])) if rows else None


def _validate_partition(df: DataFrame, suite) -> QualityReport:
    # Every expectation is a scan of the partition: read the Delta files once.
    df = df.persist()
    try:
        return validate(df, suite)
    finally:
        df.unpersist()


def volume_band_from_env(default: float = 0.5) -> float | None:
    """The raw_events volume band: ``RECASSETS_VOLUME_BAND`` (a fraction, e.g. 0.5 for +-50 %),
    ``off`` to skip the volume expectation (historical imports such as MovieLens, whose daily
    volume swings far beyond any steady band), else ``default``."""
    raw = os.environ.get("RECASSETS_VOLUME_BAND", "").strip().lower()
    if raw in ("off", "none"):
        return None
    return float(raw) if raw else default


def check_raw_events(
    spark: SparkSession, paths: Paths, day: dt.date | str, band: float | None = None
) -> QualityReport:
    """Validate the ``raw_events`` partition of ``day`` against ``raw_events_suite``, the
    volume band drawn from the 7 days before it."""
    from pyspark.sql import functions as F

    day = _as_date(day)
    counts = trailing_daily_counts(spark, paths, day)
    partition = _table(spark, paths, RAW_EVENTS_TABLE).where(F.col("dt") == F.lit(day))
    band = volume_band_from_env() if band is None else band
    return _validate_partition(partition, raw_events_suite(day, counts, band=band))


def check_feature_table(
    spark: SparkSession, paths: Paths, table: str, day: dt.date | str, tolerance: float = 0.5
) -> QualityReport:
    """Validate the partition ``day`` of a feature table against ``feature_suite``, its row
    count compared with the latest partition before ``day`` (not necessarily ``day - 1``: a
    table may skip days, and the last good one is the reference)."""
    from pyspark.sql import functions as F

    day = _as_date(day)
    previous = previous_partition(spark, paths, table, day)
    suite = feature_suite(table, previous[1] if previous else None, tolerance=tolerance)
    if previous:
        suite.meta["context"]["previous_partition"] = previous[0].isoformat()
    partition = _table(spark, paths, table).where(F.col("dt") == F.lit(day))
    return _validate_partition(partition, suite)
