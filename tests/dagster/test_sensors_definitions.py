"""The loop's wiring in the definitions: sensors and schedule with their default statuses, the
retrain job's selection, freshness policies, and the automation conditions evaluated by
Dagster's own evaluator (the daemon's logic) against materializations recorded in an instance."""

from __future__ import annotations

import datetime as dt

import pytest
import yaml
from dagster import (
    AssetKey,
    AssetMaterialization,
    AssetObservation,
    DagsterInstance,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    evaluate_automation_conditions,
)

from assets import keys
from assets.partitions import DATA_VERSION_IS_USER_PROVIDED_TAG, DATA_VERSION_TAG

DAILY_DOWNSTREAM = ["lake/user_features", "lake/item_features", "lake/cohort_features",
                    "lake/training_examples", "featurestore/feature_store"]  # fmt: skip
INGEST = ["lake/raw_events", "lake/users", "lake/items"]


@pytest.fixture(scope="module")
def defs():
    import definitions

    return definitions.defs


def key(s: str) -> AssetKey:
    return AssetKey.from_user_string(s)


def test_sensors_run_by_default_and_the_schedule_is_offered_stopped(defs):
    repo = defs.get_repository_def()
    sensors = {s.name: s.default_status for s in repo.sensor_defs}
    assert sensors == {
        "landing_sensor": DefaultSensorStatus.RUNNING,
        "retrain_sensor": DefaultSensorStatus.RUNNING,
        "automation_condition_sensor": DefaultSensorStatus.RUNNING,
        "stale_features_sensor": DefaultSensorStatus.RUNNING,
    }  # and no STOPPED default_automation_condition_sensor beside ours
    [schedule] = repo.schedule_defs
    assert (schedule.name, schedule.cron_schedule, schedule.execution_timezone) == (
        "retrain_schedule", "0 3 * * *", "UTC",
    )  # fmt: skip
    assert schedule.default_status == DefaultScheduleStatus.STOPPED


def test_retrain_job_holds_the_models_and_every_unpartitioned_retrieval_and_serving_asset(defs):
    job = defs.get_repository_def().get_job("retrain_job")
    selected = {k.to_user_string() for k in job.asset_layer.executable_asset_keys}
    graph = defs.resolve_asset_graph()
    downstream = {
        k.to_user_string()
        for k in graph.materializable_asset_keys
        if graph.get(k).group_name in ("retrieval", "serving")
    }
    # the decision log is in the serving group, partitioned by the day served: not this job's
    assert "lake/serving_log" in downstream
    assert selected == {"models/two_tower_model", "models/ranking_model",
                        "models/sequence_ranking_model",
                        "models/item_similarity", "models/light_ranker",
                        "models/model_evaluation"} | downstream - {"lake/serving_log"}  # fmt: skip
    assert "model_evaluation_promotion_gate" in {c.name for c in job.asset_layer.asset_graph.asset_check_keys}  # fmt: skip
    # An unpartitioned job cannot run a partitioned asset's step (it fails asking for the
    # partition key): every asset it executes is unpartitioned.
    partitioned = [k for k in selected if graph.get(AssetKey.from_user_string(k)).partitions_def]
    assert partitioned == [], f"retrain_job would fail on the partitioned {partitioned}"


def test_a_refused_retraining_is_not_retried_and_a_failed_ingestion_is(defs):
    """The instance retries failed runs (recassets/instance.py: twice); retrain_job's runs opt
    out for step failures, whose usual cause is the gate refusing on purpose. Asked through
    Dagster's own decision (the daemon's ``auto_reexecution_should_retry_run``)."""
    from dagster._core.events import RunFailureReason
    from dagster._core.execution.retries import auto_reexecution_should_retry_run
    from dagster._core.storage.dagster_run import DagsterRunStatus
    from dagster._core.test_utils import create_run_for_test, instance_for_test

    from recassets.instance import DAGSTER_YAML

    repo = defs.get_repository_def()
    with instance_for_test(overrides=yaml.safe_load(DAGSTER_YAML)) as instance:
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2

        def retried(job_name: str, reason: RunFailureReason) -> bool:
            tags = repo.get_job(job_name).run_tags
            run = create_run_for_test(
                instance, job_name=job_name, status=DagsterRunStatus.FAILURE, tags=dict(tags)
            )
            return auto_reexecution_should_retry_run(instance, run, reason)

        assert not retried("retrain_job", RunFailureReason.STEP_FAILURE)  # the gate refused
        assert retried("retrain_job", RunFailureReason.RUN_EXCEPTION)  # the run itself broke
        assert retried("ingest_job", RunFailureReason.STEP_FAILURE)  # a Spark JVM died, say


