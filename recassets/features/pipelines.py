"""PySpark feature pipelines: ``user_features``, ``item_features``, ``cohort_features``.

Each is a daily Delta partition describing the world as of the end of day d (UTC), computed
from events with ``ts`` before the end of d. ``raw_events`` only holds rows whose ``ts`` lies
in their partition's day (ingestion quarantines the rest), so reading partitions ``dt <= d``
is point-in-time correct by construction.

Incremental, never the whole history:

* counters, CTRs, top categories and cohort rates read only the 28-day window d-27..d;
* the sequence feature (last 50 engagements) rolls day d-1's state forward with day d's
  engagements. When d-1 has no partition (the first day, or a gap), it bootstraps from the
  28-day window, so a user idle for longer starts with an empty sequence. Within a run over
  a range of days, days are computed in order, each rolling the previous one forward.

A range of several days (a backfill) takes ``recassets.features.backfill`` instead: the same
tables for the whole range in a number of Spark jobs that does not grow with the range, where
this path pays Spark's per-job overhead once per day (``build_features(mode=...)``).

Where the data lacks a field the features degrade instead of failing: MovieLens has no
impressions (impression counters are 0 and the smoothed CTR equals its prior, 0 when the
window has no impressions at all), no countries or devices (null; cohorts use 'unknown') and
no creators (the item embedding then depends on the category alone).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from recassets import __version__
from recassets.features import seen
from recassets.features.schema import (
    EMBEDDING_DIM,
    ENGAGEMENT_TYPES,
    PRIOR_STRENGTH,
    SEQUENCE_LENGTH,
    TABLES,
    TOP_CATEGORIES,
    WINDOWS,
)
from recassets.ingested import require_feature_inputs
from recassets.lake import (
    conform,
    days_predicate,
    ensure_table,
    has_partition,
    latest_version,
    replace_partitions,
)
from recassets.paths import Paths
from recassets.spark import local_frame
from recassets.undo import all_or_none

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

LONGEST = max(WINDOWS)
# From this many contiguous days on, "auto" takes the range pass: it runs about 100 Spark jobs
# whatever the range's length, the per-day path about 60 a day, so the range pass starts to win
# at 3 to 7 days (measured on the 2-core machine); shorter runs (the landing sensor's day, or
# a late day and its neighbour) stay on the incremental per-day path.
RANGE_MIN_DAYS = 4
FEATURE_TABLES = tuple(TABLES)


@dataclass
class FeatureResult:
    days: list[str]
    rows: dict[str, dict[str, int]] = field(default_factory=dict)  # table -> day -> rows
    versions: dict[str, int] = field(default_factory=dict)  # table -> Delta version
    inputs: dict[str, dict] = field(default_factory=dict)  # day -> what it read


def _day(d: str | dt.date) -> dt.date:
    return d if isinstance(d, dt.date) else dt.date.fromisoformat(d)


def _engaged() -> Column:
    from pyspark.sql import functions as F

    return F.col("event_type").isin(*ENGAGEMENT_TYPES)


COUNTER_KINDS = ("impressions", "clicks", "likes", "engagements", "watch_time")


def _counters(
    age: Column, windows: Sequence[int] = WINDOWS, kinds: Sequence[str] = COUNTER_KINDS
) -> list[Column]:
    """Window counters ``<kind>_<w>d`` from events carrying ``age`` = days before d (0 = d)."""
    from pyspark.sql import functions as F

    is_type = {
        "impressions": F.col("event_type") == "impression",
        "clicks": F.col("event_type") == "click",
        "likes": F.col("event_type") == "like",
        "engagements": _engaged(),
    }
    cols = []
    for w in windows:
        for kind in kinds:
            inw = age < w
            if kind == "watch_time":
                value = F.when(inw & (F.col("event_type") == "watch"), F.col("value")).otherwise(
                    0.0
                )
                cols.append(F.sum(value).cast("double").alias(f"watch_time_{w}d"))
            else:
                cols.append(
                    F.sum(F.when(inw & is_type[kind], 1).otherwise(0))
                    .cast("bigint")
                    .alias(f"{kind}_{w}d")
                )
    return cols


def _counter_names() -> list[str]:
    return [f"{k}_{w}d" for w in WINDOWS for k in COUNTER_KINDS]


def _smoothed_ctr(clicks: str, impressions: str, prior: float) -> Column:
    from pyspark.sql import functions as F

    return _smoothed(clicks, impressions, F.lit(PRIOR_STRENGTH * prior))


def _smoothed(clicks: str, impressions: str, prior_mass: Column) -> Column:
    """The smoothed CTR given ``prior_mass`` = PRIOR_STRENGTH x the prior (a literal here, a
    per-day column in ``backfill``: one expression, so both give the same doubles)."""
    from pyspark.sql import functions as F

    # Beta prior worth PRIOR_STRENGTH impressions at the window's global CTR; clamp to [0, 1]
    # (a click without a logged impression is possible in real logs).
    raw = (F.col(clicks) + prior_mass) / (F.col(impressions) + F.lit(PRIOR_STRENGTH))
    return F.least(F.lit(1.0), F.greatest(F.lit(0.0), raw)).cast("double")


def _global_ctrs(events: DataFrame) -> dict[int, float]:
    """The window's global CTR per window length, in one pass: the prior of every smoothed CTR
    of the day (users, items and cohorts share it: their clicks and impressions sum to it)."""
    from pyspark.sql import functions as F

    row = events.agg(*_counters(F.col("age"), kinds=("impressions", "clicks"))).first()
    assert row is not None  # an aggregate without groupBy has one row
    out = {}
    for w in WINDOWS:
        clicks, imps = (row[f"clicks_{w}d"] or 0), (row[f"impressions_{w}d"] or 0)
        out[w] = min(1.0, clicks / imps) if imps else 0.0
    return out


def content_embedding(category: Column, creator: Column) -> Column:
    """A deterministic content embedding of an item's attributes (EMBEDDING_DIM floats, L2
    normalized): a signed random projection of the hashed category, plus half of the hashed
    creator. Items of one category sit close; one creator's items closer still. Replaced by the
    item tower's output once a model exists (training stage)."""
    from pyspark.sql import functions as F

    def part(col: Column, k: Column) -> Column:
        return (F.pmod(F.xxhash64(F.coalesce(col, F.lit("")), k), F.lit(2001)) - 1000) / 1000.0

    raw = F.transform(
        F.sequence(F.lit(0), F.lit(EMBEDDING_DIM - 1)),
        lambda k: part(category, k)
        + F.when(creator.isNotNull(), 0.5 * part(creator, k)).otherwise(0.0),
    )
    norm = F.sqrt(F.aggregate(raw, F.lit(0.0), lambda acc, x: acc + x * x))
    return F.transform(raw, lambda x: (x / F.greatest(norm, F.lit(1e-9))).cast("float"))


