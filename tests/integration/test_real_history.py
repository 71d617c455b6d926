"""A real user's history goes through: a MovieLens-layout import with days on which nobody rated
anything, through ``recassets demo --movielens`` (every asset, then a recommendation over HTTP)
and through a range materialization launched as the UI launches it (a partition backfill the
daemon runs as one run); then what the data engineer sees, asked over GraphQL as the UI asks:
the partitions are the days the data covers, each day carries its own figures, and each day's
quality checks are recorded against that day (passed, or WARN on an empty day), not "skipped".
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.webserver import dagster_dev, graphql
from tests.conftest import TEST_SPARK_CONF, home_at
from tests.movielens_history import write_history

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GAPS = (3, 7)  # day indexes without a single rating
SPARK_CONF = ",".join(f"{k}={v}" for k, v in TEST_SPARK_CONF.items())


def env_for(home) -> dict[str, str]:
    env = {
        **os.environ,
        "RECASSETS_HOME": home.home,
        "DAGSTER_HOME": home.dagster_home,
        "RECASSETS_SPARK_CONF": SPARK_CONF,
    }
    # The real partition rule, not the suite's pinned window (tests/conftest.py).
    env.pop("RECASSETS_START_DATE", None)
    env.pop("RECASSETS_END_DATE", None)
    return env


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    root = tmp_path_factory.mktemp("real_history")
    per_day = write_history(root / "ml", gap_days=GAPS)
    home = home_at(root / "home")
    out = subprocess.run(
        [sys.executable, "-m", "recassets.cli", "demo", "--movielens", str(root / "ml")],
        cwd=ROOT, env=env_for(home), capture_output=True, text=True, timeout=1500,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-4000:]
    return home, per_day, out.stdout


def test_the_demo_passes_through_days_without_events_and_serves(demo):
    home, per_day, stdout = demo
    gap_days = [d for d, n in per_day.items() if n == 0]
    assert len(gap_days) == len(GAPS)
    assert "2 day(s) without landing files become empty partitions" in stdout
    # user 1's age 0 (unknown) landed as a null age bucket; the user and its ratings went through
    assert "fields landed as null {'u.data': 0, 'u.item': 0, 'u.user': 1}" in stdout
    assert "missing from u.user" not in stdout
    assert "/recommend {user_id:" in stdout and " 1. item " in stdout
    for day in gap_days:
        manifest = json.loads(Path(home.lineage, "raw_events", f"dt={day}.json").read_text())
        assert (manifest["empty"], manifest["rows"], manifest["inputs"]) == (True, 0, [])
        assert manifest["looked_in"].endswith(f"landing/events/dt={day}")
    full = next(d for d, n in per_day.items() if n)
    manifest = json.loads(Path(home.lineage, "raw_events", f"dt={full}.json").read_text())
    assert (manifest["empty"], manifest["rows"]) == (False, per_day[full])


def wait_for_backfill(port: int, backfill_id: str, timeout_s: float = 600) -> str:
    query = (
        f'{{ partitionBackfillOrError(backfillId: "{backfill_id}") '
        "{ ... on PartitionBackfill { status } } }"
    )
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        status = graphql(port, query)["data"]["partitionBackfillOrError"]["status"]
        if status not in ("REQUESTED", "IN_PROGRESS", "CANCELING"):
            return status
        time.sleep(3)
    raise TimeoutError(f"backfill {backfill_id} still running after {timeout_s} s")


@pytest.fixture(scope="module")
def ui(demo, tmp_path_factory):
    """``dagster dev`` (webserver and daemon) over the demo's home; after a partition backfill of
    raw_events over every day, launched as the UI's materialize dialog does. Also yields the
    feature checks' statuses as the demo left them, read before the backfill: the backfill makes
    the feature tables stale, so the daemon's automation re-materializes them (checks planned,
    IN_PROGRESS) while the test reads, and what the demo recorded is what is asked about."""
    home, per_day, _ = demo
    log = tmp_path_factory.mktemp("ui") / "dagster-dev.log"
    with dagster_dev(ROOT, env_for(home), log) as (port, _):
        features = check_status_by_day(
            asset_node(port, "lake/user_features"), "user_features_quality"
        )
        days = sorted(per_day)
        mutation = (
            "mutation { launchPartitionBackfill(backfillParams: { "
            'assetSelection: [{path: ["lake", "raw_events"]}], '
            f"partitionNames: {json.dumps(days)}, fromFailure: false }}) {{ __typename "
            "... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"
        )
        launched = graphql(port, mutation)["data"]["launchPartitionBackfill"]
        assert launched["__typename"] == "LaunchBackfillSuccess", launched
        status = wait_for_backfill(port, launched["backfillId"])
        yield port, launched["backfillId"], status, features


def asset_node(port: int, key: str) -> dict:
    path = json.dumps(key.split("/"))
    query = (
        f"{{ assetNodeOrError(assetKey: {{path: {path}}}) {{ ... on AssetNode {{ partitionKeys "
        "assetChecksOrError { ... on AssetChecks { checks { name partitionStatuses { "
        "... on AssetCheckTimePartitionStatuses { ranges { startKey endKey status } } } } } } "
        "} } }"
    )
    return graphql(port, query)["data"]["assetNodeOrError"]


def check_status_by_day(node: dict, check: str) -> dict[str, str]:
    keys = node["partitionKeys"]
    (found,) = [c for c in node["assetChecksOrError"]["checks"] if c["name"] == check]
    out = {}
    for r in found["partitionStatuses"]["ranges"]:
        for day in keys[keys.index(r["startKey"]) : keys.index(r["endKey"]) + 1]:
            out[day] = r["status"]
    return out


def materializations(port: int, key: str, run_id: str | None = None) -> dict[str, dict]:
    """The newest materialization of each partition: its run and metadata (label -> value)."""
    path = json.dumps(key.split("/"))
    query = (
        f"{{ assetOrError(assetKey: {{path: {path}}}) {{ ... on Asset {{ "
        "assetMaterializations(limit: 500) { partition runId timestamp metadataEntries { label "
        "... on IntMetadataEntry { intValue } ... on BoolMetadataEntry { boolValue } "
        "... on TextMetadataEntry { text } } } } } }"
    )
    events = graphql(port, query)["data"]["assetOrError"]["assetMaterializations"]
    out: dict[str, dict] = {}
    for e in sorted(events, key=lambda e: float(e["timestamp"])):
        if run_id is None or e["runId"] == run_id:
            values = {
                m["label"]: next((m[k] for k in ("intValue", "boolValue", "text") if k in m), None)
                for m in e["metadataEntries"]
            }
            out[e["partition"]] = {"run_id": e["runId"], **values}
    return out


def test_the_partitions_are_the_days_the_history_covers(demo, ui):
    _, per_day, _ = demo
    port, *_ = ui
    for key in ("lake/raw_events", "lake/user_features", "lake/training_examples"):
        assert asset_node(port, key)["partitionKeys"] == sorted(per_day), key


def test_each_day_of_the_demo_range_carries_its_own_figures(demo, ui):
    _, per_day, _ = demo
    port, *_ = ui
    events = materializations(port, "lake/raw_events")
    assert {d: m["dagster/row_count"] for d, m in events.items()} == per_day
    assert {d for d, m in events.items() if m["empty_day"]} == {
        d for d, n in per_day.items() if n == 0
    }
    examples = materializations(port, "lake/training_examples")
    assert set(examples) == set(per_day)
    rows = {d: m["dagster/row_count"] for d, m in examples.items()}
    assert all(rows[d] == 0 for d, n in per_day.items() if n == 0)
    assert len(set(rows.values())) > 2  # not one total repeated on every day
    users = materializations(port, "lake/user_features")
    assert len({m["dagster/row_count"] for m in users.values()}) > 1


def test_the_ui_backfill_runs_as_one_run_and_records_each_day(demo, ui):
    _, per_day, _ = demo
    port, backfill_id, status, _ = ui
    assert status == "COMPLETED_SUCCESS"
    runs = graphql(
        port,
        f'{{ runsOrError(filter: {{tags: [{{key: "dagster/backfill", value: "{backfill_id}"}}]}}) '
        "{ ... on Runs { results { runId status } } } }",
    )["data"]["runsOrError"]["results"]
    assert [r["status"] for r in runs] == ["SUCCESS"]  # single-run backfill policy: one run
    mats = materializations(port, "lake/raw_events", run_id=runs[0]["runId"])
    assert {d: m["dagster/row_count"] for d, m in mats.items()} == per_day


def test_each_days_checks_are_recorded_against_that_day(demo, ui):
    _, per_day, _ = demo
    port, *_ = ui
    node = asset_node(port, "lake/raw_events")
    quality = check_status_by_day(node, "raw_events_quality")
    assert quality == {d: "SUCCEEDED" for d in per_day}
    has_events = check_status_by_day(node, "raw_events_has_events")
    assert has_events == {d: "SUCCEEDED" if n else "FAILED" for d, n in per_day.items()}
    features = ui[3]
    assert features == {d: "SUCCEEDED" for d in per_day}
