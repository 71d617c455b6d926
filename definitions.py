"""The code location: the only place a ``Definitions`` object is built (workspace.yaml)."""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from assets import features, featurestore, ingest, models, quality, retrieval, serving, training
from resources import build_resources
from sensors import JOBS, SCHEDULES, SENSORS
from sensors.conditions import with_automation

defs = Definitions(
    # The asset modules declare the assets; sensors.conditions says when Dagster builds them.
    assets=with_automation(
        [
            *ingest.ASSETS,
            *features.ASSETS,
            *featurestore.ASSETS,
            *training.ASSETS,
            *models.ASSETS,
            *retrieval.ASSETS,
            *serving.ASSETS,
        ]
    ),
    asset_checks=[
        *quality.CHECKS,
        *featurestore.CHECKS,
        *models.CHECKS,
        *retrieval.CHECKS,
    ],
    resources=build_resources(),
    jobs=JOBS,
    sensors=SENSORS,
    schedules=SCHEDULES,
    # One Spark session per process: steps share the run's JVM instead of starting one each
    # (and racing on the quarantine table). Spark parallelizes inside the step.
    executor=in_process_executor,
)
