"""Tiny ``training_examples`` Delta tables with a planted signal, written with delta-rs, for
the training tests and ``benchmarks/train.py``.

Rows follow ``recassets.training.schema.TRAINING_EXAMPLES_DDL`` (same names, types and
nullability, partitioned by ``dt``). The signal: user u prefers category ``u % n_categories``;
item i has category ``i % n_categories``. Impressions are uniform over the catalog, and an
impression becomes a positive with probability ``p_match`` when its category is the user's
preferred one, ``p_other`` otherwise. The user's history holds items of the preferred category.

``newest_decides``: a world only a sequence-aware model reads: each user-day's history holds
items of random categories, and the preferred category is the one of the newest (last) of
them, so neither the user id (it changes with the day) nor the history's average says it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import numpy as np
import pyarrow as pa
from deltalake import write_deltalake

from recassets.training.schema import COHORT_DENSE, ITEM_DENSE, USER_DENSE

START = dt.date(2026, 1, 1)

SCHEMA = pa.schema(
    [
        pa.field("example_id", pa.string(), False),
        pa.field("user_id", pa.int64(), False),
        pa.field("item_id", pa.int64(), False),
        pa.field("ts", pa.timestamp("us", tz="UTC"), False),
        pa.field("label", pa.int32(), False),
        pa.field("source", pa.string(), False),
        pa.field("country", pa.string()),
        pa.field("device", pa.string()),
        pa.field("age_bucket", pa.string()),
        pa.field("category", pa.string()),
        pa.field("creator", pa.string()),
        pa.field("history_item_ids", pa.list_(pa.int64()), False),
        *[pa.field(c, pa.float64(), False) for c in USER_DENSE + ITEM_DENSE + COHORT_DENSE],
        pa.field("dt", pa.date32(), False),
    ]
)


def day(i: int) -> str:
    return (START + dt.timedelta(days=i)).isoformat()


def preferred_category(user_id: np.ndarray | int, n_categories: int) -> np.ndarray | int:
    return user_id % n_categories


def make_day(
    d: int,
    *,
    n_users: int = 48,
    n_items: int = 120,
    n_categories: int = 4,
    impressions_per_user: int = 16,
    p_match: float = 0.8,
    p_other: float = 0.04,
    history_len: int = 4,
    user_offset: int = 0,
    seed: int = 0,
    newest_decides: bool = False,
) -> pa.Table:
    """One day of examples (``dt`` = ``day(d)``)."""
    rng = np.random.default_rng([seed, d])
    n = n_users * impressions_per_user
    users = np.repeat(
        np.arange(user_offset, user_offset + n_users, dtype=np.int64), impressions_per_user
    )
    items = rng.integers(0, n_items, size=n).astype(np.int64)
    if newest_decides:
        # random histories; the newest item's category is the day's preference
        per_user_hist = [
            rng.integers(0, n_items, size=history_len).tolist() for _ in range(n_users)
        ]
        newest = np.asarray([h[-1] % n_categories for h in per_user_hist])
        match = (items % n_categories) == newest[users - user_offset]
        labels = (rng.random(n) < np.where(match, p_match, p_other)).astype(np.int32)
    else:  # (the random draws in their original order: existing tables stay the same)
        match = (items % n_categories) == preferred_category(users, n_categories)
        labels = (rng.random(n) < np.where(match, p_match, p_other)).astype(np.int32)
        # history: history_len items of the preferred category (same per user and day)
        per_user_hist = [
            (
                rng.integers(0, n_items // n_categories, size=history_len) * n_categories
                + u % n_categories
            ).tolist()
            for u in range(user_offset, user_offset + n_users)
        ]
    date = START + dt.timedelta(days=d)
    ts = dt.datetime(date.year, date.month, date.day, 12, tzinfo=dt.UTC)
    countries = np.array(["fr", "us", "de"])
    devices = np.array(["ios", "android"])
    cols: dict[str, object] = {
        "example_id": [f"{d}-{k}" for k in range(n)],
        "user_id": users,
        "item_id": items,
        "ts": [ts] * n,
        "label": labels,
        "source": ["impression"] * n,
        "country": countries[users % 3].tolist(),
        "device": [None if u % 5 == 0 else devices[u % 2] for u in users],  # some nulls
        "age_bucket": ["18-24" if u % 2 else "25-34" for u in users],
        "category": [f"c{c}" for c in items % n_categories],
        "creator": [f"cr{i % 10}" for i in items],
        "history_item_ids": [per_user_hist[u - user_offset] for u in users],
    }
    for c in USER_DENSE:
        cols[c] = rng.gamma(2.0, 5.0, size=n)
    for c in ITEM_DENSE:
        cols[c] = rng.gamma(2.0, 20.0, size=n)
    for c in COHORT_DENSE:
        cols[c] = rng.random(n) * 0.1
    cols["dt"] = [date] * n
    return pa.table(cols, schema=SCHEMA)


def write_days(path: str, days: Sequence[int], **kwargs: object) -> None:
    """Append each day as its own commit (one Delta version per partition write)."""
    for d in days:
        write_day(path, make_day(d, **kwargs))


def write_day(path: str, rows: pa.Table) -> None:
    write_deltalake(path, rows, partition_by=["dt"], mode="append")
