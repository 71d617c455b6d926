"""feature_store materialized by Dagster for one partition against tiny Delta feature tables,
with its blocking skew check: passing on a fresh store, failing on a tampered one. The online
store is the FeatureStoreResource's: SQLite by default whatever the environment says, Redis
only when the resource names it."""

from __future__ import annotations

import sqlite3

import pytest
from dagster import (
    AssetCheckKey,
    AssetKey,
    AssetSelection,
    BackfillPolicy,
    DagsterInstance,
    materialize,
)

from assets import keys
from assets.featurestore import ASSETS, CHECKS, feature_store, feature_store_training_serving_skew
from assets.partitions import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from recassets.featurestore import config as cfg
from recassets.featurestore import wire
from resources import FeatureStoreResource, LakeResource
from tests.unit.featurestore.factories import day_rows, write_day

DAY0, DAY = "2026-01-02", "2026-01-03"
CHECK_KEY = AssetCheckKey(keys.FEATURE_STORE, "feature_store_training_serving_skew")
NO_REDIS = "redis://127.0.0.1:9/0"  # the discard port: nothing answers there


def resources(paths, redis_url=None):
    return {
        "lake": LakeResource(home=paths.home),
        "feature_store": FeatureStoreResource(redis_url=redis_url),
    }


@pytest.fixture(scope="module")
def lake(make_home, spark):
    with pytest.MonkeyPatch.context() as mp:
        # Read at the edge only (build_resources): the library and the assets never look at
        # it, so the default resource still means SQLite.
        mp.setenv(cfg.REDIS_URL_ENV, NO_REDIS)
        paths = make_home("feature_store_asset")
        write_day(spark, paths, DAY0, day_rows(DAY0, range(1, 9), range(1, 16)))
        write_day(spark, paths, DAY, day_rows(DAY, range(1, 9), range(1, 16)))
        yield paths


def run(paths, selection=None, partition_key=DAY, tags=None, redis_url=None):
    return materialize(
        [*ASSETS, *CHECKS],
        selection=selection,
        partition_key=partition_key,
        tags=tags,
        resources=resources(paths, redis_url),
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )


@pytest.fixture(scope="module")
def first_run(lake):
    return run(lake)


def test_the_asset_is_wired_as_designed():
    assert feature_store.key == AssetKey(["featurestore", "feature_store"])
    assert feature_store.group_names_by_key[feature_store.key] == "features"
    assert set(feature_store.asset_deps[feature_store.key]) == {
        AssetKey(["lake", "user_features"]), AssetKey(["lake", "item_features"]), AssetKey(["lake", "cohort_features"]),
    }  # fmt: skip
    assert feature_store.backfill_policy == BackfillPolicy.single_run()
    (spec,) = feature_store_training_serving_skew.check_specs
    assert (spec.key, spec.blocking) == (CHECK_KEY, True)


def test_the_check_fails_before_anything_is_served(paths):
    result = materialize(
        [*ASSETS, *CHECKS],
        selection=AssetSelection.checks(feature_store_training_serving_skew),
        resources=resources(paths),
        instance=DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert evaluation.description == "the online store serves nothing: no day has been materialized"


def test_materializing_a_partition_loads_the_store_and_the_check_passes(lake, first_run):
    assert first_run.success
    (mat,) = first_run.asset_materializations_for_node("featurestore__feature_store")
    assert mat.partition == DAY
    meta = mat.metadata
    assert meta["entities_materialized"].value == {
        "user_daily_features": 8, "item_daily_features": 15, "cohort_daily_features": 8,
    }  # fmt: skip
    assert meta["dagster/row_count"].value == 31
    assert meta["online_store"].value == f"sqlite:{lake.artifacts}/feast/online.db"
    assert meta["registry"].value == f"{lake.artifacts}/feast/registry.db"
    assert (meta["wrote_online"].value, meta["served_day"].value) == (True, DAY)

    (evaluation,) = first_run.get_asset_check_evaluations()
    assert (evaluation.asset_check_key, evaluation.passed) == (CHECK_KEY, True)
    assert evaluation.metadata["entities_checked"].value == {
        "user_daily_features": 8, "item_daily_features": 15, "cohort_daily_features": 8,
    }  # fmt: skip
    assert evaluation.metadata["mismatches"].value == 0
    assert evaluation.metadata["checked_day"].value == DAY


def test_a_range_is_one_run_that_ends_serving_the_latest_day(lake, first_run):
    tags = {PARTITION_RANGE_START_TAG: DAY0, PARTITION_RANGE_END_TAG: DAY}
    result = run(lake, partition_key=None, tags=tags)
    assert result.success
    mats = result.asset_materializations_for_node("featurestore__feature_store")
    assert sorted(m.partition for m in mats) == [DAY0, DAY]
    by_day = {m.partition: m.metadata for m in mats}
    # DAY was served already: DAY0 goes offline only, DAY is loaded again; each day its own
    # figures and lineage manifest.
    assert {d: m["wrote_online"].value for d, m in by_day.items()} == {DAY0: False, DAY: True}
    for day, meta in by_day.items():
        assert meta["entities_materialized"].value == {
            "user_daily_features": 8, "item_daily_features": 15, "cohort_daily_features": 8,
        }  # fmt: skip
        assert meta["lineage_manifest"].value.endswith(f"feature_store/dt={day}.json")
        assert meta["served_day"].value == DAY and meta["run_days"].value == 2
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed and evaluation.metadata["checked_day"].value == DAY


def test_a_redis_url_on_the_resource_reaches_the_library(lake, first_run):
    # The same check against Redis at NO_REDIS: it reads there (and fails: nothing answers),
    # where the default resource read the SQLite store and passed.
    result = run(
        lake,
        selection=AssetSelection.checks(feature_store_training_serving_skew),
        partition_key=None,
        redis_url=NO_REDIS,
    )
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "127.0.0.1" in str(failure.step_failure_data.error)


def test_the_check_fails_when_serving_disagrees_with_the_lake(lake, first_run):
    from feast.protos.feast.types.Value_pb2 import Value

    assert first_run.success
    key = wire.serialize_entity_key("item_id", 4)
    with sqlite3.connect(cfg.sqlite_path(lake)) as conn:
        conn.execute(
            "UPDATE recassets_item_daily_features SET value = ? WHERE entity_key = ? AND feature_name = 'category'",
            (Value(string_val="poisoned").SerializeToString(), key),
        )
    # the check alone, as from the UI's "Execute check"
    result = run(
        lake,
        selection=AssetSelection.checks(feature_store_training_serving_skew),
        partition_key=None,
    )
    assert not result.success  # blocking: the run fails
    assert result.asset_materializations_for_node("featurestore__feature_store") == []
    (evaluation,) = result.get_asset_check_evaluations()
    assert (evaluation.asset_check_key, evaluation.passed) == (CHECK_KEY, False)
    assert evaluation.metadata["mismatches"].value == 1
    assert evaluation.metadata["mismatched_entities"].value == {"item_daily_features": 1}
    assert (
        "| item_daily_features | 4 | category | 'cat4' | 'poisoned' |"
        in evaluation.metadata["first_mismatches"].value
    )
