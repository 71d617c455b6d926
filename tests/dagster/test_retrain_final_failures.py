"""A retraining that failed with an error a retry cannot mend (``assets.failures.FINAL``) is
final for ``retrain_sensor``, as a refusal is: before 2026-12-07 it was tried twice more (10
min, then 1 h later), each attempt failing the same way after a full start. Any other failed
retraining is still tried again, although every retrain_job run carries the failure hook's
``dagster/retry_on_asset_or_op_failure: false`` tag from its job.

The failed runs are real: an asset with the failure hook, executed in this process on the
instance ``recassets init`` writes, tagged as the sensor's first attempt and as retrain_job's
runs are, so the step failures stored are the ones Dagster records."""

# no `from __future__ import annotations`: Dagster resolves the asset's Config annotation
import datetime as dt
import time
from pathlib import Path

import pytest
from dagster import Config, DagsterInstance, RunRequest, SkipReason, asset, materialize
from pydantic import Field

from assets.failures import RETRY_TAG, with_final_failures
from recassets.freshness import retrain_run_key
from recassets.ingested import NotIngestedError
from sensors import retrain as R
from sensors import retrain_attempts as A
from tests.dagster.test_retrain_recovery import instance, tick  # noqa: F401 - a fixture
from tests.dagster.test_sensors_retrain import DAYS

SET = retrain_run_key(DAYS[:3])  # no checkpoint: days 1..3 are pending, day 4 held out
HOUR = 3600.0


class TrainConfig(Config):
    target_recall: float = Field(0.95, gt=0.0, le=1.0)
    raise_: str = "none"


@asset
def two_tower_model(config: TrainConfig) -> int:
    if config.raise_ == "not_ingested":
        raise NotIngestedError("the examples of 2026-01-03", {"raw_events": [dt.date(2026, 1, 3)]})
    if config.raise_ == "blip":
        raise ConnectionResetError("the object store reset the connection")
    return 1


def failed_attempt(instance: DagsterInstance, request: RunRequest, **config: object) -> str:  # noqa: F811
    """The run the daemon would have launched for ``request`` (its tags, retrain_job's, the
    run key), failed in its training step configured with ``config``."""
    tags = {**(request.tags or {}), **R.RETRAIN_RUN_TAGS, "dagster/run_key": str(request.run_key)}
    result = materialize(
        with_final_failures([two_tower_model]),
        instance=instance,
        tags=tags,
        run_config={"ops": {"two_tower_model": {"config": config}}},
        raise_on_error=False,
    )
    assert not result.success
    return result.run_id


@pytest.mark.parametrize(
    ("config", "error"),
    [
        ({"target_recall": 1.5}, "ValidationError: 1 validation error for TrainConfig"),
        (
            {"raise_": "not_ingested"},
            "NotIngestedError: the examples of 2026-01-03 read raw_events",
        ),
    ],
    ids=["config-out-of-bounds", "input-never-ingested"],
)
def test_a_retraining_failed_for_good_is_final_and_said(
    tmp_path: Path,
    instance: DagsterInstance,  # noqa: F811 - the fixture
    config: dict[str, object],
    error: str,
) -> None:
    first = tick(tmp_path, instance)
    assert isinstance(first, RunRequest) and first.run_key == SET
    run = failed_attempt(instance, first, **config)
    result = tick(tmp_path, instance, now=time.time() + 100 * HOUR)  # before: ...:attempt2
    assert isinstance(result, SkipReason), result
    said = str(result.skip_message)
    assert f"run {run} (attempt 1 at 2026-01-01..2026-01-03 (3)) failed with an error" in said
    assert f"(two_tower_model: {error}" in said and "final, not retried" in said
    assert f"mend what it names, then re-execute run {run} from the Dagster UI" in said


def test_a_retraining_failed_by_a_blip_is_still_tried_again_despite_the_jobs_tag(
    tmp_path: Path,
    instance: DagsterInstance,  # noqa: F811 - the fixture
) -> None:
    first = tick(tmp_path, instance)
    assert isinstance(first, RunRequest)
    run = failed_attempt(instance, first, raise_="blip")
    stored = instance.get_run_by_id(run)
    assert stored is not None and stored.tags[RETRY_TAG] == "false"  # every retrain_job run's
    assert A.final_failure(instance, run) is None
    again = tick(tmp_path, instance, now=time.time() + HOUR)
    assert isinstance(again, RunRequest) and again.run_key == f"{SET}:attempt2"


def test_only_the_final_classes_themselves_are_final_not_their_namesakes():
    """A stored error keeps its class's name only: jsonschema's or marshmallow's
    ``ValidationError`` counted as pydantic's (the failure hook, by ``isinstance``, retried
    them while the sensor called them final). The message's module-qualified name decides."""
    from dagster._utils.error import SerializableErrorInfo

    from sensors.retrain_attempts import final_error

    def info(message: str, cause=None) -> SerializableErrorInfo:
        return SerializableErrorInfo(message, [], "ValidationError", cause)

    ours = "pydantic_core._pydantic_core.ValidationError: 1 validation error for Config\n"
    assert final_error(info(ours)) == "ValidationError: 1 validation error for Config"
    theirs = info("jsonschema.exceptions.ValidationError: 'x' is not of type 'integer'\n")
    assert final_error(theirs) is None
    wrapped = SerializableErrorInfo("dagster...DagsterExecutionStepExecutionError: boom", [],
                                    "DagsterExecutionStepExecutionError", info(ours))  # fmt: skip
    assert final_error(wrapped) is not None  # found among the causes
