"""retrain_sensor and retrain_schedule on a temporary home: a real training_examples Delta
table (delta-rs) and real checkpoint files (Checkpoint.save), driven with build_*_context."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from dagster import (
    AssetKey,
    DagsterInstance,
    DagsterRunStatus,
    RunRequest,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
)
from dagster._core.test_utils import create_run_for_test

from recassets.freshness import retrain_run_key
from recassets.training.checkpoint import Checkpoint
from recassets.training.policy import next_checkpoint_path
from resources import LakeResource
from sensors import retrain as R
from tests.conftest import home_at

DAYS = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]


def write_examples(root: Path, days: list[str]) -> None:
    from deltalake import write_deltalake

    table = pa.table({"example_id": [f"e{i}" for i in range(len(days))], "dt": days})
    write_deltalake(
        str(root / "lake" / "training_examples"), table, partition_by=["dt"], mode="overwrite"
    )


def write_checkpoint(root: Path, kind: str, consumed: list[str]) -> None:
    paths = home_at(root)
    Checkpoint(
        kind=kind, config={}, state_dict={}, optimizer={}, vocab={},
        source={"partitions": {d: {"version": 0, "rows": 1} for d in consumed}},
    ).save(next_checkpoint_path(paths, kind))  # fmt: skip


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def sensor_tick(root: Path, instance):
    context = build_sensor_context(
        instance=instance, resources={"lake": LakeResource(home=str(root))}
    )
    return R.retrain_sensor(context)


def test_skips_when_the_models_consumed_every_trainable_day(tmp_path, instance):
    write_examples(tmp_path, DAYS)
    for kind in ("two_tower", "ranking"):
        write_checkpoint(tmp_path, kind, DAYS[:3])  # day 4 is the held-out day
    result = sensor_tick(tmp_path, instance)
    assert isinstance(result, SkipReason)
    assert "0 new training partition(s) []" in result.skip_message


def test_fires_for_the_day_a_new_landing_made_trainable(tmp_path, instance):
    write_examples(tmp_path, [*DAYS, "2026-01-05"])  # day 5 arrived: day 4 is trainable now
    for kind in ("two_tower", "ranking"):
        write_checkpoint(tmp_path, kind, DAYS[:3])
    result = sensor_tick(tmp_path, instance)
    assert isinstance(result, RunRequest)
    assert result.run_key == retrain_run_key(["2026-01-04"])
    assert result.tags["recassets/new_partitions"] == "2026-01-04..2026-01-04 (1)"
    assert result.tags["recassets/trigger"] == "retrain_sensor"


def test_a_model_kind_behind_the_other_counts(tmp_path, instance):
    write_examples(tmp_path, DAYS)
    write_checkpoint(tmp_path, "two_tower", DAYS[:3])
    write_checkpoint(tmp_path, "ranking", DAYS[:2])  # the ranker missed day 3
    result = sensor_tick(tmp_path, instance)
    assert isinstance(result, RunRequest)
    assert result.run_key == retrain_run_key(["2026-01-03"])


def test_no_checkpoint_yet_trains_every_trainable_day(tmp_path, instance):
    write_examples(tmp_path, DAYS)
    result = sensor_tick(tmp_path, instance)
    assert isinstance(result, RunRequest)
    assert result.run_key == retrain_run_key(DAYS[:3])


def test_no_training_table_skips(tmp_path, instance):
    result = sensor_tick(tmp_path, instance)
    assert isinstance(result, SkipReason)
    assert "0 available" in result.skip_message


def test_waits_for_n_new_partitions(tmp_path, instance, monkeypatch):
    monkeypatch.setattr(R, "MIN_NEW_PARTITIONS", 2)
    write_examples(tmp_path, [*DAYS, "2026-01-05"])
    for kind in ("two_tower", "ranking"):
        write_checkpoint(tmp_path, kind, DAYS[:3])
    one = sensor_tick(tmp_path, instance)
    assert isinstance(one, SkipReason)
    assert "1 new training partition(s) ['2026-01-04'], fewer than 2" in one.skip_message
    write_examples(tmp_path, [*DAYS, "2026-01-05", "2026-01-06"])
    two = sensor_tick(tmp_path, instance)
    assert isinstance(two, RunRequest)
    assert two.run_key == retrain_run_key(["2026-01-04", "2026-01-05"])


def test_run_key_is_the_set_of_days_so_ticks_are_idempotent(tmp_path, instance):
    write_examples(tmp_path, DAYS)
    first, second = sensor_tick(tmp_path, instance), sensor_tick(tmp_path, instance)
    assert first.run_key == second.run_key
    write_checkpoint(tmp_path, "two_tower", DAYS[:1])  # the set changes, so does the key
    write_checkpoint(tmp_path, "ranking", DAYS[:1])
    third = sensor_tick(tmp_path, instance)
    assert third.run_key == retrain_run_key(DAYS[1:3]) != first.run_key


def test_never_two_trainings_at_once(tmp_path, instance):
    write_examples(tmp_path, DAYS)
    create_run_for_test(instance, job_name="retrain_job", status=DagsterRunStatus.STARTED)
    result = sensor_tick(tmp_path, instance)
    assert isinstance(result, SkipReason)
    assert "in flight" in result.skip_message


def test_schedule_offers_the_same_job_when_anything_is_pending(tmp_path, monkeypatch):
    monkeypatch.setattr(R, "MIN_NEW_PARTITIONS", 5)  # the schedule ignores the sensor's N
    write_examples(tmp_path, [*DAYS, "2026-01-05"])
    for kind in ("two_tower", "ranking"):
        write_checkpoint(tmp_path, kind, DAYS[:3])
    # a schedule context reaches the instance through a reference: a real on-disk test instance
    # (closing the context disposes the instance it opens from the reference: left open, it
    # stays registered as Dagster's current defs-state storage and breaks later definition loads)
    with (
        instance_for_test() as instance,
        build_schedule_context(
            instance=instance, resources={"lake": LakeResource(home=str(tmp_path))}
        ) as context,
    ):
        result = R.retrain_schedule(context)
        assert isinstance(result, RunRequest)
        assert result.run_key == retrain_run_key(["2026-01-04"])
        assert result.tags["recassets/trigger"] == "retrain_schedule"
        for kind in ("two_tower", "ranking"):
            write_checkpoint(tmp_path, kind, DAYS)
        assert isinstance(R.retrain_schedule(context), SkipReason)


def test_waits_while_training_examples_are_being_written(tmp_path, instance):
    # A range run commits its days one by one: retraining mid-run would train twice.
    write_examples(tmp_path, DAYS)
    run = create_run_for_test(
        instance,
        job_name="__ASSET_JOB",
        status=DagsterRunStatus.STARTED,
        asset_selection={AssetKey(["lake", "training_examples"])},
    )
    waiting = sensor_tick(tmp_path, instance)
    assert isinstance(waiting, SkipReason)
    assert f"being written by run {run.run_id}" in waiting.skip_message
    instance.report_run_canceled(run)
    assert isinstance(sensor_tick(tmp_path, instance), RunRequest)


def schedule_tick(root: Path, instance):
    with build_schedule_context(
        instance=instance, resources={"lake": LakeResource(home=str(root))}
    ) as context:
        return R.retrain_schedule(context)


def test_the_schedule_has_the_sensors_guards(tmp_path):
    """The schedule checked only for a retraining in flight: it launched one while a range run
    was still writing training_examples, which the sensor waits for (one guard function now)."""
    write_examples(tmp_path, DAYS)
    with instance_for_test() as instance:
        writer = create_run_for_test(
            instance,
            job_name="__ASSET_JOB",
            status=DagsterRunStatus.STARTED,
            asset_selection={AssetKey(["lake", "training_examples"])},
        )
        for result in (schedule_tick(tmp_path, instance), sensor_tick(tmp_path, instance)):
            assert isinstance(result, SkipReason)
            assert f"being written by run {writer.run_id}" in result.skip_message
        instance.report_run_canceled(writer)
        training = create_run_for_test(instance, job_name="retrain_job", status=DagsterRunStatus.STARTED)  # fmt: skip
        for result in (schedule_tick(tmp_path, instance), sensor_tick(tmp_path, instance)):
            assert isinstance(result, SkipReason) and "in flight" in result.skip_message
        instance.report_run_canceled(training)
        assert isinstance(schedule_tick(tmp_path, instance), RunRequest)


def test_a_run_in_flight_retraining_the_same_days_is_waited_for(tmp_path):
    """The sensor's and the schedule's run keys are told apart by Dagster, and a run
    re-executed from the UI is no retrain_job run: the same new partitions, in flight, wait."""
    write_examples(tmp_path, DAYS)  # pending: days 1..3
    with instance_for_test() as instance:
        other = create_run_for_test(instance, job_name="__ASSET_JOB", status=DagsterRunStatus.STARTED,
                                    tags={"recassets/new_partitions": "2026-01-01..2026-01-02 (2)"})  # fmt: skip
        assert isinstance(sensor_tick(tmp_path, instance), RunRequest)  # another set: no matter
        instance.report_run_canceled(other)
        same = create_run_for_test(instance, job_name="__ASSET_JOB", status=DagsterRunStatus.STARTED,
                                   tags={"recassets/new_partitions": "2026-01-01..2026-01-03 (3)"})  # fmt: skip
        for result in (sensor_tick(tmp_path, instance), schedule_tick(tmp_path, instance)):
            assert isinstance(result, SkipReason)
            assert (
                f"run {same.run_id} already retrains 2026-01-01..2026-01-03 (3)"
                in result.skip_message
            )
        instance.report_run_canceled(same)
        assert isinstance(sensor_tick(tmp_path, instance), RunRequest)
