"""The code location: the only place a ``Definitions`` object is built (workspace.yaml)."""

from __future__ import annotations

import os

from dagster import Definitions, ExecutorDefinition, in_process_executor

from assets import (
    features,
    featurestore,
    ingest,
    models,
    quality,
    retrieval,
    serving,
    serving_log,
    training,
)
from assets.failures import with_final_failures
from assets.references import with_code_references
from resources import build_resources
from sensors import JOBS, SCHEDULES, SENSORS
from sensors.conditions import with_automation

EXECUTOR_ENV = "RECASSETS_EXECUTOR"


def executor_from_env() -> ExecutorDefinition:
    """``in_process`` (default): one process and one Spark session per run: steps share the
    run's JVM instead of starting one each (and racing on the quarantine table); Spark
    parallelizes inside the step. ``k8s`` (deploy/helm/values.yaml sets it): dagster-k8s's
    ``k8s_job_executor``, a pod per step, so the assets' ``dagster-k8s/config`` tags (GPU for
    training, memory for the Spark driver) take effect; the pools keep one writer per table."""
    kind = os.environ.get(EXECUTOR_ENV, "in_process")
    if kind == "in_process":
        return in_process_executor
    if kind == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    raise ValueError(f"{EXECUTOR_ENV}={kind!r}: expected 'in_process' or 'k8s'")


defs = Definitions(
    # The asset modules declare the assets; sensors.conditions says when Dagster builds them;
    # assets.references links each to its code (the body and the library function it calls);
    # assets.failures keeps the instance from retrying a run whose error a retry cannot mend.
    assets=with_code_references(
        with_final_failures(
            with_automation(
                [
                    *ingest.ASSETS,
                    *features.ASSETS,
                    *featurestore.ASSETS,
                    *training.ASSETS,
                    *models.ASSETS,
                    *retrieval.ASSETS,
                    *serving.ASSETS,
                    *serving_log.ASSETS,
                ]
            )
        )
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
    executor=executor_from_env(),
)
