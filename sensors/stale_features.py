"""``stale_features_sensor``: the feature days that read what changed after they were built.

The feature tables of day d read more than their graph dependency (``raw_events`` d-27..d)
says, and declarative automation only follows the graph:

- ``last_engagements`` and ``seen_item_ids`` roll forward from ``user_features`` of d-1, so a
  rebuilt day changes every later day's lists (the automation rebuilds the 28 days whose window
  holds a re-ingested day; day 29 on kept the lists rolled from the old day 28);
- the users' and items' attributes are the dimension rows with ``dt <= d``, so a row that lands
  late in day x changes every later day's attributes (the automation rebuilt day x only: the
  later days kept nulls for the late user or item).

Declaring those dependencies in the graph was tried (2026-12-07) and left out: with the
self-dependency, Dagster 1.13's automation also requested the day *before* a re-ingested one.
This sensor instead compares materializations, in the instance's own order (storage ids, never
clocks): day d is stale when ``user_features`` of d-1, or ``users``/``items`` of a day before
d, was materialized after d by another run. It launches ``stale_features_job`` over the first
stale day to the last built one, one range run (the feature tables' single-run backfill), and
the automation then carries those days to the training examples and the online store as for
any new feature day. The days a run built together are never stale against each other, and a
day rebuilt by the automation meanwhile is judged again on the next tick.

Guards:

- nothing is launched while a run that writes the feature tables or ingests is queued or
  running, or a backfill is in progress (the automation's requests of several days are one):
  the lists of a range being rebuilt are judged once it is done. A run is known by the assets
  it selected, or, having selected none of its own (a job launched whole from the UI's
  Launchpad or ``dagster job launch``), by its job (``WRITER_JOBS``);
- a change younger than ``SETTLE_S`` (two sensor intervals, by the instance's clock: both
  times are its own) waits, so that the automation, whose sensor ticks as often, claims the 28
  days it rebuilds first, and this sensor rebuilds only what is left (a re-ingested day 3:
  the automation takes days 3..30, then this sensor 31 on);
- the run key names the first stale day and the newest input it read, so the same staleness
  launches once, and a failed run is retried from the UI or by the next change (as the landing
  sensor's).
"""

from __future__ import annotations

import time

from dagster import (
    AssetSelection,
    DagsterInstance,
    DagsterRun,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SkipReason,
    define_asset_job,
    sensor,
)

from assets import keys
from assets.partitions import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from assets.staleness import stale_features
from sensors.landing import IN_FLIGHT, SENSOR_INTERVAL_S, TRIGGER_TAG, ingest_job

# The judgement itself (``stale_features``) is in ``assets.staleness``, which the CLI's plan
# reads too.
WRITERS = {*keys.FEATURE_TABLES, *keys.INGESTED.values()}
SETTLE_S = 2 * SENSOR_INTERVAL_S

stale_features_job = define_asset_job(
    "stale_features_job",
    selection=AssetSelection.assets(*keys.FEATURE_TABLES),
    description="Rebuild the feature tables of the days that read a day or a dimension row "
    "changed after them (the rolled engagement lists, late users and items). Launched by "
    "stale_features_sensor.",
)


# The jobs whose own selection writes the feature tables or ingests: a run of one launched
# whole (the UI's Launchpad, ``dagster job launch``) carries no asset selection of its own
# (its ``asset_selection`` is None) and is known by its job name alone. Before 2026-12-07
# only stale_features_job was named, so a Launchpad ingest_job run was invisible and a
# retraining or a rebuild started mid-ingest. Not the implicit ``__ASSET_JOB``: the UI's asset
# graph and the CLI always launch it with a selection, which says what its run writes.
# tests/dagster/test_writer_jobs.py keeps every other job of the definitions that selects one
# of ``WRITERS`` named here.
WRITER_JOBS = frozenset({ingest_job.name, stale_features_job.name})


def writes_tables(run: DagsterRun) -> bool:
    """Whether ``run`` writes the feature tables or ingests: by the assets it selected, or,
    with none selected, by its job (``WRITER_JOBS``)."""
    if run.asset_selection:
        return bool(run.asset_selection & WRITERS)
    return run.job_name in WRITER_JOBS


def writing(instance: DagsterInstance) -> str | None:
    """A queued or running run that writes the feature tables or ingests, or a backfill in
    progress, named; None when there is none."""
    for run in instance.get_runs(filters=RunsFilter(statuses=IN_FLIGHT), limit=50):
        if writes_tables(run):
            return f"run {run.run_id} ({run.job_name})"
    # by the status's value: its enum is not exported (tests/dagster/test_dagster_private.py)
    for backfill in instance.get_backfills(limit=20):
        if backfill.status.value == "REQUESTED":  # in progress
            return f"backfill {backfill.backfill_id}"
    return None


def stale_request(instance: DagsterInstance, now: float | None = None) -> RunRequest | SkipReason:
    if busy := writing(instance):
        return SkipReason(f"{busy} writes the feature tables or ingests: waiting for it")
    stale = stale_features(instance)
    if stale is None:
        return SkipReason("every feature day is as new as the days and rows it read")
    age = (time.time() if now is None else now) - stale.at
    if age < SETTLE_S:
        return SkipReason(f"{stale.why}; {age:.0f} s ago: waiting {SETTLE_S} s for the automation")
    tags = {TRIGGER_TAG: "stale_features_sensor", "recassets/stale": stale.why[:200]}
    # the selection named, so that the run's own asset_selection shows what it writes (the
    # guard above reads it; a job's selection alone leaves the run's None)
    selection, key = list(keys.FEATURE_TABLES), f"stale:{stale.first}:{stale.newest}"
    if stale.first == stale.last:
        return RunRequest(
            run_key=key, asset_selection=selection, partition_key=stale.first, tags=tags
        )
    tags[PARTITION_RANGE_START_TAG], tags[PARTITION_RANGE_END_TAG] = stale.first, stale.last
    return RunRequest(run_key=key, asset_selection=selection, tags=tags)


@sensor(
    name="stale_features_sensor",
    job=stale_features_job,
    minimum_interval_seconds=SENSOR_INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING,
    description="Rebuilds the feature days whose rolled engagement lists or dimension rows "
    "read a day materialized after them (what the graph's 28-day window does not say).",
)
def stale_features_sensor(context: SensorEvaluationContext):
    result = stale_request(context.instance)
    if isinstance(result, RunRequest):
        context.log.info(result.tags["recassets/stale"])
    return result
