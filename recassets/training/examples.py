"""``training_examples``: labelled (user, item) pairs of day d with the features of day d-1.

See ``recassets.training.schema`` for the contract and the labelling recipes. Deterministic:
example ids come from event ids, and sampled negatives from a hash of the example id, not
from a random generator whose draws would depend on Spark's partitioning.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from recassets import __version__
from recassets.features.schema import ENGAGEMENT_TYPES
from recassets.lake import conform, ensure_table, has_partition, latest_version
from recassets.paths import Paths
from recassets.training.schema import (
    COHORT_DENSE,
    ITEM_DENSE,
    NEGATIVES_PER_POSITIVE,
    RATING_THRESHOLD,
    TRAINING_EXAMPLES_DDL,
    USER_DENSE,
    WATCH_THRESHOLD_S,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

TABLE = "training_examples"


@dataclass
class ExamplesResult:
    rows: dict[str, int] = field(default_factory=dict)
    positives: dict[str, int] = field(default_factory=dict)
    recipe: dict[str, str] = field(default_factory=dict)
    features_day: dict[str, str | None] = field(default_factory=dict)
    version: int = -1


def table_path(paths: Any) -> str:
    return paths.table(TABLE) if hasattr(paths, "table") else os.fspath(paths)


def available_days(paths: Any) -> list[str]:
    """Partitions (``dt``) present in ``training_examples``, sorted; empty when no table.

    Here, not in ``evaluation`` (which needs torch): ``retrain_sensor`` calls it on every tick,
    and the Dagster layer must import without torch (every run process loads it)."""
    from deltalake import DeltaTable

    path = table_path(paths)
    try:
        table = DeltaTable(path)
    except Exception:  # no table yet (TableNotFoundError; its class moved across releases)
        return []
    return sorted({p["dt"] for p in table.partitions()})


def _read_day(spark: SparkSession, paths: Paths, table: str, day: dt.date) -> DataFrame:
    from pyspark.sql import functions as F

    return spark.read.format("delta").load(paths.table(table)).where(F.col("dt") == F.lit(day))


def _labelled_impressions(events: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    engaged = F.col("event_type").isin(
        *[t for t in ENGAGEMENT_TYPES if t not in ("watch", "rating")]
    ) | ((F.col("event_type") == "watch") & (F.col("value") >= WATCH_THRESHOLD_S))
    key = ["user_id", "item_id", "_req"]
    ev = events.withColumn("_req", F.coalesce("request_id", F.lit("")))
    positives = ev.where(engaged).select(*key).distinct().withColumn("label", F.lit(1))
    impressions = ev.where(F.col("event_type") == "impression")
    return (
        impressions.join(positives, key, "left")
        .select(F.col("event_id").alias("example_id"), "user_id", "item_id", "ts",
                F.coalesce("label", F.lit(0)).alias("label"), F.lit("impression").alias("source"))
    )  # fmt: skip


def _rated_with_negatives(events: DataFrame, catalog: DataFrame, day: dt.date) -> DataFrame:
    """Ratings as examples (label: rating >= threshold) plus hashed negative samples."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ratings = events.where(F.col("event_type") == "rating").select(
        F.col("event_id").alias("example_id"), "user_id", "item_id", "ts",
        (F.col("value") >= RATING_THRESHOLD).cast("int").alias("label"), F.lit("rating").alias("source"),
    )  # fmt: skip
    n = catalog.count()
    if n == 0:
        return ratings
    indexed = (
        catalog.select("item_id")
        .distinct()
        .withColumn("_idx", (F.row_number().over(Window.orderBy("item_id")) - 1).cast("bigint"))
    )
    draws = (
        ratings.where(F.col("label") == 1)
        .select(
            "example_id",
            "user_id",
            "ts",
            F.explode(F.sequence(F.lit(0), F.lit(NEGATIVES_PER_POSITIVE - 1))).alias("k"),
        )
        .withColumn(
            "_idx", F.pmod(F.xxhash64(F.col("example_id"), F.col("k"), F.lit(str(day))), F.lit(n))
        )
    )
    negatives = draws.join(F.broadcast(indexed), "_idx").select(
        F.concat_ws("#neg", "example_id", "k").alias("example_id"), "user_id", "item_id", "ts",
        F.lit(0).alias("label"), F.lit("sampled_negative").alias("source"),
    )  # fmt: skip
    rated_today = ratings.select("user_id", "item_id")
    negatives = negatives.join(rated_today, ["user_id", "item_id"], "left_anti")
    return ratings.unionByName(negatives)