def test_ingest_job_is_ingestion_then_the_way_to_the_online_store_with_their_checks(defs):
    job = defs.get_repository_def().get_job("ingest_job")
    online = [*DAILY_DOWNSTREAM[:3], "featurestore/feature_store"]
    assert {k.to_user_string() for k in job.asset_layer.executable_asset_keys} == {*INGEST, *online}
    # not the training examples nor the models: the automation and retrain sensors carry those
    assert "lake/training_examples" not in online
    checks = {c.asset_key.to_user_string() for c in job.asset_layer.asset_graph.asset_check_keys}
    assert {"lake/raw_events", "featurestore/feature_store"} <= checks
    assert job.partitions_def is not None


SERVING = ("retrieval/item_embeddings", "retrieval/item_index", "serving/recommender_bento")


def test_conditions_sit_on_the_daily_downstream_assets_only(defs):
    graph = defs.resolve_asset_graph()
    automated = {
        k.to_user_string()
        for k in graph.materializable_asset_keys
        if graph.get(k).automation_condition is not None
    }
    # ingest is driven by landing_sensor, the models by retrain_sensor
    assert automated == set(DAILY_DOWNSTREAM) | set(SERVING)
    assert not automated & set(INGEST)
    assert not automated & {"models/two_tower_model", "models/ranking_model", "models/model_evaluation"}  # fmt: skip
    # checks ride along with their asset's run (a check with a condition would not)
    assert all(graph.get(c).automation_condition is None for c in graph.asset_check_keys)


def test_freshness_policies_on_the_feature_tables_and_what_serves(defs):
    graph = defs.resolve_asset_graph()
    for name in [*DAILY_DOWNSTREAM[:3], "featurestore/feature_store", "serving/recommender_bento"]:
        policy = graph.get(key(name)).freshness_policy
        assert policy is not None, name
        assert policy.fail_window.to_timedelta() == dt.timedelta(hours=48)
        assert policy.warn_window.to_timedelta() == dt.timedelta(hours=25)


def report(instance: DagsterInstance, names: list[str], day: str) -> None:
    for name in names:
        instance.report_runless_asset_event(
            AssetMaterialization(asset_key=key(name), partition=day)
        )


def requested(result) -> dict[str, list[str]]:
    out = {}
    for name in [*INGEST, *DAILY_DOWNSTREAM, "models/two_tower_model"]:
        parts = sorted(result.get_requested_partitions(key(name)) or [])
        if parts:
            out[name] = parts
    return out