def with_content_embedding(rows: DataFrame, items: DataFrame) -> DataFrame:
    """``rows`` (category and creator columns, taken from ``items`` or null) with the
    ``embedding`` of their pair, computed once per distinct pair of the items dimension (and
    the null pair) and joined back null-safely. ``content_embedding``'s higher-order functions
    are interpreted element by element: on every row of a 215-day range (357k item-days,
    23M elements) they took minutes; per pair they are a few thousand elements."""
    from pyspark.sql import functions as F

    pairs = (
        items.select(F.col("category").alias("_cat"), F.col("creator").alias("_cre"))
        .unionByName(local_frame(items.sparkSession, [(None, None)], "_cat string, _cre string"))
        .distinct()
        .withColumn("embedding", content_embedding(F.col("_cat"), F.col("_cre")))
    )
    match = F.col("category").eqNullSafe(F.col("_cat")) & F.col("creator").eqNullSafe(F.col("_cre"))
    return rows.join(F.broadcast(pairs), match, "left").drop("_cat", "_cre")


def _dimension(spark: SparkSession, paths: Paths, name: str, day: dt.date) -> DataFrame:
    """The dimension as of the end of ``day``: every row first seen on or before it."""
    from pyspark.sql import functions as F

    return spark.read.format("delta").load(paths.table(name)).where(F.col("dt") <= F.lit(day))


