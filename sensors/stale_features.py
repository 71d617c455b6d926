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
  the lists of a range being rebuilt are judged once it is done;
- a change younger than ``SETTLE_S`` (two sensor intervals, by the instance's clock: both
  times are its own) waits, so that the automation, whose sensor ticks as often, claims the 28
  days it rebuilds first, and this sensor rebuilds only what is left (a re-ingested day 3:
  the automation takes days 3..30, then this sensor 31 on);
- the run key names the first stale day and the newest input it read, so the same staleness
  launches once, and a failed run is retried from the UI or by the next change (as the landing
  sensor's).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Mapping
from typing import NamedTuple

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    AssetSelection,
    DagsterEventType,
    DagsterInstance,
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
from sensors.landing import IN_FLIGHT, SENSOR_INTERVAL_S, TRIGGER_TAG

# What the feature tables' days read beyond their graph dependency (the module docstring).
DIMENSIONS = (keys.USERS, keys.ITEMS)
WRITERS = {*keys.FEATURE_TABLES, *keys.INGESTED.values()}
SETTLE_S = 2 * SENSOR_INTERVAL_S
# What rebuilds stale days without the daemon: the feature tables and what the automation
# would carry them on to (the examples, the online store), in one range run of the CLI.
REBUILD = (*keys.FEATURE_TABLES, keys.TRAINING_EXAMPLES, keys.FEATURE_STORE)

stale_features_job = define_asset_job(
    "stale_features_job",
    selection=AssetSelection.assets(*keys.FEATURE_TABLES),
    description="Rebuild the feature tables of the days that read a day or a dimension row "
    "changed after them (the rolled engagement lists, late users and items). Launched by "
    "stale_features_sensor.",
)


class Stale(NamedTuple):
    first: str  # the first stale day
    last: str  # the last day built
    why: str  # what changed after it, and in which run
    newest: int  # the storage id of what changed: with ``first``, the run key
    at: float  # when it changed (the instance's clock)


def stale_features(instance: DagsterInstance) -> Stale | None:
    """The first feature day that read something materialized after it by another run, and
    the last day built; None when every day is as new as what it read."""
    rolled = _latest(instance, keys.USER_FEATURES)  # the lists roll from user_features
    if not rolled:
        return None
    # each day judged by the oldest of its three tables (one step writes them, but a step
    # that failed between their materializations leaves the others older), with its key
    built: dict[str, tuple[int, AssetKey]] = {
        d: (sid, keys.USER_FEATURES) for d, sid in rolled.items()
    }
    for key in keys.FEATURE_TABLES[1:]:
        for day, sid in _latest(instance, key).items():
            if day in built and sid < built[day][0]:
                built[day] = (sid, key)
    dims: dict[str, tuple[int, AssetKey]] = {}
    for key in DIMENSIONS:
        for day, sid in _latest(instance, key).items():
            if sid > dims.get(day, (0, key))[0]:
                dims[day] = (sid, key)
    dim_days = sorted(dims)
    days = sorted(built)
    newest: tuple[int, AssetKey, str] | None = None  # over the dimension days before d
    at = 0
    for day in days:
        while at < len(dim_days) and dim_days[at] < day:
            sid, key = dims[dim_days[at]]
            if newest is None or sid > newest[0]:
                newest = (sid, key, dim_days[at])
            at += 1
        before = (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()
        changed = []
        oldest, table = built[day]
        if before in rolled and rolled[before] > oldest:
            changed.append((rolled[before], keys.USER_FEATURES, before, "rolls its lists from"))
        if newest is not None and newest[0] > oldest:
            changed.append((newest[0], newest[1], newest[2], "reads the rows of"))
        for sid, key, of, verb in changed:
            own, (theirs, when) = _run(instance, table, oldest), _run(instance, key, sid)
            if own[0] != theirs:
                why = (
                    f"{day} {verb} {key.to_user_string()} {of}, materialized after it "
                    f"(run {theirs[:8]}; {day} by run {own[0][:8]})"
                )
                return Stale(day, days[-1], why, sid, when)
    return None


def rebuild_hint(stale: Stale) -> str:
    """What to say when a run without the daemon leaves ``stale`` days: the sensor rebuilds
    them where a daemon runs; ``recassets materialize`` alone does what it was asked, so the
    command that rebuilds them is given, not run (a correction of one day may leave 40 later
    days to rebuild, and the caller chose one)."""
    select = ",".join(k.to_user_string() for k in REBUILD)
    return (f"feature days {stale.first}..{stale.last} are stale: {stale.why}. A running "
            f"daemon's stale_features_sensor rebuilds them; without one: recassets materialize "
            f"--select {select} --first {stale.first} --last {stale.last}")  # fmt: skip


def _latest(instance: DagsterInstance, key: AssetKey) -> Mapping[str, int]:
    """Partition -> the storage id of its latest materialization."""
    return instance.event_log_storage.get_latest_storage_id_by_partition(
        key, DagsterEventType.ASSET_MATERIALIZATION
    )


def _run(instance: DagsterInstance, key: AssetKey, storage_id: int) -> tuple[str, float]:
    """The run and the time of a materialization."""
    found = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, storage_ids=[storage_id]), limit=1
    ).records
    return (found[0].run_id, found[0].timestamp) if found else ("", 0.0)


def writing(instance: DagsterInstance) -> str | None:
    """A queued or running run that writes the feature tables or ingests, or a backfill in
    progress, named; None when there is none."""
    for run in instance.get_runs(filters=RunsFilter(statuses=IN_FLIGHT), limit=50):
        # a run of this job launched from the UI carries no asset selection of its own
        if run.job_name == stale_features_job.name or (run.asset_selection or set()) & WRITERS:
            return f"run {run.run_id}"
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
