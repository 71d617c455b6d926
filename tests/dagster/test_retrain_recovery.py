"""retrain_sensor and retrain_schedule after things go wrong: a failed retraining is tried
again (a refused one is not), every skip says why, a backfill in progress is waited for, and a
crashed retrain_job run is freed by the retrain sensor itself. On a real instance, with the
events a run records (step failures, the gate's check evaluation), driven with
build_*_context as the daemon's tick is."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import (
    AssetCheckEvaluation,
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    MetadataValue,
    RunRequest,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
)
from dagster._core.events import DagsterEvent, DagsterEventType, EngineEventData, StepFailureData
from dagster._core.events.log import EventLogEntry
from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
from dagster._core.test_utils import create_run_for_test

from assets import stale_runs as S
from recassets import instance as embedded
from recassets.freshness import retrain_run_key
from resources import LakeResource
from sensors import retrain as R
from sensors import retrain_attempts as A
from tests.dagster.test_sensors_retrain import DAYS, write_examples

SET = retrain_run_key(DAYS[:3])  # no checkpoint: days 1..3 are pending, day 4 held out
HOUR = 3600.0


@pytest.fixture
def instance(tmp_path: Path):
    """The instance ``recassets init`` writes (the default run launcher, as under the
    daemon), with the examples of four days in the home beside it."""
    write_examples(tmp_path, DAYS)
    assert embedded.write_dagster_yaml(tmp_path / "dagster")
    with DagsterInstance.from_config(str(tmp_path / "dagster")) as inst:
        yield inst


def tick(root: Path, instance: DagsterInstance, now: float | None = None):
    """What the sensor returns at ``now`` (the instance's clock; default: now)."""
    paths = LakeResource(home=str(root)).paths()
    return R.guarded_request(instance, paths, 1, "retrain_sensor", lambda _: None, now)


def sensor_tick(root: Path, instance: DagsterInstance):
    context = build_sensor_context(
        instance=instance, resources={"lake": LakeResource(home=str(root))}
    )
    return R.retrain_sensor(context)


def schedule_tick(root: Path, instance: DagsterInstance):
    with build_schedule_context(
        instance=instance, resources={"lake": LakeResource(home=str(root))}
    ) as context:
        return R.retrain_schedule(context)


def _store(instance: DagsterInstance, run_id: str, event: DagsterEvent) -> None:
    instance.store_event(EventLogEntry(error_info=None, level="debug", user_message="",
                                       run_id=run_id, timestamp=time.time(),
                                       dagster_event=event))  # fmt: skip


def launched(instance: DagsterInstance, request: RunRequest, status: DagsterRunStatus,
             failed_step: str | None = None, refused: str | None = None) -> str:  # fmt: skip
    """The run the daemon would have launched for ``request``, ended ``status``: with a failed
    step ``failed_step``, or with the gate's check evaluated and failed saying ``refused``."""
    tags = {**(request.tags or {}), "dagster/run_key": str(request.run_key)}
    run = create_run_for_test(instance, job_name="retrain_job", status=status, tags=tags)
    if failed_step:
        _store(instance, run.run_id, DagsterEvent(
            event_type_value=DagsterEventType.STEP_FAILURE.value, job_name="retrain_job",
            step_key=failed_step, event_specific_data=StepFailureData(error=None,
                                                                      user_failure_data=None),
        ))  # fmt: skip
    if refused:
        evaluation = AssetCheckEvaluation(
            asset_key=AssetKey(["models", "model_evaluation"]), check_name=A.GATE_CHECK,
            passed=False, metadata={"reasons": MetadataValue.md(f"- {refused}\n- and more")},
        )  # fmt: skip
        _store(instance, run.run_id, DagsterEvent(
            event_type_value=DagsterEventType.ASSET_CHECK_EVALUATION.value,
            job_name="retrain_job", event_specific_data=evaluation,
        ))  # fmt: skip
    return run.run_id


def test_a_failed_retraining_is_tried_again_after_a_growing_wait_then_no_more(tmp_path, instance):
    """Before: the run key was only the set of days, so a run that failed in its training steps
    (an examples file moved aside, then restored) was never tried again: every tick offered the
    same key and Dagster skipped it with an empty reason, until the next day landed."""
    first = tick(tmp_path, instance)
    assert isinstance(first, RunRequest) and first.run_key == SET
    assert first.tags[A.ATTEMPT_TAG] == "1" and first.tags[A.RETRAIN_KEY_TAG] == SET
    run1 = launched(instance, first, DagsterRunStatus.FAILURE, "models__two_tower_model")
    ended = time.time()

    waiting = tick(tmp_path, instance, now=ended + 60)
    assert isinstance(waiting, SkipReason)
    said = str(waiting.skip_message)
    assert f"run {run1}, attempt 1 of 3 at 2026-01-01..2026-01-03 (3)" in said
    assert "failed (models__two_tower_model)" in said and "attempt 2 at" in said
    assert f"re-execute run {run1} from the Dagster UI" in said
    assert "dagster job launch -w workspace.yaml -j retrain_job" in said
    assert sensor_tick(tmp_path, instance).skip_message  # the sensor's own tick says it too

    second = tick(tmp_path, instance, now=ended + A.RETRY_WAITS_S[0] + 60)
    assert isinstance(second, RunRequest)
    assert second.run_key == f"{SET}:attempt2" and second.tags[A.ATTEMPT_TAG] == "2"
    run2 = launched(instance, second, DagsterRunStatus.FAILURE, "models__ranking_model")
    ended = time.time()
    # the wait grows: 10 min after the first failure was enough, not after the second
    later = tick(tmp_path, instance, now=ended + A.RETRY_WAITS_S[0] + 60)
    assert isinstance(later, SkipReason) and f"run {run2}, attempt 2 of 3" in str(
        later.skip_message
    )
    third = tick(tmp_path, instance, now=ended + A.RETRY_WAITS_S[1] + 60)
    assert isinstance(third, RunRequest) and third.run_key == f"{SET}:attempt3"
    run3 = launched(instance, third, DagsterRunStatus.FAILURE, "models__ranking_model")

    done = tick(tmp_path, instance, now=time.time() + 100 * HOUR)
    assert isinstance(done, SkipReason)
    said = str(done.skip_message)
    assert f"run {run3}, attempt 3 of 3" in said and "no more automatic attempts" in said
    assert f"re-execute run {run3}" in said


def test_a_refusal_by_the_gate_is_final_and_said(tmp_path, instance):
    request = tick(tmp_path, instance)
    assert isinstance(request, RunRequest)
    run = launched(instance, request, DagsterRunStatus.FAILURE,
                   "models__model_evaluation_promotion_gate",
                   refused="Recall@50 0.0100 < popularity 0.0200")  # fmt: skip
    result = tick(tmp_path, instance, now=time.time() + 100 * HOUR)
    assert isinstance(result, SkipReason)
    said = str(result.skip_message)
    assert f"run {run}: the promotion gate refused the candidate trained on" in said
    assert "(Recall@50 0.0100 < popularity 0.0200): final, not retried" in said


def test_a_run_launched_before_the_attempt_tags_is_the_first_attempt(tmp_path, instance):
    """A failed run of the old key (no attempt tags; Dagster's run key tag only) is found and
    tried again under a new key, not offered again under its own."""
    request = tick(tmp_path, instance)
    assert isinstance(request, RunRequest)
    old = request.with_replaced_attrs(tags={"recassets/new_partitions": "x"})
    launched(instance, old, DagsterRunStatus.FAILURE, "models__two_tower_model")
    again = tick(tmp_path, instance, now=time.time() + HOUR)
    assert isinstance(again, RunRequest) and again.run_key == f"{SET}:attempt2"


def test_a_canceled_retraining_is_not_retried(tmp_path, instance):
    request = tick(tmp_path, instance)
    assert isinstance(request, RunRequest)
    run = launched(instance, request, DagsterRunStatus.CANCELED)
    result = tick(tmp_path, instance, now=time.time() + HOUR)
    assert isinstance(result, SkipReason)
    assert f"run {run} (attempt 1 at 2026-01-01..2026-01-03 (3)) was canceled" in str(
        result.skip_message
    )


def test_a_backfill_in_progress_is_waited_for_by_the_sensor_and_the_schedule(tmp_path, instance):
    """Before: the automation's backfill (features, then training_examples) was REQUESTED with
    none of its runs started, no run wrote training_examples, and a retraining was launched on
    the days before it, then a second one after it: two per burst."""
    backfill = PartitionBackfill(
        backfill_id="burst", status=BulkActionStatus.REQUESTED, from_failure=False, tags={},
        backfill_timestamp=time.time(), asset_selection=[AssetKey(["lake", "training_examples"])],
        partition_names=["2026-01-04"],
    )  # fmt: skip
    instance.add_backfill(backfill)
    for result in (sensor_tick(tmp_path, instance), schedule_tick(tmp_path, instance)):
        assert isinstance(result, SkipReason)
        assert "backfill burst writes the feature tables" in str(result.skip_message)
    instance.update_backfill(backfill.with_status(BulkActionStatus.COMPLETED_SUCCESS))
    assert isinstance(sensor_tick(tmp_path, instance), RunRequest)


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("tick_of", [sensor_tick, schedule_tick])
def test_a_crashed_retraining_is_freed_by_the_retrain_sensor_itself(tmp_path, instance, tick_of):
    """Before: only the landing sensor reaped runs whose worker died; with it stopped, a crashed
    retrain_job stayed STARTED and every tick skipped "a retrain_job run is in flight"."""
    if S.process_started(os.getpid()) is None:
        pytest.skip("no /proc: a live pid is always taken for the worker here")
    crashed = create_run_for_test(instance, job_name="retrain_job", status=DagsterRunStatus.STARTED)
    pid = _dead_pid()
    instance.report_engine_event(f"Started process for run (pid: {pid}).", crashed,
                                 EngineEventData.in_process(pid))  # fmt: skip
    result = tick_of(tmp_path, instance)
    run = instance.get_run_by_id(crashed.run_id)
    assert run is not None and run.status == DagsterRunStatus.FAILURE
    # no longer "in flight" for ever: the days it was training are offered again
    assert isinstance(result, RunRequest) and result.run_key == SET
