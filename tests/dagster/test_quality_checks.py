"""The quality checks in Dagster runs, with real Spark and Delta on a temporary home: a good
partition lets the downstream asset materialize, a bad one fails the check and the downstream
asset of the same run is not materialized. A range run records one evaluation per partition,
each with its own day's metadata; a day without landing files passes the quality check and
gets a WARN from raw_events_has_events."""

# No `from __future__ import annotations`: Dagster 1.13 reads the `context` annotation at
# definition time and rejects it as a string.
import datetime as dt

import pytest
from dagster import (
    AssetCheckSeverity,
    AssetExecutionContext,
    AssetKey,
    BackfillPolicy,
    DagsterInstance,
    MaterializeResult,
    asset,
    materialize,
)

from assets.ingest import raw_events
from assets.partitions import DAILY, PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from assets.quality import (
    CHECKS,
    cohort_features_quality,
    item_features_quality,
    raw_events_has_events,
    raw_events_quality,
    user_features_quality,
)
from recassets.landing import write_landing_file
from recassets.synthetic import SyntheticConfig, build_world, generate, generate_day
from resources import LakeResource, QualityResource, SparkResource
from tests.unit.quality.frames import feature_ddl, feature_records

HISTORY = ("2026-01-01", "2026-01-03")  # three normal days: the volume band's history
GOOD_DAY, SPIKE_DAY = "2026-01-04", "2026-01-05"
EMPTY_DAY, LAST_DAY = "2026-01-06", "2026-01-07"  # 01-06 lands nothing; 01-07 a normal day
SYNTHETIC = {"days": 5, "events_per_day": 2000, "initial_users": 200, "initial_items": 100}
EVENT_CHECKS = [raw_events_quality, raw_events_has_events]


def _resources(paths, quality=None):
    return {
        "spark": SparkResource(),
        "lake": LakeResource(home=paths.home),
        "quality": quality or QualityResource(),  # the volume band: +-50 %
    }


# Same backfill policy as raw_events, so that Dagster need not reconcile the two in one job.
@asset(
    key=AssetKey(["test", "events_downstream"]),
    deps=[raw_events],
    partitions_def=DAILY,
    backfill_policy=BackfillPolicy.single_run(),
)
def events_downstream(context: AssetExecutionContext) -> MaterializeResult:
    return MaterializeResult(metadata={"days": list(context.partition_keys)})


def test_checks_are_daily_named_after_their_assets_and_blocking_but_the_warning():
    specs = [next(iter(c.check_specs)) for c in CHECKS]
    assert [(s.asset_key.path, s.name, s.blocking) for s in specs] == [
        (["lake", "raw_events"], "raw_events_quality", True),
        (["lake", "raw_events"], "raw_events_has_events", False),
        (["lake", "user_features"], "user_features_quality", True),
        (["lake", "item_features"], "item_features_quality", True),
        (["lake", "cohort_features"], "cohort_features_quality", True),
    ]
    assert all(s.partitions_def is DAILY for s in specs)


def _range_tags(first: str, last: str) -> dict[str, str]:
    return {PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last}


@pytest.fixture(scope="module")
def events_history(make_home, spark):
    """Five landed days, the fifth replaced by one four times the usual volume (a replayed
    producer): every row valid, so ingestion takes it all and only the volume band sees it.
    Then nothing for 01-06 and a normal 01-07. The history (01-01..01-03) is ingested in one
    range run with the checks and the downstream asset: (home, that run's result)."""
    paths = make_home("quality_dagster_events")
    generate(paths, SyntheticConfig(**SYNTHETIC))
    spike = SyntheticConfig(**{**SYNTHETIC, "events_per_day": 8000})
    events, _, _ = generate_day(build_world(spike), spike, 4)
    write_landing_file(paths, "events", dt.date.fromisoformat(SPIKE_DAY), events, name="part-00000")
    longer = SyntheticConfig(**{**SYNTHETIC, "days": 7})
    events, _, _ = generate_day(build_world(longer), longer, 6)
    write_landing_file(paths, "events", dt.date.fromisoformat(LAST_DAY), events, name="part-00000")
    history = materialize(
        [raw_events, *EVENT_CHECKS, events_downstream],
        resources=_resources(paths),
        instance=DagsterInstance.ephemeral(),
        tags=_range_tags(*HISTORY),
    )
    return paths, history


@pytest.fixture(scope="module")
def events_home(events_history):
    return events_history[0]