def test_eager_takes_exactly_the_updated_day_through_even_an_old_one(defs):
    """2026-01-03 is months before today: plain eager() (latest time window only) would ignore
    it. Ours requests that day's features, examples and online store, and nothing else."""
    with DagsterInstance.ephemeral() as instance:
        for day in ("2026-01-01", "2026-01-02"):  # a built history
            report(instance, [*INGEST, *DAILY_DOWNSTREAM], day)
        first = evaluate_automation_conditions(defs, instance)
        assert first.total_requested == 0  # switching the daemon on recomputes nothing

        report(instance, INGEST, "2026-01-03")  # landing_sensor ingested a new day
        new_day = evaluate_automation_conditions(defs, instance, cursor=first.cursor)
        assert requested(new_day) == {name: ["2026-01-03"] for name in DAILY_DOWNSTREAM}

        report(instance, DAILY_DOWNSTREAM, "2026-01-03")
        online = evaluate_automation_conditions(defs, instance, cursor=new_day.cursor)
        # the online store serves a new day: the serving side follows it (new items get
        # embedded, indexed and served with the current policy, retrained or not)
        assert {n: online.get_num_requested(key(n)) for n in SERVING} == dict.fromkeys(SERVING, 1)
        assert online.total_requested == len(SERVING)
        for name in SERVING:
            instance.report_runless_asset_event(AssetMaterialization(asset_key=key(name)))
        settled = evaluate_automation_conditions(defs, instance, cursor=online.cursor)
        assert settled.total_requested == 0  # done: no loop

        # a new version of the training data (observed by an ingest or examples run): the
        # bento shows stale through it, but is not rebuilt from the same models
        instance.report_runless_asset_event(
            AssetObservation(
                asset_key=keys.TRAINING_DATA,
                tags={DATA_VERSION_TAG: "v2", DATA_VERSION_IS_USER_PROVIDED_TAG: "true"},
            )
        )
        observed = evaluate_automation_conditions(defs, instance, cursor=settled.cursor)
        assert observed.total_requested == 0
        # the failing case: new evaluated models are a reason
        instance.report_runless_asset_event(AssetMaterialization(asset_key=keys.EVALUATION))
        retrained = evaluate_automation_conditions(defs, instance, cursor=observed.cursor)
        assert retrained.get_num_requested(keys.RECOMMENDER_BENTO) == 1
        for name in SERVING:
            instance.report_runless_asset_event(AssetMaterialization(asset_key=key(name)))
        settled = evaluate_automation_conditions(defs, instance, cursor=retrained.cursor)
        assert settled.total_requested == 0

        report(instance, ["lake/raw_events"], "2026-01-02")  # a late file re-ingested day 2
        late = evaluate_automation_conditions(defs, instance, cursor=settled.cursor)
        # day 3's features read day 2 in their 28-day window, and day 3's examples join day
        # 2's features: all rebuilt (several partitions of one asset: the sensor emits a
        # backfill, which runs them after the features)
        both = ["2026-01-02", "2026-01-03"]
        assert requested(late) == {
            "lake/user_features": both,
            "lake/item_features": both,
            "lake/cohort_features": both,
            "lake/training_examples": both,
            "featurestore/feature_store": both,
        }


def test_what_the_landing_run_already_carried_is_not_requested_again(defs):
    """landing_sensor's run ingests a day and takes it through its features and the online
    store; the automation then adds only what that run left: the training examples and the
    serving side. (Ingestion alone leaves it the features too: the test above.)"""
    online_path = [*DAILY_DOWNSTREAM[:3], "featurestore/feature_store"]
    with DagsterInstance.ephemeral() as instance:
        for day in ("2026-01-01", "2026-01-02"):
            report(instance, [*INGEST, *DAILY_DOWNSTREAM], day)
        first = evaluate_automation_conditions(defs, instance)
        report(instance, [*INGEST, *online_path], "2026-01-03")  # one run, between two ticks
        after = evaluate_automation_conditions(defs, instance, cursor=first.cursor)
        assert requested(after) == {"lake/training_examples": ["2026-01-03"]}
        assert {n: after.get_num_requested(key(n)) for n in SERVING} == dict.fromkeys(SERVING, 1)


def test_nothing_runs_while_a_day_is_half_ingested(defs):
    with DagsterInstance.ephemeral() as instance:
        for day in ("2026-01-01", "2026-01-02"):
            report(instance, [*INGEST, *DAILY_DOWNSTREAM], day)
        first = evaluate_automation_conditions(defs, instance)
        report(instance, ["lake/raw_events"], "2026-01-03")  # users and items not yet
        result = evaluate_automation_conditions(defs, instance, cursor=first.cursor)
        assert result.total_requested == 0


def test_a_day_ingested_again_requests_every_later_days_features_whose_window_holds_it(defs):
    """The features of d read raw_events d-27..d: a day re-ingested (changed files) or landing
    late makes the daemon rebuild the features of each later day, not only its own (with an
    identity mapping their 7- and 28-day counters stayed wrong, shown fresh), and with them
    the days' examples and online rows."""
    days = [f"2026-01-0{d}" for d in range(1, 6)]
    with DagsterInstance.ephemeral() as instance:
        for day in days:
            report(instance, [*INGEST, *DAILY_DOWNSTREAM], day)
        first = evaluate_automation_conditions(defs, instance)
        assert first.total_requested == 0

        report(instance, ["lake/raw_events"], "2026-01-03")  # day 3 ingested again
        again = evaluate_automation_conditions(defs, instance, cursor=first.cursor)
        # every later day's features, examples and online rows, in one backfill (the sensor
        # orders it: features before the examples that join them)
        assert requested(again) == dict.fromkeys(DAILY_DOWNSTREAM, days[2:])
        for day in days[2:]:
            report(instance, DAILY_DOWNSTREAM, day)
        settled = evaluate_automation_conditions(defs, instance, cursor=again.cursor)
        assert requested(settled) == {}  # done: no loop


