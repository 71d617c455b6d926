"""Tiny, valid rows of raw_events and of the feature tables, for the quality tests (unit and
Dagster): each test breaks exactly one thing in them."""

from __future__ import annotations

import datetime as dt
import re

from recassets.events import EVENT_TYPES, EVENTS
from recassets.features.schema import KEYS, TABLES
from recassets.quality.suites import ddl_columns


def as_date(day: str) -> dt.date:
    return dt.date.fromisoformat(day)


def event_records(day: str, n: int) -> list[dict]:
    """``n`` good events of ``day``: ids ``<day>-<i>``, one minute apart from 00:00 UTC."""
    start = dt.datetime.combine(as_date(day), dt.time(), tzinfo=dt.UTC)
    return [
        {
            "event_id": f"{day}-{i}",
            "ts": start + dt.timedelta(minutes=i),
            "user_id": i % 5 + 1,
            "item_id": i % 3 + 1,
            "event_type": EVENT_TYPES[i % 5],  # impression..watch
            "value": 30.0,
            "surface": "home",
            "request_id": f"r{i}",
            "country": "US",
            "device": "ios",
            "dt": as_date(day),
        }
        for i in range(n)
    ]


def nullable(ddl: str) -> str:
    """The DDL with every NOT NULL dropped: the tests write rows the contract forbids, to see
    the suites catch what a schema-less writer would let through."""
    return re.sub(r"\s+NOT NULL", "", ddl, flags=re.I)


EVENTS_DDL = nullable(EVENTS.spark_ddl())


def _value(table: str, name: str, type_: str, i: int, day: dt.date):
    keys = KEYS[table]
    if name == "dt":
        return day
    if name in keys:
        if type_ == "bigint":
            return i + 1
        return {"country": f"C{i}", "age_bucket": "18-24", "category": "news"}.get(
            name, f"{name}{i}"
        )
    if name.startswith("ctr_"):
        return 0.05
    if type_ == "bigint":
        return 3
    if type_ in ("double", "float"):
        return 1.5
    if type_ == "string":
        return "x"
    if type_.startswith("array"):
        return []
    raise AssertionError(f"no test value for {name} {type_}")


def feature_records(table: str, day: str, n: int) -> list[dict]:
    """``n`` good rows of a feature table for ``day``: every DDL column, keys distinct."""
    cols = ddl_columns(TABLES[table])
    return [
        {name: _value(table, name, type_, i, as_date(day)) for name, type_ in cols}
        for i in range(n)
    ]


def feature_ddl(table: str) -> str:
    return nullable(TABLES[table])
