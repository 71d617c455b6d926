"""The partitioning every daily asset shares."""

from dagster import AssetExecutionContext, DailyPartitionsDefinition

from recassets.paths import partition_start_date

# UTC days from the first landed day (or 2026-01-01). end_offset=1 exposes today's partition,
# so a day that is still landing can be ingested and re-ingested as late files arrive.
DAILY = DailyPartitionsDefinition(
    start_date=partition_start_date().isoformat(), timezone="UTC", end_offset=1
)


def partition_days(context: AssetExecutionContext) -> list[str]:
    """The days of this run: one partition, or a whole range in a single-run backfill."""
    return list(context.partition_keys)
