"""Checking partitions of a lake table: read them and the history their bounds need from
Delta, build each day's suite, validate with Spark.

Two forms of each check: ``check_raw_events`` / ``check_feature_table`` validate one day (what
a notebook calls to re-check a day by hand); ``check_raw_events_range`` /
``check_feature_table_range`` validate a range of days with one Great Expectations validation
(``recassets.quality.ranges``) and report each day as the one-day form does. The Dagster asset
checks (``assets/quality.py``) call the range forms, a one-day run being a range of one.

Days without events: ingestion writes an empty ``raw_events`` partition for a day of a range
that had no landing file, and says so in the day's lineage manifest (``"empty": true``).
``events_manifest_empty`` reads that; ``check_has_events`` reports it, day by day.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from recassets.paths import Paths
from recassets.quality.ranges import PartitionRange, iso_days
from recassets.quality.runner import QualityReport, validate
from recassets.quality.suites import TRAILING_DAYS, feature_suite, raw_events_suite

if TYPE_CHECKING:
    import great_expectations as gx
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
    day not ingested yet, and a zero would drag the mean down and let a real drop through.
    So is a day whose partition has no rows (an empty day: no landing files; or every row
    quarantined, which its own check reports)."""
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


def _validate_partition(df: DataFrame, suite: gx.ExpectationSuite) -> QualityReport:
    # Every expectation is a scan of the partition: read the Delta files once.
    df = df.persist()
    try:
        return validate(df, suite)
    finally:
        df.unpersist()


# The raw_events volume band: a day's row count within +-50 % of the trailing mean.
DEFAULT_VOLUME_BAND = 0.5


def parse_volume_band(raw: str | None, default: float = DEFAULT_VOLUME_BAND) -> float | None:
    """A volume band as configured (the Dagster ``QualityResource``, from
    ``RECASSETS_VOLUME_BAND``): a fraction (``"0.5"`` for +-50 %), ``"off"`` (or ``"none"``) to
    skip the volume expectation (historical imports such as MovieLens, whose daily volume
    swings far beyond any steady band), empty or None for ``default``."""
    text = (raw or "").strip().lower()
    if text in ("off", "none"):
        return None
    if not text:
        return default
    try:
        band = float(text)
    except ValueError:
        band = math.nan
    if not (math.isfinite(band) and band >= 0):  # refused at start, not after ingestion
        raise ValueError(
            f"RECASSETS_VOLUME_BAND={raw!r}: expected a fraction >= 0 (e.g. 0.5) or off"
        )
    return band


def events_manifest(paths: Paths, day: dt.date | str) -> dict | None:
    """The lineage manifest ingestion wrote for the ``raw_events`` partition of ``day``, None
    when there is none (a table written by other means, as in tests and notebooks)."""
    from recassets.ingest import lineage_path

    path = Path(lineage_path(paths, RAW_EVENTS_TABLE, _as_date(day).isoformat()))
    return json.loads(path.read_text()) if path.exists() else None


def events_manifest_empty(paths: Paths, day: dt.date | str) -> bool:
    """Whether ingestion found no landing file for ``day`` and wrote an empty partition
    (the manifest's ``empty``; manifests older than that key, or none: False)."""
    manifest = events_manifest(paths, day)
    return bool(manifest and manifest.get("empty"))


def check_raw_events(
    spark: SparkSession,
    paths: Paths,
    day: dt.date | str,
    band: float | None = DEFAULT_VOLUME_BAND,
) -> QualityReport:
    """Validate the ``raw_events`` partition of ``day`` against ``raw_events_suite``, the
    volume band (``band``, a fraction; None: no volume expectation) drawn from the 7 days
    before it (none on an empty day: see the suite)."""
    from pyspark.sql import functions as F

    day = _as_date(day)
    counts = trailing_daily_counts(spark, paths, day)
    partition = _table(spark, paths, RAW_EVENTS_TABLE).where(F.col("dt") == F.lit(day))
    suite = raw_events_suite(day, counts, band=band, empty=events_manifest_empty(paths, day))
    return _validate_partition(partition, suite)


def _counts_on(spark: SparkSession, paths: Paths, table: str, days: list[str]) -> dict[str, int]:
    """Rows per day of ``table`` on ``days``, days with rows only (one groupBy; none when
    ``days`` is empty)."""
    if not days:
        return {}
    rows = _range_frame(spark, paths, table, days).groupBy("dt").count().collect()
    return {r["dt"].isoformat(): int(r["count"]) for r in rows if r["count"]}


def _days_between(first: dt.date, last: dt.date) -> list[str]:
    """Every day of ``[first, last)``, ISO."""
    return [(first + dt.timedelta(days=k)).isoformat() for k in range((last - first).days)]


def _range_frame(spark: SparkSession, paths: Paths, table: str, days: list[str]) -> DataFrame:
    from pyspark.sql import functions as F

    return _table(spark, paths, table).where(
        F.col("dt").isin([dt.date.fromisoformat(d) for d in days])
    )


