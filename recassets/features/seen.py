"""``seen_item_ids``: every item a user engaged with, for serving to exclude and to read.

``history_item_ids`` holds the last 50 engagements, what the two-tower pools; a user with 300
ratings has 250 more items that a recommendation must not offer again and that item-to-item
scoring (EASE) reads: the blend scored on everything a user rated finds about 6 % more of the
next day's items on the MovieLens-1M split than on the last 50 (docs/training-and-the-gate.md).

The list holds each engaged item once (``ENGAGEMENT_TYPES``: a rating of any value counts,
impressions do not), ordered by the item's first engagement, oldest first like
``last_engagements``, and keeps the newest ``SEEN_LIMIT`` of them: day d's list is d-1's with
d's new items appended (by time, then id). Like the sequence it rolls forward from user_features
of d-1; a user without a row on d-1, or a lake without that partition, starts again from the
engagements the day's window holds (compute_day's 28 days).

The range pass (``over_range``) builds the same lists for every day at once: per run of
consecutive days, the distinct items by first engagement in one sorted array, each day's list a
slice of it. The two differ only for a user past ``SEEN_LIMIT`` items who engages again with an
item that fell off the list: the per-day path appends it again, the range pass does not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recassets.features.schema import ENGAGEMENT_TYPES, SEEN_LIMIT

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

EMPTY = "array<bigint>"


def _capped(items: Column) -> Column:
    """The newest ``SEEN_LIMIT`` of an oldest-first list."""
    from pyspark.sql import functions as F

    return F.slice(items, F.greatest(F.size(items) - SEEN_LIMIT + 1, F.lit(1)), SEEN_LIMIT)


def _ordered_items(firsts: DataFrame, keys: list[str], order: list[str]) -> DataFrame:
    """Per ``keys``: the item ids of ``firsts`` sorted on ``order`` (then item id), as ``items``."""
    from pyspark.sql import functions as F

    key = F.struct(*[F.col(c) for c in order], F.col("item_id")).alias("k")
    return firsts.groupBy(*keys).agg(
        F.transform(F.array_sort(F.collect_list(key)), lambda k: k["item_id"]).alias("items")
    )


def seed_of(user_features: DataFrame | None, *extra: Column) -> DataFrame | None:
    """(user_id, ``extra``..., seen_item_ids) of user_features rows; null lists where the
    partition predates the column (a lake from before it: those users' lists start again
    there)."""
    from pyspark.sql import functions as F

    if user_features is None:
        return None
    have = "seen_item_ids" in user_features.columns
    lists = F.col("seen_item_ids") if have else F.lit(None).cast(EMPTY)
    return user_features.select("user_id", *extra, lists.alias("seen_item_ids"))


def on_day(events: DataFrame, prev: DataFrame | None) -> DataFrame:
    """(user_id, seen_item_ids) of one day. ``events``: compute_day's window (``age`` 0 = the
    day); ``prev``: user_features of d-1 (``user_id``, ``seen_item_ids``), or None to start from
    the window's engagements."""
    from pyspark.sql import functions as F

    engaged = events.where(F.col("event_type").isin(*ENGAGEMENT_TYPES))
    if prev is not None:
        engaged = engaged.where(F.col("age") == 0)
    firsts = engaged.groupBy("user_id", "item_id").agg(F.min("ts").alias("ts"))
    fresh = _ordered_items(firsts, ["user_id"], ["ts"])
    if prev is None:
        return fresh.select("user_id", _capped(F.col("items")).alias("seen_item_ids"))
    empty = F.array().cast(EMPTY)
    old = prev.select("user_id", F.coalesce("seen_item_ids", empty).alias("old"))
    both = F.array_distinct(F.concat(F.coalesce("old", empty), F.coalesce("items", empty)))
    return old.join(fresh, "user_id", "full").select(
        "user_id", _capped(both).alias("seen_item_ids")
    )


def over_range(events: DataFrame, days: DataFrame, seed: DataFrame | None) -> DataFrame:
    """(user_id, d, seen_item_ids) of every day of a range, equal to ``on_day`` day by day.

    ``events``: compute_range's events (``n``: day number, D1 = 0; engagements before D1 form
    the seed when ``seed`` is None); ``days``: the (user_id, d) rows of the range; ``seed``:
    user_features of D1-1 (``user_id``, ``seen_item_ids``) or None."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    engaged = events.where(F.col("event_type").isin(*ENGAGEMENT_TYPES))
    # candidates (user, day bucket, order key, item); the seed is bucket -1, in its list's order
    if seed is None:
        cands = engaged.select(
            "user_id", F.greatest(F.col("n"), F.lit(-1)).alias("n"),
            F.unix_micros("ts").alias("o"), "item_id",
        )  # fmt: skip
    else:
        cands = engaged.where(F.col("n") >= 0).select(
            "user_id", "n", F.unix_micros("ts").alias("o"), "item_id"
        ).unionByName(
            seed.select("user_id", F.posexplode(F.coalesce("seen_item_ids", F.array().cast(EMPTY))))
            .select("user_id", F.lit(-1).alias("n"), F.col("pos").cast("long").alias("o"),
                    F.col("col").alias("item_id"))
        )  # fmt: skip
    # runs of consecutive days per user (a gap starts the list again, as on_day's missing prev)
    buckets = (
        days.select("user_id", F.col("d").alias("n"))
        .unionByName(cands.where(F.col("n") < 0).select("user_id", "n"))
        .distinct()
    )
    by_user = Window.partitionBy("user_id").orderBy("n")
    gap = F.lag("n").over(by_user)
    runs = buckets.withColumn(
        "run", F.sum(F.when(gap.isNull() | (F.col("n") - gap > 1), 1).otherwise(0)).over(
            by_user.rowsBetween(Window.unboundedPreceding, Window.currentRow))
    )  # fmt: skip
    firsts = (
        cands.join(runs, ["user_id", "n"])
        .groupBy("user_id", "run", "item_id").agg(F.min(F.struct("n", "o")).alias("f"))
        .select("user_id", "run", "item_id", F.col("f.n").alias("n"), F.col("f.o").alias("o"))
    )  # fmt: skip
    arrays = _ordered_items(firsts, ["user_id", "run"], ["n", "o"])
    new = firsts.groupBy("user_id", "run", "n").agg(F.count("*").alias("c"))
    in_run = (
        Window.partitionBy("user_id", "run")
        .orderBy("n")
        .rowsBetween(Window.unboundedPreceding, Window.currentRow)
    )
    counts = (
        runs.join(new, ["user_id", "run", "n"], "left").fillna({"c": 0})
        .withColumn("hi", F.sum("c").over(in_run)).where(F.col("n") >= 0)
    )  # fmt: skip
    lo = F.greatest(F.col("hi") - SEEN_LIMIT, F.lit(0))
    return counts.join(arrays, ["user_id", "run"], "left").select(
        "user_id", F.col("n").alias("d"),
        F.when(F.col("hi") > 0, F.slice("items", lo + 1, F.col("hi") - lo)).alias("seen_item_ids"),
    )  # fmt: skip


__all__ = ["on_day", "over_range", "seed_of"]
