"""Talking to a running Dagster webserver over its GraphQL endpoint, for the integration tests
and benchmarks that start ``dagster dev`` (stopped with ``recassets.process.stop_process_group``).
Plain HTTP, no Dagster import."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

SENSORS_QUERY = (
    '{ sensorsOrError(repositorySelector: {repositoryName: "__repository__", '
    'repositoryLocationName: "recassets"}) { ... on Sensors { results { name '
    "sensorState { status } } } } }"
)
OUR_SENSORS = (
    "landing_sensor",
    "retrain_sensor",
    "automation_condition_sensor",
    "stale_features_sensor",
)


def graphql(port: int, query: str) -> dict[str, Any]:
    """The parsed answer of ``query`` from the webserver on 127.0.0.1:``port``."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.loads(resp.read())


# The promotion gate's check step: the one failed step a retrain_job run may end with on
# purpose (the gate refused the candidate after its checkpoints were written).
GATE_STEP = "models__model_evaluation_model_evaluation_promotion_gate"
STEPS_QUERY = '{ runOrError(runId: "%s") { ... on Run { stepStats { stepKey status } } } }'


def failed_steps(port: int, run_id: str) -> list[str]:
    """The keys of the steps that failed in run ``run_id``, sorted."""
    stats = graphql(port, STEPS_QUERY % run_id)["data"]["runOrError"]["stepStats"]
    return sorted(s["stepKey"] for s in stats if s["status"] == "FAILURE")


def wait_for_sensors(
    port: int,
    proc: subprocess.Popen,
    timeout_s: float = 180,
    names: Iterable[str] = OUR_SENSORS,
) -> None:
    """Until the webserver answers and the code location lists ``names`` as running; raises
    RuntimeError when ``proc`` exits or ``timeout_s`` passes first."""
    wanted = set(names)
    deadline = time.time() + timeout_s
    while True:
        try:
            sensors = graphql(port, SENSORS_QUERY)["data"]["sensorsOrError"]["results"]
            running = {s["name"] for s in sensors if s["sensorState"]["status"] == "RUNNING"}
            if wanted <= running:
                return
        except (OSError, KeyError, TypeError, ValueError, urllib.error.URLError):
            pass  # not up yet
        if proc.poll() is not None or time.time() > deadline:
            raise RuntimeError(
                f"dagster dev did not list the running sensors {sorted(wanted)} in {timeout_s} s"
            )
        time.sleep(2)


@contextlib.contextmanager
def dagster_dev(
    root: Path, env: Mapping[str, str], log_path: Path
) -> Iterator[tuple[int, subprocess.Popen]]:
    """``dagster dev`` (webserver, daemon, code server) of ``root``'s workspace on a free
    loopback port, its output in ``log_path``: yields (port, process) once the sensors run;
    the whole process group is stopped on the way out, whatever happened."""
    from recassets.bento.server import free_port
    from recassets.process import stop_process_group

    port = free_port()
    with open(log_path, "w") as log:
        # env --default-signal: background servers here may otherwise ignore SIGINT/SIGTERM.
        proc = subprocess.Popen(
            ["env", "--default-signal=INT,TERM", sys.executable, "-m", "dagster", "dev",
             "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=root, env=dict(env), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
        try:
            wait_for_sensors(port, proc)
            yield port, proc
        finally:
            stop_process_group(proc, timeout_s=30)


__all__ = ["GATE_STEP", "OUR_SENSORS", "dagster_dev", "failed_steps", "graphql", "wait_for_sensors"]
