"""A run terminated from the UI after its commits leaves the previous version, not rows Dagster
never recorded: raw_events, the feature tables and training_examples materialized by Dagster
on a temporary home (real Spark and Delta), then each run again over changed or new days with
the Terminate (``DagsterExecutionInterruptedError``, what a SIGINT raises in a step) or a
KeyboardInterrupt injected after its commits. Each table holds what it held, the lineage
manifest is the one before the run, and Dagster's latest materialization is the earlier run's.
"""

# No `from __future__ import annotations`: Dagster reads the `context` annotation.
from pathlib import Path

import pytest
from dagster import AssetKey, AssetRecordsFilter, DagsterInstance, materialize
from dagster._core.errors import DagsterExecutionInterruptedError

from assets import ingest, keys
from assets.features import feature_tables
from assets.partitions import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from assets.training import training_examples
from recassets.features import backfill
from recassets.freshness import SETTLE_ENV, lineage_matches
from recassets.ingest import lineage_path
from recassets.landing_scan import landed_day
from recassets.synthetic import SyntheticConfig, generate
from resources import LakeResource, SparkResource

DAYS = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04", "2026-01-05"]
D1, D2, D3, D4, D5 = DAYS
INGEST = [ingest.raw_events, ingest.users, ingest.items]
INTERRUPTS = (DagsterExecutionInterruptedError, KeyboardInterrupt)


def _run(paths, instance, assets, first, last):
    tags = {PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last}
    return materialize(
        assets,
        resources={"spark": SparkResource(), "lake": LakeResource(home=paths.home)},
        instance=instance,
        tags=tags if first != last else {},
        partition_key=first if first == last else None,
    )


@pytest.fixture(scope="module")
def built(make_home, spark, monkeypatch_module):
    """Five days ingested, the features of the first four (one range run: the range pass),
    the examples of the first three."""
    monkeypatch_module.setenv(SETTLE_ENV, "0")  # the file shortened below is settled at once
    paths = make_home("cancelled_runs")
    generate(
        paths, SyntheticConfig(days=5, events_per_day=1500, initial_users=80, initial_items=50)
    )
    instance = DagsterInstance.ephemeral()
    assert _run(paths, instance, INGEST, D1, D5).success
    assert _run(paths, instance, [feature_tables], D1, D4).success
    assert _run(paths, instance, [training_examples], D1, D3).success
    return paths, instance


def _rows_by_day(spark, paths, table: str) -> dict[str, int]:
    rows = spark.read.format("delta").load(paths.table(table)).groupBy("dt").count().collect()
    return {r["dt"].isoformat(): r["count"] for r in rows}


def _latest_run(instance, key: AssetKey, day: str) -> str | None:
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, asset_partitions=[day]), limit=1
    ).records
    return records[0].run_id if records else None


def _raise(error: type[BaseException]):
    def interrupted(*_args, **_kwargs):
        raise error()

    return interrupted


@pytest.mark.parametrize(
    ("where", "error"),
    [("_preview", DagsterExecutionInterruptedError), ("data_versions", KeyboardInterrupt)],
)
def test_an_ingest_run_interrupted_after_its_commit_leaves_the_day_as_it_was(
    built, spark, monkeypatch, where, error
):
    """The reviewer's case: a landed file corrected (shortened), the day materialized and
    terminated once the step logged its Delta version (the preview, the metadata)."""
    paths, instance = built
    manifest = Path(lineage_path(paths, "raw_events", D2))
    before = (_rows_by_day(spark, paths, "raw_events"), manifest.read_bytes())
    quarantine = _rows_by_day(spark, paths, "quarantine")
    recorded = _latest_run(instance, keys.RAW_EVENTS, D2)
    landed = sorted(Path(paths.landing_dir("events", D2)).glob("*.jsonl"))[0]
    lines = landed.read_text().splitlines(keepends=True)
    landed.write_text("".join(lines[: len(lines) * 3 // 4]))  # a correction: fewer rows
    monkeypatch.setattr(ingest, where, _raise(error))

    with pytest.raises(INTERRUPTS):
        _run(paths, instance, [ingest.raw_events], D2, D2)

    assert (_rows_by_day(spark, paths, "raw_events"), manifest.read_bytes()) == before
    assert _rows_by_day(spark, paths, "quarantine") == quarantine
    assert _latest_run(instance, keys.RAW_EVENTS, D2) == recorded
    # the landing sensor's check: the corrected file is not what the lake read
    assert not lineage_matches(paths, landed_day(paths, "events", D2))


def test_a_feature_run_interrupted_after_user_features_committed_leaves_all_three_as_they_were(
    built, spark, monkeypatch
):
    """The second table's write interrupted, user_features's range (one more day) committed:
    the three tables stay in step, at what they held."""
    paths, instance = built
    tables = [key.path[-1] for key in keys.FEATURE_TABLES]
    before = {t: _rows_by_day(spark, paths, t) for t in tables}
    assert all(D5 not in rows for rows in before.values())
    real, calls = backfill.replace_partitions, []

    def replace(*args, **kwargs):
        calls.append(args[1])
        if len(calls) == 2:  # user_features committed, item_features not yet
            raise DagsterExecutionInterruptedError()
        return real(*args, **kwargs)

    monkeypatch.setattr(backfill, "replace_partitions", replace)

    with pytest.raises(INTERRUPTS):
        _run(paths, instance, [feature_tables], D1, D5)

    assert {t: _rows_by_day(spark, paths, t) for t in tables} == before
    assert [_latest_run(instance, key, D5) for key in keys.FEATURE_TABLES] == [None] * 3


def test_a_feature_run_interrupted_in_its_metadata_leaves_all_three_as_they_were(
    built, spark, monkeypatch
):
    """All three tables committed, the run terminated while its metadata is read."""
    paths, instance = built
    tables = [key.path[-1] for key in keys.FEATURE_TABLES]
    before = {t: _rows_by_day(spark, paths, t) for t in tables}
    import assets.features

    monkeypatch.setattr(assets.features, "table_metadata", _raise(KeyboardInterrupt))

    with pytest.raises(INTERRUPTS):
        _run(paths, instance, [feature_tables], D1, D5)

    assert {t: _rows_by_day(spark, paths, t) for t in tables} == before
    assert [_latest_run(instance, key, D5) for key in keys.FEATURE_TABLES] == [None] * 3


def test_an_examples_run_interrupted_after_its_commit_leaves_the_table_as_it_was(
    built, spark, monkeypatch
):
    paths, instance = built
    before = _rows_by_day(spark, paths, "training_examples")
    assert D4 not in before
    import assets.training

    monkeypatch.setattr(assets.training, "table_metadata", _raise(DagsterExecutionInterruptedError))

    with pytest.raises(INTERRUPTS):
        _run(paths, instance, [training_examples], D1, D4)

    assert _rows_by_day(spark, paths, "training_examples") == before
    assert _latest_run(instance, keys.TRAINING_EXAMPLES, D4) is None
