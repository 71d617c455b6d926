"""``landing_sensor``: files landing trigger ingestion of exactly the days they belong to.

Every tick scans ``RECASSETS_HOME/landing/<events|users|items>/dt=DAY/`` (names, sizes,
mtimes: no file is read) and compares each day with the cursor, a JSON map of the
fingerprints already launched (``recassets.freshness``). A new day, a late file in an old day
or a rewritten file launches ``ingest_job`` for that day and only the datasets that changed;
consecutive days with the same datasets go as one range (one single-run backfill).

Only settled days (``recassets.freshness.settled``): a day folder with a ``_SUCCESS`` marker
(or any of a dataset whose producer writes markers) when the marker is newer than its files;
otherwise when its files have not changed for ``RECASSETS_LANDING_SETTLE_SECONDS`` (default
5; 0 turns the wait off). A producer writing a file in place therefore gets it ingested once,
whole, not half-written and then again. Days still settling are named in the tick's skip
reason and kept in the cursor's ``pending``.

Guarantees and why:

- Idempotent: the run key is the day(s), datasets and fingerprints, so the same landing never
  runs twice, even with the cursor lost.
- Survives a daemon restart: the cursor is stored by Dagster with the sensor's state; a
  missing, corrupt or older-format cursor is reported in the tick log and rebuilt from the
  lineage manifests (the lake records which files it ingested), so history is not re-ingested.
- One ingest run at a time: runs of the same tables race on the quarantine table and two
  Spark JVMs halve a small machine. While an ``ingest_job`` run is queued or running the
  sensor waits; batches not launched this tick are left out of the cursor and come back on
  the next one, oldest first.

- The day reaches the online store in the same run: the run also materializes those days'
  feature tables (with their Great Expectations checks) and ``feature_store``. Launched apart
  by the automation sensor, they cost a second run: a wait for its tick, a process, a Spark
  JVM started and warmed again, Great Expectations and Feast imported again (about 70 s of
  the 180 s from landing to online measured that way; the target is 120 s). Declarative
  automation still carries every other path: training examples, the later days whose
  trailing windows read the new day, and any partition re-materialized from the UI or a
  backfill. Their conditions see the features as in progress while this run holds them, so
  nothing is computed twice.

What it does not do: a removed day folder is forgotten, not un-ingested; a failed run is not
retried by the sensor (same run key) but from the UI, or by the next change to those files.
"""

# No `from __future__ import annotations`: Dagster reads the context and resource annotations.
from dagster import (
    AssetSelection,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    define_asset_job,
    sensor,
)

from assets import keys
from assets.partitions import DAILY, PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from recassets.freshness import DEFAULT_SETTLE_S, SETTLE_ENV, Batch, env_int, plan_landing
from resources import LakeResource

INGEST_KEYS = keys.INGESTED  # by landing dataset
# The days' way to the online store, run after ingestion in the same run (see above).
ONLINE_PATH_KEYS = [*keys.FEATURE_TABLES, keys.FEATURE_STORE]
# RECASSETS_SENSOR_INTERVAL_S: seconds between ticks of our sensors (Dagster's default, 30).
SENSOR_INTERVAL_S = env_int("RECASSETS_SENSOR_INTERVAL_S", 30, minimum=1)
# RECASSETS_LANDING_INTERVAL_S: the landing sensor's (default 5 s, or the above if shorter).
# Its wait is on the path from landing to online; a tick only lists folders (no file is
# read), so ticking often costs next to nothing. 5 s is also the sensor daemon's own loop
# (dagster._daemon.sensor.MIN_INTERVAL_LOOP_TIME): a shorter interval would not tick faster.
LANDING_INTERVAL_S = env_int("RECASSETS_LANDING_INTERVAL_S", min(5, SENSOR_INTERVAL_S), minimum=1)
# RECASSETS_LANDING_SETTLE_SECONDS (recassets.freshness.SETTLE_ENV): how long a day's files
# must be unchanged before they are ingested, read at each tick.
IN_FLIGHT = [
    DagsterRunStatus.QUEUED,
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
]
TRIGGER_TAG = "recassets/trigger"