def compute_examples(
    spark: SparkSession, paths: Paths, day: str | dt.date
) -> tuple[DataFrame, str, str | None]:
    """(examples of ``day``, recipe, the feature day joined or None on the first day)."""
    from pyspark.sql import functions as F

    d = day if isinstance(day, dt.date) else dt.date.fromisoformat(day)
    prev = d - dt.timedelta(days=1)
    events = _read_day(spark, paths, "raw_events", d)
    has_impressions = bool(events.where(F.col("event_type") == "impression").limit(1).count())
    feature_day = prev if has_partition(spark, paths.table("item_features"), prev) else None

    users = spark.read.format("delta").load(paths.table("users")).where(F.col("dt") <= F.lit(d))
    items = spark.read.format("delta").load(paths.table("items")).where(F.col("dt") <= F.lit(d))
    if has_impressions:
        base, recipe = _labelled_impressions(events), "impressions"
    else:
        catalog = items.where(
            F.col("first_seen") < F.lit(dt.datetime.combine(d, dt.time(), dt.UTC))
        )
        base, recipe = _rated_with_negatives(events, catalog, d), "ratings+sampled_negatives"

    ex = base.join(
        users.select("user_id", "country", "device", "age_bucket"), "user_id", "left"
    ).join(items.select("item_id", "category", "creator"), "item_id", "left")
    if feature_day is not None:
        uf = _read_day(spark, paths, "user_features", prev).select(
            "user_id",
            "history_item_ids",
            *[F.col(c[2:]).cast("double").alias(c) for c in USER_DENSE],
        )
        itf = _read_day(spark, paths, "item_features", prev).select(
            "item_id",
            *[
                F.col(c[2:] if c != "i_trending" else "trending").cast("double").alias(c)
                for c in ITEM_DENSE
            ],
        )
        cf = _read_day(spark, paths, "cohort_features", prev).select(
            F.col("country").alias("_c"), F.col("age_bucket").alias("_a"), F.col("category").alias("_k"),
            F.col("ctr_28d").alias("c_ctr_28d"),
        )  # fmt: skip
        ex = ex.join(uf, "user_id", "left").join(itf, "item_id", "left")
        ex = ex.join(
            cf,
            (F.coalesce(ex["country"], F.lit("unknown")) == cf["_c"])
            & (F.coalesce(ex["age_bucket"], F.lit("unknown")) == cf["_a"])
            & (F.coalesce(ex["category"], F.lit("unknown")) == cf["_k"]),
            "left",
        ).drop("_c", "_a", "_k")
    else:  # the first day has no earlier features: zeros, empty history
        ex = ex.withColumn("history_item_ids", F.lit(None).cast("array<bigint>"))
        for c in USER_DENSE + ITEM_DENSE + COHORT_DENSE:
            ex = ex.withColumn(c, F.lit(0.0))
    ex = ex.withColumn(
        "history_item_ids", F.coalesce("history_item_ids", F.array().cast("array<bigint>"))
    )
    ex = ex.fillna(0.0, subset=list(USER_DENSE + ITEM_DENSE + COHORT_DENSE)).withColumn(
        "dt", F.lit(d)
    )
    return (
        conform(ex, TRAINING_EXAMPLES_DDL),
        recipe,
        feature_day.isoformat() if feature_day else None,
    )


def build_training_examples(
    spark: SparkSession,
    paths: Paths,
    days: Sequence[str | dt.date],
    run_id: str = "",
    progress: Callable[[str], None] | None = None,
) -> ExamplesResult:
    """Compute and write the ``training_examples`` partitions of ``days`` (each replaced
    atomically)."""
    from pyspark.sql import functions as F

    say = progress or (lambda _m: None)
    path = paths.table(TABLE)
    ensure_table(spark, path, TRAINING_EXAMPLES_DDL, ["dt"])
    result = ExamplesResult()
    for day in sorted({str(d) for d in days}):
        df, recipe, feature_day = compute_examples(spark, paths, day)
        df = df.persist()
        stats = df.agg(F.count("*").alias("n"), F.sum("label").alias("p")).first()
        meta = json.dumps({"run_id": run_id, "day": day, "recipe": recipe, "features_day": feature_day,
                           "code_version": __version__})  # fmt: skip
        df.write.format("delta").mode("overwrite").option(
            "replaceWhere", f"dt = DATE'{day}'"
        ).option("userMetadata", meta).save(path)
        df.unpersist()
        result.rows[day], result.positives[day] = int(stats["n"]), int(stats["p"] or 0)
        result.recipe[day], result.features_day[day] = recipe, feature_day
        say(
            f"training_examples {day}: {stats['n']} rows, {stats['p'] or 0} positives ({recipe}, features of {feature_day})"
        )
    result.version = latest_version(spark, path)
    return result
