"""The partitioning every daily asset shares: one partition per UTC day the data covers."""

import datetime as dt
from collections.abc import Iterator, Mapping
from typing import Any

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetMaterialization,
    AssetRecordsFilter,
    DailyPartitionsDefinition,
    DataVersion,
    MaterializeResult,
)

from recassets.paths import PartitionWindow, Paths


def daily_partitions(window: PartitionWindow | None = None) -> DailyPartitionsDefinition:
    """Daily partitions over ``recassets.paths.partition_window``: a history's landed days
    (first..last), or, for live data, the first landed day up to today. end_offset=1 exposes
    today's partition, so a day that is still landing can be ingested and re-ingested as late
    files arrive.

    The window is read when the definitions are imported, before any resource exists, so it
    comes from the environment (``PartitionWindow.from_env``: ``RECASSETS_HOME`` or
    ``RECASSETS_LANDING``, ``RECASSETS_START_DATE``, ``RECASSETS_END_DATE``)."""
    window = window or PartitionWindow.from_env()
    if window.last is not None:
        end = (window.last + dt.timedelta(days=1)).isoformat()  # end_date is exclusive
        return DailyPartitionsDefinition(
            start_date=window.first.isoformat(), end_date=end, timezone="UTC"
        )
    return DailyPartitionsDefinition(
        start_date=window.first.isoformat(), timezone="UTC", end_offset=1 + window.days_ahead
    )


DAILY = daily_partitions()


def serving_days(
    paths: Paths | None = None, today: dt.date | None = None
) -> DailyPartitionsDefinition:
    """The decision log's days: from its first landed day (today when none has landed) up to
    today, open. Not ``DAILY``: answers are logged on the day they are served, while the data's
    days may be a history that ended long ago (the synthetic world in 2026-01, MovieLens in
    1998), and starting at the data's first day would show thousands of empty partitions."""
    landed = (paths or Paths.from_env()).landed_days("serving_log")
    today = today or dt.datetime.now(dt.UTC).date()
    first = min(landed[0], today) if landed else today
    return DailyPartitionsDefinition(start_date=first.isoformat(), timezone="UTC", end_offset=1)


SERVING_DAYS = serving_days()

# Run tags that make one run cover a range of partitions (what a single-run backfill launches):
# Dagster reads a run's partition range from these two tags. The values are the strings of
# dagster._core.storage.tags.ASSET_PARTITION_RANGE_START_TAG / _END_TAG (Dagster 1.13.27),
# the route its maintainers give for launching a range run from a sensor or schedule
# (github.com/dagster-io/dagster/discussions/11653); `dagster` does not export the names, so
# they are spelled here. tests/dagster/test_dagster_private.py fails if Dagster renames them.
PARTITION_RANGE_START_TAG = "dagster/asset_partition_range_start"
PARTITION_RANGE_END_TAG = "dagster/asset_partition_range_end"


def partition_days(context: AssetExecutionContext) -> list[str]:
    """The days of this run: one partition, or a whole range in a single-run backfill."""
    return list(context.partition_keys)


def add_day_metadata(
    context: AssetExecutionContext,
    per_day: Mapping[str, Mapping[str, Any]],
    asset_key: AssetKey | None = None,
) -> None:
    """Each day's own figures on its own partition's materialization. A range run records one
    materialization per day; without this, each carries the whole run's metadata (the totals
    of every day), and a day's page in the UI would show a range's row count as its own."""
    for day, metadata in per_day.items():
        context.add_asset_metadata(metadata, asset_key=asset_key, partition_key=day)


# The tags a materialization's data version is read from (dagster._core.definitions
# .data_version.DATA_VERSION_TAG / DATA_VERSION_IS_USER_PROVIDED_TAG, Dagster 1.13.27); not
# exported by `dagster`, spelled here like the range tags above (test_dagster_private.py).
DATA_VERSION_TAG = "dagster/data_version"
DATA_VERSION_IS_USER_PROVIDED_TAG = "dagster/data_version_is_user_provided"


# What describes the table, not a day: the same for every day a run writes, and most of a
# materialization's bytes (about 16 of 20 KB for user_features). In a range run it rides on the
# last day's event only (see ``results_with_data_versions``).
TABLE_WIDE = ("dagster/column_schema", "dagster/column_lineage")
# days per look-up of a range's materializations (one SQL IN list; SQLite's variable limit)
FETCH_BLOCK = 500


def results_with_data_versions(
    context: AssetExecutionContext,
    versions: Mapping[str, str],
    metadata: Mapping[str, Any],
    asset_key: AssetKey | None = None,
) -> Iterator[MaterializeResult | AssetMaterialization]:
    """The asset's result, each partition carrying its own data version (``versions``, by day).

    One day: the ``MaterializeResult``'s ``data_version``. A range (single-run backfill): Dagster
    1.13 gives every partition of one output the same data version
    (``execute_step._get_output_asset_events``: one tag set for all the output's partitions),
    so after the result each day gets a second materialization in the same run, a copy of the
    first (its metadata and provenance tags: code version, input versions and event pointers)
    with the day's version. The copy is the day's latest materialization, which is where
    Dagster reads a partition's data version and staleness from
    (``CachingStaleStatusResolver._is_dep_updated``). The copies go in day order, so the last
    day's is the asset's latest.

    The run's cost grows with its days, not its rows: every materialization is a row written
    to the event log (twice: the run's shard and the index). So in a range the table-wide
    metadata (``TABLE_WIDE``: schema and column lineage, the same for every day) is on the
    last day's copy only, the asset's latest materialization, where the UI's overview and
    column lineage read it; each day's events still name the Delta version written, which
    fixes the schema. And the run's materializations are read back in blocks of days, not one
    query a day. Measured on a 3-year sparse history (1,096 days, 1,000 ratings):
    docs/ingestion-and-lineage.md (data versions)."""
    if len(versions) == 1:
        (version,) = versions.values()
        yield MaterializeResult(
            asset_key=asset_key, metadata=metadata, data_version=DataVersion(version)
        )
        return
    wide = {k: v for k, v in metadata.items() if k in TABLE_WIDE}
    yield MaterializeResult(
        asset_key=asset_key, metadata={k: v for k, v in metadata.items() if k not in TABLE_WIDE}
    )
    key = asset_key or context.asset_key
    days = sorted(versions)
    for first in range(0, len(days), FETCH_BLOCK):
        block = days[first : first + FETCH_BLOCK]
        newest: dict[str, Any] = {}
        # newest first: this run's event of each day, unless another run wrote the day since
        for record in context.instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, asset_partitions=block), limit=len(block)
        ).records:
            newest.setdefault(record.partition_key, record)
        for day in block:
            record = newest.get(day)
            if record is None or record.run_id != context.run.run_id:
                raise RuntimeError(f"{key.to_user_string()} {day}: no materialization of this run")
            event = record.asset_materialization
            assert event is not None
            tags = {
                **{k: v for k, v in (event.tags or {}).items() if k.startswith("dagster/")},
                DATA_VERSION_TAG: versions[day],
                DATA_VERSION_IS_USER_PROVIDED_TAG: "true",
            }
            meta = {**event.metadata, **(wide if day == days[-1] else {})}
            yield AssetMaterialization(asset_key=key, partition=day, metadata=meta, tags=tags)
