"""Which columns of the lake's derived tables come from which columns upstream (what the UI
shows as column lineage), and what a table's Delta schema and read versions are.

The map is written from the recipes (``recassets.features.pipelines``,
``recassets.training.examples``), not inferred from Spark plans: a column is listed with every
input column that changes its value, including the keys it is grouped by and the timestamp
that places an event in a window. Columns whose derivation is not spelled here (the item
content embedding, the example id) are left out rather than guessed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recassets.features.schema import WINDOWS
from recassets.training.schema import COHORT_DENSE, ITEM_DENSE, USER_DENSE

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from recassets.paths import Paths

Column = tuple[str, str]  # (table, column)
Lineage = dict[str, list[Column]]  # column -> the upstream columns it derives from

COUNTERS = ("impressions", "clicks", "likes", "engagements")


def _entity(key: str, dims: dict[str, list[Column]]) -> Lineage:
    """user_features or item_features: counters and CTRs of the events grouped by ``key``."""
    counted = [("raw_events", key), ("raw_events", "event_type"), ("raw_events", "ts")]
    out: Lineage = {key: [("raw_events", key)]}
    for w in WINDOWS:
        for c in COUNTERS:
            out[f"{c}_{w}d"] = list(counted)
        out[f"watch_time_{w}d"] = [*counted, ("raw_events", "value")]
    for w in (7, 28):
        out[f"ctr_{w}d"] = list(counted)  # smoothed towards the window's global CTR
    return {**out, **dims}


USER_FEATURES = _entity(
    "user_id",
    {
        **{c: [("users", "user_id"), ("users", c)] for c in ("country", "device", "age_bucket")},
        "last_engagements": [
            ("raw_events", "user_id"),
            ("raw_events", "item_id"),
            ("raw_events", "event_type"),
            ("raw_events", "ts"),
            ("raw_events", "value"),
        ],
        "history_item_ids": [
            ("raw_events", "user_id"),
            ("raw_events", "item_id"),
            ("raw_events", "event_type"),
            ("raw_events", "ts"),
        ],
        "seen_item_ids": [
            ("raw_events", "user_id"),
            ("raw_events", "item_id"),
            ("raw_events", "event_type"),
            ("raw_events", "ts"),
        ],
        "top_categories": [
            ("raw_events", "user_id"),
            ("raw_events", "item_id"),
            ("raw_events", "event_type"),
            ("items", "item_id"),
            ("items", "category"),
        ],
    },
)

ITEM_FEATURES = _entity(
    "item_id",
    {
        **{c: [("items", "item_id"), ("items", c)] for c in ("category", "creator")},
        "age_days": [("items", "item_id"), ("items", "first_seen")],
        "trending": [("raw_events", "item_id"), ("raw_events", "event_type"), ("raw_events", "ts")],
    },
)

_COHORT_KEYS = [
    ("raw_events", "user_id"),
    ("raw_events", "item_id"),
    ("raw_events", "event_type"),
    ("raw_events", "ts"),
    ("users", "country"),
    ("users", "age_bucket"),
    ("items", "category"),
]
COHORT_FEATURES: Lineage = {
    "country": [("users", "country")],
    "age_bucket": [("users", "age_bucket")],
    "category": [("items", "category")],
    **{
        f"{c}_{w}d": list(_COHORT_KEYS)
        for w in (7, 28)
        for c in ("impressions", "clicks", "engagements")
    },
    "ctr_28d": list(_COHORT_KEYS),
}


def _dense(prefix: str, table: str, names: tuple[str, ...]) -> Lineage:
    return {n: [(table, n.removeprefix(prefix))] for n in names}


TRAINING_EXAMPLES: Lineage = {
    # impressions: clicked, liked, shared or watched >= 10 s in the same request; ratings:
    # value >= 4 (recassets.training.examples)
    "label": [
        ("raw_events", "event_type"),
        ("raw_events", "value"),
        ("raw_events", "request_id"),
        ("raw_events", "user_id"),
        ("raw_events", "item_id"),
    ],
    "user_id": [("raw_events", "user_id")],
    "item_id": [("raw_events", "item_id")],
    "ts": [("raw_events", "ts")],
    **{c: [("users", c)] for c in ("country", "device", "age_bucket")},
    **{c: [("items", c)] for c in ("category", "creator")},
    "history_item_ids": [("user_features", "history_item_ids")],
    **_dense("u_", "user_features", USER_DENSE),
    **_dense("i_", "item_features", ITEM_DENSE),
    **_dense("c_", "cohort_features", COHORT_DENSE),
}

COLUMN_LINEAGE: dict[str, Lineage] = {
    "user_features": USER_FEATURES,
    "item_features": ITEM_FEATURES,
    "cohort_features": COHORT_FEATURES,
    "training_examples": TRAINING_EXAMPLES,
}


def delta_columns(spark: SparkSession, path: str) -> list[tuple[str, str, bool]]:
    """(name, type, nullable) of each column of the Delta table at ``path``, as Spark reads its
    schema (the log only: no data is scanned)."""
    schema = spark.read.format("delta").load(path).schema
    return [(f.name, f.dataType.simpleString(), f.nullable) for f in schema.fields]


def read_versions(
    spark: SparkSession, paths: Paths, tables: tuple[str, ...]
) -> dict[str, int | None]:
    """The newest Delta version of each of ``tables`` (None: no table yet): what a step that
    reads them now reads (one writer per table at a time: the pools of dagster.yaml)."""
    from recassets.lake import is_delta_table, latest_version

    return {
        t: latest_version(spark, paths.table(t)) if is_delta_table(spark, paths.table(t)) else None
        for t in tables
    }


__all__ = ["COLUMN_LINEAGE", "delta_columns", "read_versions"]
