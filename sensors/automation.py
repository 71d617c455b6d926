"""The declarative-automation sensor: evaluates the assets' ``AutomationCondition``s.

Dagster 1.13 adds a ``default_automation_condition_sensor`` when assets carry conditions, but
creates it STOPPED (``AutomationConditionSensorDefinition``'s default status): the loop would
silently not run under ``make dev``. This one targets every asset and is RUNNING by default,
so no default sensor is created and fresh partitions flow as soon as the daemon runs.

It is evaluated by the daemon (``use_user_code_server`` off: our conditions are built-in
ones). A tick requesting several partitions of one asset emits a backfill, which our
single-run backfill policy executes as one run.
"""

from dagster import AssetSelection, AutomationConditionSensorDefinition, DefaultSensorStatus

from sensors.landing import SENSOR_INTERVAL_S

automation_condition_sensor = AutomationConditionSensorDefinition(
    "automation_condition_sensor",
    target=AssetSelection.all(),
    default_status=DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    description="Evaluates every asset's automation condition (features, training examples "
    "and the feature store: eager per day) and launches the partitions that are due.",
)
