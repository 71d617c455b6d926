"""``retrain_sensor`` and ``retrain_schedule``: fresh training partitions retrain the models.

"New" is defined exactly as the incremental trainer does (``recassets.freshness.
pending_training_days``): the ``training_examples`` partitions other than the last
``holdout_days`` (held out for ``model_evaluation``; ``ModelTrainConfig.holdout_days``, unset:
``examples.choose_holdout``, one day on a dense stream) that the checkpoint the next training
continues (``policy.training_base``: the served one while a learned model serves, so a refused
candidate's days stay pending; else the latest) has not consumed. With one held-out day, landing day d makes day d-1 trainable. When at
least ``RECASSETS_RETRAIN_MIN_NEW_PARTITIONS`` (default 1) are pending, the sensor launches
``retrain_job``: warm start and one pass over those days, evaluation and the blocking
promotion gate, then whatever the retrieval and serving groups hold (item embeddings, the
FAISS index, the bento) once they exist, less the day-partitioned decision log.

The run key is the set of pending days, so a set is retrained once; a run that failed for a
reason other than the gate's refusal is tried again, at most 3 attempts, 10 min and then 1 h
after the failure (``sensors.retrain_attempts``: attempt n's key is the set's plus
``:attempt<n>``); a refused one, or one failed with an error a retry cannot mend
(``assets.failures.FINAL``), is final; each skip names the run and what to do. Never two
trainings at once (both would write the same next checkpoint version), and not while a run is
writing training_examples (a range commits day by day: one retraining per burst, not two):
``retrain_guard``, shared by the sensor and the schedule, which also wait while any run in
flight carries the same ``recassets/new_partitions`` tag (``same_set_in_flight``).

``retrain_schedule`` offers the same job at ``RECASSETS_RETRAIN_HOUR`` UTC (default 3) for
deployments that prefer a daily cadence, or set N above 1 and want a daily sweep of what is
pending. It is STOPPED by default: with N=1 the sensor already retrains as soon as a day is
trainable, and the schedule would only ever find nothing to do. When on, it launches only if
at least one day is pending (the same rule with N=1), so it never retrains for nothing, and
under the sensor's guards.
"""

# No `from __future__ import annotations`: Dagster reads the context and resource annotations.
from collections.abc import Callable

from dagster import (
    AssetSelection,
    DagsterInstance,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    schedule,
    sensor,
)

from assets import keys
from assets.models import ModelTrainConfig
from recassets.freshness import (
    consumed_partitions,
    env_int,
    pending_training_days,
    retrain_run_key,
)
from recassets.paths import Paths
from recassets.training.examples import available_days, choose_holdout
from resources import LakeResource
from sensors.landing import IN_FLIGHT, SENSOR_INTERVAL_S, TRIGGER_TAG, in_flight
from sensors.retrain_attempts import next_attempt
from sensors.stale_features import writing

MODEL_KEYS = list(keys.MODELS)
# The models and everything built from them. Groups, not keys, for the downstream stages: the
# retrieval (embeddings, FAISS index) and serving (bento) assets join the job as they land,
# and a group with no asset yet selects nothing. Less the decision log: lake/serving_log sits
# in the serving group but is partitioned by the day served and ingested by its own runs; in
# this unpartitioned job its step could only fail ("Cannot access partition_key for a
# non-partitioned run"), and did, failing every retraining after it joined the group.
# tests/dagster/test_sensors_definitions.py keeps every asset of the job unpartitioned.
RETRAIN_SELECTION = AssetSelection.assets(*MODEL_KEYS) | (
    AssetSelection.groups("retrieval", "serving") - AssetSelection.assets(keys.SERVING_LOG)
)
# A failed step is not retried by the daemon (the instance retries failed runs twice,
# recassets/instance.py): the usual failure of this job is the promotion gate refusing a
# candidate, deliberately, and a retry would ask the same question of the same models and
# data twice more, each time behind a full training. A crashed run (not a step failure) is
# still retried; a failed step is retried by the sensor, which tells a refusal from an error
# (``retrain_attempts.next_attempt``), or superseded when the next day lands.
RETRAIN_RUN_TAGS = {"dagster/retry_on_asset_or_op_failure": "false"}
MIN_NEW_PARTITIONS = env_int("RECASSETS_RETRAIN_MIN_NEW_PARTITIONS", 1, minimum=1)
RETRAIN_HOUR = env_int("RECASSETS_RETRAIN_HOUR", 3, minimum=0)
if RETRAIN_HOUR > 23:
    raise ValueError(f"RECASSETS_RETRAIN_HOUR={RETRAIN_HOUR}: expected an hour 0..23 (UTC)")

