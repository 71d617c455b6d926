"""``training_examples``: labelled (user, item) pairs of day d with the features of day d-1.

See ``recassets.training.schema`` for the contract and the labelling recipes. Deterministic:
example ids come from event ids, and sampled negatives from a hash of the example id, not
from a random generator whose draws would depend on Spark's partitioning.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeAlias

from recassets import __version__
from recassets.features.schema import ENGAGEMENT_TYPES
from recassets.features.seen import seed_of
from recassets.ingested import require_example_inputs
from recassets.lake import (
    conform,
    days_predicate,
    days_with_rows,
    ensure_table,
    has_partition,
    is_delta_table,
    latest_version,
    replace_partitions,
)
from recassets.paths import Paths, partition_start_date
from recassets.spark import local_frame
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

# Where ``training_examples`` is read from: a ``Paths`` (its lake's table) or the table's own
# path or URL (tests, a remote table).
PathsOrTable: TypeAlias = Paths | str | os.PathLike[str]


@dataclass
class ExamplesResult:
    rows: dict[str, int] = field(default_factory=dict)
    positives: dict[str, int] = field(default_factory=dict)
    recipe: dict[str, str] = field(default_factory=dict)
    features_day: dict[str, str | None] = field(default_factory=dict)
    version: int = -1
    read: dict[str, int | None] = field(default_factory=dict)  # table -> the Delta version read


# What the examples read; each commit records their versions (``userMetadata.read``), which
# recassets lineage follows instead of inferring them from commit times.
READS = ("raw_events", "users", "items", "user_features", "item_features", "cohort_features")


def table_path(paths: PathsOrTable) -> str:
    return paths.table(TABLE) if isinstance(paths, Paths) else os.fspath(paths)


def available_days(paths: PathsOrTable) -> list[str]:
    """Partitions (``dt``) present in ``training_examples``, sorted; empty when no table.

    Here, not in ``evaluation`` (which needs torch): ``retrain_sensor`` calls it on every tick,
    and the Dagster layer must import without torch (every run process loads it)."""
    from deltalake.exceptions import DeltaError, TableNotFoundError

    from recassets.lake import delta_damage, open_delta

    path = table_path(paths)
    try:
        return sorted({p["dt"] for p in open_delta(path).partitions()})
    except TableNotFoundError:  # no table yet
        return []
    except DeltaError as e:  # a damaged log is not an empty table: say which and what
        raise ValueError(delta_damage(path, e)) from e


# The evaluation window when a run does not fix ``holdout_days`` (None, the default): the
# newest days, one at a time, until they hold ``HOLDOUT_MIN_USERS`` users with a positive, at
# most ``HOLDOUT_MAX_DAYS`` and at most a ``HOLDOUT_MAX_SHARE``-th of the days. The gate's
# figures are means over users with 95 % intervals; one day of a sparse history held 23 users
# on a real MovieLens run (issue 14), a decision by noise. On a dense stream (the synthetic
# default's last day: 629 users with a positive; any production feed) it stays one day, so the models lag the
# newest data by one day as before; a sparse history trades that lag for a decision that rests
# on enough users. 300 users put the intervals near +-0.02 on the figures measured so far;
# 28 days keeps a window of recent behaviour; the share keeps three quarters to train on.
HOLDOUT_MIN_USERS = 300
HOLDOUT_MAX_DAYS = 28
HOLDOUT_MAX_SHARE = 4


@dataclass(frozen=True)
class Holdout:
    """How many of the newest ``training_examples`` days are held out, and why."""

    days: int
    users: int | None  # distinct users with a positive in those days (None: fixed, not counted)
    reason: str


def choose_holdout(
    paths: PathsOrTable,
    asked: int | None = None,
    *,
    min_users: int = HOLDOUT_MIN_USERS,
    max_days: int = HOLDOUT_MAX_DAYS,
    max_share: int = HOLDOUT_MAX_SHARE,
) -> Holdout:
    """``asked`` when given (a run's ``holdout_days``), else the newest days that hold
    ``min_users`` users with a positive (``label`` 1), at least one and at most
    min(``max_days``, days // ``max_share``). Reads the newest day first and stops as soon as
    the users are there: a dense stream costs one partition's two columns. Deterministic for a
    given table, so every model of a run, and the retrain sensor, hold out the same days."""
    if asked is not None:
        return Holdout(asked, None, f"{asked} day(s), fixed by the run's config")
    days = available_days(paths)
    cap = max(1, min(max_days, len(days) // max_share))
    if cap == 1:  # nothing to choose: no read
        return Holdout(1, None, f"1 day: the most {len(days)} day(s) allow")
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    from recassets.lake import open_delta

    ds = open_delta(table_path(paths)).to_pyarrow_dataset()
    day_type = ds.schema.field("dt").type  # date32 as the lake writes it; a string elsewhere
    users: set[int] = set()
    held = 0
    for day in reversed(days[-cap:]):
        value = dt.date.fromisoformat(day) if pa.types.is_date(day_type) else day
        rows = ds.to_table(
            columns=["user_id"],
            filter=(pc.field("dt") == pa.scalar(value, day_type)) & (pc.field("label") == 1),
        )
        users.update(np.unique(rows["user_id"].to_numpy(zero_copy_only=False)).tolist())
        held += 1
        if len(users) >= min_users:
            return Holdout(held, len(users), f"{held} day(s) hold {len(users)} users with a "
                           f"positive (at least {min_users} wanted)")  # fmt: skip
    return Holdout(held, len(users), f"{held} day(s), the most allowed (at most {max_days}, and "
                   f"a {max_share}th of {len(days)} days), hold {len(users)} users with a "
                   f"positive, fewer than the {min_users} wanted")  # fmt: skip


def _read_day(spark: SparkSession, paths: Paths, table: str, day: dt.date) -> DataFrame:
    from pyspark.sql import functions as F

    return spark.read.format("delta").load(paths.table(table)).where(F.col("dt") == F.lit(day))


def _labelled_impressions(events: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    engaged = F.col("event_type").isin(
        *[t for t in ENGAGEMENT_TYPES if t not in ("watch", "rating")]
    ) | ((F.col("event_type") == "watch") & (F.col("value") >= WATCH_THRESHOLD_S))
    # dt in the key: a request is labelled within its day, also when a range pass reads many
    key = ["dt", "user_id", "item_id", "_req"]
    ev = events.withColumn("_req", F.coalesce("request_id", F.lit("")))
    positives = ev.where(engaged).select(*key).distinct().withColumn("label", F.lit(1))
    impressions = ev.where(F.col("event_type") == "impression")
    return (
        impressions.join(positives, key, "left")
        .select(F.col("event_id").alias("example_id"), "user_id", "item_id", "ts",
                F.coalesce("label", F.lit(0)).alias("label"), F.lit("impression").alias("source"), "dt")
    )  # fmt: skip


def _not_seen_before(negatives: DataFrame, seen: DataFrame | None, keys: list[str]) -> DataFrame:
    """``negatives`` less the draws of an item the user engaged with before the day:
    ``seen`` holds (``keys``, seen_item_ids) from user_features of d-1 (every engaged item,
    rating of any value included, the newest SEEN_LIMIT). Without it (the first day, a day whose
    d-1 features are missing, a lake from before the column: null lists) a draw is kept, as
    before: only the same day's ratings exclude it then. A seen item sampled as a negative is a
    label the user contradicted (about 1.5 % of draws on MovieLens: 99 of 6,732 on one audit
    history), so it is excluded rather than trained on."""
    from pyspark.sql import functions as F

    if seen is None:
        return negatives
    joined = negatives.join(seen, keys, "left")
    hit = F.coalesce(F.array_contains("seen_item_ids", F.col("item_id")), F.lit(False))
    return joined.where(~hit).drop("seen_item_ids")


def _rated_with_negatives(
    events: DataFrame, catalog: DataFrame, day: dt.date, seen: DataFrame | None = None
) -> DataFrame:
    """Ratings as examples (label: rating >= threshold) plus hashed negative samples: none of
    an item the user rated that day or engaged with before it (``_not_seen_before``)."""
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
    return ratings.unionByName(_not_seen_before(negatives, seen, ["user_id"]))


IMPRESSIONS, RATINGS, BOTH = "impressions", "ratings+sampled_negatives", "impressions+ratings"


def recipe_of(has_impressions: bool, has_ratings: bool) -> str:
    """A day's recipe in its metadata (a day without events: the ratings recipe, no row)."""
    return (BOTH if has_ratings else IMPRESSIONS) if has_impressions else RATINGS


def compute_examples(
    spark: SparkSession, paths: Paths, day: str | dt.date
) -> tuple[DataFrame, str, str | None]:
    """(examples of ``day``, recipe, the feature day joined or None on the first day)."""
    from pyspark.sql import functions as F

    d = day if isinstance(day, dt.date) else dt.date.fromisoformat(day)
    prev = d - dt.timedelta(days=1)
    events = _read_day(spark, paths, "raw_events", d)
    kinds = {r[0] for r in events.where(F.col("event_type").isin("impression", "rating"))
             .select("event_type").distinct().collect()}  # fmt: skip
    has_impressions, has_ratings = "impression" in kinds, "rating" in kinds
    feature_day = prev if has_partition(spark, paths.table("item_features"), prev) else None

    # d-1's user rows: the seen lists that exclude negatives, and the features joined below
    prev_users = _read_day(spark, paths, "user_features", prev) if feature_day else None
    users = spark.read.format("delta").load(paths.table("users")).where(F.col("dt") <= F.lit(d))
    items = spark.read.format("delta").load(paths.table("items")).where(F.col("dt") <= F.lit(d))
    # Each event by its own recipe: one per day let one impression drop a day's ratings.
    recipe = recipe_of(has_impressions, has_ratings)
    base = _labelled_impressions(events).drop("dt") if has_impressions else None
    if has_ratings or not has_impressions:
        catalog = items.where(
            F.col("first_seen") < F.lit(dt.datetime.combine(d, dt.time(), dt.UTC))
        )
        rated = _rated_with_negatives(events, catalog, d, seed_of(prev_users))
        base = rated if base is None else base.unionByName(rated)
    assert base is not None  # one recipe at least: impressions, or ratings (none: no row)
    ex = base.join(
        users.select("user_id", "country", "device", "age_bucket"), "user_id", "left"
    ).join(items.select("item_id", "category", "creator"), "item_id", "left")
    if prev_users is not None:
        uf = prev_users.select(
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
    ex = ex.fillna(0.0, subset=list(USER_DENSE + ITEM_DENSE + COHORT_DENSE))
    fday = feature_day.isoformat() if feature_day else None
    return conform(ex.withColumn("dt", F.lit(d)), TRAINING_EXAMPLES_DDL), recipe, fday


def _rated_with_negatives_range(
    spark: SparkSession,
    events: DataFrame,
    items: DataFrame,
    days: Sequence[dt.date],
    seen: DataFrame | None = None,
) -> DataFrame:
    """``_rated_with_negatives`` for many days at once, draw for draw: each day's catalog is
    the items (dimension rows of dt <= d) first seen before d, indexed 0..n-1 by item_id
    within the day; a draw's index is ``pmod(xxhash64(example_id, k, str(d)), n_d)``, where
    n_d counts the catalog's rows as the per-day path does (not its distinct items). ``seen``:
    (user_id, dt, seen_item_ids) with dt the day the d-1 lists apply to."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    ratings = events.where(F.col("event_type") == "rating").select(
        F.col("event_id").alias("example_id"), "user_id", "item_id", "ts",
        (F.col("value") >= RATING_THRESHOLD).cast("int").alias("label"), F.lit("rating").alias("source"),
        "dt",
    )  # fmt: skip
    # The start of each day as an instant, built from aware datetimes exactly as the per-day
    # literal is (no dependence on the session time zone), without a Python worker.
    day_starts = [(d, dt.datetime.combine(d, dt.time(), dt.UTC)) for d in days]
    starts = local_frame(spark, day_starts, "dt date, _start timestamp")
    catalog = F.broadcast(starts).join(
        items.select("item_id", "first_seen", F.col("dt").alias("_idt")),
        (F.col("_idt") <= F.col("dt")) & (F.col("first_seen") < F.col("_start")),
    )
    sizes = catalog.groupBy("dt").agg(F.count("*").alias("_n"))
    indexed = (
        catalog.select("dt", "item_id")
        .distinct()
        .withColumn(
            "_idx",
            (F.row_number().over(Window.partitionBy("dt").orderBy("item_id")) - 1).cast("bigint"),
        )
    )
    draws = (
        ratings.where(F.col("label") == 1)
        .select(
            "example_id",
            "user_id",
            "ts",
            "dt",
            F.explode(F.sequence(F.lit(0), F.lit(NEGATIVES_PER_POSITIVE - 1))).alias("k"),
        )
        .join(sizes, "dt")  # a day with an empty catalog draws nothing, as per day
        .withColumn(
            "_idx",
            F.pmod(
                F.xxhash64(F.col("example_id"), F.col("k"), F.col("dt").cast("string")), F.col("_n")
            ),
        )
    )
    negatives = draws.join(indexed, ["dt", "_idx"]).select(
        F.concat_ws("#neg", "example_id", "k").alias("example_id"), "user_id", "item_id", "ts",
        F.lit(0).alias("label"), F.lit("sampled_negative").alias("source"), "dt",
    )  # fmt: skip
    rated_same_day = ratings.select("user_id", "item_id", "dt")
    negatives = negatives.join(rated_same_day, ["user_id", "item_id", "dt"], "left_anti")
    return ratings.unionByName(_not_seen_before(negatives, seen, ["user_id", "dt"]))


def compute_examples_range(
    spark: SparkSession, paths: Paths, days: Sequence[str | dt.date]
) -> tuple[DataFrame, dict[str, str], dict[str, str | None]]:
    """(examples of all ``days``, recipe per day, feature day per day): the rows
    ``compute_examples`` gives day by day, in a number of Spark jobs that does not grow with the
    number of days (Spark's per-job overhead made a 160-day backfill cost minutes for a few MB).

    Every per-day constant becomes a column: the day's recipe (one job finds the days with an
    impression), its feature day (one job finds the item_features partitions of d-1), its
    catalog (``_rated_with_negatives_range``); dimensions join on ``dim.dt <= dt`` and features
    on ``features.dt = d-1`` for the days that have them."""
    from pyspark.sql import functions as F

    ds = sorted({d if isinstance(d, dt.date) else dt.date.fromisoformat(d) for d in days})
    if not ds:
        raise ValueError("compute_examples_range: no days")
    one = dt.timedelta(days=1)
    events = spark.read.format("delta").load(paths.table("raw_events")).where(F.col("dt").isin(*ds))
    typed = events.where(F.col("event_type").isin("impression", "rating"))
    kinds = typed.select("dt", "event_type").distinct().collect()
    flagged = {r["dt"] for r in kinds if r["event_type"] == "impression"}
    rated_days = {r["dt"] for r in kinds if r["event_type"] == "rating"}
    existing = days_with_rows(spark, paths.table("item_features"), [d - one for d in ds])
    feature_days = [d for d in ds if d - one in existing]
    recipes = {d.isoformat(): recipe_of(d in flagged, d in rated_days) for d in ds}
    features_day = {d.isoformat(): (d - one).isoformat() if d in feature_days else None for d in ds}

    users = (
        spark.read.format("delta").load(paths.table("users")).where(F.col("dt") <= F.lit(ds[-1]))
    )
    items = (
        spark.read.format("delta").load(paths.table("items")).where(F.col("dt") <= F.lit(ds[-1]))
    )
    # the user rows of every feature day d-1: seen lists for the negatives, features below
    prev_users = (
        _read_days(spark, paths, "user_features", [d - one for d in feature_days])
        if feature_days
        else None
    )
    impression_days = [d for d in ds if d in flagged]
    rating_days = [d for d in ds if d in rated_days or d not in flagged]  # both recipes: both
    parts = []
    if impression_days:
        parts.append(_labelled_impressions(events.where(F.col("dt").isin(*impression_days))))
    if rating_days:
        rated = events.where(F.col("dt").isin(*rating_days))
        # the lists of d-1, keyed by the day they apply to (an impression day's match nothing)
        seen = seed_of(prev_users, F.date_add("dt", 1).alias("dt"))
        parts.append(_rated_with_negatives_range(spark, rated, items, rating_days, seen))
    base = parts[0] if len(parts) == 1 else parts[0].unionByName(parts[1])

    # Dimensions as of d: every row with dim.dt <= d (several rows of one id join several
    # times, exactly as the per-day join does).
    u = users.select(F.col("user_id").alias("_uid"), "country", "device", "age_bucket",
                     F.col("dt").alias("_udt"))  # fmt: skip
    ex = base.join(u, (base["user_id"] == u["_uid"]) & (u["_udt"] <= base["dt"]), "left")
    it = items.select(
        F.col("item_id").alias("_iid"), "category", "creator", F.col("dt").alias("_idt")
    )
    ex = ex.join(it, (ex["item_id"] == it["_iid"]) & (it["_idt"] <= ex["dt"]), "left")
    ex = ex.drop("_uid", "_udt", "_iid", "_idt")

    if prev_users is not None:
        prevs = [d - one for d in feature_days]
        # _fdt: the feature day of the row's day, null (no match: zeros) on a day without one
        ex = ex.withColumn("_fdt", F.when(F.col("dt").isin(*feature_days), F.date_sub("dt", 1)))
        uf = prev_users.select(
            F.col("dt").alias("_fdt"),
            "user_id",
            "history_item_ids",
            *[F.col(c[2:]).cast("double").alias(c) for c in USER_DENSE],
        )
        itf = _read_days(spark, paths, "item_features", prevs).select(
            F.col("dt").alias("_fdt"),
            "item_id",
            *[
                F.col(c[2:] if c != "i_trending" else "trending").cast("double").alias(c)
                for c in ITEM_DENSE
            ],
        )
        cf = _read_days(spark, paths, "cohort_features", prevs).select(
            F.col("dt").alias("_cdt"), F.col("country").alias("_c"), F.col("age_bucket").alias("_a"),
            F.col("category").alias("_k"), F.col("ctr_28d").alias("c_ctr_28d"),
        )  # fmt: skip
        ex = ex.join(uf, ["user_id", "_fdt"], "left").join(itf, ["item_id", "_fdt"], "left")
        ex = ex.join(
            cf,
            (ex["_fdt"] == cf["_cdt"])
            & (F.coalesce(ex["country"], F.lit("unknown")) == cf["_c"])
            & (F.coalesce(ex["age_bucket"], F.lit("unknown")) == cf["_a"])
            & (F.coalesce(ex["category"], F.lit("unknown")) == cf["_k"]),
            "left",
        ).drop("_fdt", "_cdt", "_c", "_a", "_k")
    else:  # no day of the range has earlier features: zeros, empty history
        ex = ex.withColumn("history_item_ids", F.lit(None).cast("array<bigint>"))
        for c in USER_DENSE + ITEM_DENSE + COHORT_DENSE:
            ex = ex.withColumn(c, F.lit(0.0))
    ex = ex.withColumn(
        "history_item_ids", F.coalesce("history_item_ids", F.array().cast("array<bigint>"))
    )
    ex = ex.fillna(0.0, subset=list(USER_DENSE + ITEM_DENSE + COHORT_DENSE))
    return conform(ex, TRAINING_EXAMPLES_DDL), recipes, features_day


def _read_days(spark: SparkSession, paths: Paths, table: str, days: Sequence[dt.date]) -> DataFrame:
    from pyspark.sql import functions as F

    return spark.read.format("delta").load(paths.table(table)).where(F.col("dt").isin(*days))


MODES = ("auto", "daily", "range")


def build_training_examples(
    spark: SparkSession,
    paths: Paths,
    days: Sequence[str | dt.date],
    run_id: str = "",
    progress: Callable[[str], None] | None = None,
    mode: str = "auto",
    first_day: dt.date | None = None,
    features_required: bool = True,
) -> ExamplesResult:
    """Compute and write the ``training_examples`` partitions of ``days``.

    ``mode``: ``"auto"`` runs one day with the per-day path and more with the range pass;
    ``"daily"`` forces the per-day loop (each day replaced in its own commit), ``"range"`` the
    range pass (all days replaced in one commit, so a failed run leaves the previous version).
    Both write the same rows. ``NotIngestedError`` (``recassets.ingested``) for a day whose
    inputs were never ingested, or whose d-1 features are not built where d-1 is on or after
    ``first_day`` (None: ``partition_start_date``) and ``features_required``; without it such
    a day takes zeros, as the first day does (tests of that path on a mid-range day)."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    start = (first_day or partition_start_date(paths)) if features_required else None
    require_example_inputs(spark, paths, days, start)  # before the table is created or written
    say = progress or (lambda _m: None)
    path = paths.table(TABLE)
    ensure_table(spark, path, TRAINING_EXAMPLES_DDL, ["dt"])
    ordered = sorted({str(d) for d in days})
    # the versions current now are the versions read: one writer per table (dagster.yaml's pools)
    read = {t: latest_version(spark, paths.table(t)) if is_delta_table(spark, paths.table(t))
            else None for t in READS}  # fmt: skip
    if mode == "range" or (mode == "auto" and len(ordered) > 1):
        result = (_build_range(spark, paths, ordered, run_id, say, read) if ordered
                  else ExamplesResult())  # fmt: skip
    else:
        result = _build_daily(spark, paths, ordered, run_id, say, read)
    result.version, result.read = latest_version(spark, path), read
    return result


def _build_daily(
    spark: SparkSession,
    paths: Paths,
    days: Sequence[str],
    run_id: str,
    say: Callable[[str], None],
    read: dict[str, int | None],
) -> ExamplesResult:
    from pyspark.sql import functions as F

    path = paths.table(TABLE)
    result = ExamplesResult()
    for day in days:
        df, recipe, feature_day = compute_examples(spark, paths, day)
        df = df.persist()
        stats = df.agg(F.count("*").alias("n"), F.sum("label").alias("p")).first()
        assert stats is not None  # an aggregate without groupBy has one row
        meta = json.dumps({"run_id": run_id, "day": day, "recipe": recipe, "features_day": feature_day,
                           "code_version": __version__, "read": read})  # fmt: skip
        replace_partitions(df, path, days_predicate([day]), meta)
        df.unpersist()
        result.rows[day], result.positives[day] = int(stats["n"]), int(stats["p"] or 0)
        result.recipe[day], result.features_day[day] = recipe, feature_day
        say(
            f"training_examples {day}: {stats['n']} rows, {stats['p'] or 0} positives ({recipe}, features of {feature_day})"
        )
    return result


def _build_range(
    spark: SparkSession,
    paths: Paths,
    days: Sequence[str],
    run_id: str,
    say: Callable[[str], None],
    read: dict[str, int | None],
) -> ExamplesResult:
    from pyspark.sql import functions as F

    path = paths.table(TABLE)
    span = f"training_examples {days[0]}..{days[-1]} ({len(days)} days)"
    start = time.monotonic()
    df, recipes, features_day = compute_examples_range(spark, paths, days)
    n_ratings = sum(r == RATINGS for r in recipes.values())
    n_both = sum(r == BOTH for r in recipes.values())
    say(f"{span}: {len(days) - n_ratings - n_both} impression days, {n_ratings} ratings days, "
        f"{n_both} with both, "
        f"{sum(f is not None for f in features_day.values())} with features of d-1")  # fmt: skip
    df = df.persist()
    stats = {
        r["dt"].isoformat(): (int(r["n"]), int(r["p"] or 0))
        for r in df.groupBy("dt").agg(F.count("*").alias("n"), F.sum("label").alias("p")).collect()
    }
    total = sum(n for n, _ in stats.values())
    say(f"{span}: {total} rows computed in {time.monotonic() - start:.1f}s, writing one commit")
    meta = json.dumps({"run_id": run_id, "days": list(days), "recipe": recipes,
                       "features_day": features_day, "code_version": __version__, "read": read})  # fmt: skip
    replace_partitions(df, path, days_predicate(days), meta)
    df.unpersist()
    result = ExamplesResult()
    for day in days:
        result.rows[day], result.positives[day] = stats.get(day, (0, 0))
        result.recipe[day], result.features_day[day] = recipes[day], features_day[day]
    elapsed = time.monotonic() - start
    say(f"{span}: {total} rows written in {elapsed:.1f}s ({total / max(elapsed, 1e-9):.0f} rows/s)")
    return result
