"""The partitioning every daily asset shares: one partition per UTC day the data covers."""

import datetime as dt

from dagster import AssetExecutionContext, DailyPartitionsDefinition

from recassets.paths import partition_window


def daily_partitions() -> DailyPartitionsDefinition:
    """Daily partitions over ``recassets.paths.partition_window``: a history's landed days
    (first..last), or, for live data, the first landed day up to today. end_offset=1 exposes
    today's partition, so a day that is still landing can be ingested and re-ingested as late
    files arrive."""
    window = partition_window()
    if window.last is not None:
        end = (window.last + dt.timedelta(days=1)).isoformat()  # end_date is exclusive
        return DailyPartitionsDefinition(
            start_date=window.first.isoformat(), end_date=end, timezone="UTC"
        )
    return DailyPartitionsDefinition(
        start_date=window.first.isoformat(), timezone="UTC", end_offset=1 + window.days_ahead
    )


DAILY = daily_partitions()


def partition_days(context: AssetExecutionContext) -> list[str]:
    """The days of this run: one partition, or a whole range in a single-run backfill."""
    return list(context.partition_keys)
