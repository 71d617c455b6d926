"""The data path through Spark Connect: a server started from pyspark's own distribution
(``spark-submit --class ...SparkConnectServer``, the wheel ships ``spark-connect_2.13``) with
delta-spark's package and Delta's extension and catalog, on a free loopback port.

Ingestion of three synthetic days, the three feature tables, the quality checks of raw_events
and of user_features, training_examples and the Feast offline export run through a Connect
session (``get_spark(remote=...)``) in a child process, and meanwhile the same on a copy of
the same landing through the classic local session of this process; every table, report and snapshot
must be equal row for row. The Connect client runs in a child process because creating a
Connect session switches pyspark into Connect mode for the whole process
(``SPARK_CONNECT_MODE_ENABLED``), which the classic session the other tests share would not
survive.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from recassets.paths import Paths
from tests.conftest import TEST_SPARK_CONF, home_at
from tests.unit.features.test_backfill import differences

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DAYS = ["2026-01-01", "2026-01-02", "2026-01-03"]
SYNTHETIC = {
    "days": 3,
    "events_per_day": 400,
    "initial_users": 30,
    "initial_items": 20,
    "new_users_per_day": 3,
    "new_items_per_day": 2,
    "n_categories": 4,
    "n_creators": 5,
}
TABLES = {  # table -> its key columns within a day
    "raw_events": ["event_id"],
    "users": ["user_id"],
    "items": ["item_id"],
    "quarantine": ["dataset", "source_file", "line"],
    "user_features": ["user_id"],
    "item_features": ["item_id"],
    "cohort_features": ["country", "age_bucket", "category"],
    "training_examples": ["example_id"],
}


def run_data_path(spark, paths: Paths) -> dict:
    """What each stage of the data path reports, as JSON values with the home's path as
    ``<home>``: ingestion, the feature tables, the quality checks of raw_events and
    user_features (and the same suites on damaged copies, so that Great Expectations' failure
    pass and its sample rows run too), training_examples and the Feast offline export (what
    the ``feature_store`` asset writes before Feast's apply)."""
    from recassets.features.pipelines import build_features
    from recassets.features.schema import TABLES as FEATURE_TABLES
    from recassets.featurestore.snapshot import export_offline_snapshots
    from recassets.ingest import ingest
    from recassets.quality import check_feature_table_range, check_raw_events_range
    from recassets.training.examples import build_training_examples

    out: dict = {"ingest": {}, "quality": {}, "snapshots": {}}
    for dataset in ("users", "items", "events"):
        result = ingest(spark, paths, dataset, DAYS, allow_missing_days=dataset != "events")
        out["ingest"][dataset] = {d: dataclasses.asdict(p) for d, p in result.partitions.items()}
    features = build_features(spark, paths, DAYS)
    out["features"] = {"rows": features.rows, "inputs": features.inputs}
    for name, reports in (
        ("raw_events", check_raw_events_range(spark, paths, DAYS)),
        ("user_features", check_feature_table_range(spark, paths, "user_features", DAYS)),
    ):
        out["quality"][name] = {d: _plain_report(r) for d, r in reports.items()}
    out["quality"]["damaged"] = _damaged_reports(spark, paths)
    examples = build_training_examples(spark, paths, DAYS)
    out["examples"] = {"rows": examples.rows, "positives": examples.positives}
    for table in FEATURE_TABLES:
        snaps = export_offline_snapshots(paths, table, DAYS)
        out["snapshots"][table] = {d: s.path for d, s in snaps.items()}
    return json.loads(json.dumps(out, default=str).replace(paths.home, "<home>"))


def _plain_report(report) -> dict:
    """The report as a dict, each failure's sample rows sorted (GE returns them in the order
    the rows were read, which follows the files each run wrote)."""
    out = dataclasses.asdict(report)
    for f in out["failures"]:
        f["sample_rows"] = sorted(f["sample_rows"], key=lambda r: json.dumps(r, default=str))
    return out


def _damaged_reports(spark, paths: Paths) -> dict:
    """raw_events and user_features of the second day, three rows of each damaged (an unknown
    event type; a negative counter), validated against their suites: the reports name them."""
    from pyspark.sql import functions as F

    from recassets.quality import feature_suite, raw_events_suite, validate

    day = DAYS[1]
    out = {}
    for table, key, column, damage in (
        ("raw_events", "event_id", "event_type", F.lit("bogus")),
        ("user_features", "user_id", "clicks_7d", F.lit(-1).cast("bigint")),
    ):
        df = spark.read.format("delta").load(paths.table(table)).where(f"dt = DATE'{day}'")
        bad = [r[0] for r in df.select(key).orderBy(key).limit(3).collect()]
        df = df.withColumn(column, F.when(F.col(key).isin(bad), damage).otherwise(F.col(column)))
        suite = (
            raw_events_suite(day, [], band=None)
            if table == "raw_events"
            else feature_suite(table, None)
        )
        report = validate(df, suite)
        assert not report.success, table
        out[table] = _plain_report(report)
    return out


def _connect_child(url: str, home: str, out: str) -> None:
    """The child process's body: the data path through a Connect session of ``url``."""
    from recassets.lake import is_connect
    from recassets.spark import get_spark, stop_spark

    spark = get_spark(conf=TEST_SPARK_CONF, remote=url)
    assert is_connect(spark), type(spark)
    try:
        result = run_data_path(spark, home_at(Path(home)))
    finally:
        stop_spark()
    Path(out).write_text(json.dumps(result, default=str))


@pytest.fixture(scope="module")
def connect_url(tmp_path_factory: pytest.TempPathFactory):
    """``sc://127.0.0.1:<port>`` of a Spark Connect server with Delta, stopped (its process
    group) after the module."""
    from recassets.process import stop_process_group
    from support.spark_connect import start_connect_server

    log = tmp_path_factory.mktemp("connect") / "server.log"
    conf = {"spark.driver.memory": "2g", "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1"}
    proc, url = start_connect_server(log, conf)
    try:
        yield url
    finally:
        stop_process_group(proc)


@pytest.fixture(scope="module")
def landing(make_home) -> Paths:
    from recassets.synthetic import SyntheticConfig, generate

    paths = make_home("landing")
    generate(paths, SyntheticConfig(**SYNTHETIC))
    return paths


def _home_with_landing(make_home, landing: Paths, name: str) -> Paths:
    paths = make_home(name)
    shutil.copytree(landing.landing, paths.landing)
    return paths


@pytest.fixture(scope="module")
def runs(spark, connect_url, landing, make_home) -> dict[str, tuple[Paths, dict]]:
    """The data path through Connect (a child process) and, meanwhile, through this process's
    classic session, each in its own home holding a copy of the same landing."""
    from recassets.process import stop_process_group

    connect, classic = (_home_with_landing(make_home, landing, n) for n in ("connect", "classic"))
    out, log = Path(connect.home) / "result.json", Path(connect.home) / "child.log"
    code = (
        "import sys; from tests.integration.test_spark_connect import _connect_child; "
        "_connect_child(*sys.argv[1:])"
    )
    with log.open("wb") as f:
        child = subprocess.Popen(
            [sys.executable, "-c", code, connect_url, connect.home, str(out)],
            cwd=ROOT,
            stdout=f,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        classic_result = run_data_path(spark, classic)
        status = child.wait(timeout=600)
    finally:
        stop_process_group(child)
    assert status == 0, log.read_text()[-6000:]
    return {
        "connect": (connect, json.loads(out.read_text())),
        "classic": (classic, classic_result),
    }


@pytest.fixture(scope="module")
def through_connect(runs) -> tuple[Paths, dict]:
    return runs["connect"]


@pytest.fixture(scope="module")
def through_classic(runs) -> tuple[Paths, dict]:
    return runs["classic"]


def read_rows(spark, paths: Paths, table: str) -> list[dict]:
    """Every row of ``table`` as plain values, sorted by day and key (run-specific columns
    dropped: the quarantine's run id and time)."""
    df = spark.read.format("delta").load(paths.table(table)).drop("run_id", "quarantined_at")
    rows = [r.asDict(recursive=True) for r in df.collect()]
    keys = ("dataset", "dt", *TABLES[table])
    # The whole row last: an order that does not depend on the order the files were read in.
    return sorted(rows, key=lambda r: ([str(r.get(k)) for k in keys], json.dumps(r, default=str)))


@pytest.mark.parametrize("table", list(TABLES))
def test_each_table_through_connect_equals_the_classic_one(
    spark, through_connect, through_classic, table
):
    connect_rows = read_rows(spark, through_connect[0], table)
    classic_rows = read_rows(spark, through_classic[0], table)
    if table not in ("quarantine",):
        assert classic_rows, f"{table}: the comparison needs rows"
    assert differences(connect_rows, classic_rows, table) == []


def test_the_stages_report_the_same_through_connect(through_connect, through_classic):
    """Row counts, inputs, quality reports (Great Expectations on a Connect DataFrame) and
    example counts are identical."""
    connect, classic = through_connect[1], through_classic[1]
    assert connect == classic
    assert classic["quality"]["raw_events"] and classic["quality"]["user_features"]
    assert all(r["statistics"] for r in classic["quality"]["raw_events"].values())
    for table, report in classic["quality"]["damaged"].items():
        assert len(report["failures"]) == 1, table
        assert len(report["failures"][0]["sample_rows"]) == 3, table


def test_the_feast_export_of_the_connect_lake_equals_the_classic_one(
    through_connect, through_classic
):
    (connect_home, connect), (classic_home, classic) = through_connect, through_classic
    connect, classic = connect["snapshots"], classic["snapshots"]
    assert connect.keys() == classic.keys()
    for table, days in classic.items():
        assert connect[table].keys() == days.keys() == set(DAYS)
        for day, path in days.items():
            a = pq.read_table(connect[table][day].replace("<home>", connect_home.home))
            b = pq.read_table(path.replace("<home>", classic_home.home))
            # The provenance metadata names each home's table; the rows must be equal.
            assert a.schema.remove_metadata() == b.schema.remove_metadata(), (table, day)
            assert a.num_rows > 0
            rows_a, rows_b = _nan_named(a.to_pylist()), _nan_named(b.to_pylist())
            assert differences(rows_a, rows_b, f"{table} {day}") == []


def _nan_named(value):
    """``value`` with each NaN (the snapshots' missing list values) as the string ``"NaN"``:
    NaN equals nothing, itself included."""
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    if isinstance(value, dict):
        return {k: _nan_named(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_nan_named(v) for v in value]
    return value


def test_the_comparison_notices_one_changed_value(spark, through_classic):
    """The failing case of the comparison above: one counter off by one in one row."""
    rows = read_rows(spark, through_classic[0], "user_features")
    changed = [dict(r) for r in rows]
    changed[len(changed) // 2]["clicks_7d"] += 1
    assert len(differences(changed, rows, "user_features")) == 1
