"""The freshness loop under a real daemon: ``dagster dev`` (webserver, daemon, code server) on a
temporary home that already holds two materialized days and trained models. A third day of
synthetic files is dropped into landing; nothing else is done by the test. It then waits, from
what lands on disk, until

    landing_sensor -> ingest_job (raw_events, users, items of that day, then its features
                      (+ checks) and feature_store online, in the same run)
    automation_condition_sensor -> training_examples; item_embeddings, item_index, bento
    retrain_sensor -> retrain_job -> new checkpoints that consumed the day the landing made
    trainable (the previous one: one day is held out)

and records when each stage was reached (printed; never asserted: timings belong to
benchmarks/freshness.py). ``support.stopwatch.loop_stages`` is the list to extend as the loop
grows (item index, bento serving). The process group is killed at the end whatever happens.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recassets.freshness import consumed_partitions
from recassets.paths import Paths
from support.stopwatch import loop_stages, watch
from support.webserver import GATE_STEP, dagster_dev, failed_steps, graphql
from tests.conftest import TEST_SPARK_CONF, home_at

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DAYS, EVENTS = 3, 2000  # two materialized days, then the third lands
START = "2026-01-01"
OLD_DAY, NEW_DAY = "2026-01-02", "2026-01-03"
DAILY_KEYS = (
    "lake/raw_events,lake/users,lake/items,lake/user_features,lake/item_features,"
    "lake/cohort_features,featurestore/feature_store,lake/training_examples"
)
MODEL_KEYS = "models/two_tower_model,models/ranking_model"
LOOP_TIMEOUT_S = 900  # a bound against hanging, not a target (see benchmarks/freshness.py)
# The suite's small-data Spark settings (tests/conftest.py TEST_SPARK_CONF) for the runs' own
# JVMs: 2 shuffle partitions and 2 Delta snapshot partitions instead of 8 and 50.
SPARK_CONF = ",".join(f"{k}={v}" for k, v in TEST_SPARK_CONF.items())
RUNS_QUERY = (
    "{ runsOrError { ... on Runs { results { runId jobName status tags { key value } } } } }"
)


def cli(paths: Paths, *args: str) -> None:
    env = {
        **os.environ,
        "RECASSETS_HOME": paths.home,
        "DAGSTER_HOME": paths.dagster_home,
        "RECASSETS_SPARK_CONF": SPARK_CONF,
    }
    out = subprocess.run(
        [sys.executable, "-m", "recassets.cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    if out.returncode != 0:
        raise AssertionError(f"recassets {' '.join(args)}: exit {out.returncode}\n{why(out)}")


def why(out: subprocess.CompletedProcess) -> str:
    """What a failed CLI run said, short enough for a CI log's tail: the JVM's exception and
    cause lines (a Py4JJavaError's own message is only its Python frames), then the last lines."""
    text = out.stdout + out.stderr
    causes = [
        line.strip()
        for line in text.splitlines()
        if "Exception" in line or "Caused by" in line or "Error:" in line
    ]
    return "\n".join(dict.fromkeys(causes[:40])) + "\n...\n" + text[-3000:]


IN_FLIGHT = ("QUEUED", "NOT_STARTED", "STARTING", "STARTED", "CANCELING")


def failed_runs(port: int) -> list[str]:
    """Runs that failed, as 'job run_id'. A retrain_job failure is tolerated when the promotion
    gate's check is its only failed step: on tiny data the gate may refuse the candidate after
    the checkpoints were written (the stage says). Any other failed step of it is a failure."""
    runs = graphql(port, RUNS_QUERY)["data"]["runsOrError"]["results"]
    failed = []
    for r in runs:
        if r["status"] != "FAILURE":
            continue
        if r["jobName"] == "retrain_job":
            broken = failed_steps(port, r["runId"])
            if broken == [GATE_STEP]:  # none failed: the run itself broke, not tolerated
                continue
            r["jobName"] += f" (failed steps: {broken})"
        failed.append(f"{r['jobName']} {r['runId']}")
    return failed


def settled(port: int, job: str, timeout_s: float) -> list[dict]:
    """Every run, once no run of ``job`` is queued or running any more."""
    deadline = time.time() + timeout_s
    while True:
        runs = graphql(port, RUNS_QUERY)["data"]["runsOrError"]["results"]
        going = [r["runId"] for r in runs if r["jobName"] == job and r["status"] in IN_FLIGHT]
        if not going:
            return runs
        if time.time() > deadline:
            raise AssertionError(f"{job} runs still in flight after {timeout_s} s: {going}")
        time.sleep(3)


@pytest.fixture
def built_home(tmp_path: Path) -> tuple[Paths, Path]:
    """Two days materialized with trained models; the third day's files kept aside."""
    paths = home_at(tmp_path / "home")
    cli(paths, "generate", "--days", str(DAYS), "--events-per-day", str(EVENTS), "--start", START)
    staged = tmp_path / "staged"
    for dataset in ("events", "users", "items"):
        target = staged / dataset
        target.mkdir(parents=True)
        shutil.move(paths.landing_dir(dataset, NEW_DAY), target / f"dt={NEW_DAY}")
    cli(paths, "materialize", "--select", DAILY_KEYS)
    cli(paths, "materialize", "--select", MODEL_KEYS)
    assert consumed_partitions(paths, "two_tower") == [START]  # OLD_DAY is held out
    return paths, staged


def test_a_landed_day_flows_to_a_new_model_under_the_daemon(built_home, tmp_path):
    paths, staged = built_home
    env = {
        **os.environ,
        "RECASSETS_HOME": paths.home,
        "DAGSTER_HOME": paths.dagster_home,
        "RECASSETS_SENSOR_INTERVAL_S": "5",  # ticks every 5 s instead of 30
        # January 2026 landing as if live: partitions open past the last landed day, or the
        # new day would lie past a closed history's end (recassets.paths.partition_window).
        "RECASSETS_END_DATE": "open",
        "RECASSETS_SPARK_CONF": SPARK_CONF,
    }
    log = tmp_path / "dagster-dev.log"
    with dagster_dev(ROOT, env, log) as (port, proc):
        assert_freshness_policies_visible(port)
        # Let one landing_sensor tick see the built home first: it must find nothing to do.
        time.sleep(12)
        landed_at = time.time()
        for dataset in ("events", "users", "items"):  # three renames, as a producer would
            os.replace(staged / dataset / f"dt={NEW_DAY}", paths.landing_dir(dataset, NEW_DAY))

        def alive() -> str | None:
            if proc.poll() is not None:
                return f"dagster dev exited with {proc.returncode} (log: {log})"
            failed = failed_runs(port)
            return f"runs failed: {failed} (instance: {paths.dagster_home})" if failed else None

        stages = loop_stages(paths, NEW_DAY, OLD_DAY)
        reached = watch(stages, started=landed_at, timeout_s=LOOP_TIMEOUT_S, poll_s=3, alive=alive)
        print(f"\nfreshness loop, seconds from landing: {json.dumps(reached)}")

        # The retraining goes on after its checkpoints land (evaluation, the gate, the index,
        # the bento): judge it once it has ended, when a failure has said whether it retries.
        runs = settled(port, "retrain_job", timeout_s=LOOP_TIMEOUT_S)
        assert failed_runs(port) == []
        by_job = {}
        for r in runs:
            by_job.setdefault(r["jobName"], []).append({t["key"]: t["value"] for t in r["tags"]})
        # Exactly one ingestion, for exactly the new day, launched by the landing sensor.
        ingest = by_job["ingest_job"]
        assert [t.get("dagster/partition") for t in ingest] == [NEW_DAY]
        assert ingest[0]["dagster/sensor_name"] == "landing_sensor"
        assert ingest[0]["dagster/run_key"].startswith(f"landing:{NEW_DAY}:events+users+items:")
        # The automation ran the new day only: no other day, no range (history untouched).
        automated = [
            t
            for ts in by_job.values()
            for t in ts
            if t.get("dagster/sensor_name") == "automation_condition_sensor"
        ]
        daily = [t for t in automated if "dagster/partition" in t]
        assert daily and {t["dagster/partition"] for t in daily} == {NEW_DAY}
        assert not any("dagster/asset_partition_range_start" in t for t in automated)
        # One retraining, keyed by the day the landing made trainable.
        retrains = [r for r in runs if r["jobName"] == "retrain_job"]
        assert len(retrains) == 1, f"retrain_job runs: {json.dumps(retrains)}"
        [retrain] = by_job["retrain_job"]
        assert retrain.get("dagster/will_retry") != "true", retrain  # a refusal is final
        assert retrain["recassets/new_partitions"] == f"{OLD_DAY}..{OLD_DAY} (1)"
        assert consumed_partitions(paths, "ranking") == [START, OLD_DAY]
        assert_new_items_served(paths)


def assert_new_items_served(paths: Paths) -> None:
    """The newest bento, served by ``bentoml serve`` over HTTP, recommends items first seen on
    the new day to a new user (cold start: trending, where a new item's 1-day rate stands far
    above its 7-day mean), and answers known users through its policy."""
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    from recassets.bento import bundle as B
    from recassets.bento import server

    items = DeltaTable(paths.table("items")).to_pyarrow_table(
        columns=["item_id", "first_seen", "dt"]
    )
    new_items = set(items.filter(pc.equal(items["dt"], pa_date(NEW_DAY)))["item_id"].to_pylist())
    assert new_items, "the new day brought new items"
    users = (
        DeltaTable(paths.table("users"))
        .to_pyarrow_table(columns=["user_id"])["user_id"]
        .to_pylist()
    )
    with server.serving(paths, B.latest_bento(paths), ready_timeout_s=240) as srv:
        status, cold = srv.post("/recommend", {"user_id": 10**12, "k": 20})
        assert status == 200 and cold["features_day"] == NEW_DAY, cold
        assert new_items & {i["item_id"] for i in cold["items"]}, cold
        for user in sorted(users)[:20]:  # known users: served by the bento's policy
            status, body = srv.post("/recommend", {"user_id": user, "k": 20})
            assert status == 200 and body["policy"] in ("model", "popularity"), body
            assert len(body["items"]) == 20


def pa_date(day: str):
    import datetime as dt

    import pyarrow as pa

    return pa.scalar(dt.date.fromisoformat(day), pa.date32())


def assert_freshness_policies_visible(port: int) -> None:
    """The UI shows the freshness policies: the asset nodes carry them over GraphQL."""
    query = (
        "{ assetNodes { assetKey { path } internalFreshnessPolicy { "
        "... on TimeWindowFreshnessPolicy { failWindowSeconds warnWindowSeconds } } } }"
    )
    nodes = graphql(port, query)["data"]["assetNodes"]
    policies = {"/".join(n["assetKey"]["path"]): n["internalFreshnessPolicy"] for n in nodes}
    expected = {"failWindowSeconds": 48 * 3600, "warnWindowSeconds": 25 * 3600}
    for name in ("lake/user_features", "lake/item_features", "lake/cohort_features",
                 "featurestore/feature_store", "serving/recommender_bento"):  # fmt: skip
        assert policies[name] == expected, name
