"""``stale_features_sensor``: the feature days that read a day (rolled lists) or a dimension row
(users, items) materialized after them by another run, judged on materializations recorded in
an instance, as the daemon's tick sees them."""

from __future__ import annotations

import time

from dagster import AssetKey, AssetMaterialization, DagsterInstance, RunRequest, SkipReason
from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
from dagster._core.events.log import EventLogEntry
from dagster._core.storage.dagster_run import DagsterRunStatus
from dagster._core.test_utils import create_run_for_test

from assets.partitions import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from sensors.stale_features import SETTLE_S, stale_features, stale_request

FEATURES = ["lake/user_features", "lake/item_features", "lake/cohort_features"]
INGEST = ["lake/raw_events", "lake/users", "lake/items"]
DAYS = [f"2026-01-0{d}" for d in range(1, 7)]


def later() -> float:
    """A tick long after every change (taken when asked: the module is imported long before
    its tests run in the suite)."""
    return time.time() + 10 * SETTLE_S


def run(instance: DagsterInstance, names: list[str], days: list[str],
        status: DagsterRunStatus = DagsterRunStatus.SUCCESS, job: str = "j") -> str:  # fmt: skip
    """One run that materialized ``names`` for each of ``days``, in day order (a run of
    ``job`` with no asset selection of its own when ``names`` is empty)."""
    keys = {AssetKey.from_user_string(n) for n in names} or None
    made = create_run_for_test(instance, job_name=job, status=status, asset_selection=keys)
    for day in days:
        for name in names:
            data = StepMaterializationData(
                AssetMaterialization(asset_key=AssetKey.from_user_string(name), partition=day)
            )
            event = DagsterEvent(event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
                                 job_name="j", event_specific_data=data)  # fmt: skip
            instance.store_event(EventLogEntry(error_info=None, level="debug", user_message="",
                                               run_id=made.run_id, timestamp=time.time(),
                                               dagster_event=event))  # fmt: skip
    return made.run_id


def test_the_days_built_together_are_fresh_and_a_rebuilt_day_makes_the_later_ones_stale():
    with DagsterInstance.ephemeral() as instance:
        assert stale_features(instance) is None  # nothing built
        run(instance, [*INGEST, *FEATURES], DAYS)  # the demo: one range run
        assert stale_features(instance) is None
        run(instance, FEATURES, DAYS[:3])  # days 1-3 rebuilt (the automation's window)
        stale = stale_features(instance)
        assert stale is not None and (stale.first, stale.last) == (DAYS[3], DAYS[5])
        assert f"{DAYS[3]} rolls its lists from lake/user_features {DAYS[2]}" in stale.why
        request = stale_request(instance, now=later())
        assert isinstance(request, RunRequest)
        assert request.asset_selection == [AssetKey.from_user_string(n) for n in FEATURES]
        assert request.tags[PARTITION_RANGE_START_TAG] == DAYS[3]
        assert request.tags[PARTITION_RANGE_END_TAG] == DAYS[5]
        waiting = stale_request(instance)  # just now: the automation's turn first
        assert isinstance(waiting, SkipReason) and "waiting" in str(waiting.skip_message)
        run(instance, FEATURES, DAYS[3:])  # the sensor's run
        assert stale_features(instance) is None  # settled: no loop
        run(instance, FEATURES, DAYS[5:])  # the last day rebuilt: nothing after it
        assert stale_features(instance) is None


def test_a_late_dimension_row_makes_the_days_after_it_stale_and_one_day_is_one_partition():
    with DagsterInstance.ephemeral() as instance:
        run(instance, [*INGEST, *FEATURES], DAYS)
        run(instance, ["lake/users"], DAYS[1:2])  # a late user of day 2 (its own day's
        # features are the automation's: the graph says so)
        stale = stale_features(instance)
        assert stale is not None and stale.first == DAYS[2]
        assert f"reads the rows of lake/users {DAYS[1]}" in stale.why
        run(instance, FEATURES, DAYS[1:5])
        stale = stale_features(instance)  # day 6 rolls from day 5 rebuilt after it
        assert stale is not None and (stale.first, stale.last) == (DAYS[5], DAYS[5])
        request = stale_request(instance, now=later())
        assert isinstance(request, RunRequest) and request.partition_key == DAYS[5]
        assert request.run_key == f"stale:{DAYS[5]}:{stale.newest}"
        run(instance, FEATURES, DAYS[5:])
        assert stale_features(instance) is None
        run(instance, ["lake/items"], DAYS[5:])  # the last day's own rows: the automation's
        assert stale_features(instance) is None
        run(instance, ["lake/items"], DAYS[4:5])  # the day before's: this sensor's
        stale = stale_features(instance)
        assert stale is not None and stale.first == DAYS[5] and "lake/items" in stale.why


