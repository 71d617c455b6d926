"""Range backfills in one pass: the feature tables of a contiguous range of days D1..Dn in a
number of Spark jobs that does not grow with n, equal to ``compute_day`` run day by day.

The per-day path pays Spark's per-job overhead (11-25 s) for every day whatever the volume, so
a 160-day history took 40 minutes. Here every day of the range is computed by the same jobs:

* events of D1-27..Dn are read once (persisted) and aggregated per (entity, event day n);
  each aggregate row is spread to the target days d in [n, n+27] within the range (age =
  d - n), and the window counters are conditional sums over (entity, d);
* the rows of day d are (dimension rows with dt <= d) union (entities with an event in
  d-27..d), as in ``compute_day``; dimension attributes as of d come from a join on
  ``dimension.dt <= d`` (an entity seen in events before its dimension row gets nulls for the
  days before it). Where events are joined to a dimension before being spread (cohorts, top
  categories) each event row is split into one variant per dimension row, valid from that
  row's dt, and a null variant valid before the first one: the same rows as the per-day join;
* the smoothed CTRs' priors come from one tiny collect of per-day totals, joined back by day;
* the sequence (last 50 engagements) is one ordered pass per user, see ``_sequences``.

Day numbers ``n`` count from D1 (D1 = 0, D1-27 = -27) so that spreading is integer work.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from recassets import __version__
from recassets.features import seen
from recassets.features.pipelines import (
    COUNTER_KINDS,
    LONGEST,
    FeatureResult,
    _counter_names,
    _day,
    _engaged,
    _smoothed,
    with_content_embedding,
)
from recassets.features.schema import (
    PRIOR_STRENGTH,
    SEQUENCE_LENGTH,
    TABLES,
    TOP_CATEGORIES,
    WINDOWS,
)
from recassets.lake import (
    conform,
    days_predicate,
    has_partition,
    latest_version,
    replace_partitions,
)
from recassets.paths import Paths
from recassets.spark import local_frame

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession

DAY_MICROS = 86_400_000_000
SEQ_FIELDS = ("item_id", "event_type", "ts", "value")  # the order of last_engagements' struct


def compute_range(
    spark: SparkSession,
    paths: Paths,
    days: Sequence[str | dt.date],
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, DataFrame], Callable[[], None]]:
    """The three feature frames of the contiguous ``days`` (a ``dt`` column per row, not yet
    written) and a cleanup that releases the persisted event read (call it after the writes).

    Reads raw_events D1-27..Dn, the dimensions as of Dn (each row used from its own dt on) and
    user_features of D1-1 (the sequences' seed; without it they bootstrap from D1-27..D1-1, as
    ``compute_day`` does). Runs two small jobs now (the seed test and the per-day totals); the
    rest runs when the frames are written."""
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    say = progress or (lambda _m: None)
    ordered = sorted({_day(d) for d in days})
    if not ordered:
        raise ValueError("compute_range needs at least one day")
    first, last = ordered[0], ordered[-1]
    span = (last - first).days  # the last day's number
    if span + 1 != len(ordered):
        raise ValueError(
            f"compute_range needs contiguous days, got {len(ordered)} in {first}..{last}"
        )
    label = f"{first}..{last} ({span + 1} days)"
    start = first - dt.timedelta(days=LONGEST - 1)
    t0 = time.perf_counter()

    def number(col: str) -> Column:
        return F.datediff(F.col(col), F.lit(first))

    events = (
        spark.read.format("delta").load(paths.table("raw_events"))
        .where((F.col("dt") >= F.lit(start)) & (F.col("dt") <= F.lit(last)))
        .select("user_id", "item_id", "event_type", "ts", "value", "country", number("dt").alias("n"))
        .persist(StorageLevel.MEMORY_AND_DISK)
    )  # fmt: skip
    try:
        # The one collect: per event day, rows, impressions and clicks (fills the cache).
        totals = {
            r["n"]: (r["events"], r["impressions"], r["clicks"])
            for r in events.groupBy("n")
            .agg(
                F.count("*").alias("events"),
                F.count_if(F.col("event_type") == "impression").alias("impressions"),
                F.count_if(F.col("event_type") == "click").alias("clicks"),
            )
            .collect()
        }
        n_events = sum(t[0] for t in totals.values())
        seconds = time.perf_counter() - t0
        say(
            f"features {label}: read {n_events} events of {start}..{last} in {seconds:.1f} s "
            f"({n_events / max(seconds, 1e-9):,.0f} events/s)"
        )

        priors = local_frame(
            spark,
            [(i, *_prior_masses(totals, i)) for i in range(span + 1)],
            "d int, prior_7 double, prior_28 double",
        )
        users = (
            spark.read.format("delta").load(paths.table("users")).where(F.col("dt") <= F.lit(last))
            .select("user_id", "country", "device", "age_bucket", number("dt").alias("since"))
        )  # fmt: skip
        items = (
            spark.read.format("delta").load(paths.table("items")).where(F.col("dt") <= F.lit(last))
            .select("item_id", "category", "creator", "first_seen", number("dt").alias("since"))
        )  # fmt: skip
        seed_day = first - dt.timedelta(days=1)
        seed = None
        if has_partition(spark, paths.table("user_features"), seed_day):
            seed = (
                spark.read.format("delta").load(paths.table("user_features"))
                .where(F.col("dt") == F.lit(seed_day))
            )  # fmt: skip
        say(
            f"features {label}: sequences "
            + (f"seeded from user_features of {seed_day}" if seed is not None
               else f"bootstrap from {start}..{seed_day} (no user_features of {seed_day})")
        )  # fmt: skip

        frames = {
            "user_features": _user_features(events, users, items, priors, seed, span),
            "item_features": _item_features(events, items, priors, span, first),
            "cohort_features": _cohort_features(events, users, items, priors, span),
        }
        out = {}
        for name, df in frames.items():
            out[name] = conform(
                df.withColumn("dt", F.date_add(F.lit(first), F.col("d"))), TABLES[name]
            )
    except BaseException:
        events.unpersist()
        raise

    def cleanup() -> None:
        events.unpersist()

    return out, cleanup


def build_range(
    spark: SparkSession,
    paths: Paths,
    days: Sequence[dt.date],
    tables: Sequence[str],
    result: FeatureResult,
    run_id: str = "",
    progress: Callable[[str], None] | None = None,
) -> None:
    """Compute the contiguous ``days`` with ``compute_range`` and write each table's range in
    one Delta commit (``replaceWhere`` over the range's days). The tables commit one after
    the other: ``build_features`` calls this inside ``undo_features``, which restores every
    table a failed or interrupted run moved, so the three never stay out of step. Fills
    ``result``'s rows and inputs per day."""
    say = progress or (lambda _m: None)
    ordered = sorted({_day(d) for d in days})
    label = f"{ordered[0]}..{ordered[-1]} ({len(ordered)} days)"
    isodays = [d.isoformat() for d in ordered]
    inputs = {
        "raw_events_version": latest_version(spark, paths.table("raw_events")),
        "users_delta_version": latest_version(spark, paths.table("users")),
        "items_delta_version": latest_version(spark, paths.table("items")),
    }
    # What the range read, in each commit's userMetadata (recassets lineage follows it)
    read = {
        "raw_events": inputs["raw_events_version"],
        "users": inputs["users_delta_version"],
        "items": inputs["items_delta_version"],
    }
    frames, cleanup = compute_range(spark, paths, ordered, progress=say)
    try:
        for i, name in enumerate(tables, 1):
            t0 = time.perf_counter()
            say(f"features {label}: writing {name} ({i}/{len(tables)})")
            meta = json.dumps(
                {"run_id": run_id, "table": name, "days": [isodays[0], isodays[-1]],
                 "code_version": __version__, "read": read}
            )  # fmt: skip
            replace_partitions(frames[name], paths.table(name), days_predicate(isodays), meta)
            # Rows per day from the commit just made: a scan of the partition column only.
            written = {
                r["dt"].isoformat(): r["count"]
                for r in spark.read.format("delta").load(paths.table(name))
                .where(days_predicate(isodays)).groupBy("dt").count().collect()
            }  # fmt: skip
            rows = result.rows.setdefault(name, {})
            for d in isodays:
                rows[d] = int(written.get(d, 0))
            total = sum(rows[d] for d in isodays)
            seconds = time.perf_counter() - t0
            say(
                f"features {label}: {name} wrote {total} rows in {seconds:.1f} s "
                f"({total / max(seconds, 1e-9):,.0f} rows/s)"
            )
    finally:
        cleanup()
    for d in ordered:
        result.inputs[d.isoformat()] = {
            "raw_events": {"from": (d - dt.timedelta(days=LONGEST - 1)).isoformat(), "to": d.isoformat(),
                           "delta_version": inputs["raw_events_version"]},
            "users_delta_version": inputs["users_delta_version"],
            "items_delta_version": inputs["items_delta_version"],
        }  # fmt: skip


def _prior_masses(totals: dict[int, tuple[int, int, int]], d: int) -> tuple[float, float]:
    """``PRIOR_STRENGTH`` x the global CTR of d's 7- and 28-day windows, with the arithmetic of
    ``pipelines._global_ctrs`` (Python ints, then one float division) so priors are equal."""
    out = []
    for w in (7, 28):
        clicks = sum(totals.get(n, (0, 0, 0))[2] for n in range(d - w + 1, d + 1))
        imps = sum(totals.get(n, (0, 0, 0))[1] for n in range(d - w + 1, d + 1))
        prior = min(1.0, clicks / imps) if imps else 0.0
        out.append(PRIOR_STRENGTH * prior)
    return out[0], out[1]


def _per_day(events: DataFrame, keys: Sequence[str], first_ts: bool = False) -> DataFrame:
    """Counter sums per (keys, event day n): what ``_windowed`` adds up over 1, 7, 28 days;
    with ``first_ts``, the day's earliest event too (items' first-event fallback)."""
    from pyspark.sql import functions as F

    kind = F.col("event_type")
    return events.groupBy(*keys, "n").agg(
        F.count_if(kind == "impression").alias("impressions"),
        F.count_if(kind == "click").alias("clicks"),
        F.count_if(kind == "like").alias("likes"),
        F.count_if(_engaged()).alias("engagements"),
        F.sum(F.when(kind == "watch", F.col("value")).otherwise(0.0)).alias("watch_time"),
        *([F.min("ts").alias("first_ts")] if first_ts else []),
    )


def _bounds(df: DataFrame, span: int) -> DataFrame:
    """The target days an event of day n counts in: [n, n+27] within the range [0, span]."""
    from pyspark.sql import functions as F

    return df.withColumn("lo", F.greatest(F.col("n"), F.lit(0))).withColumn(
        "hi", F.least(F.col("n") + LONGEST - 1, F.lit(span))
    )


def _spread(df: DataFrame) -> DataFrame:
    """One row per target day d in [lo, hi], with age = d - n (0 = the event's own day)."""
    from pyspark.sql import functions as F

    return df.withColumn("d", F.explode(F.sequence("lo", "hi"))).withColumn(
        "age", F.col("d") - F.col("n")
    )


def _windowed(
    windows: Sequence[int] = WINDOWS, kinds: Sequence[str] = COUNTER_KINDS
) -> list[Column]:
    """``<kind>_<w>d`` over spread per-day sums, typed as ``pipelines._counters`` types them.
    Integer counters are exact; watch_time sums per-day sums, so it may differ from the per-day
    path's sum of events in the last bits (floating-point addition order)."""
    from pyspark.sql import functions as F

    cols = []
    for w in windows:
        for kind in kinds:
            zero = 0.0 if kind == "watch_time" else 0
            value = F.sum(F.when(F.col("age") < w, F.col(kind)).otherwise(zero))
            cols.append(
                value.cast("double" if kind == "watch_time" else "bigint").alias(f"{kind}_{w}d")
            )
    return cols


def _as_of(df: DataFrame, dim: DataFrame, key: str) -> DataFrame:
    """``df`` (rows of event day n, valid for target days [lo, hi]) with the dimension's
    attributes as of each target day: one variant per dimension row of the key, valid from its
    day number ``since``, and a variant of null attributes valid before the first one (or always,
    for a key without dimension rows). The rows of target day d are then exactly those of the
    per-day path's left join with the dimension rows of dt <= d, duplicates included."""
    from pyspark.sql import functions as F

    attrs = [f for f in dim.schema.fields if f.name not in (key, "since")]
    variants = dim.select(
        key, *[f.name for f in attrs], F.col("since").alias("_from"),
        F.lit(None).cast("int").alias("_until"),
    ).unionByName(
        dim.groupBy(key).agg(F.min("since").alias("_until")).select(
            key, *[F.lit(None).cast(f.dataType).alias(f.name) for f in attrs],
            F.lit(None).cast("int").alias("_from"), "_until",
        )
    )  # fmt: skip
    return (
        df.join(variants, key, "left")
        .withColumn("lo", F.greatest(F.col("lo"), F.col("_from")))  # greatest/least skip nulls
        .withColumn("hi", F.least(F.col("hi"), F.col("_until") - 1))
        .where(F.col("lo") <= F.col("hi"))
        .drop("_from", "_until")
    )


def _member_days(dim: DataFrame, key: str, span: int) -> DataFrame:
    """(key, d) for each day of the range on which a dimension row exists (dt <= d)."""
    from pyspark.sql import functions as F

    return dim.where(F.col("since") <= span).select(
        key, F.explode(F.sequence(F.greatest(F.col("since"), F.lit(0)), F.lit(span))).alias("d")
    )


def _counted(
    ids: DataFrame, counts: DataFrame, attrs: DataFrame, key: str, attr_key: str, priors: DataFrame
) -> DataFrame:
    """The (entity, d) rows with their window counters (0 where none), the dimension's
    attributes as of d (``since <= d``) and the smoothed CTRs on the day's priors: what the
    user and item tables share."""
    from pyspark.sql import functions as F

    return (
        ids.join(counts, [key, "d"], "left").fillna({c: 0 for c in _counter_names()})
        .join(attrs, (F.col(key) == F.col(attr_key)) & (F.col("since") <= F.col("d")), "left")
        .drop(attr_key, "since")
        .join(F.broadcast(priors), "d")
        .withColumn("ctr_7d", _smoothed("clicks_7d", "impressions_7d", F.col("prior_7")))
        .withColumn("ctr_28d", _smoothed("clicks_28d", "impressions_28d", F.col("prior_28")))
    )  # fmt: skip


def _user_features(
    events: DataFrame,
    users: DataFrame,
    items: DataFrame,
    priors: DataFrame,
    seed: DataFrame | None,
    span: int,
) -> DataFrame:
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    counts = (
        _spread(_bounds(_per_day(events, ["user_id"]), span))
        .groupBy("user_id", "d").agg(*_windowed())
    )  # fmt: skip
    ids = _member_days(users, "user_id", span).unionByName(counts.select("user_id", "d")).distinct()
    attrs = users.select(
        F.col("user_id").alias("_uid"), "country", "device", "age_bucket", F.col("since")
    )
    base = _counted(ids, counts, attrs, "user_id", "_uid", priors)

    # Top categories: engagements per (user, item, day), the item's category as of each
    # target day, counts per (user, d, category), then compute_day's weights and ranking.
    cats = (
        _as_of(_bounds(events.where(_engaged()).groupBy("user_id", "item_id", "n").count(), span),
               items.select("item_id", "category", "since"), "item_id")
        .withColumn("category", F.coalesce("category", F.lit("unknown")))
        .groupBy("user_id", "category", "n", "lo", "hi").agg(F.sum("count").alias("c"))
    )  # fmt: skip
    cats = _spread(cats).groupBy("user_id", "d", "category").agg(F.sum("c").alias("count"))
    by_user_day = Window.partitionBy("user_id", "d")
    cats = cats.withColumn("weight", F.col("count") / F.sum("count").over(by_user_day))
    cats = cats.withColumn(
        "rn", F.row_number().over(by_user_day.orderBy(F.col("weight").desc(), "category"))
    ).where(F.col("rn") <= TOP_CATEGORIES)
    top = (
        cats.groupBy("user_id", "d")
        .agg(F.array_sort(F.collect_list(F.struct("rn", "category", "weight"))).alias("t"))
        .select(
            "user_id", "d",
            F.transform("t", lambda x: F.struct(x["category"].alias("category"),
                                                x["weight"].cast("double").alias("weight"))).alias("top_categories"),
        )
    )  # fmt: skip

    empty_seq = F.array().cast(
        "array<struct<item_id: bigint, event_type: string, ts: timestamp, value: double>>"
    )
    return (
        base.join(_sequences(events, ids, seed), ["user_id", "d"], "left")
        .join(seen.over_range(events, ids, seen.seed_of(seed)), ["user_id", "d"], "left")
        .join(top, ["user_id", "d"], "left")
        .withColumn("seen_item_ids", F.coalesce("seen_item_ids", F.array().cast("array<bigint>")))
        .withColumn("last_engagements", F.coalesce("last_engagements", empty_seq))
        .withColumn("history_item_ids", F.col("last_engagements.item_id"))
        .withColumn("top_categories", F.coalesce("top_categories", F.array().cast("array<struct<category: string, weight: double>>")))
    )  # fmt: skip


def _sequences(events: DataFrame, ids: DataFrame, seed: DataFrame | None) -> DataFrame:
    """``last_engagements`` per (user, d) in one ordered pass.

    The per-day path rolls d-1's sequence forward with d's engagements, and a user absent from
    day d-1's rows (no dimension row, no event in d-28..d-1) has no sequence to roll: it starts
    again from its engagements of the day (the 28-day bootstrap finds no older ones either).
    So on a run of consecutive days s..d on which the user has a row, the sequence of d is the
    last 50 of its candidates from s on: the seed (D1-1's sequence when that partition exists,
    else the engagements of D1-27..D1-1) counts only for a run that starts on D1.

    Per user: the candidates sorted oldest first (ts, event_type, item_id: compute_day's
    order reversed) in one array; per (user, d) the number of candidates up to d (hi) and
    before the run's start (lo), both running sums over the user's days; the sequence is the
    slice (max(lo, hi - 50), hi] of the array, cut for all of a user's days at once so that
    the array is not copied to each day's row."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    key = F.struct("ts", "event_type", "item_id", "value").alias("k")
    engaged = events.where(_engaged())
    if seed is not None:
        seed = seed.select("user_id", F.explode("last_engagements").alias("e"))
    if seed is None:  # bootstrap: the engagements before D1 form the seed bucket n = -1
        cands = engaged.select("user_id", F.greatest(F.col("n"), F.lit(-1)).alias("n"), key)
    else:
        cands = engaged.where(F.col("n") >= 0).select("user_id", "n", key).unionByName(
            seed.select("user_id", F.lit(-1).alias("n"),
                        F.struct("e.ts", "e.event_type", "e.item_id", "e.value").alias("k"))
        )  # fmt: skip
    # Only a day's newest SEQUENCE_LENGTH can be in any day's sequence (every later one is
    # newer), so each (user, day) keeps those first: a user's whole range went into one array
    # row (100k engagements a day over 40 days: 4M elements for one user).
    newest = Window.partitionBy("user_id", "n").orderBy(
        *[F.col(f"k.{f}").desc_nulls_last() for f in ("ts", "event_type", "item_id", "value")]
    )
    cands = cands.withColumn("_r", F.row_number().over(newest))
    cands = cands.where(F.col("_r") <= SEQUENCE_LENGTH).drop("_r")
    # Sorted oldest first on (ts, event_type, item_id), then each element put in the table's
    # field order once per user: per (user, d) slice it would be interpreted element by element
    # (a 215-day range: 10M elements).
    arrays = cands.groupBy("user_id").agg(
        F.transform(
            F.array_sort(F.collect_list("k")),
            lambda e: F.struct(*[e[f].alias(f) for f in SEQ_FIELDS]),
        ).alias("a")
    )
    per_day = cands.groupBy("user_id", "n").agg(F.count("*").alias("c"))
    days = ids.select("user_id", F.col("d").alias("n")).unionByName(
        per_day.where(F.col("n") < 0).select("user_id", "n")
    )
    ordered = Window.partitionBy("user_id").orderBy("n")
    running = ordered.rowsBetween(Window.unboundedPreceding, Window.currentRow)
    prev = F.lag("n").over(ordered)
    starts = prev.isNull() | (F.col("n") - prev > 1)
    spans = (
        days.join(per_day, ["user_id", "n"], "left").fillna({"c": 0})
        .withColumn("hi", F.sum("c").over(running))
        .withColumn("start", starts)
        .withColumn("lo", F.max(F.when(F.col("start"), F.col("hi") - F.col("c"))).over(running))
        .where((F.col("n") >= 0) & (F.col("hi") > F.col("lo")))
        .withColumn("lo", F.greatest(F.col("lo"), F.col("hi") - SEQUENCE_LENGTH))
        .groupBy("user_id").agg(F.collect_list(F.struct("n", "lo", "hi")).alias("spans"))
    )  # fmt: skip
    cut = spans.join(arrays, "user_id").select(
        "user_id",
        F.explode(
            F.transform(
                "spans",
                lambda s: F.struct(
                    s["n"].alias("d"),
                    F.slice(F.col("a"), s["lo"] + 1, s["hi"] - s["lo"]).alias("s"),
                ),
            )
        ).alias("x"),
    )
    return cut.select("user_id", F.col("x.d").alias("d"), F.col("x.s").alias("last_engagements"))


def _item_features(
    events: DataFrame, items: DataFrame, priors: DataFrame, span: int, first: dt.date
) -> DataFrame:
    from pyspark.sql import functions as F

    counts = (
        _spread(_bounds(_per_day(events, ["item_id"], first_ts=True), span))
        .groupBy("item_id", "d").agg(*_windowed(), F.min("first_ts").alias("_first_event"))
    )  # fmt: skip
    ids = _member_days(items, "item_id", span).unionByName(counts.select("item_id", "d")).distinct()
    attrs = items.select(
        F.col("item_id").alias("_iid"), "category", "creator", "first_seen", "since"
    )
    first_seen = F.coalesce(F.col("first_seen"), F.col("_first_event"))
    # compute_day's unix_micros(end of d) as the same bigint: (epoch day of d + 1) days
    epoch_day = (first - dt.date(1970, 1, 1)).days
    end_of_day = (F.lit(epoch_day + 1) + F.col("d")).cast("bigint") * F.lit(DAY_MICROS)
    rows = (
        _counted(ids, counts, attrs, "item_id", "_iid", priors)
        .withColumn("age_days", F.greatest(F.lit(0.0), (end_of_day - F.unix_micros(first_seen)) / 86_400e6))
        .withColumn("age_days", F.coalesce(F.col("age_days"), F.lit(0.0)).cast("double"))
        .withColumn("trending", ((F.col("engagements_1d") + 1.0) / (F.col("engagements_7d") / 7.0 + 1.0)).cast("double"))
    )  # fmt: skip
    return with_content_embedding(rows, items)


def _cohort_features(
    events: DataFrame, users: DataFrame, items: DataFrame, priors: DataFrame, span: int
) -> DataFrame:
    """compute_day's cohorts: the event's country, else the user's as of d; the user's age
    bucket and the item's category as of d; 'unknown' where missing. Events are summed per
    (cohort, event day, valid target days) before being spread, so the spread is small."""
    from pyspark.sql import functions as F

    kind = F.col("event_type")
    per_day = events.groupBy("user_id", "item_id", "country", "n").agg(
        F.count_if(kind == "impression").alias("impressions"),
        F.count_if(kind == "click").alias("clicks"),
        F.count_if(_engaged()).alias("engagements"),
    )
    joined = _as_of(
        _as_of(
            _bounds(per_day, span),
            users.select("user_id", F.col("country").alias("u_country"), "age_bucket", "since"),
            "user_id",
        ),
        items.select("item_id", "category", "since"),
        "item_id",
    )
    kinds = ("impressions", "clicks", "engagements")
    cohorts = (
        joined.select(
            F.coalesce("country", "u_country", F.lit("unknown")).alias("country"),
            F.coalesce("age_bucket", F.lit("unknown")).alias("age_bucket"),
            F.coalesce("category", F.lit("unknown")).alias("category"),
            "n", "lo", "hi", *kinds,
        )
        .groupBy("country", "age_bucket", "category", "n", "lo", "hi")
        .agg(*[F.sum(k).alias(k) for k in kinds])
    )  # fmt: skip
    return (
        _spread(cohorts)
        .groupBy("country", "age_bucket", "category", "d")
        .agg(*_windowed(windows=(7, 28), kinds=kinds))
        .join(F.broadcast(priors), "d")
        .withColumn("ctr_28d", _smoothed("clicks_28d", "impressions_28d", F.col("prior_28")))
    )
