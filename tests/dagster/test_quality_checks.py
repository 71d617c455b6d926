"""The blocking quality checks in Dagster runs, with real Spark and Delta on a temporary home:
a good partition lets the downstream asset materialize, a bad one fails the check and the
downstream asset of the same run is not materialized."""

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
from dagster._core.storage.tags import (
    ASSET_PARTITION_RANGE_END_TAG,
    ASSET_PARTITION_RANGE_START_TAG,
)

from assets.ingest import raw_events
from assets.partitions import DAILY
from assets.quality import (
    CHECKS,
    cohort_features_quality,
    item_features_quality,
    raw_events_quality,
    user_features_quality,
)
from recassets.landing import write_landing_file
from recassets.synthetic import SyntheticConfig, build_world, generate, generate_day
from resources import LakeResource, SparkResource
from tests.unit.quality.frames import feature_ddl, feature_records

HISTORY = ("2026-01-01", "2026-01-03")  # three normal days: the volume band's history
GOOD_DAY, SPIKE_DAY = "2026-01-04", "2026-01-05"
SYNTHETIC = {"days": 5, "events_per_day": 2000, "initial_users": 200, "initial_items": 100}


def _resources(paths):
    return {"spark": SparkResource(), "lake": LakeResource(home=paths.home)}


# Same backfill policy as raw_events, so that Dagster need not reconcile the two in one job.
@asset(
    key=AssetKey(["test", "events_downstream"]),
    deps=[raw_events],
    partitions_def=DAILY,
    backfill_policy=BackfillPolicy.single_run(),
)
def events_downstream(context: AssetExecutionContext) -> MaterializeResult:
    return MaterializeResult(metadata={"day": context.partition_key})


def test_checks_are_blocking_daily_and_named_after_their_assets():
    specs = [next(iter(c.check_specs)) for c in CHECKS]
    assert [(s.asset_key.path, s.name) for s in specs] == [
        (["lake", "raw_events"], "raw_events_quality"),
        (["lake", "user_features"], "user_features_quality"),
        (["lake", "item_features"], "item_features_quality"),
        (["lake", "cohort_features"], "cohort_features_quality"),
    ]
    assert all(s.blocking for s in specs)
    assert all(s.partitions_def is DAILY for s in specs)


@pytest.fixture(scope="module")
def events_home(make_home, spark):
    """Five landed days; the fifth replaced by one four times the usual volume (a replayed
    producer): every row valid, so ingestion takes it all and only the volume band sees it."""
    paths = make_home("quality_dagster_events")
    generate(paths, SyntheticConfig(**SYNTHETIC))
    spike = SyntheticConfig(**{**SYNTHETIC, "events_per_day": 8000})
    events, _, _ = generate_day(build_world(spike), spike, 4)
    write_landing_file(paths, "events", dt.date.fromisoformat(SPIKE_DAY), events, name="part-00000")
    history = materialize(
        [raw_events],
        resources=_resources(paths),
        instance=DagsterInstance.ephemeral(),
        tags={
            ASSET_PARTITION_RANGE_START_TAG: HISTORY[0],
            ASSET_PARTITION_RANGE_END_TAG: HISTORY[1],
        },
    )
    assert history.success
    return paths


def _run_events_day(paths, day):
    return materialize(
        [raw_events, raw_events_quality, events_downstream],
        resources=_resources(paths),
        instance=DagsterInstance.ephemeral(),
        partition_key=day,
        raise_on_error=False,
    )


def _steps(result, event_type: str) -> list[str]:
    return [e.step_key for e in result.all_events if e.event_type_value == event_type]


def _downstream_days(result) -> list[str]:
    return [m.partition for m in result.asset_materializations_for_node("test__events_downstream")]


def test_good_raw_events_day_passes_and_downstream_materializes(events_home):
    result = _run_events_day(events_home, GOOD_DAY)
    assert result.success
    [evaluation] = result.get_asset_check_evaluations()
    assert (evaluation.check_name, evaluation.passed, evaluation.partition) == (
        "raw_events_quality",
        True,
        GOOD_DAY,
    )
    assert evaluation.metadata["failed_expectations"].value == 0
    assert evaluation.metadata["statistics"].value[GOOD_DAY]["evaluated_expectations"] == 9
    inputs = evaluation.metadata["inputs"].value[GOOD_DAY]
    assert len(inputs["trailing_daily_counts"]) == 3 and inputs["notes"] == []
    assert _downstream_days(result) == [GOOD_DAY]


