"""``lake/serving_log`` materialized by Dagster on a temporary home (real Spark and Delta): the
decision log's files of a day served, as the service's writer lands them, into the table, with
the day's metadata; its partitions are the days served; and the CLI plans it as a run of its
own over the days the log landed."""

from __future__ import annotations

import argparse
import datetime as dt
from pathlib import Path

from dagster import DagsterInstance, materialize

from assets.partitions import serving_days
from assets.serving_log import serving_log, serving_log_files
from recassets import cli
from recassets.bento import decisions as D
from resources import LakeResource, SparkResource


def _land(landing: str, n: int, prefix: str = "r") -> str:
    log = D.DecisionLog(landing, background=False)
    for i in range(n):
        log.append(
            D.decision(
                request_id=f"{prefix}{i}",
                endpoint="recommend",
                user_id=i,
                items=[{"item_id": 1, "score": 0.5, "stages": ["trending"]}],
                policy="cold_start",
                features_day=None,
                models={},
                bento="recassets_recommender:v1",
            )  # fmt: skip
        )
    log.close()
    return D.utc_now()[:10]  # today: what the records were stamped with (UTC)


def test_the_partitions_are_the_days_served(paths):
    today = dt.date(2026, 12, 3)
    empty = serving_days(paths, today)
    assert empty.get_first_partition_key() == "2026-12-03"
    Path(paths.landing_dir(D.DATASET, "2026-11-20")).mkdir(parents=True)
    landed = serving_days(paths, today)
    assert landed.get_first_partition_key() == "2026-11-20"
    assert landed.end_offset == 1 and landed.timezone == "UTC"  # open, up to today


def test_a_day_of_the_decision_log_is_ingested(paths, spark):
    day = _land(paths.landing, 3)
    result = materialize(
        [serving_log_files, serving_log],
        resources={"spark": SparkResource(), "lake": LakeResource(home=paths.home)},
        instance=DagsterInstance.ephemeral(),
        partition_key=day,
    )
    assert result.success
    (mat,) = [e.materialization for e in result.get_asset_materialization_events()]
    assert mat.partition == day
    assert mat.metadata["dagster/row_count"].value == 3
    assert mat.metadata["quarantined_rows"].value == 0
    assert str(mat.metadata["lineage_manifest"].value).endswith(f"serving_log/dt={day}.json")
    rows = spark.read.format("delta").load(paths.table("serving_log")).collect()
    assert sorted(r["request_id"] for r in rows) == ["r0", "r1", "r2"]


def _materialize(paths, day: str, raise_on_error: bool = True, reingest: bool | None = None):
    config = {"ops": {"lake__serving_log": {"config": {"reingest": reingest}}}}
    return materialize(
        [serving_log_files, serving_log],
        resources={"spark": SparkResource(), "lake": LakeResource(home=paths.home)},
        instance=DagsterInstance.ephemeral(),
        partition_key=day,
        raise_on_error=raise_on_error,
        run_config=config if reingest is not None else None,
    )


def test_a_day_ingested_from_the_files_it_holds_is_not_read_again(paths, spark):
    """The default run covers every landed day: an old day's unchanged files are not read
    again (no new table version), unless asked, or unless the table lost its rows."""
    import shutil

    from delta.tables import DeltaTable

    day = _land(paths.landing, 3)
    table = paths.table("serving_log")
    version = lambda: DeltaTable.forPath(spark, table).history(1).collect()[0]["version"]  # noqa: E731
    assert _materialize(paths, day).success
    before = version()
    again = _materialize(paths, day)
    assert version() == before  # before the change: a new version, the day read again
    (mat,) = [e.materialization for e in again.get_asset_materialization_events()]
    assert mat.partition == day and "unchanged" in mat.metadata
    assert _materialize(paths, day, reingest=True).success
    assert version() == before + 1
    shutil.rmtree(table)  # the table lost: the manifest alone does not count as ingested
    restored = _materialize(paths, day)
    (mat,) = [e.materialization for e in restored.get_asset_materialization_events()]
    assert "unchanged" not in mat.metadata and mat.metadata["dagster/row_count"].value == 3
    rows = spark.read.format("delta").load(table).collect()
    assert sorted(r["request_id"] for r in rows) == ["r0", "r1", "r2"]


