"""The expectation suites: what a good ``raw_events`` partition and a good feature partition
look like, as Great Expectations 1.x ``ExpectationSuite`` objects.

Suites are built per partition because some bounds depend on it: the UTC day that bounds
``ts``, and the row-count band drawn from the partitions before it (a drop or a spike of
volume is the failure ingestion cannot see: every row of a replayed or truncated file is
individually valid).

A suite carries two things in ``meta`` for the runner (``recassets.quality.runner``):
``sample_columns``, the columns shown for each failing row (the row's identity, so that a
reader can find it), and ``notes``, the expectations left out and why.

An expectation whose meaning is its partition's own day says so in its ``meta["range_form"]``
(``RANGE_FORMS``): a range of days is validated at once (``recassets.quality.ranges``) on a
derived column that carries the day, so that one expectation over all the range's rows means
the same as one per day.
"""

# great_expectations ships py.typed but re-exports gx.expectations.Expect* without __all__ or
# "import X as X", so the checker would flag its documented import path as private.
# pyright: reportPrivateImportUsage=false

from __future__ import annotations

import datetime as dt
import math
import re
import statistics
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from recassets.events import (
    EVENT_TYPES,
    EVENTS,
    MAX_WATCH_SECONDS,
    RATING_SCALE,
    VALUED_EVENT_TYPES,
)
from recassets.features.schema import KEYS, TABLES, WINDOWS
from recassets.preload import settle

if TYPE_CHECKING:
    # Imported where used: ``import great_expectations`` takes seconds (10 s of CPU on the
    # 2-core dev box), too much for every Dagster code-location load and CLI start.
    import great_expectations as gx

# Columns shown for a failing raw event: enough to find it in the table and its landing file.
RAW_EVENTS_SAMPLE_COLUMNS = ("event_id", "ts", "user_id", "item_id", "event_type")
# A daily mean over fewer days than this is noise (one holiday, one outage): no volume check.
MIN_TRAILING_DAYS = 3
TRAILING_DAYS = 7
NUMERIC_TYPES = ("tinyint", "smallint", "int", "integer", "bigint", "float", "double", "decimal")
COUNTER_SUFFIXES = tuple(f"_{w}d" for w in WINDOWS)
# meta["range_form"] of a day-bound expectation (see recassets.quality.ranges):
# "utc_day": a timestamp column between the partition day's 00:00 UTC and the next (strict);
# "within_day": a column unique among the rows of its partition day.
UTC_DAY, WITHIN_DAY = "utc_day", "within_day"
RANGE_FORMS = (UTC_DAY, WITHIN_DAY)


FINITE = sys.float_info.max  # the largest finite double: a counter above it is inf


def _row_conditions():
    from great_expectations.expectations import row_conditions

    return row_conditions


def _as_date(day: dt.date | str) -> dt.date:
    return day if isinstance(day, dt.date) else dt.date.fromisoformat(day)


def count_band(mean: float, band: float) -> tuple[int, int]:
    """Integer row-count bounds for ``[mean*(1-band), mean*(1+band)]`` (inclusive).

    Rounded inwards: a count is an integer, so ``n >= 8.5`` is ``n >= 9``.
    """
    if not 0 <= band:
        raise ValueError(f"band must not be negative, got {band}")
    return max(0, math.ceil(mean * (1 - band))), math.floor(mean * (1 + band))