def _run_events(paths, day=None, tags=None, quality=None):
    return materialize(
        [raw_events, *EVENT_CHECKS, events_downstream],
        resources=_resources(paths, quality),
        instance=DagsterInstance.ephemeral(),
        partition_key=day,
        tags=tags,
        raise_on_error=False,
    )


def _evaluations(result, check_name: str) -> dict:
    """The run's evaluations of ``check_name`` by partition (one each)."""
    found = [e for e in result.get_asset_check_evaluations() if e.check_name == check_name]
    by_day = {e.partition: e for e in found}
    assert len(by_day) == len(found), "one evaluation per partition"
    return by_day


def _steps(result, event_type: str) -> list[str]:
    return [e.step_key for e in result.all_events if e.event_type_value == event_type]


def _downstream_days(result) -> list[str]:
    return [m.partition for m in result.asset_materializations_for_node("test__events_downstream")]


def test_a_passing_range_records_each_day_and_downstream_materializes(events_history):
    _, history = events_history
    assert history.success
    days = ["2026-01-01", "2026-01-02", "2026-01-03"]
    quality = _evaluations(history, "raw_events_quality")
    assert {d: (e.passed, e.severity) for d, e in quality.items()} == {
        d: (True, AssetCheckSeverity.ERROR) for d in days
    }
    # Each day's own inputs: the volume band's trailing days are that day's.
    assert [len(quality[d].metadata["inputs"].value["trailing_daily_counts"]) for d in days] == [
        0, 1, 2,
    ]  # fmt: skip
    assert (
        quality["2026-01-01"]
        .metadata["failing_expectations"]
        .value.startswith(
            "### 2026-01-01\n\n**raw_events_2026-01-01: passed**: 12/12 expectations met"
        )
    )
    assert {d: e.passed for d, e in _evaluations(history, "raw_events_has_events").items()} == {
        d: True for d in days
    }
    assert sorted(_downstream_days(history)) == days
    # Each evaluation targets its own partition's materialization of this run: only such an
    # evaluation is "current", and only a current one gives the partition a status in the UI.
    mats = {m.partition: m for m in history.asset_materializations_for_node("lake__raw_events")}
    for check in ("raw_events_quality", "raw_events_has_events"):
        for day, e in _evaluations(history, check).items():
            target = e.target_materialization_data
            assert target is not None and target.run_id == history.run_id, (check, day)
    assert set(mats) == set(days)


def test_good_raw_events_day_passes_and_downstream_materializes(events_home):
    result = _run_events(events_home, GOOD_DAY)
    assert result.success
    evaluation = _evaluations(result, "raw_events_quality")[GOOD_DAY]
    assert evaluation.passed
    assert evaluation.metadata["failed_expectations"].value == 0
    assert evaluation.metadata["statistics"].value["evaluated_expectations"] == 12
    inputs = evaluation.metadata["inputs"].value
    assert len(inputs["trailing_daily_counts"]) == 3 and inputs["notes"] == []
    assert _evaluations(result, "raw_events_has_events")[GOOD_DAY].passed
    assert _downstream_days(result) == [GOOD_DAY]


def _assert_spike(evaluation) -> None:
    """The spike day's evaluation: the volume band, and only it, failed, with its figures."""
    assert (evaluation.passed, evaluation.severity, evaluation.partition) == (
        False,
        AssetCheckSeverity.ERROR,
        SPIKE_DAY,
    )
    meta = evaluation.metadata
    assert meta["failed_expectations"].value == 1
    lo, hi = meta["inputs"].value["row_count_bounds"]
    md = meta["failing_expectations"].value
    assert md.startswith(f"### {SPIKE_DAY}\n\n**raw_events_{SPIKE_DAY}: FAILED**: 11/12")
    assert (
        f"| expect_table_row_count_to_be_between |  | min_value={lo}, max_value={hi} | observed_value="
        in md
    )
    assert meta["statistics"].value["unsuccessful_expectations"] == 1
    assert meta["sample_rows"].value == {}  # a table-level failure has no rows


def test_volume_spike_fails_the_blocking_check_and_stops_downstream(events_home):
    result = _run_events(events_home, SPIKE_DAY)
    assert not result.success
    # raw_events itself is written (ingestion found nothing wrong with any row)...
    assert [m.partition for m in result.asset_materializations_for_node("lake__raw_events")] == [
        SPIKE_DAY
    ]
    _assert_spike(_evaluations(result, "raw_events_quality")[SPIKE_DAY])
    # ...but nothing downstream of it runs in the same run.
    assert _downstream_days(result) == []
    assert _steps(result, "STEP_FAILURE") == ["lake__raw_events_raw_events_quality"]
    assert "test__events_downstream" not in _steps(result, "STEP_START")