def test_nothing_is_launched_while_features_or_ingestion_are_being_written():
    with DagsterInstance.ephemeral() as instance:
        run(instance, [*INGEST, *FEATURES], DAYS)
        run(instance, FEATURES, DAYS[:2])
        assert isinstance(stale_request(instance, now=later()), RunRequest)
        run(instance, ["lake/raw_events"], [], status=DagsterRunStatus.STARTED)
        busy = stale_request(instance, now=later())
        assert isinstance(busy, SkipReason) and "writes the feature tables" in str(
            busy.skip_message
        )


def test_a_day_is_judged_by_the_oldest_of_its_three_tables():
    """A run that wrote user_features and item_features of days 1-3 and failed before the
    cohort features of day 3: day 3 is stale (its cohort table rolled nothing new), not only
    day 4 on."""
    with DagsterInstance.ephemeral() as instance:
        run(instance, [*INGEST, *FEATURES], DAYS)
        run(instance, FEATURES, DAYS[:2])
        run(instance, FEATURES[:2], DAYS[2:3])
        stale = stale_features(instance)
        assert stale is not None and stale.first == DAYS[2]  # before: DAYS[3]
        assert "by run" in stale.why


def test_a_run_of_the_job_from_the_ui_holds_the_sensor_back():
    with DagsterInstance.ephemeral() as instance:
        run(instance, [*INGEST, *FEATURES], DAYS)
        run(instance, FEATURES, DAYS[:2])
        run(instance, [], [], status=DagsterRunStatus.STARTED, job="stale_features_job")
        busy = stale_request(instance, now=later())
        assert isinstance(busy, SkipReason) and "waiting for it" in str(busy.skip_message)


def test_a_backfill_in_progress_holds_the_sensor_back_and_a_finished_one_does_not():
    """The automation's requests of several days are one backfill: until it is done, the days
    it rebuilds are not this sensor's to judge."""
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill

    with DagsterInstance.ephemeral() as instance:
        run(instance, [*INGEST, *FEATURES], DAYS)
        run(instance, FEATURES, DAYS[:2])
        backfill = PartitionBackfill(backfill_id="bf1", status=BulkActionStatus.REQUESTED,
                                     from_failure=False, tags={},
                                     backfill_timestamp=time.time())  # fmt: skip
        instance.add_backfill(backfill)
        busy = stale_request(instance, now=later())
        assert isinstance(busy, SkipReason) and "backfill bf1" in str(busy.skip_message)
        instance.update_backfill(backfill.with_status(BulkActionStatus.COMPLETED_SUCCESS))
        assert isinstance(stale_request(instance, now=later()), RunRequest)


def test_a_cli_plan_that_leaves_stale_days_says_the_command_that_rebuilds_them():
    """``recassets materialize --first 3 --last 3`` after a correction, without the daemon:
    days 4..6 went on with lists rolled from the old day 3 and nothing said so. The plan's end
    now says it, once, with a command the CLI takes; a plan that leaves nothing stale is
    silent."""
    from assets.launch import say_stale
    from recassets.cli import DEMO_SELECTION, NOT_IN_DEMO
    from recassets.cli_args import selected

    with DagsterInstance.ephemeral() as instance:
        said: list[str] = []
        run(instance, [*INGEST, *FEATURES], DAYS)
        say_stale(instance, said.append)
        assert said == []
        run(instance, [*INGEST, *FEATURES], DAYS[2:3])  # day 3 re-ingested and rebuilt
        say_stale(instance, said.append)
        assert len(said) == 1 and said[0].startswith(f"feature days {DAYS[3]}..{DAYS[5]} are stale")
        command = said[0].split("without one: ", 1)[1].split()
        assert command[:2] == ["recassets", "materialize"]
        select = command[command.index("--select") + 1]
        assert {*FEATURES, "lake/training_examples", "featurestore/feature_store"} == set(
            selected(select, DEMO_SELECTION, NOT_IN_DEMO)
        )
        first, last = command[command.index("--first") + 1], command[command.index("--last") + 1]
        assert (first, last) == (DAYS[3], DAYS[5])
        run(instance, FEATURES, DAYS[3:])  # what the command does
        said.clear()
        say_stale(instance, said.append)
        assert said == []
