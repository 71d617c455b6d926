"""A code location small enough for the production-instance test: one daily asset and one
sensor that asks for one of its partitions (the platform's own assets need Spark and data)."""

from dagster import (
    AssetExecutionContext,
    DailyPartitionsDefinition,
    DefaultSensorStatus,
    Definitions,
    MaterializeResult,
    RunRequest,
    SensorEvaluationContext,
    asset,
    sensor,
)

SENSOR_DAY = "2026-01-03"


@asset(partitions_def=DailyPartitionsDefinition(start_date="2026-01-01"))
def tiny_counts(context: AssetExecutionContext) -> MaterializeResult:
    """A stand-in for the platform's daily assets: one partition, no data written."""
    return MaterializeResult(metadata={"day": context.partition_key, "rows": 3})


@sensor(asset_selection=[tiny_counts], default_status=DefaultSensorStatus.RUNNING)
def tiny_landing_sensor(context: SensorEvaluationContext) -> RunRequest:
    return RunRequest(run_key=SENSOR_DAY, partition_key=SENSOR_DAY)


defs = Definitions(assets=[tiny_counts], sensors=[tiny_landing_sensor])