def _in_run(instance: DagsterInstance, names: list[str], day: str) -> None:
    """Materializations of ``names`` for ``day`` made by one run that targeted them all, as
    landing_sensor's ingest_job run does (ingestion and the day's way to the online store)."""
    import time

    from dagster._core.events import DagsterEvent, DagsterEventType, StepMaterializationData
    from dagster._core.events.log import EventLogEntry
    from dagster._core.storage.dagster_run import DagsterRunStatus
    from dagster._core.test_utils import create_run_for_test

    run = create_run_for_test(instance, job_name="ingest_job", status=DagsterRunStatus.SUCCESS,
                              asset_selection={key(n) for n in names})  # fmt: skip
    for name in names:
        event = DagsterEvent(
            event_type_value=DagsterEventType.ASSET_MATERIALIZATION.value,
            job_name="ingest_job",
            event_specific_data=StepMaterializationData(
                AssetMaterialization(asset_key=key(name), partition=day)
            ),
        )
        instance.store_event(EventLogEntry(error_info=None, level="debug", user_message="",
                                           run_id=run.run_id, timestamp=time.time(),
                                           dagster_event=event))  # fmt: skip


def test_a_landing_run_that_carried_a_days_features_still_rebuilds_the_later_days(defs):
    """A day re-ingested by landing_sensor comes with its own features in the same run; the
    later days whose window reads it were never rebuilt: Dagster's eager ignores a parent's
    update made by a run that targeted the asset itself (any partition of it)."""
    days = [f"2026-01-0{d}" for d in range(1, 6)]
    online_path = [*DAILY_DOWNSTREAM[:3], "featurestore/feature_store"]
    with DagsterInstance.ephemeral() as instance:
        for day in days:
            report(instance, [*INGEST, *DAILY_DOWNSTREAM], day)
        first = evaluate_automation_conditions(defs, instance)
        _in_run(instance, [*INGEST, *online_path], "2026-01-03")
        again = evaluate_automation_conditions(defs, instance, cursor=first.cursor)
        got = requested(again)
        for name in online_path:  # day 3's own came with the run: not again
            assert got[name] == days[3:], name
        assert got["lake/training_examples"] == days[2:]


def test_a_day_that_failed_a_blocking_check_is_not_taken_downstream(defs):
    """The landing run's quality check failed for a day (every row quarantined): its own
    downstream steps stopped, and the automation then built the day's features, examples and
    online rows anyway. It waits now, and goes on once the day passes."""
    from dagster import AssetCheckEvaluation, AssetCheckSeverity, AssetRecordsFilter
    from dagster._core.definitions.asset_checks.asset_check_evaluation import (
        AssetCheckEvaluationTargetMaterializationData as Target,
    )

    def checked(day: str, passed: bool) -> None:
        """The check's result on the day's latest materialization, as a run records it."""
        latest = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=keys.RAW_EVENTS, asset_partitions=[day]), limit=1
        ).records[0]
        target = Target(storage_id=latest.storage_id, run_id=latest.run_id, timestamp=latest.timestamp)  # fmt: skip
        instance.report_runless_asset_event(
            AssetCheckEvaluation(asset_key=keys.RAW_EVENTS, check_name="raw_events_quality",
                                 passed=passed, severity=AssetCheckSeverity.ERROR, partition=day,
                                 target_materialization_data=target)
        )  # fmt: skip

    with DagsterInstance.ephemeral() as instance:
        for day in ("2026-01-01", "2026-01-02"):
            report(instance, [*INGEST, *DAILY_DOWNSTREAM], day)
        first = evaluate_automation_conditions(defs, instance)
        report(instance, INGEST, "2026-01-03")
        checked("2026-01-03", False)
        bad = evaluate_automation_conditions(defs, instance, cursor=first.cursor)
        assert requested(bad) == {}
        # fixed and landed again: the failed result was on the older materialization
        report(instance, ["lake/raw_events"], "2026-01-03")
        fixed = evaluate_automation_conditions(defs, instance, cursor=bad.cursor)
        assert requested(fixed) == {name: ["2026-01-03"] for name in DAILY_DOWNSTREAM}