def raw_events_suite(
    day: dt.date | str,
    trailing_daily_counts: Sequence[int],
    band: float | None = 0.5,
    empty: bool = False,
) -> gx.ExpectationSuite:
    """Expectations of one ``raw_events`` partition (the events of UTC day ``day``).

    * ``event_id``, ``user_id``, ``item_id`` not null (and ``ts``, ``event_type``: the two
      expectations below skip nulls, GE counting them as missing rather than unexpected);
    * ``event_type`` in ``EVENT_TYPES``;
    * ``ts`` in ``[day 00:00 UTC, day+1 00:00 UTC)``;
    * ``event_id`` unique;
    * ``value`` set on watch and rating events, a rating on ``RATING_SCALE``, a watch within
      ``MAX_WATCH_SECONDS`` (each by a ``row_condition`` on ``event_type``);
    * row count within ``[median*(1-band), median*(1+band)]`` of ``trailing_daily_counts``
      (the row counts of the partitions among the 7 days before ``day``), left out with a note
      when fewer than 3 such days exist, or when ``empty``: the day had no landing file at all
      (ingestion wrote an empty partition, its lineage manifest says ``"empty": true``), so
      there is no volume to judge; ``raw_events_has_events`` flags such a day instead. The
      median, not the mean: the trailing days are every partition, those that failed this
      check included (their data is committed before it runs), and one replayed day of ten
      times the volume moved the mean so far that the six normal days after it failed too;
    * at least one row, unless ``empty``, whatever the band: a day whose files landed and whose
      every row was quarantined has nothing to build on. Before, only the band caught it, so
      with the band off (MovieLens imports) or before 3 trailing days such a day passed.

    ``ts`` and ``event_id`` carry their ``range_form`` (``UTC_DAY``, ``WITHIN_DAY``).

    Ingestion already quarantines most of these row by row; the suite states the contract of
    the table itself, so a writer that bypasses ingestion (a backfill script, a bug) is caught.
    """
    settle()  # a background `import great_expectations` (recassets.preload) finishes first
    import great_expectations as gx

    day = _as_date(day)
    start = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
    end = start + dt.timedelta(days=1)
    E = gx.expectations
    expectations: list = [
        E.ExpectColumnValuesToNotBeNull(
            column=c, description=f"{c} is required by the event contract"
        )
        for c in ("event_id", "user_id", "item_id", "ts", "event_type")
    ]
    expectations += [
        E.ExpectColumnValuesToBeInSet(
            column="event_type",
            value_set=list(EVENT_TYPES),
            description="event_type is a known type",
        ),
        # Aware datetimes: Spark compares the instant whatever the session time zone is.
        E.ExpectColumnValuesToBeBetween(
            column="ts",
            min_value=start,
            max_value=end,
            strict_max=True,
            description=f"ts inside the partition's UTC day {day.isoformat()}",
            meta={"range_form": UTC_DAY},
        ),
        E.ExpectColumnValuesToBeUnique(
            column=EVENTS.key,
            description="event_id is unique",
            meta={"range_form": WITHIN_DAY},
        ),
    ]
    # ``value`` where it carries the measurement (ingestion quarantines the rest; a writer that
    # bypasses it landed a rating of 9 on the 0-10 scale, read as a positive, and a watch of
    # -3600 s): set, and on the rating scale or within a week of seconds.
    Col = _row_conditions().Column
    lo, hi = RATING_SCALE
    expectations += [
        E.ExpectColumnValuesToNotBeNull(
            column="value",
            row_condition=Col("event_type").is_in(list(VALUED_EVENT_TYPES)),
            description=f"value is set on {' and '.join(VALUED_EVENT_TYPES)} events",
        ),
        E.ExpectColumnValuesToBeBetween(
            column="value",
            min_value=lo,
            max_value=hi,
            row_condition=Col("event_type") == "rating",
            description=f"a rating is on the {lo:g}-{hi:g} scale",
        ),
        E.ExpectColumnValuesToBeBetween(
            column="value",
            min_value=0,
            max_value=MAX_WATCH_SECONDS,
            row_condition=Col("event_type") == "watch",
            description=f"a watch lasts 0 to {MAX_WATCH_SECONDS:,} s",
        ),
    ]
    counts = [int(c) for c in trailing_daily_counts]
    notes = []
    context: dict = {"day": day.isoformat(), "trailing_daily_counts": counts, "band": band}
    if empty:
        context["empty"] = True
    if band is None:
        notes.append("volume check off (RECASSETS_VOLUME_BAND=off)")
    elif empty:
        notes.append(
            f"volume check skipped: no events landed for {day.isoformat()} (ingestion wrote an "
            "empty partition), so there is no volume to compare; raw_events_has_events warns"
        )
    elif len(counts) >= MIN_TRAILING_DAYS:
        median = statistics.median(counts)
        lo, hi = count_band(median, band)
        lo = max(lo, 1)
        context.update(trailing_median=median, row_count_bounds=[lo, hi])
        expectations.append(
            E.ExpectTableRowCountToBeBetween(
                min_value=lo,
                max_value=hi,
                description=f"daily volume within ±{band:.0%} of the trailing {len(counts)} "
                f"days' median {median:g}",
            )
        )
    else:
        notes.append(
            f"volume check skipped: {len(counts)} trailing day(s) with events, "
            f"at least {MIN_TRAILING_DAYS} needed for a meaningful median"
        )
    if not empty and "row_count_bounds" not in context:
        context["row_count_bounds"] = [1, None]
        expectations.append(
            E.ExpectTableRowCountToBeBetween(
                min_value=1,
                description="at least one valid row on a day whose landing files were found",
            )
        )
    return gx.ExpectationSuite(
        name=f"raw_events_{day.isoformat()}",
        expectations=expectations,
        meta={
            "sample_columns": list(RAW_EVENTS_SAMPLE_COLUMNS),
            "notes": notes,
            "context": context,
        },
    )


def ddl_columns(ddl: str) -> list[tuple[str, str]]:
    """``(name, type)`` of each top-level column of a Spark DDL string (nested types such as
    ``array<struct<a: bigint, b: string>>`` hold commas, so a plain split does not do)."""
    cols: list[tuple[str, str]] = []
    current: list[str] = []
    depth = 0
    for ch in ddl + ",":
        if ch == "," and depth == 0:
            part = "".join(current).strip()
            if part:
                name, _, rest = part.partition(" ")
                cols.append(
                    (name.strip("`"), re.sub(r"\s+NOT NULL$", "", rest.strip(), flags=re.I))
                )
            current = []
            continue
        depth += ch in "<("
        depth -= ch in ">)"
        current.append(ch)
    return cols


