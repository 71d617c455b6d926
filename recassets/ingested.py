"""Which days the lake holds as ingested, and the guard a derived day passes before it is built.

Spark reads a partition that was never written as no rows. A feature partition of a day whose
raw events were never ingested therefore materialized (zeros, or a 28-day window short of its
last days), and so did its training examples (no row, or no features of d-1), and the quality
checks, which look at the rows written, passed them. ``require_feature_inputs`` and
``require_example_inputs`` refuse such a day with ``NotIngestedError``, naming the missing
days and the command that ingests them, before anything is read or written; on a fresh home,
instead of Spark's ``PATH_NOT_FOUND`` or ``DELTA_TABLE_ONLY_OPERATION``.

A day counts as ingested (``ingested_days``) on the first of these, cheapest first:

1. its lineage manifest (``recassets.ingest.lineage_path``): ingestion writes one per day,
   an empty day too, which has no Delta row to show for it. The lineage folder is local
   also beside an ``s3a://`` lake (``Paths`` refuses a URL there), so this is a ``stat``.
2. rows in the table's partition: a lake copied or restored without its lineage folder,
   or a table written by something other than ingestion (tests, a notebook).
3. an ingestion commit naming the day (its ``userMetadata`` ``days``): an empty day of such
   a lake, as long as the Delta log still holds the commit (Delta drops commit files after
   ``delta.logRetentionDuration``, 30 days by default; the manifest stays).

What a day d requires:

- ``raw_events`` of d and of the earlier days of the features' 28-day window, and ``users``
  and ``items`` of every day up to d (their tables are cumulative), where the day's landing
  folder holds a file: landed but never ingested is a gap in what d reads. A day with nothing
  landed is none: there is nothing to ingest (before the history began, a feed's outage,
  and the dimensions of most days: the landing sensor ingests only the datasets that landed,
  and the synthetic world lands its items on its first day only). Requiring ``users`` and
  ``items`` of d itself would fail every landing-sensor run after the first day; requiring
  the events of a day nothing landed on would refuse its features and the next day's
  examples for good on a live feed with a day of outage (a single day without files cannot
  be ingested: ``ingest.files.empty_days_allowed``), where its features are, rightly, its
  window without it.
- ``raw_events`` as a table, always: a home where nothing was ingested is named so, not left
  to Spark's ``PATH_NOT_FOUND``.
- training examples of d: the features of d-1 too (``item_features``, what
  ``compute_examples`` joins by), unless d-1 precedes the first partition day.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from recassets.features.schema import TABLES, WINDOWS
from recassets.ingest.lineage import lineage_path
from recassets.ingest.pipeline import day_runs
from recassets.ingest.results import TABLE_NAMES
from recassets.lake import days_with_rows, delta_history, is_delta_table
from recassets.paths import Paths

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

FEATURE_TABLES = tuple(TABLES)
# The rows DESCRIBE HISTORY returns for the last resort (3.); a table's log holds fewer.
HISTORY_ROWS = 1_000_000


class NotIngestedError(RuntimeError):
    """A day to build reads days that were never ingested (or features never built)."""

    def __init__(self, what: str, missing: Mapping[str, Sequence[dt.date]]) -> None:
        self.missing = {t: sorted(days) for t, days in missing.items() if days}
        every = sorted(d for days in self.missing.values() for d in days)
        first, last = every[0].isoformat(), every[-1].isoformat()
        built = set(self.missing) <= set(FEATURE_TABLES)
        spans = {t: _few(day_runs(d.isoformat() for d in days)) for t, days in self.missing.items()}
        if len(set(spans.values())) == 1:  # the same days of each: name them once
            named = f"{', '.join(spans)} {next(iter(spans.values()))}"
        else:
            named = "; ".join(f"{t} {s}" for t, s in spans.items())
        select = ",".join(f"lake/{t}" for t in self.missing)
        super().__init__(
            f"{what} read {named}, not yet {'built' if built else 'ingested'}: materialize "
            f"{select} for {first if first == last else f'{first}..{last}'} first "
            f"(recassets materialize --select {select} --first {first} --last {last})"
        )


def _few(runs: str, shown: int = 3) -> str:
    """The first ``shown`` runs of days (``day_runs``'s "a..b, c"), and how many more: a real
    history's users land on hundreds of days, and the command after them must stay in the
    one line the CLI shows (``assets.launch.failures`` keeps 500 characters)."""
    parts = runs.split(", ")
    return (
        runs
        if len(parts) <= shown
        else f"{', '.join(parts[:shown])} and {len(parts) - shown} more runs of days"
    )


def _as_date(day: str | dt.date) -> dt.date:
    return day if isinstance(day, dt.date) else dt.date.fromisoformat(day)


def _has_manifest(paths: Paths, table: str, day: dt.date) -> bool:
    return Path(lineage_path(paths, table, day.isoformat())).is_file()


def landed(paths: Paths, dataset: str, day: dt.date) -> bool:
    """Whether the day's landing folder holds an entry ingestion would read (not hidden,
    not ``_``-named: the names ``recassets.ingest`` passes over)."""
    try:
        with os.scandir(paths.landing_dir(dataset, day)) as entries:
            return any(not e.name.startswith((".", "_")) for e in entries)
    except OSError:  # no folder: nothing landed
        return False


def _committed_days(spark: SparkSession, path: str) -> set[dt.date]:
    """The days the ingestion commits still in the table's Delta log name (``userMetadata``
    ``days``, with its ``dataset``: what ``recassets.ingest`` records)."""
    days: set[dt.date] = set()
    for row in delta_history(spark, path, HISTORY_ROWS).select("userMetadata").collect():
        try:
            meta = json.loads(row[0] or "")
        except ValueError:
            continue
        if isinstance(meta, dict) and "dataset" in meta and isinstance(meta.get("days"), list):
            for day in meta["days"]:
                try:
                    days.add(dt.date.fromisoformat(str(day)))
                except ValueError:
                    continue
    return days


def ingested_days(
    spark: SparkSession, paths: Paths, table: str, days: Iterable[dt.date]
) -> set[dt.date]:
    """The ``days`` that ``table`` (``raw_events``, ``users`` or ``items``) holds as ingested:
    a lineage manifest, else rows, else an ingestion commit naming it (the module's 1 to 3)."""
    wanted = set(days)
    if not wanted or not is_delta_table(spark, paths.table(table)):
        return set()  # no table: a manifest left by another lake vouches for nothing here
    found = {d for d in wanted if _has_manifest(paths, table, d)}
    rest = sorted(wanted - found)
    if not rest:
        return found
    found |= days_with_rows(spark, paths.table(table), rest)
    rest = [d for d in rest if d not in found]
    if rest:
        found |= _committed_days(spark, paths.table(table)) & set(rest)
    return found


def _needed(paths: Paths, days: Sequence[dt.date], window: int) -> dict[str, set[dt.date]]:
    """Per ingested table, the days that building ``days`` requires (see the module): the
    landed days of raw_events among the ``window`` days up to each of them, and of users and
    items every landed day up to the last of them."""
    earlier = {d - dt.timedelta(days=back) for d in days for back in range(1, window)}
    needed = {"raw_events": {d for d in {*days, *earlier} if landed(paths, "events", d)}}
    for dataset in ("users", "items"):
        skipped: dict[str, str] = {}  # a folder that cannot be stat'ed: ingestion names it
        needed[TABLE_NAMES[dataset]] = {
            d for d in paths.landed_days(dataset, skipped)
            if d <= max(days) and landed(paths, dataset, d)
        }  # fmt: skip
    return needed


def _missing_ingested(
    spark: SparkSession, paths: Paths, days: Sequence[dt.date], window: int
) -> dict[str, list[dt.date]]:
    needed = _needed(paths, days, window)
    if not is_delta_table(spark, paths.table("raw_events")):  # nothing ingested yet
        needed["raw_events"] |= set(days)
    missing = {}
    for table, wanted in needed.items():
        missing[table] = sorted(wanted - ingested_days(spark, paths, table, wanted))
    return missing


def require_feature_inputs(
    spark: SparkSession, paths: Paths, days: Sequence[str | dt.date]
) -> None:
    """``NotIngestedError`` unless every day the feature partitions of ``days`` read is
    ingested (see the module)."""
    ds = sorted({_as_date(d) for d in days})
    if not ds:
        return
    missing = _missing_ingested(spark, paths, ds, max(WINDOWS))
    if any(missing.values()):
        raise NotIngestedError(_describe(", ".join(FEATURE_TABLES), ds), missing)


def require_example_inputs(
    spark: SparkSession, paths: Paths, days: Sequence[str | dt.date], first_day: dt.date | None
) -> None:
    """``NotIngestedError`` unless every day the training examples of ``days`` read is
    ingested, and the features of each d-1 on or after ``first_day`` (the first partition day;
    None: no features required) are built (see the module). Days not ingested are named
    first: their features can only be built after them."""
    ds = sorted({_as_date(d) for d in days})
    if not ds:
        return
    what = _describe("training_examples", ds)
    missing = _missing_ingested(spark, paths, ds, 1)
    if any(missing.values()):
        raise NotIngestedError(what, missing)
    one = dt.timedelta(days=1)
    prevs = [d - one for d in ds if first_day is not None and d - one >= first_day]
    built = days_with_rows(spark, paths.table("item_features"), prevs)
    unbuilt = sorted(set(prevs) - built)
    if unbuilt:
        raise NotIngestedError(what, {t: unbuilt for t in FEATURE_TABLES})


def _describe(what: str, days: Sequence[dt.date]) -> str:
    span = days[0].isoformat() if len(days) == 1 else f"{days[0]}..{days[-1]}"
    return f"{what} of {span}"
