"""``landing_sensor``: files landing trigger ingestion of exactly the days they belong to.

Every tick scans ``RECASSETS_HOME/landing/<events|users|items>/dt=DAY/`` (names, sizes,
mtimes: no file is read) and compares each day with the fingerprints already launched
(``recassets.freshness``), kept in a state file the cursor names (``recassets.landing_state``).
A new day, a late file in an old day or a rewritten file launches ``ingest_job`` for that day
and only the datasets that changed; consecutive days with the same datasets go as one range
(one single-run backfill).

Only settled days (``recassets.landing_scan.settled``): a day folder with a ``_SUCCESS``
marker (or any of a dataset whose producer writes markers) when the marker is newer than its
files; otherwise once the sensor has seen its files unchanged for
``RECASSETS_LANDING_SETTLE_SECONDS`` (default 5; 0 turns the wait off) by its own clock, never
by comparing a file's mtime (the landing machine's clock) with it. A producer writing a file in
place therefore gets it ingested once, whole, not half-written and then again, whatever the
clocks. Days still settling are named in the tick's skip reason and kept in the cursor's
``pending``.

Guarantees and why:

- Idempotent: the run key is the day(s), datasets and fingerprints, so the same landing never
  runs twice, even with the cursor lost.
- No change forgotten: a day changed but not launched this tick (settling, another ingest in
  flight, a later batch) keeps its previous fingerprint in the cursor and comes back on the
  next tick; only a day the cursor never knew is judged by its lineage manifest, by content.
- Survives a daemon restart: the cursor (a reference to a state file under the home,
  ``recassets.landing_state``: Dagster stores the cursor with every tick, and the whole map
  cost 126 KB a tick over a 3-year history) is stored by Dagster with the sensor's state; a
  missing, corrupt or foreign cursor or state file is reported in the tick log and rebuilt from
  the lineage manifests (the lake records which files it ingested, with their sha256), so
  history is not re-ingested.
- One unreadable folder (permissions, a stale NFS handle) is skipped, named with its error;
  the other days go on.
- Quiet when nothing changes: a skipped day or folder is warned about once, when it is first
  skipped, not on every tick; the skip reason counts them.
- One ingest run at a time: runs of the same tables race on the quarantine table and two
  Spark JVMs halve a small machine. While an ``ingest_job`` run is queued or running the
  sensor waits; batches not launched this tick come back on the next one, oldest first.
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
    DagsterInstance,
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
from recassets.landing_state import names_state_file, state_dir, store_cursor
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
# A value set is taken as it is, 1 to 86,400 (``run_settings.MAXIMA``: a landing sensor that
# ticks less than daily misses the daily partitions it starts), even above the sensor
# interval: nothing else waits on it. Out of range, the code location refuses to load,
# naming the variable.
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
# Newly skipped days or folders warned about one by one, per tick; past that, one line.
WARN_MAX = 20

ingest_job = define_asset_job(
    "ingest_job",
    # no partitions_def: inferred from the selected assets (all DAILY); passing it is
    # deprecated in Dagster 1.13 and removed in 2.0
    selection=AssetSelection.assets(*INGEST_KEYS.values(), *ONLINE_PATH_KEYS),
    description="Ingest landed days into raw_events, users and items, then carry them through "
    "their feature tables and the Feast online store, checks included, in the same run. "
    "Launched by landing_sensor for exactly the days whose files changed.",
)


def in_flight(instance: DagsterInstance, job_name: str) -> bool:
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
    "run at a time, oldest first; idempotent run keys; per-day fingerprints in a state file "
    "under the home (the cursor names it), rebuilt from the lineage manifests when missing.",
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
    # once per newly skipped day or folder, not on every tick (2,265 warnings a tick, 5 s
    # apart, over a history past its partitions); the skip reason counts them all
    for key in plan.new_skipped[:WARN_MAX]:
        context.log.warning(f"landing_sensor: {key} skipped: {plan.skipped[key]}")
    if len(plan.new_skipped) > WARN_MAX:
        context.log.warning(
            f"landing_sensor: and {len(plan.new_skipped) - WARN_MAX} more newly skipped "
            f"({plan.new_skipped[WARN_MAX]} .. {plan.new_skipped[-1]}); the tick's skip reason "
            f"counts all {len(plan.skipped)} skipped"
        )
    settling = _some(plan.waiting, " ")
    if settling:
        context.log.info(f"landing_sensor: {len(plan.waiting)} not settled yet: {settling}")

    def cursor(launched: list[Batch]) -> str:
        raw, problem = store_cursor(plan.cursor_after(launched), state_dir(paths), context.cursor)
        if problem and (context.cursor is None or names_state_file(context.cursor)):
            context.log.warning(f"landing_sensor: {problem}")  # once: the next one is inline
        return raw

    if not plan.batches:
        skipped = _some(plan.skipped, ": ")
        return SensorResult(
            skip_reason=SkipReason(
                f"no new or changed landing files ({len(plan.unchanged)} known)"
                + (f"; {len(plan.waiting)} not settled yet: {settling}" if settling else "")
                + (f"; {len(plan.skipped)} skipped: {skipped}" if skipped else "")
            ),
            cursor=cursor([]),
        )
    if in_flight(context.instance, ingest_job.name):
        return SensorResult(
            skip_reason=SkipReason(
                f"an ingest_job run is in flight; {len(plan.batches)} batch(es) wait: "
                + plan.batches[0].describe()
            ),
            cursor=cursor([]),
        )
    batch = plan.batches[0]
    context.log.info(f"landing_sensor: ingest {batch.describe()}")
    return SensorResult(run_requests=[run_request(batch)], cursor=cursor([batch]))


def _some(items: dict[str, str], sep: str, shown: int = 3) -> str:
    """The first ``shown`` of ``items`` (key, why), and how many more: a skip reason and a log
    line stay short however many days wait or are skipped (every tick stores its reason)."""
    text = "; ".join(f"{key}{sep}{why}"[:300] for key, why in list(items.items())[:shown])
    return text + (f"; and {len(items) - shown} more" if len(items) > shown else "")