retrain_job = define_asset_job(
    "retrain_job",
    selection=RETRAIN_SELECTION,
    tags=RETRAIN_RUN_TAGS,
    description="Incremental retraining: two-tower and ranking models (warm start, one pass "
    "over the new training_examples partitions), evaluation and the promotion gate, then the "
    "retrieval and serving assets. Launched by retrain_sensor or retrain_schedule.",
)


def writing_examples(instance: DagsterInstance) -> str | None:
    """The id of a queued or running run that materializes training_examples, if any.

    A range run (a backfill of several days) commits its days one by one: retraining while it
    runs would train on part of the range and then again on the rest. Waiting for it gives one
    retraining per burst of landings.
    """
    for run in instance.get_runs(filters=RunsFilter(statuses=IN_FLIGHT), limit=50):
        if run.asset_selection and keys.TRAINING_EXAMPLES in run.asset_selection:
            return run.run_id
    return None


def holdout_days(paths: Paths) -> int:
    """The trainer's held-out days: the default of the models' run config, chosen on the
    table as the trainer chooses them (``examples.choose_holdout``) when it is unset."""
    return choose_holdout(paths, ModelTrainConfig().holdout_days).days


NEW_PARTITIONS_TAG = "recassets/new_partitions"


def retrain_guard(instance: DagsterInstance) -> SkipReason | None:
    """Why neither the sensor nor the schedule may launch now, or None. One function for both
    (before 2026-12-07 the schedule checked only the first and launched a retraining while a
    range run was still writing training_examples):

    - a retrain_job run is queued or running: two trainings would write the same next
      checkpoint version;
    - a run is writing training_examples: a range commits day by day, and retraining meanwhile
      trains on part of the burst, then again on the rest;
    - a run writes the feature tables or ingests, or a backfill is in progress
      (``stale_features.writing``): the examples of those days follow it. The automation's
      backfill (features 21-22, then training_examples 22 on) is REQUESTED before any of its
      runs starts: before 2026-12-07 no run wrote training_examples yet, a retraining on
      day 19 was launched, and a second one after the backfill (two per burst)."""
    if in_flight(instance, retrain_job.name):
        return SkipReason("a retrain_job run is in flight")
    if run_id := writing_examples(instance):
        return SkipReason(f"training_examples is being written by run {run_id}: waiting for it")
    if busy := writing(instance):
        return SkipReason(
            f"{busy} writes the feature tables, ingests or backfills: the training examples "
            "follow it, waiting for it"
        )
    return None


def same_set_in_flight(instance: DagsterInstance, request: RunRequest) -> str | None:
    """The id of a queued or running run, of any job, that retrains the same new partitions
    (its ``recassets/new_partitions`` tag), if any: the sensor's and the schedule's run keys are
    told apart by Dagster (one instigator's key does not stop the other's), and a run re-executed
    from the UI under another job name is not a retrain_job run, but both train the same days."""
    value = request.tags.get(NEW_PARTITIONS_TAG) if request.tags else None
    if not value:
        return None
    filters = RunsFilter(statuses=IN_FLIGHT, tags={NEW_PARTITIONS_TAG: value})
    runs = instance.get_runs(filters=filters, limit=1)
    return runs[0].run_id if runs else None


