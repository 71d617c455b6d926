"""Resources are chosen in one place (``build_resources``) from the environment: each variable
that is set reaches its field as an ``EnvVar`` (resolved when a run starts), every other field
keeps the embedded default, and nothing below the resources reads the environment."""

# No `from __future__ import annotations`: Dagster reads the resource annotations.
import pytest
from dagster import AssetExecutionContext, DagsterInstance, EnvVar, asset, materialize

from recassets.paths import Paths
from resources import (
    BentoStoreResource,
    FeatureStoreResource,
    LakeResource,
    QualityResource,
    SparkResource,
    build_resources,
)

EVERY = {
    "RECASSETS_SPARK_MASTER": "spark://spark:7077",
    "RECASSETS_SPARK_REMOTE": "sc://spark-connect:15002",
    "RECASSETS_SPARK_CONF": "spark.sql.shuffle.partitions=64, spark.executor.memory=8g",
    "RECASSETS_SPARK_JARS": "/jars/delta-spark.jar,/jars/delta-storage.jar",
    "RECASSETS_HOME": "/data/recassets",
    "RECASSETS_LANDING": "/incoming",
    "RECASSETS_LAKE": "s3a://bucket/lake",
    "RECASSETS_ARTIFACTS": "/models",
    "RECASSETS_LINEAGE": "/lineage",
    "RECASSETS_REDIS_URL": "redis://:s3cret@redis:6379/2",
    "RECASSETS_BENTOML_HOME": "/bentos",
    "RECASSETS_VOLUME_BAND": "off",
}


def test_nothing_set_is_the_embedded_default():
    assert build_resources({}) == {
        "spark": SparkResource(),
        "lake": LakeResource(),
        "feature_store": FeatureStoreResource(),
        "bento_store": BentoStoreResource(),
        "quality": QualityResource(),
    }
    assert SparkResource().master == "local[*]"
    assert LakeResource().paths() == Paths.at(".recassets")
    assert FeatureStoreResource().online_store(Paths.at("/h")).describe() == (
        "sqlite:/h/artifacts/feast/online.db"
    )
    assert QualityResource().band() == 0.5


def test_each_variable_set_becomes_an_env_var_of_its_field():
    r = build_resources({**EVERY, "RECASSETS_LINEAGE": ""})  # empty: unset
    assert r["spark"].master == EnvVar("RECASSETS_SPARK_MASTER")
    assert r["spark"].remote == EnvVar("RECASSETS_SPARK_REMOTE")
    assert r["spark"].conf_line == EnvVar("RECASSETS_SPARK_CONF")
    assert r["lake"].lake == EnvVar("RECASSETS_LAKE")
    assert r["lake"].lineage is None
    # the secret stays a reference: the definitions (and the UI) hold the name, not the value
    assert r["feature_store"].redis_url == EnvVar("RECASSETS_REDIS_URL")
    assert "s3cret" not in repr(r)
    assert r["bento_store"].home == EnvVar("RECASSETS_BENTOML_HOME")
    assert r["quality"].volume_band == EnvVar("RECASSETS_VOLUME_BAND")


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        ("RECASSETS_VOLUME_BAND", "abc", "RECASSETS_VOLUME_BAND='abc'"),
        ("RECASSETS_LANDING_SETTLE_SECONDS", "1.5", "RECASSETS_LANDING_SETTLE_SECONDS='1.5'"),
        ("RECASSETS_LANDING_SETTLE_SECONDS", "-1", "RECASSETS_LANDING_SETTLE_SECONDS=-1"),
        ("RECASSETS_LANDING_SETTLE_TIMEOUT_SECONDS", "abc", "SETTLE_TIMEOUT_SECONDS='abc'"),
    ],
)
def test_a_bad_setting_stops_the_definitions_naming_it(name, value, says):
    """Parsed when the definitions load: a bad band failed the volume check after ingestion
    had committed; a bad settle time every run and every landing-sensor tick."""
    with pytest.raises(ValueError) as refused:
        build_resources({name: value})
    assert says in str(refused.value)
    build_resources({"RECASSETS_VOLUME_BAND": "0.3", "RECASSETS_LANDING_SETTLE_SECONDS": "0"})


def test_a_run_resolves_the_variables_into_the_library_arguments(monkeypatch):
    for name, value in EVERY.items():
        monkeypatch.setenv(name, value)
    seen = {}

    @asset
    def probe(
        context: AssetExecutionContext,
        spark: SparkResource,
        lake: LakeResource,
        feature_store: FeatureStoreResource,
        bento_store: BentoStoreResource,
        quality: QualityResource,
    ) -> None:
        paths = bento_store.paths(lake.paths())
        seen.update(
            master=spark.master,
            remote=spark.remote,
            conf=spark.spark_conf(),
            jars=spark.jars,
            paths=paths,
            online=feature_store.online_store(paths).describe(),
            band=quality.band(),
        )

    result = materialize([probe], resources=build_resources(), instance=DagsterInstance.ephemeral())
    assert result.success
    assert seen == {
        "master": "spark://spark:7077",
        "remote": "sc://spark-connect:15002",
        "conf": {"spark.sql.shuffle.partitions": "64", "spark.executor.memory": "8g"},
        "jars": "/jars/delta-spark.jar,/jars/delta-storage.jar",
        "paths": Paths(
            home="/data/recassets",
            landing="/incoming",
            lake="s3a://bucket/lake",
            artifacts="/models",
            lineage="/lineage",
            dagster_home="/data/recassets/dagster",
            bentoml="/bentos",
        ),
        "online": "redis:redis://:***@redis:6379/2",
        "band": None,
    }


def test_below_the_resources_nothing_reads_the_environment(monkeypatch, tmp_path):
    for name, value in EVERY.items():
        monkeypatch.setenv(name, value)
    paths = LakeResource(home=str(tmp_path)).paths()
    assert paths == Paths.at(tmp_path)  # not /incoming, s3a://..., /bentos
    assert BentoStoreResource().paths(paths).bentoml == str(tmp_path / "bentoml")
    assert FeatureStoreResource().online_store(paths).kind == "sqlite"
    assert QualityResource().band() == 0.5
    assert SparkResource().spark_conf() == {}


def test_spark_conf_wins_over_the_one_line_form():
    spark = SparkResource(conf_line="a=1,b=2", conf={"b": "3"})
    assert spark.spark_conf() == {"a": "1", "b": "3"}
