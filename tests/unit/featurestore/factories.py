"""Tiny feature tables with the exact DDL of ``recassets.features.schema``, written by Spark as
Delta (as the feature pipelines write them), for the feature store's tests.

Rows are deterministic functions of (id, day), so a test can state the value it expects, and
they cover the awkward cases: null categoricals, empty sequences, engagements without a value,
a top category without a name.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from recassets.features.schema import EMBEDDING_DIM, TABLES, WINDOWS

TYPES = ("click", "like", "share", "watch", "rating")


def _counters(seed: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for i, w in enumerate(WINDOWS):
        base = seed * (i + 1)
        out[f"impressions_{w}d"] = 10 * base + 7
        out[f"clicks_{w}d"] = base + 1
        out[f"likes_{w}d"] = base % 3
        out[f"engagements_{w}d"] = base + 2
        out[f"watch_time_{w}d"] = base * 1.25 + 0.1
    return out


def user_row(user_id: int, day: str, *, engagements: int | None = None) -> dict[str, Any]:
    d = dt.date.fromisoformat(day)
    seed = user_id * 31 + d.toordinal() % 97
    n = (user_id % 4) if engagements is None else engagements  # user 4k: no engagements at all
    start = dt.datetime.combine(d, dt.time(8), tzinfo=dt.UTC)
    last = [
        {
            "item_id": 1000 + (user_id * 7 + j) % 50,
            "event_type": TYPES[(user_id + j) % len(TYPES)],
            # sub-second part: the snapshot keeps whole seconds (floor)
            "ts": start + dt.timedelta(minutes=13 * j, microseconds=123_456),
            "value": None
            if TYPES[(user_id + j) % len(TYPES)] in ("click", "like", "share")
            else 3.5 + j,
        }
        for j in range(n)
    ]
    return {
        "user_id": user_id,
        **_counters(seed),
        "ctr_7d": (seed % 10) / 10 + 0.05,
        "ctr_28d": (seed % 7) / 7 + 0.01,
        "country": None if user_id % 5 == 0 else ["fr", "us", "br"][user_id % 3],
        "device": ["ios", "android", "web"][user_id % 3],
        "age_bucket": None if user_id % 6 == 0 else "25-34",
        "last_engagements": last,
        "history_item_ids": [e["item_id"] for e in last],
        # an older engagement than the sequence holds (users with any), then the sequence's items
        "seen_item_ids": list(
            dict.fromkeys([1000 + (user_id * 7 + 25) % 50] * bool(n) + [e["item_id"] for e in last])
        ),
        "top_categories": [
            {
                "category": None if (user_id + k) % 7 == 0 else f"cat{(user_id + k) % 5}",
                "weight": 1.0 / (k + 1),
            }
            for k in range(min(n, 3))
        ],
        "dt": d,
    }


def item_row(item_id: int, day: str) -> dict[str, Any]:
    d = dt.date.fromisoformat(day)
    seed = item_id * 17 + d.toordinal() % 89
    return {
        "item_id": item_id,
        **_counters(seed),
        "ctr_7d": (seed % 11) / 11,
        "ctr_28d": (seed % 13) / 13,
        "age_days": (seed % 40) + 0.5,
        "category": None if item_id % 9 == 0 else f"cat{item_id % 5}",
        "creator": f"creator{item_id % 4}",
        "trending": (seed % 5) / 2.0 - 0.75,
        # values exactly representable in float32 and not: both must round-trip unchanged
        "embedding": [((item_id + k + seed) % 17) / 7.0 - 1.1 for k in range(EMBEDDING_DIM)],
        "dt": d,
    }


def cohort_row(country: str, age_bucket: str, category: str, day: str, seed: int) -> dict[str, Any]:
    d = dt.date.fromisoformat(day)
    return {
        "country": country,
        "age_bucket": age_bucket,
        "category": category,
        "impressions_7d": 100 + seed,
        "clicks_7d": 10 + seed,
        "engagements_7d": 12 + seed,
        "impressions_28d": 400 + seed,
        "clicks_28d": 40 + seed,
        "engagements_28d": 50 + seed,
        "ctr_28d": (40 + seed) / (400 + seed),
        "dt": d,
    }


def day_rows(day: str, users: range | list[int], items: range | list[int]) -> dict[str, list[dict]]:
    cohorts = [
        cohort_row(c, a, k, day, seed=i)
        for i, (c, a, k) in enumerate(
            (c, a, k)
            for c in ("fr", "unknown")
            for a in ("18-24", "25-34")
            for k in ("cat1", "cat2")
        )
    ]
    return {
        "user_features": [user_row(u, day) for u in users],
        "item_features": [item_row(i, day) for i in items],
        "cohort_features": cohorts,
    }


def _to_tuple(value: Any, data_type) -> Any:
    from pyspark.sql.types import ArrayType, StructType

    if value is None:
        return None
    if isinstance(data_type, StructType):
        return tuple(_to_tuple(value[f.name], f.dataType) for f in data_type.fields)
    if isinstance(data_type, ArrayType):
        return [_to_tuple(v, data_type.elementType) for v in value]
    return value


def write_day(spark, paths, day: str, rows: dict[str, list[dict]]) -> None:
    """Write (or replace) one day of each table, as the pipelines do: Delta, partitioned by
    dt, ``replaceWhere`` on the day."""
    from pyspark.sql.types import StructType

    for table, table_rows in rows.items():
        schema = StructType.fromDDL(TABLES[table])
        data = [_to_tuple(r, schema) for r in table_rows]
        frame = spark.createDataFrame(data, schema=schema)
        frame.write.format("delta").mode("overwrite").option(
            "replaceWhere", f"dt = DATE'{day}'"
        ).partitionBy("dt").save(paths.table(table))