def test_the_quality_resource_can_turn_the_volume_band_off(events_home):
    # What `recassets demo --movielens` does through RECASSETS_VOLUME_BAND=off.
    result = _run_events(events_home, SPIKE_DAY, quality=QualityResource(volume_band="off"))
    assert result.success
    evaluation = _evaluations(result, "raw_events_quality")[SPIKE_DAY]
    assert evaluation.passed
    assert evaluation.metadata["inputs"].value["notes"] == [
        "volume check off (RECASSETS_VOLUME_BAND=off)"
    ]
    assert _downstream_days(result) == [SPIKE_DAY]


def test_a_range_records_each_day_and_a_bad_day_blocks_downstream(events_home):
    """01-04 good, 01-05 the spike, 01-06 without landing files, 01-07 good: one run."""
    result = _run_events(events_home, tags=_range_tags(GOOD_DAY, LAST_DAY))
    assert not result.success
    days = [GOOD_DAY, SPIKE_DAY, EMPTY_DAY, LAST_DAY]
    # Each day twice, both of this run: the run's result, then the day's own data version
    # (assets.partitions.results_with_data_versions).
    mats = result.asset_materializations_for_node("lake__raw_events")
    assert sorted(m.partition for m in mats) == sorted(days * 2)
    quality = _evaluations(result, "raw_events_quality")
    assert {d: e.passed for d, e in quality.items()} == {
        GOOD_DAY: True, SPIKE_DAY: False, EMPTY_DAY: True, LAST_DAY: True,
    }  # fmt: skip
    _assert_spike(quality[SPIKE_DAY])
    assert quality[GOOD_DAY].metadata["failed_expectations"].value == 0
    # The empty day: nothing to validate, no volume to judge; left out of 01-07's band.
    empty = quality[EMPTY_DAY].metadata
    assert empty["statistics"].value["evaluated_expectations"] == 11
    assert empty["inputs"].value["notes"] == [
        f"volume check skipped: no events landed for {EMPTY_DAY} (ingestion wrote an empty "
        "partition), so there is no volume to compare; raw_events_has_events warns"
    ]
    assert quality[LAST_DAY].metadata["inputs"].value["trailing_daily_counts"] == [
        n for d, n in _partition_rows(events_home).items() if "2026-01-01" <= d <= SPIKE_DAY
    ]
    # The warning: failed on the empty day only, naming the folder looked in; not blocking.
    has_events = _evaluations(result, "raw_events_has_events")
    assert {d: (e.passed, e.severity) for d, e in has_events.items()} == {
        d: (d != EMPTY_DAY, AssetCheckSeverity.WARN) for d in days
    }
    folder = events_home.landing_dir("events", EMPTY_DAY)
    assert has_events[EMPTY_DAY].description == (
        f"no events on {EMPTY_DAY}: ingestion found no landing file in {folder} and wrote an "
        "empty partition"
    )
    assert has_events[EMPTY_DAY].metadata["landing_folder"].value == folder
    assert has_events[EMPTY_DAY].metadata["rows"].value == 0
    # The spike blocks the downstream asset of the whole range (one step for all its days).
    assert _downstream_days(result) == []
    assert _steps(result, "STEP_FAILURE") == ["lake__raw_events_raw_events_quality"]
    assert "lake__raw_events_raw_events_has_events" in _steps(result, "STEP_SUCCESS")


def test_a_check_that_raises_fails_each_day_naming_the_error(events_home, monkeypatch):
    """A lineage manifest cut short made the check raise: Dagster records that as an execution
    failure, which the automation's ``check_failed`` does not see, and the daemon then built
    the day's features on data nobody had judged. Each day now fails, naming the error."""
    import json

    import recassets.quality.checks as checks

    def cut_short(paths, day):
        return json.loads('{"table": "raw_events", "day": ')

    monkeypatch.setattr(checks, "events_manifest", cut_short)
    result = _run_events(events_home, GOOD_DAY)
    assert not result.success
    evaluation = _evaluations(result, "raw_events_quality")[GOOD_DAY]
    assert (evaluation.passed, evaluation.severity) == (False, AssetCheckSeverity.ERROR)
    md = evaluation.metadata["failing_expectations"].value
    assert "| check_ran |  |  | error=JSONDecodeError: Expecting value: line 1 column 32" in md
    assert _downstream_days(result) == []  # the run's own downstream: skipped, as before
    monkeypatch.undo()  # and the day passes again once the cause is gone
    assert _evaluations(_run_events(events_home, GOOD_DAY), "raw_events_quality")[GOOD_DAY].passed


