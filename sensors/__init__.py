"""Sensors, schedules and the jobs they launch: the freshness loop.

landing files --landing_sensor--> ingest_job (raw_events, users, items of those days)
  --automation_condition_sensor (eager per day)--> features + checks, training_examples,
  feature_store (Feast online) --retrain_sensor / retrain_schedule--> retrain_job (models,
  evaluation + gate, retrieval and serving groups but the decision log).
feature days that read a day or dimension row rebuilt after them --stale_features_sensor-->
  stale_features_job (their feature tables; the automation takes them on from there).

Automation conditions and freshness policies live in ``sensors.conditions``, which says which
asset carries which; ``definitions.py`` attaches them (``with_automation``).
"""

from sensors.automation import automation_condition_sensor
from sensors.landing import ingest_job, landing_sensor
from sensors.retrain import retrain_job, retrain_schedule, retrain_sensor
from sensors.stale_features import stale_features_job, stale_features_sensor

SENSORS = [landing_sensor, retrain_sensor, automation_condition_sensor, stale_features_sensor]
SCHEDULES = [retrain_schedule]
JOBS = [ingest_job, retrain_job, stale_features_job]

__all__ = ["JOBS", "SCHEDULES", "SENSORS"]
