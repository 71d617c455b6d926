"""The Feast repository matches the snapshots it reads, and feature_store.yaml follows Paths."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from recassets.features.schema import KEYS
from recassets.featurestore import config as cfg
from recassets.featurestore.snapshot import EVENT_TIMESTAMP, export_offline_snapshot, join_key
from tests.unit.featurestore.conftest import DAY1

ROOT = Path(__file__).resolve().parents[3]


def feast_type(arrow_type: pa.DataType):
    from feast.types import Array, Float32, Float64, Int64, String

    scalar = {pa.int64(): Int64, pa.float64(): Float64, pa.float32(): Float32, pa.string(): String}
    if pa.types.is_list(arrow_type):
        return Array(scalar[arrow_type.value_type])
    return scalar[arrow_type]


@pytest.mark.parametrize("table", ["user_features", "item_features", "cohort_features"])
def test_each_view_is_exactly_its_snapshot(feature_lake, table):
    from recassets.featurestore import repo

    view = repo.VIEW_OF_TABLE[table]
    schema = pq.read_schema(export_offline_snapshot(feature_lake, table, DAY1).path)
    key = join_key(table)
    # cohort: its key columns are folded into cohort_id, not features
    not_features = {key, EVENT_TIMESTAMP, *(KEYS[table] if table == "cohort_features" else ())}
    expected = {f.name: feast_type(f.type) for f in schema if f.name not in not_features}
    assert {f.name: f.dtype for f in view.features} == expected
    assert view.batch_source.timestamp_field == EVENT_TIMESTAMP
    assert view.batch_source.path.endswith(f"offline/{table}/*.parquet")
    (entity,) = [e for e in repo.ENTITIES if e.name in view.entities]
    assert entity.join_key == key


def test_the_registry_reads_the_snapshots_of_the_home_it_was_applied_from(lake_copy, tmp_path):
    """DuckDB resolves a relative source path against the working folder, so apply writes
    absolute ones: a second home applied in the same process names its own snapshots, and
    the first home's registry still names the first's."""
    import shutil

    from recassets.featurestore import apply, get_store
    from tests.conftest import home_at

    other = home_at((tmp_path / "other").absolute())
    shutil.copytree(lake_copy.lake, other.lake)
    for paths in (lake_copy, other):
        apply(paths)

    def source_paths(paths):
        store = get_store(paths)
        store.refresh_registry()
        return {v.name: v.batch_source.path for v in store.list_feature_views()}

    first, second = source_paths(lake_copy), source_paths(other)
    for view, path in first.items():
        table = path.split("/")[-2]
        assert path == str(cfg.feast_dir(lake_copy) / "offline" / table / "*.parquet")
        assert second[view] == str(cfg.feast_dir(other) / "offline" / table / "*.parquet")
    assert first != second


def test_services_name_what_each_model_reads():
    from recassets.featurestore import repo

    services = repo.catalog()["services"]
    assert set(services) == {"retrieval_v1", "ranking_v1"}
    assert set(services["retrieval_v1"]) == {"user_daily_features", "item_daily_features"}
    assert "history_item_ids" in services["retrieval_v1"]["user_daily_features"]
    assert "seen_item_ids" in services["retrieval_v1"]["user_daily_features"]
    assert "embedding" not in services["retrieval_v1"]["item_daily_features"]
    views = repo.catalog()["views"]
    for view, features in services["ranking_v1"].items():
        assert features == list(views[view]["features"])  # every feature of every view
    assert {"ctr_7d", "trending", "embedding"} <= set(services["ranking_v1"]["item_daily_features"])


def test_feature_store_yaml_defaults_to_sqlite_under_artifacts(paths, monkeypatch):
    from feast import RepoConfig

    # the variable is read at the edges (the Dagster resource, the service), not here
    monkeypatch.setenv(cfg.REDIS_URL_ENV, "redis://10.0.0.7:6380/2")
    written = yaml.safe_load(cfg.write_feature_store_yaml(paths).read_text())
    assert written["registry"]["path"] == f"{paths.artifacts}/feast/registry.db"
    assert written["online_store"] == {
        "type": "sqlite",
        "path": f"{paths.artifacts}/feast/online.db",
    }
    assert written["entity_key_serialization_version"] == 3
    config = RepoConfig(**written)
    assert config.online_store.type == "sqlite" and config.offline_store.type == "duckdb"


def test_feature_store_yaml_uses_the_redis_url_given_without_its_password(paths):
    url = "redis://:s3cret@10.0.0.7:6380/2"
    config = cfg.repo_config(paths, url)
    assert config["online_store"] == {
        "type": "redis",
        "connection_string": '10.0.0.7:6380,db=2,password="s3cret"',
        "skip_dedup": True,  # a corrected day is written again (store.materialize_day decides)
    }
    text = cfg.write_feature_store_yaml(paths, url).read_text()
    assert "s3cret" not in text and "password=${RECASSETS_REDIS_PASSWORD}" in text
    assert cfg.online_store_settings(paths, url).describe() == "redis:redis://:***@10.0.0.7:6380/2"
    assert (
        cfg.redis_connection_string("rediss://u:p@h") == 'h:6379,ssl=true,username="u",password="p"'
    )
    with pytest.raises(ValueError, match="redis:// or rediss://"):
        cfg.redis_connection_string("http://h:1")


@pytest.mark.parametrize("password", ["s3cr,et", "1e3", "null", "true", 'q"u=o\\te', "pässwörd"])
def test_a_password_reaches_feast_as_it_was_written(password):
    """Feast splits its connection string on commas and json-decodes each value: ``s3cr,et``
    became the password ``s3cr`` and a host ``et``; ``1e3`` a number, ``null`` None."""
    from urllib.parse import quote

    from feast.infra.online_stores.redis import RedisOnlineStore

    url = f"redis://:{quote(password, safe='')}@10.0.0.7:6380/2"
    nodes, params = RedisOnlineStore._parse_connection_string(cfg.redis_connection_string(url))
    assert nodes == [{"host": "10.0.0.7", "port": "6380"}]
    assert params == {"db": 2, "password": password}


def test_importing_the_library_does_not_import_feast():
    code = (
        "import sys, recassets.featurestore as f\n"
        "from recassets.featurestore.online import OnlineFeatureReader\n"
        "from recassets.featurestore import materialize_day, skew_check, export_offline_snapshot\n"
        "assert 'feast' not in sys.modules and 'torch' not in sys.modules, 'feast imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
