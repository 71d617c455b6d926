"""Dagster resources: where recassets meets configuration.

``build_resources()`` is the one place resources are chosen. The embedded default needs no
configuration: with no variable set, Spark is local, everything lives under ``.recassets/``,
the online store is SQLite and the Bento store is ``.recassets/bentoml``. Each setting a user
may give in the environment reaches its resource through a Dagster ``EnvVar``, resolved when a
run starts and shown in the UI as the variable's name, never its value (the Redis URL may hold
a password); every field can also be set as resource config in the launchpad. The library
(``recassets/``) takes these values as arguments and never reads the environment itself.

| resource key | class | fields from the environment |
| --- | --- | --- |
| ``spark`` | ``SparkResource`` | master, remote, conf_line, jars: ``RECASSETS_SPARK_MASTER``, ``_REMOTE``, ``_CONF``, ``_JARS`` |
| ``lake`` | ``LakeResource`` | home, landing, lake, artifacts, lineage: ``RECASSETS_HOME``, ``_LANDING``, ... |
| ``feature_store`` | ``FeatureStoreResource`` | redis_url: ``RECASSETS_REDIS_URL`` |
| ``bento_store`` | ``BentoStoreResource`` | home: ``RECASSETS_BENTOML_HOME`` |
| ``quality`` | ``QualityResource`` | volume_band: ``RECASSETS_VOLUME_BAND`` |
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from dagster import EnvVar

from recassets.featurestore.config import REDIS_URL_ENV
from recassets.paths import LOCATION_ENV
from resources.bento_store import BentoStoreResource
from resources.feature_store import FeatureStoreResource
from resources.lake import LakeResource
from resources.quality import QualityResource
from resources.spark import SparkResource

SPARK_ENV = {
    "master": "RECASSETS_SPARK_MASTER",
    "remote": "RECASSETS_SPARK_REMOTE",
    "conf_line": "RECASSETS_SPARK_CONF",
    "jars": "RECASSETS_SPARK_JARS",
}
LAKE_ENV = {f: LOCATION_ENV[f] for f in ("home", "landing", "lake", "artifacts", "lineage")}
FEATURE_STORE_ENV = {"redis_url": REDIS_URL_ENV}
BENTO_STORE_ENV = {"home": LOCATION_ENV["bentoml"]}
QUALITY_ENV = {"volume_band": "RECASSETS_VOLUME_BAND"}


def env_fields(names: Mapping[str, str], environ: Mapping[str, str] | None = None) -> dict:
    """``{field: EnvVar(variable)}`` for each variable of ``names`` that is set (non-empty):
    the rest keep their resource's default. Only whether a variable is set is looked at here;
    its value is resolved by Dagster from the ``EnvVar`` when a run starts (an ``EnvVar`` of an
    unset variable would fail the run instead of falling back to the default)."""
    environ = os.environ if environ is None else environ
    return {field: EnvVar(name) for field, name in names.items() if environ.get(name)}


def check_settings(environ: Mapping[str, str]) -> None:
    """Parse now the settings runs read later, so that a bad value stops the code location
    (and every CLI command) naming the variable: ``RECASSETS_VOLUME_BAND=abc`` failed the
    volume check after the ingestion had committed, and ``RECASSETS_LANDING_SETTLE_SECONDS=1.5``
    every run at its ingestion step and the landing sensor at every tick. Every setting a run
    reads (the ingestion's, Spark's conf, the training's, the bento build's and its publishing
    of embedding rows), each with the parser the run uses: ``recassets.run_settings.check``."""
    from recassets.freshness import check_run_settings

    check_run_settings(environ)


def build_resources(environ: Mapping[str, str] | None = None) -> dict[str, object]:
    """Resources for the code location, from the environment (``os.environ`` by default),
    its settings checked first (``check_settings``)."""
    check_settings(os.environ if environ is None else environ)
    return {
        "spark": SparkResource(**env_fields(SPARK_ENV, environ)),
        "lake": LakeResource(**env_fields(LAKE_ENV, environ)),
        "feature_store": FeatureStoreResource(**env_fields(FEATURE_STORE_ENV, environ)),
        "bento_store": BentoStoreResource(**env_fields(BENTO_STORE_ENV, environ)),
        "quality": QualityResource(**env_fields(QUALITY_ENV, environ)),
    }


__all__ = [
    "BentoStoreResource",
    "FeatureStoreResource",
    "LakeResource",
    "QualityResource",
    "SparkResource",
    "build_resources",
    "check_settings",
]
