"""``recassets.spark.local_frame``: the small frames the code builds from Python rows, without the
Python RDD of classic ``createDataFrame``, so that executors need no Python (the executor image of
a k8s:// master, deploy/docker/Dockerfile.spark, has none; docs/deploy.md, "Spark beyond the run
pod"). Checked: no module of the library builds a frame another way; the helper gives what
createDataFrame gives (types, nulls, nested values, time zones); and, in a Spark whose executors'
Python does not exist, the old call fails while the helper, with every schema the call sites use,
and two of the call sites themselves run."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from recassets.events import QUARANTINE_DDL
from recassets.ingest.parsing import INDEX_DDL
from recassets.spark import local_frame

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, Row, SparkSession

ROOT = Path(__file__).resolve().parents[2]

# What makes executors start a Python worker: a Python RDD (createDataFrame of Python rows,
# parallelize, .rdd), or Python code run on the rows (UDFs, the pandas and Arrow map functions).
NEEDS_PYTHON = re.compile(
    r"\.createDataFrame\(|\.parallelize\(|\.rdd\b|\budf\b|\bpandas_udf\b|\bmapInPandas\b"
    r"|\bmapInArrow\b|\bapplyInPandas\b|\bapplyInArrow\b|\bforeachPartition\b"
)


def python_on_executors(source: str) -> list[str]:
    """The lines of ``source`` that would run Python on the executors (comments aside)."""
    found = []
    for line in source.splitlines():
        code = line.split("#", 1)[0]
        if NEEDS_PYTHON.search(code):
            found.append(line.strip())
    return found


def test_the_detector_finds_what_needs_a_python_worker():
    assert python_on_executors("df = spark.createDataFrame([(1,)], 'a int')")
    assert python_on_executors("spark.sparkContext.parallelize(rows)")
    assert python_on_executors("n = df.rdd.getNumPartitions()")
    assert python_on_executors("f = F.udf(lambda x: x)")
    assert python_on_executors("df.mapInPandas(fn, schema)")
    assert not python_on_executors("df = local_frame(spark, rows, DDL)  # not createDataFrame(")
    assert not python_on_executors("group.update(lr=lr, fused=True, foreach=None)")


def test_no_library_or_asset_module_builds_a_frame_that_needs_python_on_executors():
    helper = ROOT / "recassets" / "spark.py"
    offenders = {
        str(p.relative_to(ROOT)): bad
        for folder in ("recassets", "assets")
        for p in sorted((ROOT / folder).rglob("*.py"))
        if p != helper and (bad := python_on_executors(p.read_text()))
    }
    assert offenders == {}


# Every schema the call sites give local_frame, with rows of the shapes they give.
DAY = dt.date(2026, 1, 1)
NOW = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
CASES = {
    "examples_starts": (
        [
            (DAY, dt.datetime.combine(DAY, dt.time(), dt.UTC)),
            (dt.date(2026, 3, 29), dt.datetime(2026, 3, 29, tzinfo=dt.UTC)),
        ],  # fmt: skip
        "dt date, _start timestamp",
    ),
    "backfill_priors": ([(0, 0.25, None), (1, 0.5, 1.0)], "d int, prior_7 double, prior_28 double"),
    "pipelines_null_pair": ([(None, None)], "_cat string, _cre string"),
    "parsing_empty": (
        [],
        "_uri string, _block bigint, _id bigint, dt date, raw string, _corrupt boolean, "
        "_jsonl boolean, `user id` string, `x` string",
    ),
    "pipeline_index": ([("file:/a", 0, "file:/a", 1), ("file:/b", 2, "file:/b", None)], INDEX_DDL),
    "pipeline_quarantine": (
        [("events", "file:/a", None, None, "not JSON", None, "run-1", NOW, DAY)],
        QUARANTINE_DDL,
    ),
    "pipeline_quarantine_empty": ([], QUARANTINE_DDL),
}
# Beyond the call sites: nested values, maps, dict rows and naive datetimes.
MORE = {
    "nested": (
        [
            (1, [1.5, None], {"a": 1, "b": None}, (dt.datetime(2026, 1, 1, 12), "s"), [(1, "x")]),
            (2, None, {}, None, []),
        ],
        "id int, xs array<double>, m map<string,int>, s struct<t: timestamp, n: string>, "
        "l array<struct<k: bigint, v: string>>",
    ),
    "naive_and_dicts": (
        [{"t": dt.datetime(2026, 6, 1, 12, 30), "n": 1}, {"n": 2, "t": None}],
        "t timestamp, n bigint",
    ),
}


def _typed_rows(df: DataFrame) -> list[Row]:
    """Rows with each timestamp as its instant too (collect() shows it in the local zone)."""
    stamps = [name for name, kind in df.dtypes if kind == "timestamp"]
    return df.selectExpr("*", *[f"unix_micros(`{c}`) AS `_u_{c}`" for c in stamps]).collect()


@pytest.fixture
def local_zone_not_utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The Python process's local zone away from UTC: createDataFrame reads a naive datetime in
    it, and so must local_frame."""
    import time

    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.mark.parametrize("name", [*CASES, *MORE])
