"""Which feature days read a day or a dimension row materialized after them: the judgement of
``sensors.stale_features`` (its docstring says why, and the sensor's guards), here so that
the CLI's plan (``assets.launch``, which may not import ``sensors``: the layers of
``tests/dagster/test_definitions.py``) says the same staleness at its end, without a daemon."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import NamedTuple

from dagster import AssetKey, AssetRecordsFilter, DagsterEventType, DagsterInstance

from assets import keys

# What the feature tables' days read beyond their graph dependency (the sensor's docstring).
DIMENSIONS = (keys.USERS, keys.ITEMS)
# What rebuilds stale days without the daemon: the feature tables and what the automation
# would carry them on to (the examples, the online store), in one range run of the CLI.
REBUILD = (*keys.FEATURE_TABLES, keys.TRAINING_EXAMPLES, keys.FEATURE_STORE)


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