ingest_job = define_asset_job(
    "ingest_job",
    selection=AssetSelection.assets(*INGEST_KEYS.values(), *ONLINE_PATH_KEYS),
    partitions_def=DAILY,
    description="Ingest landed days into raw_events, users and items, then carry them through "
    "their feature tables and the Feast online store, checks included, in the same run. "
    "Launched by landing_sensor for exactly the days whose files changed.",
)


def in_flight(instance, job_name: str) -> bool:
    """Whether a run of ``job_name`` is queued or running on this instance."""
    runs = instance.get_runs(filters=RunsFilter(job_name=job_name, statuses=IN_FLIGHT), limit=1)
    return bool(runs)


def run_request(batch: Batch) -> RunRequest:
    tags = {TRIGGER_TAG: "landing_sensor", "recassets/landing": batch.describe()[:200]}
    partition_key = None
    if batch.first == batch.last:
        partition_key = batch.first
    else:  # a range: one run over first..last (the assets' single-run backfill policy)
        tags[PARTITION_RANGE_START_TAG] = batch.first
        tags[PARTITION_RANGE_END_TAG] = batch.last
    return RunRequest(
        run_key=batch.run_key,
        asset_selection=[*(INGEST_KEYS[d] for d in batch.datasets), *ONLINE_PATH_KEYS],
        partition_key=partition_key,
        tags=tags,
    )


@sensor(
    name="landing_sensor",
    job=ingest_job,
    minimum_interval_seconds=LANDING_INTERVAL_S,
    default_status=DefaultSensorStatus.RUNNING,
    description="Launches ingest_job for the days whose landing files appeared or changed "
    "(late data): ingestion, then those days' features and online store in the same run; one "
    "run at a time, oldest first; idempotent run keys; JSON cursor of per-day fingerprints, "
    "rebuilt from the lineage manifests when missing.",
)
def landing_sensor(context: SensorEvaluationContext, lake: LakeResource) -> SensorResult:
    from assets.stale_runs import reap, reap_launched

    # runs whose worker was killed (make dev stopped outright) hold their pools for ever and
    # read as in flight: failed here, their slots freed (run retries re-run them)
    reap_launched(context.instance, context.log.warning)
    reap(context.instance, context.log.warning)
    paths = lake.paths()
    plan = plan_landing(
        paths,
        context.cursor,
        is_partition=DAILY.has_partition_key,
        settle_seconds=env_int(SETTLE_ENV, DEFAULT_SETTLE_S),
    )
    if plan.problem:
        context.log.warning(
            f"landing_sensor: {plan.problem}; ignoring it and comparing the landing folders "
            "with the lineage manifests instead"
        )
    for key, why in plan.skipped.items():
        context.log.warning(f"landing_sensor: {key} skipped: {why}")
    settling = "; ".join(f"{key} {why}" for key, why in plan.waiting.items())
    if settling:
        context.log.info(f"landing_sensor: not settled yet: {settling}")
    if not plan.batches:
        skipped = "; ".join(f"{key}: {why}" for key, why in plan.skipped.items())
        return SensorResult(
            skip_reason=SkipReason(
                f"no new or changed landing files ({len(plan.unchanged)} known)"
                + (f"; not settled yet: {settling}"[:1000] if settling else "")
                + (f"; {len(plan.skipped)} skipped: {skipped}"[:1000] if skipped else "")
            ),
            cursor=plan.cursor_after([]).to_json(),
        )
    if in_flight(context.instance, ingest_job.name):
        return SensorResult(
            skip_reason=SkipReason(
                f"an ingest_job run is in flight; {len(plan.batches)} batch(es) wait: "
                + plan.batches[0].describe()
            ),
            cursor=plan.cursor_after([]).to_json(),
        )
    batch = plan.batches[0]
    context.log.info(f"landing_sensor: ingest {batch.describe()}")
    return SensorResult(
        run_requests=[run_request(batch)], cursor=plan.cursor_after([batch]).to_json()
    )