def test_local_frame_gives_what_create_dataframe_gives(
    spark: SparkSession, local_zone_not_utc: None, name: str
) -> None:
    rows, schema = {**CASES, **MORE}[name]
    old_zone = spark.conf.get("spark.sql.session.timeZone") or "UTC"
    try:
        for zone in ("UTC", "America/New_York"):  # the Arrow path localizes in the session's
            spark.conf.set("spark.sql.session.timeZone", zone)
            want, got = spark.createDataFrame(rows, schema), local_frame(spark, rows, schema)
            assert got.schema == want.schema
            assert _typed_rows(got) == _typed_rows(want)
    finally:
        spark.conf.set("spark.sql.session.timeZone", old_zone)


def test_rows_that_do_not_fit_are_refused(spark: SparkSession) -> None:
    with pytest.raises(ValueError, match="NOT NULL"):
        local_frame(spark, [(None, "f", None, None, "r", None, "x", NOW, DAY)], QUARANTINE_DDL)
    with pytest.raises(ValueError, match="2 values for 4 columns"):
        local_frame(spark, [("a", 1)], INDEX_DDL)
    with pytest.raises(TypeError, match="struct schema"):
        local_frame(spark, [(1,)], "int")


# --- executors without Python -----------------------------------------------------------------

CHILD = """
import datetime as dt, json, sys
from pyspark.sql import SparkSession
from recassets.spark import local_frame
from tests.unit.test_local_frame import CASES, MORE

spark = (
    SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
    .config("spark.sql.session.timeZone", "UTC").config("spark.sql.shuffle.partitions", "2")
    .getOrCreate()
)
spark.sparkContext.setLogLevel("OFF")
out = {}
try:
    spark.createDataFrame([(1, "a")], "n int, s string").collect()
    out["createDataFrame"] = "ran"
except Exception as e:
    out["createDataFrame"] = "Cannot run program" if "Cannot run program" in str(e) else str(e)[-500:]
for name, (rows, schema) in {**CASES, **MORE}.items():
    # a collect, a join and a shuffle: tasks on the executors, as the call sites' plans run
    df = local_frame(spark, rows, schema)
    out[name] = [len(df.collect()), df.crossJoin(spark.range(2)).repartition(3).count()]

# Two call sites themselves, on frames of SQL VALUES (the JVM's own).
from recassets.features.pipelines import with_content_embedding
from recassets.training.examples import _rated_with_negatives_range

items = spark.sql(
    "SELECT * FROM VALUES (1, 'c1', 'k1', TIMESTAMP'2025-12-30 00:00:00', DATE'2025-12-31'),"
    " (2, 'c2', NULL, TIMESTAMP'2025-12-30 00:00:00', DATE'2025-12-31')"
    " AS t(item_id, category, creator, first_seen, dt)"
)
out["with_content_embedding"] = with_content_embedding(items, items).count()
events = spark.sql(
    "SELECT * FROM VALUES ('e1', 'rating', 7, 1, TIMESTAMP'2026-01-01 10:00:00', 5.0D, DATE'2026-01-01')"
    " AS t(event_id, event_type, user_id, item_id, ts, value, dt)"
)
days = [dt.date(2026, 1, 1)]
out["rated_with_negatives_range"] = _rated_with_negatives_range(spark, events, items, days).count()
print("RESULT " + json.dumps(out))
spark.stop()
"""


def test_executors_without_python_run_the_helper_and_the_call_sites_but_not_create_dataframe():
    env = {**os.environ, "PYSPARK_PYTHON": "/nonexistent/python3"}  # the workers' Python only
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    lines = [x for x in done.stdout.splitlines() if x.startswith("RESULT ")]
    assert done.returncode == 0 and lines, (done.stdout[-2000:], done.stderr[-4000:])
    out = json.loads(lines[-1].removeprefix("RESULT "))
    # the old way starts a Python worker on the executor: it cannot here
    assert out.pop("createDataFrame") == "Cannot run program"
    assert out.pop("with_content_embedding") == 2
    assert out.pop("rated_with_negatives_range") >= 1  # the rating, and the negatives drawn
    want = {name: [len(rows), 2 * len(rows)] for name, (rows, _) in {**CASES, **MORE}.items()}
    assert out == want