def test_a_day_whose_landing_was_cleaned_up_keeps_its_rows_and_one_that_grew_is_read_again(
    paths, spark
):
    """Log files deleted or compressed after ingestion (retention) are no withdrawal: the day
    keeps its rows, and says so; a day whose landing only grew is ingested again, whole."""
    day = _land(paths.landing, 3)
    assert _materialize(paths, day).success
    folder = Path(paths.landing_dir(D.DATASET, day))
    (first,) = list(folder.glob("*.jsonl"))
    _land(paths.landing, 2, prefix="late")  # a second file, flushed later
    grown = _materialize(paths, day)
    table = lambda: sorted(  # noqa: E731
        r["request_id"]
        for r in spark.read.format("delta").load(paths.table("serving_log")).collect()
    )
    assert table() == ["late0", "late1", "r0", "r1", "r2"]
    (mat,) = [e.materialization for e in grown.get_asset_materialization_events()]
    assert mat.metadata["dagster/row_count"].value == 5 and "kept" not in mat.metadata
    for f in folder.glob("*.jsonl"):  # retention: every file of the day gone, the folder kept
        f.unlink()
    kept = _materialize(paths, day)
    assert table() == ["late0", "late1", "r0", "r1", "r2"]  # before: [] (an empty partition)
    (mat,) = [e.materialization for e in kept.get_asset_materialization_events()]
    assert "landing lost 2 file(s) since ingestion" in str(mat.metadata["kept"].value)
    assert first.name in str(mat.metadata["kept"].value)


def test_a_day_that_lost_files_and_gained_others_fails_naming_both_and_writes_nothing(paths, spark):
    day = _land(paths.landing, 3)
    assert _materialize(paths, day).success
    folder = Path(paths.landing_dir(D.DATASET, day))
    (first,) = list(folder.glob("*.jsonl"))
    first.rename(first.with_name(first.name + ".gz"))  # compressed in place: a new name
    result = _materialize(paths, day, raise_on_error=False)
    assert not result.success
    (failure,) = [e for e in result.all_events if e.is_step_failure]
    text = str(failure.step_failure_data.error)
    assert f"lost {first.name} and gained {first.name}.gz" in text and "restore" in text
    rows = spark.read.format("delta").load(paths.table("serving_log")).collect()
    assert sorted(r["request_id"] for r in rows) == ["r0", "r1", "r2"]


def test_the_cli_plans_the_log_over_its_own_days(paths, monkeypatch):
    plans = []
    monkeypatch.setattr(cli, "_launch", lambda _paths, plan, settings=None: plans.append(plan))
    monkeypatch.setattr(cli.Paths, "from_env", classmethod(lambda cls, home=None: paths))
    args = argparse.Namespace(select="lake/serving_log", first=None, last=None)
    try:
        cli.cmd_materialize(args)
    except SystemExit as e:  # nothing served yet: said, not a run over the data's days
        assert "no decision log" in str(e.code)
    else:
        raise AssertionError("expected SystemExit")
    for day in ("2026-11-20", "2026-11-22"):
        Path(paths.landing_dir(D.DATASET, day)).mkdir(parents=True)
    cli.cmd_materialize(args)  # no events landed: not needed for the log alone
    assert plans[-1] == [{"select": ["lake/serving_log"], "first": "2026-11-20",
                          "last": "2026-11-22"}]  # fmt: skip
    Path(paths.landing_dir("events", "2026-01-01")).mkdir(parents=True)
    cli.cmd_materialize(
        argparse.Namespace(select="lake/raw_events,lake/serving_log", first=None, last=None)
    )
    assert plans[-1] == [
        {"select": ["lake/raw_events"], "first": "2026-01-01", "last": "2026-01-01"},
        {"select": ["lake/serving_log"], "first": "2026-11-20", "last": "2026-11-22"},
    ]