def retrain_request(paths: Paths, min_new: int, trigger: str) -> RunRequest | SkipReason:
    """A run request when at least ``min_new`` trainable days are pending, else why not."""
    available = available_days(paths)
    # against what the next training continues (the served pair): a refused candidate's days
    # stay pending
    kinds = ("two_tower", "ranking")
    consumed = {kind: consumed_partitions(paths, kind, base=True) for kind in kinds}
    pending = pending_training_days(available, consumed, holdout_days(paths))
    if len(pending) < min_new:
        return SkipReason(
            f"{len(pending)} new training partition(s) {pending}, fewer than {min_new}; "
            f"{len(available)} available, consumed up to "
            + ", ".join(f"{k}: {c[-1] if c else None}" for k, c in consumed.items())
        )
    return RunRequest(
        run_key=retrain_run_key(pending),
        tags={
            TRIGGER_TAG: trigger,
            NEW_PARTITIONS_TAG: f"{pending[0]}..{pending[-1]} ({len(pending)})",
        },
    )


def guarded_request(
    instance: DagsterInstance,
    paths: Paths,
    min_new: int,
    trigger: str,
    say: Callable[[str], None] = print,
    now: float | None = None,
) -> RunRequest | SkipReason:
    """What the sensor and the schedule both return: ``retrain_guard``, then the request, unless
    a run in flight already retrains the same set, as the set's next attempt
    (``retrain_attempts.next_attempt``: a failed run is tried again, a refused one is not).

    First, runs whose worker died are failed (``reap_launched``, said through ``say``): with
    only the landing sensor reaping, a crashed retrain_job stayed STARTED while that sensor was
    stopped, and every tick here skipped "a retrain_job run is in flight" for ever. Reaping
    from two sensors is safe: each judges a run by its worker's process, which is gone for
    both, and a run one has failed is no longer in progress for the other. The sensor daemon
    ticks sensors one after the other (unless its threads are turned on); two ticks judging
    the same dead run at the same instant would report its failure twice, and the run retries
    re-execute a run once (the retry is tagged on the failed run)."""
    from assets.stale_runs import reap_launched

    reap_launched(instance, say)
    if (guard := retrain_guard(instance)) is not None:
        return guard
    result = retrain_request(paths, min_new, trigger)
    if isinstance(result, RunRequest) and (run_id := same_set_in_flight(instance, result)):
        return SkipReason(
            f"run {run_id} already retrains {result.tags[NEW_PARTITIONS_TAG]}: waiting for it"
        )
    if isinstance(result, RunRequest):
        return next_attempt(instance, result, result.tags[NEW_PARTITIONS_TAG], now)
    return result


@sensor(
    name="retrain_sensor",
    job=retrain_job,
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING,
    description="Launches retrain_job when at least RECASSETS_RETRAIN_MIN_NEW_PARTITIONS "
    "(default 1) training_examples partitions are trainable and not yet consumed by the "
    "checkpoints the next training continues (the served ones); run key = that set of days; waits while a retraining runs or "
    "training_examples is being written.",
)
def retrain_sensor(context: SensorEvaluationContext, lake: LakeResource):
    result = guarded_request(
        context.instance, lake.paths(), MIN_NEW_PARTITIONS, "retrain_sensor", context.log.warning
    )
    if isinstance(result, RunRequest):
        context.log.info(f"retrain_sensor: {result.tags[NEW_PARTITIONS_TAG]}, {result.run_key}")
    return result


@schedule(
    name="retrain_schedule",
    job=retrain_job,
    cron_schedule=f"0 {RETRAIN_HOUR} * * *",
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.STOPPED,
    description=f"Daily at {RETRAIN_HOUR:02d}:00 UTC (RECASSETS_RETRAIN_HOUR): retrain_job "
    "when at least one trainable partition is pending, with the sensor's guards (no retraining "
    "in flight, training_examples not being written). Stopped by default: retrain_sensor "
    "already retrains as soon as a day is trainable.",
)
def retrain_schedule(context: ScheduleEvaluationContext, lake: LakeResource):
    return guarded_request(
        context.instance, lake.paths(), 1, "retrain_schedule", context.log.warning
    )
