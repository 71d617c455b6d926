"""Each partition's Dagster data version follows its content, so that the UI's staleness tells
the truth: three days ingested, featurized and turned into examples in one range run, a model
trained on them, then a day re-ingested from the same files (nothing stale) and from a changed
file (that day's features and examples stale, the other days not, and the model, through
``training/examples_version``). Staleness is asked as the UI asks it
(``CachingStaleStatusResolver``, what ``assetNodes { staleStatus }`` answers)."""

# No `from __future__ import annotations`: Dagster reads the `context` annotation.
import json
import re
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, materialize
from dagster._core.definitions.data_version import (
    CachingStaleStatusResolver,
    StaleStatus,
    extract_data_version_from_entry,
)
from dagster._core.loader import LoadingContextForTest

from assets import ingest, keys
from assets.features import feature_tables
from assets.models import item_similarity
from assets.partitions import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from assets.training import training_data, training_examples
from recassets.freshness import SETTLE_ENV
from recassets.lineage.versions import VersionReader, manifest_version
from recassets.synthetic import SyntheticConfig, generate
from resources import LakeResource, SparkResource

DAYS = ["2026-01-01", "2026-01-02", "2026-01-03"]
D1, D2, D3 = DAYS
INGEST = [ingest.raw_events, ingest.users, ingest.items]
ALL = [*INGEST, feature_tables, training_examples]
DERIVED = [*keys.FEATURE_TABLES, keys.TRAINING_EXAMPLES]


def _run(paths, instance, assets, first, last):
    tags = {PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last}
    result = materialize(
        assets,
        resources={"spark": SparkResource(), "lake": LakeResource(home=paths.home)},
        instance=instance,
        tags=tags if first != last else {},
        partition_key=first if first == last else None,
    )
    assert result.success
    return result


def _fit(paths, instance) -> None:
    """Materialize the model, the training data's observable asset beside it (as the code
    location's jobs have it), so that its provenance reads the observed version."""
    assert materialize(
        [training_data, item_similarity],
        selection=[keys.SIMILARITY],
        resources={"lake": LakeResource(home=paths.home)},
        instance=instance,
    ).success


def _version(instance, key: AssetKey, day: str) -> str:
    record = instance.get_latest_data_version_record(key, False, day)
    assert record is not None, (key, day)
    version = extract_data_version_from_entry(record.event_log_entry)
    assert version is not None
    return version.value


def _graph():
    """The code location's asset graph (the real definitions, as the UI loads them)."""
    import definitions

    return definitions.defs.resolve_asset_graph()


def _status(instance, key: AssetKey, day: str) -> StaleStatus:
    resolver = CachingStaleStatusResolver(instance, _graph(), LoadingContextForTest(instance))
    return resolver.get_status(key, day)


def _model_status(instance) -> tuple[str, list[str]]:
    """The unpartitioned model's status and its causes, as the UI words them."""
    resolver = CachingStaleStatusResolver(instance, _graph(), LoadingContextForTest(instance))
    causes = resolver.get_stale_causes(keys.SIMILARITY)
    reasons = [f"{c.dependency.asset_key.to_user_string()}: {c.reason}" for c in causes]
    return resolver.get_status(keys.SIMILARITY).value, reasons


def _training_data_version(instance) -> str:
    record = instance.get_latest_data_version_record(keys.TRAINING_DATA, True)
    assert record is not None
    return extract_data_version_from_entry(record.event_log_entry).value


def _statuses(instance) -> dict[tuple[str, str], str]:
    keys_ = [keys.RAW_EVENTS, keys.USERS, keys.ITEMS, *DERIVED]
    return {(k.to_user_string(), d): _status(instance, k, d).value for k in keys_ for d in DAYS}