def compute_day(
    spark: SparkSession, paths: Paths, day: str | dt.date, full_history: bool = False
) -> tuple[dict[str, DataFrame], DataFrame]:
    """The three feature frames of ``day`` (not yet written) and the persisted event window
    they read (unpersist it after use). Reads raw_events d-27..d, the dimensions as of d and
    user_features of d-1 (for the sequence roll-forward).

    ``full_history`` is the non-incremental baseline of ``benchmarks/features.py``: it reads
    every event up to d and rebuilds the sequences from scratch (same counters: the windows
    still cut at 28 days)."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    d = _day(day)
    # Spark rejects date.min (year 1) as a literal; 1970 predates every source we ingest
    start = dt.date(1970, 1, 1) if full_history else d - dt.timedelta(days=LONGEST - 1)
    events = (
        spark.read.format("delta").load(paths.table("raw_events"))
        .where((F.col("dt") >= F.lit(start)) & (F.col("dt") <= F.lit(d)))
        .withColumn("age", F.datediff(F.lit(d), F.col("dt")))
        .select("user_id", "item_id", "event_type", "ts", "value", "country", "age")
    )  # fmt: skip
    # Six aggregations read the window: keep it in memory (the caller unpersists it).
    events = events.persist()
    prior = _global_ctrs(events)
    users = _dimension(spark, paths, "users", d).select(
        "user_id", "country", "device", "age_bucket", "first_seen"
    )
    items = _dimension(spark, paths, "items", d).select(
        "item_id", "category", "creator", "first_seen"
    )
    end_of_day = F.lit(dt.datetime.combine(d + dt.timedelta(days=1), dt.time(), dt.UTC)).cast(
        "timestamp"
    )
    # fillna's value type (pyspark's LiteralType), spelled out: a dict's value type is invariant
    zeros: dict[str, bool | float | int | str] = {c: 0 for c in _counter_names()}

    # --- users ---------------------------------------------------------------------------
    ucounts = events.groupBy("user_id").agg(*_counters(F.col("age")))
    user_ids = users.select("user_id").unionByName(events.select("user_id")).distinct()
    ub = (
        user_ids.join(ucounts, "user_id", "left").fillna(zeros)
        .join(users.drop("first_seen"), "user_id", "left")
        .withColumn("ctr_7d", _smoothed_ctr("clicks_7d", "impressions_7d", prior[7]))
        .withColumn("ctr_28d", _smoothed_ctr("clicks_28d", "impressions_28d", prior[28]))
    )  # fmt: skip

    eng_struct = F.struct(F.col("item_id"), F.col("event_type"), F.col("ts"), F.col("value")).alias(
        "e"
    )
    prev_day = d - dt.timedelta(days=1)
    prev_rows = None
    if not full_history and has_partition(spark, paths.table("user_features"), prev_day):
        prev_rows = (
            spark.read.format("delta").load(paths.table("user_features"))
            .where(F.col("dt") == F.lit(prev_day))
        )  # fmt: skip
        prev = prev_rows.select("user_id", F.explode("last_engagements").alias("e"))
        fresh = events.where((F.col("age") == 0) & _engaged()).select("user_id", eng_struct)
        engagements = prev.unionByName(fresh)
    else:  # bootstrap from the window
        engagements = events.where(_engaged()).select("user_id", eng_struct)
    by_time = Window.partitionBy("user_id").orderBy(
        F.col("e.ts").desc(), F.col("e.event_type").desc(), F.col("e.item_id").desc()
    )
    seq = (
        engagements.withColumn("rn", F.row_number().over(by_time)).where(F.col("rn") <= SEQUENCE_LENGTH)
        .groupBy("user_id").agg(F.collect_list(F.struct(F.col("rn"), F.col("e"))).alias("s"))
        .select("user_id", F.transform(F.array_sort(F.col("s"), lambda a, b: b["rn"] - a["rn"]),
                                       lambda x: x["e"]).alias("last_engagements"))
    )  # fmt: skip

    cat = (
        events.where(_engaged() & (F.col("age") < LONGEST)).join(items.select("item_id", "category"), "item_id", "left")
        .withColumn("category", F.coalesce("category", F.lit("unknown")))
        .groupBy("user_id", "category").count()
    )  # fmt: skip
    cat = cat.withColumn(
        "weight", F.col("count") / F.sum("count").over(Window.partitionBy("user_id"))
    )
    cat = cat.withColumn(
        "rn",
        F.row_number().over(
            Window.partitionBy("user_id").orderBy(F.col("weight").desc(), "category")
        ),
    ).where(F.col("rn") <= TOP_CATEGORIES)
    top = (
        cat.groupBy("user_id")
        .agg(F.array_sort(F.collect_list(F.struct("rn", "category", "weight"))).alias("t"))
        .select(
            "user_id",
            F.transform(
                "t",
                lambda x: F.struct(
                    x["category"].alias("category"), x["weight"].cast("double").alias("weight")
                ),
            ).alias("top_categories"),
        )
    )

    empty_seq = F.array().cast(
        "array<struct<item_id: bigint, event_type: string, ts: timestamp, value: double>>"
    )
    user_features = (
        ub.join(seq, "user_id", "left").join(top, "user_id", "left")
        .join(seen.on_day(events, seen.seed_of(prev_rows)), "user_id", "left")
        .withColumn("seen_item_ids", F.coalesce("seen_item_ids", F.array().cast("array<bigint>")))
        .withColumn("last_engagements", F.coalesce("last_engagements", empty_seq))
        # a field of an array of structs: compiled, where a transform lambda is interpreted
        .withColumn("history_item_ids", F.col("last_engagements.item_id"))
        .withColumn("top_categories", F.coalesce("top_categories", F.array().cast("array<struct<category: string, weight: double>>")))
        .withColumn("dt", F.lit(d))
    )  # fmt: skip

    # --- items ---------------------------------------------------------------------------
    icounts = events.groupBy("item_id").agg(*_counters(F.col("age")))
    item_ids = items.select("item_id").unionByName(events.select("item_id")).distinct()
    first_seen = F.coalesce(F.col("first_seen"), F.col("_first_event"))
    first_event = events.groupBy("item_id").agg(F.min("ts").alias("_first_event"))
    item_features = (
        item_ids.join(icounts, "item_id", "left").fillna(zeros)
        .join(items, "item_id", "left").join(first_event, "item_id", "left")
        .withColumn("ctr_7d", _smoothed_ctr("clicks_7d", "impressions_7d", prior[7]))
        .withColumn("ctr_28d", _smoothed_ctr("clicks_28d", "impressions_28d", prior[28]))
        .withColumn("age_days", F.greatest(F.lit(0.0), (F.unix_micros(end_of_day) - F.unix_micros(first_seen)) / 86_400e6))
        .withColumn("age_days", F.coalesce(F.col("age_days"), F.lit(0.0)).cast("double"))
        .withColumn("trending", ((F.col("engagements_1d") + 1.0) / (F.col("engagements_7d") / 7.0 + 1.0)).cast("double"))
        .withColumn("dt", F.lit(d))
    )  # fmt: skip
    item_features = with_content_embedding(item_features, items)

    # --- cohorts: country x age bucket, by item category --------------------------------
    cohort_events = (
        events.where(F.col("age") < LONGEST)
        .join(users.select("user_id", F.col("country").alias("u_country"), "age_bucket"), "user_id", "left")
        .join(items.select("item_id", "category"), "item_id", "left")
        .select(
            F.coalesce("country", "u_country", F.lit("unknown")).alias("country"),
            F.coalesce("age_bucket", F.lit("unknown")).alias("age_bucket"),
            F.coalesce("category", F.lit("unknown")).alias("category"),
            "event_type", "age",
        )
    )  # fmt: skip
    cohort = cohort_events.groupBy("country", "age_bucket", "category").agg(
        *_counters(F.col("age"), windows=(7, 28), kinds=("impressions", "clicks", "engagements"))
    )
    cohort_features = cohort.withColumn(
        "ctr_28d", _smoothed_ctr("clicks_28d", "impressions_28d", prior[28])
    ).withColumn("dt", F.lit(d))

    frames = {
        "user_features": user_features,
        "item_features": item_features,
        "cohort_features": cohort_features,
    }
    return {name: conform(df, TABLES[name]) for name, df in frames.items()}, events


def build_features(
    spark: SparkSession,
    paths: Paths,
    days: Sequence[str | dt.date],
    tables: Sequence[str] = FEATURE_TABLES,
    run_id: str = "",
    progress: Callable[[str], None] | None = None,
    mode: str = "auto",
) -> FeatureResult:
    """Compute and write the feature partitions of ``days``, in day order (each day rolls the
    previous one's sequences forward).

    ``mode``: ``"daily"`` computes and writes day by day (``compute_day``, each partition
    replaced atomically); ``"range"`` computes each contiguous run of days in one pass
    (``backfill.compute_range``: the same tables in a number of Spark jobs that does not grow
    with the run's length) and writes each table's run in one commit; ``"auto"`` takes the
    per-day path for a run shorter than ``RANGE_MIN_DAYS`` (the daily incremental run reads only
    d-27..d) and the range pass from there on. Both give the same tables; the choice is cost.

    ``recassets.ingested.NotIngestedError`` when a day the partitions read was never ingested
    (``require_feature_inputs``)."""
    if mode not in ("auto", "daily", "range"):
        raise ValueError(f"mode must be 'auto', 'daily' or 'range', not {mode!r}")
    say = progress or (lambda _m: None)
    ordered = sorted({_day(d) for d in days})
    # a day never ingested reads as no rows: refuse it, before any table is created or written
    require_feature_inputs(spark, paths, ordered)
    result = FeatureResult(days=[d.isoformat() for d in ordered])
    for name in tables:
        ensure_table(spark, paths.table(name), TABLES[name], ["dt"])
    runs = contiguous_runs(ordered)
    if mode != "daily" and len(runs) > 1:
        say(f"features: {len(ordered)} days in {len(runs)} contiguous runs, computed in order")
    # Each table commits on its own (a range's table in one commit, a day's partition in one):
    # all or none across them, so a failure or an interrupt after user_features committed
    # no longer leaves it a version ahead of item and cohort features (undo_features).
    with undo_features(spark, paths, tables, progress=say):
        for run in runs:
            if mode == "range" or (mode == "auto" and len(run) >= RANGE_MIN_DAYS):
                from recassets.features.backfill import build_range  # it imports this module

                build_range(spark, paths, run, tables, result, run_id=run_id, progress=say)
                continue
            for d in run:
                _build_day(spark, paths, d, tables, result, run_id)
                i = ordered.index(d) + 1
                say(
                    f"features {d} ({i}/{len(ordered)}): "
                    + ", ".join(f"{n} {result.rows[n][d.isoformat()]}" for n in tables)
                )
    for name in tables:
        result.versions[name] = latest_version(spark, paths.table(name))
    return result


def undo_features(
    spark: SparkSession,
    paths: Paths,
    tables: Sequence[str] = FEATURE_TABLES,
    progress: Callable[[str], None] | None = None,
) -> contextlib.AbstractContextManager[None]:
    """``recassets.undo.all_or_none`` over the feature tables a run writes: should the block
    raise, each table goes back to its version before it. ``build_features`` holds its writes
    in one; the asset holds the run up to its hand-off to Dagster in another (its metadata is
    read after the commits), which the inner one leaves with nothing to undo."""
    return all_or_none(spark, [paths.table(name) for name in tables], progress=progress)


def contiguous_runs(days: Sequence[dt.date]) -> list[list[dt.date]]:
    """Sorted distinct days split into runs of consecutive days, in order."""
    runs: list[list[dt.date]] = []
    for d in sorted(set(days)):
        if runs and d - runs[-1][-1] == dt.timedelta(days=1):
            runs[-1].append(d)
        else:
            runs.append([d])
    return runs


def _build_day(
    spark: SparkSession,
    paths: Paths,
    d: dt.date,
    tables: Sequence[str],
    result: FeatureResult,
    run_id: str,
) -> None:
    """The per-day path: ``compute_day`` and one replaceWhere per table partition; each commit
    records the versions read (``userMetadata.read``: recassets lineage follows it)."""
    read = {t: latest_version(spark, paths.table(t)) for t in ("raw_events", "users", "items")}
    frames, window = compute_day(spark, paths, d)
    for name in tables:
        df = frames[name].persist()
        rows = df.count()
        meta = json.dumps(
            {"run_id": run_id, "table": name, "day": d.isoformat(), "code_version": __version__,
             "read": read}
        )  # fmt: skip
        replace_partitions(df, paths.table(name), days_predicate([d]), meta)
        df.unpersist()
        result.rows.setdefault(name, {})[d.isoformat()] = rows
    window.unpersist()
    result.inputs[d.isoformat()] = {
        "raw_events": {"from": (d - dt.timedelta(days=LONGEST - 1)).isoformat(), "to": d.isoformat(),
                       "delta_version": read["raw_events"]},
        "users_delta_version": read["users"],
        "items_delta_version": read["items"],
    }  # fmt: skip
