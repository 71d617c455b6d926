"""Two writers of one Delta table never run at once, whoever launched them, and transient
failures are retried: the instance ``recassets init`` / ``make dev`` / the CLI write
(``recassets.instance.DAGSTER_YAML``) as Dagster itself loads it, and the pools the writing assets
carry. The slots are claimed the way Dagster's executors claim them before a step
(``InstanceConcurrencyContext``), so no real run has to be raced against another."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.test_utils import create_run_for_test

from definitions import defs
from recassets import instance as embedded

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
    assert embedded.write_dagster_yaml(tmp_path)
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
    assert embedded.write_dagster_yaml(tmp_path)
    assert target.read_text() == embedded.DAGSTER_YAML
    assert not embedded.write_dagster_yaml(tmp_path)  # up to date
    target.write_text("storage:\n  postgres: {}\n")  # an operator's own: left alone
    assert not embedded.write_dagster_yaml(tmp_path)
    assert target.read_text() == "storage:\n  postgres: {}\n"
    target.write_bytes(b"\xff\xfe")  # no UTF-8 (it was an unnamed UnicodeDecodeError): not ours
    assert not embedded.write_dagster_yaml(tmp_path)
    assert target.read_bytes() == b"\xff\xfe"


# --- the single writer that keeps an s3a:// lake safe ---------------------------------------
# S3 has no atomic rename: Delta's S3SingleDriverLogStore is safe only while one driver writes a
# table (docs/deploy.md, "A lake on an S3 API"). The pools are what makes it one driver, so every
# lake writer must carry one and every instance must hold each pool to one step.

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def single_writer_problems(pools: dict[str, set[str]], instance: dict) -> list[str]:
    """Lake writers without a pool, and pool limits above one, in a ``dagster.yaml``'s
    settings (``instance``); ``pools``: asset key -> its pools."""
    found = [f"{key} writes the lake without a pool" for key, p in pools.items() if not p]
    config = instance.get("concurrency", {}).get("pools", {})
    if config.get("default_limit") != 1:
        found.append(f"pools.default_limit is {config.get('default_limit')}, not 1")
    found += [
        f"pool {name} admits {limit} steps" for name, limit in config.items()
        if name != "default_limit" and isinstance(limit, int) and limit > 1
    ]  # fmt: skip
    return found


def lake_writer_pools() -> dict[str, set[str]]:
    graph = defs.resolve_asset_graph()
    return {
        key.to_user_string(): set(graph.get(key).pools or ())
        for key in graph.materializable_asset_keys
        if key.path[0] == "lake"
    }


@pytest.mark.parametrize("source", ["embedded", "deploy"])
def test_every_lake_writer_is_the_only_one_of_its_table(source):
    import yaml

    text = embedded.DAGSTER_YAML if source == "embedded" else (DEPLOY / "dagster.yaml").read_text()
    pools = lake_writer_pools()
    assert "lake/serving_log" in pools and "lake/training_examples" in pools
    assert single_writer_problems(pools, yaml.safe_load(text)) == []


def test_a_writer_without_a_pool_or_a_pool_of_two_is_caught():
    ok = {"concurrency": {"pools": {"default_limit": 1}}}
    assert single_writer_problems({"lake/x": {"lake_x"}}, ok) == []
    assert single_writer_problems({"lake/x": set()}, ok) == [
        "lake/x writes the lake without a pool"
    ]
    two = {"concurrency": {"pools": {"default_limit": 2}}}
    assert single_writer_problems({}, two) == ["pools.default_limit is 2, not 1"]
    assert single_writer_problems({}, {}) == ["pools.default_limit is None, not 1"]
    three = {"concurrency": {"pools": {"default_limit": 1, "lake_features": 3}}}
    assert single_writer_problems({}, three) == ["pool lake_features admits 3 steps"]