@pytest.fixture(scope="module")
def built(make_home, spark, monkeypatch_module):
    monkeypatch_module.setenv(SETTLE_ENV, "0")  # the files changed below are settled at once
    paths = make_home("data_versions")
    generate(
        paths, SyntheticConfig(days=3, events_per_day=1500, initial_users=80, initial_items=50)
    )
    instance = DagsterInstance.ephemeral()
    _run(paths, instance, ALL, D1, D3)  # one range run: one step, three partitions each
    _fit(paths, instance)  # an unpartitioned model reading training_examples whole (EASE)
    return paths, instance


def test_each_day_has_the_version_of_what_it_grew_from(built):
    paths, instance = built
    events = {d: _version(instance, keys.RAW_EVENTS, d) for d in DAYS}
    assert events == {d: manifest_version(paths, "raw_events", d) for d in DAYS}
    assert len(set(events.values())) == 3  # not one version for the whole range
    reader = VersionReader(paths)
    for key in keys.FEATURE_TABLES:
        assert {d: _version(instance, key, d) for d in DAYS} == {
            d: reader.features(d) for d in DAYS
        }
    assert {d: _version(instance, keys.TRAINING_EXAMPLES, d) for d in DAYS} == {
        d: reader.examples(d) for d in DAYS
    }
    assert set(_statuses(instance).values()) == {"FRESH"}
    # the examples taken whole: observed by the run, over the days the table holds
    assert _training_data_version(instance) == reader.training_data(DAYS)
    assert reader.training_data(DAYS) != reader.training_data(DAYS[:2])  # a day more: new
    assert reader.training_data([]) is None
    assert _model_status(instance) == ("FRESH", [])


def test_the_materializations_carry_what_an_auditor_reads(built):
    paths, instance = built
    mat = instance.get_latest_materialization_event(keys.RAW_EVENTS).asset_materialization
    day = mat.partition
    manifest = json.loads(Path(paths.lineage, "raw_events", f"dt={day}.json").read_text())
    files = mat.metadata["files"].value
    for f in manifest["inputs"]:  # full sha256 and the path relative to the home
        assert f"| landing/events/dt={day}/{Path(f['path']).name} |" in files
        assert f"`{f['sha256']}`" in files
    assert mat.metadata["lineage_manifest"].value == f"lineage/raw_events/dt={day}.json"
    assert mat.metadata["table_path"].value == "lake/raw_events"

    uf = instance.get_latest_materialization_event(keys.USER_FEATURES).asset_materialization
    assert uf.metadata["dagster/row_count"].value > 0
    schema = uf.metadata["dagster/column_schema"].value
    assert {"user_id", "clicks_7d", "ctr_28d", "dt"} <= {c.name for c in schema.columns}
    deps = uf.metadata["dagster/column_lineage"].value.deps_by_column["clicks_7d"]
    assert {(d.asset_key, d.column_name) for d in deps} >= {
        (keys.RAW_EVENTS, "event_type"),
        (keys.RAW_EVENTS, "user_id"),
    }
    lineage = uf.metadata["lineage"].value
    assert lineage["partition"] == uf.partition
    assert lineage["data_version"] == _version(instance, keys.USER_FEATURES, uf.partition)
    assert set(lineage["read"]) == {"raw_events", "users", "items"}
    assert all(isinstance(r["delta_version"], int) for r in lineage["read"].values())

    ex = instance.get_latest_materialization_event(keys.TRAINING_EXAMPLES).asset_materialization
    label = ex.metadata["dagster/column_lineage"].value.deps_by_column["label"]
    assert (keys.RAW_EVENTS, "event_type") in {(d.asset_key, d.column_name) for d in label}
    assert ex.partition == D3  # the range's last day
    read = ex.metadata["lineage"].value["read"]
    assert read["user_features"]["days"] == [D2, D2]
    assert read["raw_events"]["days"] == [D3, D3]
    refs = _graph().get(keys.USER_FEATURES).metadata["dagster/code_references"].code_references
    assert {Path(r.file_path).name for r in refs} == {"features.py", "pipelines.py"}