def test_volume_spike_fails_the_blocking_check_and_stops_downstream(events_home):
    result = _run_events_day(events_home, SPIKE_DAY)
    assert not result.success
    # raw_events itself is written (ingestion found nothing wrong with any row)...
    assert [m.partition for m in result.asset_materializations_for_node("lake__raw_events")] == [
        SPIKE_DAY
    ]
    [evaluation] = result.get_asset_check_evaluations()
    assert (evaluation.passed, evaluation.severity, evaluation.partition) == (
        False,
        AssetCheckSeverity.ERROR,
        SPIKE_DAY,
    )
    meta = evaluation.metadata
    assert meta["failed_expectations"].value == 1
    inputs = meta["inputs"].value[SPIKE_DAY]
    lo, hi = inputs["row_count_bounds"]
    md = meta["failing_expectations"].value
    assert (
        f"| expect_table_row_count_to_be_between |  | min_value={lo}, max_value={hi} | observed_value="
        in md
    )
    assert meta["statistics"].value[SPIKE_DAY]["unsuccessful_expectations"] == 1
    assert meta["sample_rows"].value == {SPIKE_DAY: {}}  # a table-level failure has no rows
    # ...but nothing downstream of it runs in the same run.
    assert _downstream_days(result) == []
    assert _steps(result, "STEP_FAILURE") == ["lake__raw_events_raw_events_quality"]
    assert _steps(result, "STEP_START") == [
        "lake__raw_events",
        "lake__raw_events_raw_events_quality",
    ]


# --- feature tables: stand-in feature assets write the rows the checks then read -------------

FEATURE_DAY_1, FEATURE_DAY_2 = "2026-01-01", "2026-01-02"
BREAK = {  # what goes wrong on day 2, one thing per table
    "user_features": ("clicks_28d", -1),
    "item_features": ("ctr_7d", 1.5),
    "cohort_features": ("category", None),
}


def _stand_in(table: str):
    @asset(key=AssetKey(["lake", table]), partitions_def=DAILY)
    def _features(context: AssetExecutionContext, spark: SparkResource, lake: LakeResource) -> None:
        day = context.partition_key
        rows = feature_records(table, day, 6)
        if day == FEATURE_DAY_2:
            column, value = BREAK[table]
            rows[0][column] = value
        df = spark.session().createDataFrame(rows, feature_ddl(table))
        df.write.format("delta").mode("append").partitionBy("dt").save(lake.paths().table(table))

    return _features


@asset(
    key=AssetKey(["test", "features_downstream"]),
    deps=[AssetKey(["lake", "user_features"])],
    partitions_def=DAILY,
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

    def run(day):
        return materialize(
            defs,
            resources=_resources(paths),
            instance=instance,
            partition_key=day,
            raise_on_error=False,
        )

    first = run(FEATURE_DAY_1)
    assert first.success
    assert {(e.check_name, e.passed) for e in first.get_asset_check_evaluations()} == {
        ("user_features_quality", True), ("item_features_quality", True), ("cohort_features_quality", True),
    }  # fmt: skip
    assert [
        m.partition for m in first.asset_materializations_for_node("test__features_downstream")
    ] == [FEATURE_DAY_1]

    second = run(FEATURE_DAY_2)
    assert not second.success
    evaluations = {e.check_name: e for e in second.get_asset_check_evaluations()}
    assert {name: e.passed for name, e in evaluations.items()} == {
        "user_features_quality": False, "item_features_quality": False, "cohort_features_quality": False,
    }  # fmt: skip
    assert evaluations["user_features_quality"].metadata["sample_rows"].value == {
        FEATURE_DAY_2: {
            "expect_column_values_to_be_between(clicks_28d)": [{"user_id": 1, "clicks_28d": -1}]
        }
    }
    assert evaluations["item_features_quality"].metadata["sample_rows"].value == {
        FEATURE_DAY_2: {
            "expect_column_values_to_be_between(ctr_7d)": [{"item_id": 1, "ctr_7d": 1.5}]
        }
    }
    assert evaluations["cohort_features_quality"].metadata["sample_rows"].value == {
        FEATURE_DAY_2: {
            "expect_column_values_to_not_be_null(category)": [
                {"country": "C0", "age_bucket": "18-24", "category": None}
            ]
        }
    }
    assert second.asset_materializations_for_node("test__features_downstream") == []
    assert "test__features_downstream" not in _steps(second, "STEP_START")