def _is_numeric(type_: str) -> bool:
    return type_.lower().split("(")[0] in NUMERIC_TYPES


def counter_columns(table: str) -> list[str]:
    """The numeric windowed columns of a feature table (``impressions_7d``, ``watch_time_1d``...),
    CTRs excluded: they have their own, tighter, expectation."""
    return [
        name
        for name, type_ in ddl_columns(TABLES[table])
        if name.endswith(COUNTER_SUFFIXES) and _is_numeric(type_) and not name.startswith("ctr_")
    ]


def ctr_columns(table: str) -> list[str]:
    return [
        name
        for name, type_ in ddl_columns(TABLES[table])
        if name.startswith("ctr_") and _is_numeric(type_)
    ]


# Feature tables whose rows come from events only (no dimension rows keep an entity's row).
EVENT_ONLY_TABLES = frozenset({"cohort_features"})


def feature_suite(
    table: str, previous_row_count: int | None, tolerance: float = 0.5
) -> gx.ExpectationSuite:
    """Expectations of one partition of a feature table (``user_features``, ``item_features``,
    ``cohort_features``), from its DDL in ``recassets.features.schema``:

    * every counter (numeric column ending in ``_1d``, ``_7d``, ``_28d``, CTRs aside) >= 0
      and finite;
    * every ``ctr_*`` in ``[0, 1]``;
    * the key columns (``KEYS[table]``) not null, and unique within the day;
    * row count at least ``prev*(1-tolerance)`` of the previous partition, left out with a note
      when there is none (the first day). One-sided on purpose: a feature table holds one row
      per entity (its rows come from a group-by on the keys), so more rows means more users or
      items seen, which a real history does in its first weeks (an ml-100k history's item
      table went from 483 rows on its first day to 750 on its second, and a two-sided band
      blocked the whole backfill); fewer rows is what a lost upstream write looks like.
      Not for ``cohort_features``: a cohort has a row only while it has events in the 28-day
      window (it has no dimension rows to persist), so its rows shrink with the events, and
      after a quiet month (an outage, a paused product) they are gone: the events' own volume
      band (``raw_events_suite``) is the check for that, not a floor that would block every
      table downstream for a true fact.
    """
    settle()  # a background `import great_expectations` (recassets.preload) finishes first
    import great_expectations as gx

    if table not in TABLES:
        raise ValueError(f"unknown feature table {table!r}: one of {sorted(TABLES)}")
    E = gx.expectations
    keys = list(KEYS[table])
    expectations: list = [
        E.ExpectColumnValuesToNotBeNull(column=k, description=f"key column {k} is set")
        for k in keys
    ]
    # One row per entity: a partition holding an entity twice was served at random (Feast keeps
    # one of the rows, a different one in Redis and SQLite) and doubled every count downstream.
    unique = {"description": f"one row per {' + '.join(keys)}", "meta": {"range_form": WITHIN_DAY}}
    expectations.append(
        E.ExpectColumnValuesToBeUnique(column=keys[0], **unique)
        if len(keys) == 1
        else E.ExpectCompoundColumnsToBeUnique(column_list=keys, **unique)
    )
    expectations += [
        # finite too: sums of contract-valid values can overflow a double (two watches of
        # 1e308 s made watch_time inf, which ">= 0" passes)
        E.ExpectColumnValuesToBeBetween(
            column=c,
            min_value=0,
            max_value=FINITE,
            description=f"counter {c} is non-negative and finite",
        )  # fmt: skip
        for c in counter_columns(table)
    ]
    expectations += [
        E.ExpectColumnValuesToBeBetween(
            column=c, min_value=0, max_value=1, description=f"{c} is a rate in [0, 1]"
        )
        for c in ctr_columns(table)
    ]
    notes = []
    context: dict = {
        "table": table,
        "previous_row_count": previous_row_count,
        "tolerance": tolerance,
    }
    if table in EVENT_ONLY_TABLES:
        notes.append(
            f"row-count check not applied: {table} rows exist only for cohorts with events in "
            "the window (see feature_suite)"
        )
    elif previous_row_count is not None:
        lo, _ = count_band(previous_row_count, tolerance)
        context["row_count_bounds"] = [lo, None]
        expectations.append(
            E.ExpectTableRowCountToBeBetween(
                min_value=lo,
                description=f"row count at least {1 - tolerance:.0%} of the previous "
                f"partition's {previous_row_count}",
            )
        )
    else:
        notes.append("row-count check skipped: no previous partition to compare with")
    return gx.ExpectationSuite(
        name=table,
        expectations=expectations,
        meta={"sample_columns": list(KEYS[table]), "notes": notes, "context": context},
    )