def test_reingesting_the_same_files_leaves_everything_fresh(built):
    """The failing case of the next test: a new Delta commit of the same rows is no change."""
    paths, instance = built
    before = _version(instance, keys.RAW_EVENTS, D2)
    model_input = _training_data_version(instance)
    _run(paths, instance, INGEST, D2, D2)
    assert _version(instance, keys.RAW_EVENTS, D2) == before
    assert set(_statuses(instance).values()) == {"FRESH"}
    assert _training_data_version(instance) == model_input
    assert _model_status(instance) == ("FRESH", [])


def test_reingesting_a_changed_file_marks_that_days_downstream_stale(built):
    paths, instance = built
    before = _version(instance, keys.RAW_EVENTS, D2)
    landed = sorted(Path(paths.landing_dir("events", D2)).glob("*.jsonl"))[0]
    lines = landed.read_text().splitlines()
    event = json.loads(lines[0])
    event["event_type"] = "click" if event["event_type"] != "click" else "like"
    landed.write_text("\n".join([json.dumps(event), *lines[1:]]) + "\n")
    _run(paths, instance, INGEST, D2, D2)
    assert _version(instance, keys.RAW_EVENTS, D2) != before
    status = _statuses(instance)
    stale = {k for k, s in status.items() if s == "STALE"}
    # Dagster's partition mappings: features of d read raw_events d-27..d (every later day's
    # window holds D2: D3's features too), examples of d raw_events d and the features of d-1
    # and d.
    later = {(k.to_user_string(), D3) for k in keys.FEATURE_TABLES}
    assert stale == {(k.to_user_string(), D2) for k in DERIVED} | later, status
    assert re.fullmatch(r"[0-9a-f]{64}", _version(instance, keys.RAW_EVENTS, D2))
    # the model that read every day: stale at once, through the examples taken whole
    assert _training_data_version(instance) == VersionReader(paths).training_data(DAYS)
    assert _model_status(instance) == (
        "STALE",
        ["training/examples_version: has a new dependency data version"],
    )

    # The day's features rebuilt: fresh again, with a new version; the next day's features,
    # whose 28-day window still holds the old D2, stay stale until they are rebuilt too, and
    # the next day's examples, which join D2's features, turn stale.
    _run(paths, instance, [feature_tables], D2, D2)
    status = _statuses(instance)
    assert status[("lake/user_features", D2)] == "FRESH"
    assert status[("lake/training_examples", D3)] == "STALE"
    assert status[("lake/user_features", D3)] == "STALE"
    _run(paths, instance, [feature_tables], D3, D3)
    assert _statuses(instance)[("lake/user_features", D3)] == "FRESH"

    # the model refitted on what the examples now hold: fresh again
    _fit(paths, instance)
    assert _model_status(instance) == ("FRESH", [])


def test_every_asset_grown_from_the_examples_whole_can_show_it():
    """The same edge the model above is stale through: every model, the evaluation and what
    is served; not the daily assets, whose own partitions carry their versions."""
    graph = _graph()
    reading = {
        k for k in graph.get_all_asset_keys() if keys.TRAINING_DATA in graph.get(k).parent_keys
    }
    assert reading == {*keys.MODELS, keys.RECOMMENDER_BENTO}
    assert graph.get(keys.TRAINING_DATA).is_observable


def test_the_observe_button_records_what_the_runs_record(built):
    """The asset's own observation (the UI's Observe button) computes the version the runs
    logged: the days the examples hold, over the manifests as they are now."""
    from dagster._core.definitions.observe import observe

    paths, instance = built
    result = observe(
        [training_data], instance=instance, resources={"lake": LakeResource(home=paths.home)}
    )
    assert result.success
    assert _training_data_version(instance) == VersionReader(paths).training_data(DAYS)
    assert VersionReader(paths).training_data(DAYS[1:]) != VersionReader(paths).training_data(DAYS)
