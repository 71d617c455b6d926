"""Two writers of one Delta table never run at once, whoever launched them, and transient
failures are retried: the instance ``recassets init`` / ``make dev`` / the CLI write
(``recassets.cli.DAGSTER_YAML``) as Dagster itself loads it, and the pools the writing assets
carry. The slots are claimed the way Dagster's executors claim them before a step
(``InstanceConcurrencyContext``), so no real run has to be raced against another."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.test_utils import create_run_for_test

from definitions import defs
from recassets import cli

# Each asset that writes a Delta table (or the online store), and its pool. The three ingested
# tables share one: they all write the quarantine.
WRITERS = {
    "lake/raw_events": "lake_ingest",
    "lake/users": "lake_ingest",
    "lake/items": "lake_ingest",
    "lake/user_features": "lake_features",
    "lake/item_features": "lake_features",
    "lake/cohort_features": "lake_features",
    "lake/training_examples": "lake_training_examples",
    "featurestore/feature_store": "feast_online_store",
}


@pytest.fixture
def instance(tmp_path: Path):
    assert cli.write_dagster_yaml(tmp_path)
    with DagsterInstance.from_config(str(tmp_path)) as inst:
        yield inst


def test_every_table_writer_carries_its_pool():
    graph = defs.resolve_asset_graph()
    pools = {key: graph.get(AssetKey.from_user_string(key)).pools for key in WRITERS}
    assert pools == {key: {pool} for key, pool in WRITERS.items()}


def test_the_instance_limits_each_pool_to_one_and_retries_runs(instance):
    assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
    assert instance.event_log_storage.supports_global_concurrency_limits
    assert instance.run_retries_enabled
    assert instance.run_retries_max_retries == 2
    assert instance.run_retries_retry_on_asset_or_op_failure  # a dead JVM fails the step
    assert not instance.telemetry_enabled


def test_two_runs_writing_one_table_cannot_run_at_once(instance):
    # Run a (say the landing sensor's) holds raw_events' pool; run b (the UI, the CLI) waits.
    a = create_run_for_test(instance, job_name="ingest_job")
    b = create_run_for_test(instance, job_name="__ASSET_JOB")
    pool = WRITERS["lake/raw_events"]
    with InstanceConcurrencyContext(instance, a) as in_a:
        assert in_a.claim(pool, "lake__raw_events")
        with InstanceConcurrencyContext(instance, b) as in_b:
            assert not in_b.claim(pool, "lake__users")  # the same quarantine: waits too
            # Another table's pool is free: unrelated writers are not serialized.
            assert in_b.claim(WRITERS["lake/training_examples"], "lake__training_examples")
        in_a.free_step("lake__raw_events")
    with InstanceConcurrencyContext(instance, b) as in_b:
        assert in_b.claim(pool, "lake__users")  # a's step ended: b's goes


def test_init_writes_the_instance_once_and_upgrades_only_its_own(tmp_path: Path):
    target = tmp_path / "dagster.yaml"
    target.write_text("telemetry:\n  enabled: false\n")  # what `make dev` wrote before
    assert cli.write_dagster_yaml(tmp_path)
    assert target.read_text() == cli.DAGSTER_YAML
    assert not cli.write_dagster_yaml(tmp_path)  # up to date
    target.write_text("storage:\n  postgres: {}\n")  # an operator's own: left alone
    assert not cli.write_dagster_yaml(tmp_path)
    assert target.read_text() == "storage:\n  postgres: {}\n"
