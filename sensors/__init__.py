"""Sensors, schedules and the jobs they launch: the freshness loop.

landing files --landing_sensor--> ingest_job (raw_events, users, items of those days)
  --automation_condition_sensor (eager per day)--> features + checks, training_examples,
  feature_store (Feast online) --retrain_sensor / retrain_schedule--> retrain_job (models,
  evaluation + gate, retrieval and serving groups but the decision log).

Automation conditions and freshness policies live in ``sensors.conditions``, which says which
asset carries which; ``definitions.py`` attaches them (``with_automation``).
"""

from sensors.automation import automation_condition_sensor
from sensors.landing import ingest_job, landing_sensor
from sensors.retrain import retrain_job, retrain_schedule, retrain_sensor

SENSORS = [landing_sensor, retrain_sensor, automation_condition_sensor]
SCHEDULES = [retrain_schedule]
JOBS = [ingest_job, retrain_job]

__all__ = ["JOBS", "SCHEDULES", "SENSORS"]