def check_raw_events_range(
    spark: SparkSession,
    paths: Paths,
    days: Sequence[dt.date | str],
    band: float | None = DEFAULT_VOLUME_BAND,
) -> dict[str, QualityReport]:
    """``check_raw_events`` for each of ``days`` (ISO day -> report, sorted), in one Great
    Expectations validation over all their rows. Each day's volume band is drawn from the
    7 days before it, the range's own days included, from one groupBy of the range (which
    fills the cache) and one of the days before it outside the range."""
    days_ = iso_days(days)
    if not days_:
        return {}
    first, last = dt.date.fromisoformat(days_[0]), dt.date.fromisoformat(days_[-1])
    # The trailing days outside the range: the 7 before it, and any gap in a sparse range.
    outside = sorted(
        set(_days_between(first - dt.timedelta(days=TRAILING_DAYS), last)) - set(days_)
    )
    history = _counts_on(spark, paths, RAW_EVENTS_TABLE, outside)
    with PartitionRange(_range_frame(spark, paths, RAW_EVENTS_TABLE, days_), days_) as batch:
        counts = {**history, **{d: n for d, n in batch.row_counts().items() if n}}
        suites = {
            day: raw_events_suite(
                day,
                _trailing(counts, day),
                band=band,
                empty=events_manifest_empty(paths, day),
            )
            for day in days_
        }
        return batch.validate(suites)


def _trailing(counts: dict[str, int], day: str, days: int = TRAILING_DAYS) -> list[int]:
    """``trailing_daily_counts`` from counts by day (days with rows only)."""
    d = dt.date.fromisoformat(day)
    window = [(d - dt.timedelta(days=k)).isoformat() for k in range(days, 0, -1)]
    return [counts[w] for w in window if counts.get(w)]


@dataclass(frozen=True)
class DayEvents:
    """Whether a day of ``raw_events`` has events, and where its files were looked for."""

    day: str
    rows: int
    landing_folder: str  # the folder ingestion looked in (the manifest's looked_in, if any)
    empty: bool  # the manifest says no landing file was found: an empty partition
    quarantined: int | None  # rows of the day's files quarantined (None: no manifest)

    @property
    def has_events(self) -> bool:
        return self.rows > 0 and not self.empty

    def describe(self) -> str:
        if self.empty:
            return (
                f"no events on {self.day}: ingestion found no landing file in "
                f"{self.landing_folder} and wrote an empty partition"
            )
        if not self.rows:
            text = f"no events on {self.day}: 0 rows in raw_events from {self.landing_folder}"
            if self.quarantined:
                text += f" ({self.quarantined} row(s) quarantined)"
            return text
        return f"{self.rows} events on {self.day}"


def check_has_events(
    spark: SparkSession, paths: Paths, days: Sequence[dt.date | str]
) -> dict[str, DayEvents]:
    """For each of ``days`` (ISO day -> ``DayEvents``, sorted): its ``raw_events`` rows (one
    groupBy) and what its lineage manifest says of its landing files."""
    days_ = iso_days(days)
    if not days_:
        return {}
    counts = _counts_on(spark, paths, RAW_EVENTS_TABLE, days_)
    out = {}
    for day in days_:
        manifest = events_manifest(paths, day) or {}
        out[day] = DayEvents(
            day=day,
            rows=counts.get(day, 0),
            landing_folder=manifest.get("looked_in") or paths.landing_dir("events", day),
            empty=bool(manifest.get("empty")),
            quarantined=manifest.get("quarantined"),
        )
    return out


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


def check_feature_table_range(
    spark: SparkSession,
    paths: Paths,
    table: str,
    days: Sequence[dt.date | str],
    tolerance: float = 0.5,
) -> dict[str, QualityReport]:
    """``check_feature_table`` for each of ``days`` (ISO day -> report, sorted), in one Great
    Expectations validation over all their rows. Each day's reference is the latest partition
    with rows before it: a day of the range, of a gap in it, or the latest before it."""
    days_ = iso_days(days)
    if not days_:
        return {}
    first, last = dt.date.fromisoformat(days_[0]), dt.date.fromisoformat(days_[-1])
    before = previous_partition(spark, paths, table, first)
    gaps = sorted(set(_days_between(first, last)) - set(days_))  # in a sparse range
    outside = _counts_on(spark, paths, table, gaps)
    with PartitionRange(_range_frame(spark, paths, table, days_), days_) as batch:
        counts = {**outside, **{d: n for d, n in batch.row_counts().items() if n}}
        if before:
            counts[before[0].isoformat()] = before[1]
        suites = {}
        for day in days_:
            earlier = [d for d in counts if d < day]
            previous = max(earlier) if earlier else None
            suite = feature_suite(
                table, counts[previous] if previous else None, tolerance=tolerance
            )
            if previous:
                suite.meta["context"]["previous_partition"] = previous
            suites[day] = suite
        return batch.validate(suites)