def _partition_rows(paths) -> dict[str, int]:
    from recassets.spark import get_spark

    rows = get_spark().read.format("delta").load(paths.table("raw_events")).groupBy("dt").count()
    return {r["dt"].isoformat(): r["count"] for r in rows.orderBy("dt").collect()}


# --- feature tables: stand-in feature assets write the rows the checks then read -------------

FEATURE_DAY_1, FEATURE_DAY_2 = "2026-01-01", "2026-01-02"
BREAK = {  # what goes wrong on day 2, one thing per table
    "user_features": ("clicks_28d", -1),
    "item_features": ("ctr_7d", 1.5),
    "cohort_features": ("category", None),
}


def _stand_in(table: str):
    @asset(
        key=AssetKey(["lake", table]),
        partitions_def=DAILY,
        backfill_policy=BackfillPolicy.single_run(),
    )
    def _features(context: AssetExecutionContext, spark: SparkResource, lake: LakeResource) -> None:
        days = list(context.partition_keys)
        rows = []
        for day in days:
            day_rows = feature_records(table, day, 6)
            if day == FEATURE_DAY_2:
                column, value = BREAK[table]
                day_rows[0][column] = value
            rows += day_rows
        df = spark.session().createDataFrame(rows, feature_ddl(table))
        df.write.format("delta").mode("overwrite").option(
            "replaceWhere", "dt IN (" + ", ".join(f"DATE'{d}'" for d in days) + ")"
        ).partitionBy("dt").save(lake.paths().table(table))

    return _features


@asset(
    key=AssetKey(["test", "features_downstream"]),
    deps=[AssetKey(["lake", "user_features"])],
    partitions_def=DAILY,
    backfill_policy=BackfillPolicy.single_run(),
)
def features_downstream() -> None:
    return None


def test_feature_checks_pass_then_fail_and_block(make_home, spark):
    paths = make_home("quality_dagster_features")
    instance = DagsterInstance.ephemeral()
    defs = [
        *(_stand_in(t) for t in BREAK),
        user_features_quality, item_features_quality, cohort_features_quality, features_downstream,
    ]  # fmt: skip

    def run(**kwargs):
        return materialize(
            defs, resources=_resources(paths), instance=instance, raise_on_error=False, **kwargs
        )

    first = run(partition_key=FEATURE_DAY_1)
    assert first.success
    assert {(e.check_name, e.partition, e.passed) for e in first.get_asset_check_evaluations()} == {
        ("user_features_quality", FEATURE_DAY_1, True),
        ("item_features_quality", FEATURE_DAY_1, True),
        ("cohort_features_quality", FEATURE_DAY_1, True),
    }
    assert [
        m.partition for m in first.asset_materializations_for_node("test__features_downstream")
    ] == [FEATURE_DAY_1]

    # Both days in one run: each day recorded on its partition; day 2 fails every table.
    both = run(tags=_range_tags(FEATURE_DAY_1, FEATURE_DAY_2))
    assert not both.success
    evaluations = {(e.check_name, e.partition): e for e in both.get_asset_check_evaluations()}
    assert {key: e.passed for key, e in evaluations.items()} == {
        (f"{t}_quality", day): day == FEATURE_DAY_1 for t in BREAK for day in (FEATURE_DAY_1, FEATURE_DAY_2)
    }  # fmt: skip
    day_2 = {name: e for (name, day), e in evaluations.items() if day == FEATURE_DAY_2}
    assert day_2["user_features_quality"].metadata["sample_rows"].value == {
        "expect_column_values_to_be_between(clicks_28d)": [{"user_id": 1, "clicks_28d": -1}]
    }
    assert day_2["item_features_quality"].metadata["sample_rows"].value == {
        "expect_column_values_to_be_between(ctr_7d)": [{"item_id": 1, "ctr_7d": 1.5}]
    }
    assert day_2["cohort_features_quality"].metadata["sample_rows"].value == {
        "expect_column_values_to_not_be_null(category)": [
            {"country": "C0", "age_bucket": "18-24", "category": None}
        ]
    }
    assert day_2["user_features_quality"].metadata["inputs"].value["previous_partition"] == (
        FEATURE_DAY_1
    )
    day_1 = evaluations[("user_features_quality", FEATURE_DAY_1)].metadata
    assert (day_1["failed_expectations"].value, day_1["sample_rows"].value) == (0, {})
    assert both.asset_materializations_for_node("test__features_downstream") == []
    assert "test__features_downstream" not in _steps(both, "STEP_START")
