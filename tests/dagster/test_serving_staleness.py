"""What serves shows stale while its models are behind the data, even once the automation has
rebuilt it for a new online day (``SERVING_EAGER``): the bento records the training data its
evaluation read (``assets.serving.served_training_data``), not the version observed when it was
built. Staleness is asked as the UI asks it (``CachingStaleStatusResolver`` over the code
location's graph).

The bento is the real asset body; what it builds (``bentoml build``, torch) is replaced by
stand-ins, so the test needs neither. The models, the evaluation and the index are stand-ins
with the real keys, dependencies and code versions: only their provenance matters here."""

# No `from __future__ import annotations`: Dagster reads the `context` annotation.
import contextlib
import sys
import types
from collections.abc import Generator
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    AssetObservation,
    DagsterInstance,
    MaterializeResult,
    MetadataValue,
    asset,
    materialize,
)
from dagster._core.definitions.data_version import CachingStaleStatusResolver
from dagster._core.loader import LoadingContextForTest

import assets.serving as serving
from assets import keys
from assets.partitions import DATA_VERSION_IS_USER_PROVIDED_TAG, DATA_VERSION_TAG
from assets.training import training_data
from recassets.paths import Paths
from resources import BentoStoreResource, LakeResource
from tests.conftest import home_at

TRAINED = list(keys.MODELS)  # the five models and the evaluation: the retrain job before the index


def _graph():
    import definitions

    return definitions.defs.resolve_asset_graph()


def _stand_in(key: AssetKey):
    """An asset of ``key`` with the real one's dependencies and code version."""
    node = _graph().get(key)

    @asset(key=key, deps=sorted(node.parent_keys), code_version=node.code_version)
    def stand_in() -> MaterializeResult:
        return MaterializeResult()

    return stand_in


@pytest.fixture
def fake_bento_build(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The bento body's builders (``recassets.bento.bundle``, ``.store``,
    ``recassets.funnel.embedding_store``, imported in its body) without torch or bentoml."""

    @contextlib.contextmanager
    def staged_bundle(paths: Paths) -> Generator[Path]:
        yield tmp_path / "bundle"

    manifest = {"lineage": {}, "policy": {"policy": "popularity"}, "digest": "d" * 16}
    fakes = {
        "recassets.bento.bundle": {
            "staged_bundle": staged_bundle,
            "build_bento": lambda paths, bundle, variant: "recassets_recommender:t-popularity-d",
            "bento_folder": lambda paths, tag: Path(paths.bentoml, "t"),
            "_read_json": lambda path: manifest,
        },
        "recassets.bento.store": {"recent_model_sha256s": lambda paths, n: []},
        "recassets.funnel.embedding_store": {"publish_if_asked": lambda *a: None},
    }
    for name, attrs in fakes.items():
        module = types.ModuleType(name)
        for attr, value in attrs.items():
            setattr(module, attr, value)
        package, _, leaf = name.rpartition(".")
        __import__(package)
        monkeypatch.setitem(sys.modules, name, module)
        monkeypatch.setattr(sys.modules[package], leaf, module, raising=False)
    monkeypatch.setattr(serving, "bento_facts", lambda *a: MetadataValue.text(""))


def _observe(instance: DagsterInstance, version: str) -> None:
    """A new version of the training data, as an ingest or examples run observes it."""
    instance.report_runless_asset_event(
        AssetObservation(
            asset_key=keys.TRAINING_DATA,
            tags={DATA_VERSION_TAG: version, DATA_VERSION_IS_USER_PROVIDED_TAG: "true"},
        )
    )


def _build(paths: Paths, instance: DagsterInstance, targets: list[AssetKey]) -> None:
    """Materialize ``targets`` in one run, as a job of the code location would: the stand-ins
    and the real bento, beside the observable training data (read for its version)."""
    stand_ins = [_stand_in(k) for k in targets if k != keys.RECOMMENDER_BENTO]
    real = [serving.recommender_bento] if keys.RECOMMENDER_BENTO in targets else []
    result = materialize(
        [training_data, *stand_ins, *real],
        selection=targets,
        instance=instance,
        resources={"lake": LakeResource(home=paths.home), "bento_store": BentoStoreResource()},
    )
    assert result.success


def _status(instance: DagsterInstance, key: AssetKey) -> tuple[str, list[str]]:
    resolver = CachingStaleStatusResolver(instance, _graph(), LoadingContextForTest(instance))
    causes = resolver.get_stale_causes(key)
    reasons = sorted(
        f"{c.dependency.asset_key.to_user_string()}: {c.reason}" for c in causes if c.dependency
    )
    return resolver.get_status(key).value, reasons


def test_a_bento_rebuilt_for_new_items_stays_stale_until_its_models_are_retrained(
    tmp_path: Path, fake_bento_build: None
):
    paths = home_at(tmp_path / "home")
    with DagsterInstance.ephemeral() as instance:
        _observe(instance, "v1")
        _build(paths, instance, [*TRAINED, keys.ITEM_INDEX, keys.RECOMMENDER_BENTO])
        assert _status(instance, keys.RECOMMENDER_BENTO) == ("FRESH", [])

        _observe(instance, "v2")  # a day re-ingested with other content, or a new day
        assert _status(instance, keys.EVALUATION)[0] == "STALE"
        # SERVING_EAGER rebuilds the index and the bento for a new online day, models unchanged
        _build(paths, instance, [keys.ITEM_INDEX, keys.RECOMMENDER_BENTO])
        assert _status(instance, keys.TWO_TOWER)[0] == "STALE"
        assert _status(instance, keys.RECOMMENDER_BENTO) == (
            "STALE",
            ["training/examples_version: has a new dependency data version"],
        )

        # retrained and evaluated on v2: the bento is behind its evaluation until rebuilt
        _build(paths, instance, TRAINED)
        assert _status(instance, keys.EVALUATION) == ("FRESH", [])
        status, reasons = _status(instance, keys.RECOMMENDER_BENTO)
        assert status == "STALE" and "training/examples_version: has a new dependency data version" in reasons  # fmt: skip
        _build(paths, instance, [keys.ITEM_INDEX, keys.RECOMMENDER_BENTO])
        assert _status(instance, keys.RECOMMENDER_BENTO) == ("FRESH", [])


def test_without_an_evaluation_the_bento_records_what_dagster_does(
    tmp_path: Path, fake_bento_build: None
):
    """No evaluation yet (popularity served), or one built before the edge existed: no
    override, the bento reads the training data as it is."""
    paths = home_at(tmp_path / "home")
    with DagsterInstance.ephemeral() as instance:
        assert serving.served_training_data(instance) == {}
        _observe(instance, "v1")
        _build(paths, instance, [keys.ITEM_INDEX, keys.RECOMMENDER_BENTO])
        assert _status(instance, keys.RECOMMENDER_BENTO) == ("FRESH", [])
        _observe(instance, "v2")
        assert _status(instance, keys.RECOMMENDER_BENTO) == (
            "STALE",
            ["training/examples_version: has a new dependency data version"],
        )


def test_the_provenance_tags_are_dagsters():
    from dagster._core.definitions import data_version

    assert serving.INPUT_DATA_VERSION_TAG_PREFIX == data_version.INPUT_DATA_VERSION_TAG_PREFIX
    assert serving.INPUT_EVENT_POINTER_TAG_PREFIX == data_version.INPUT_EVENT_POINTER_TAG_PREFIX
