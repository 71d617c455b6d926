"""Freshness: wall time from a day's files landing to its features online in Feast and to a new
model and a new bento, under the real daemon, next to the same
stages run directly in the same run.

    .venv/bin/python -m benchmarks.freshness                      # 50,000 events a day
    .venv/bin/python -m benchmarks.freshness --events 20000 --history 2 --sensor-interval 5

Setup (not timed): ``--history`` days of ``--events`` synthetic events are generated and
materialized with ``recassets materialize`` (daily assets, then the two models), on a fresh
home under ``--workdir``. Two more days are generated and kept aside.

Baseline (day H+1): its files are moved into landing, then the same stages run directly, no
sensors: ``recassets materialize`` of the daily assets for that day (one Dagster run: ingest,
features, checks, training examples, Feast), then ``dagster job execute -j retrain_job`` (the
job the retrain sensor launches).

Loop (day H+2): ``dagster dev`` runs on the home (webserver, daemon, code server) with the
sensors at their defaults (``--sensor-interval`` overrides RECASSETS_SENSOR_INTERVAL_S); the
files are moved into landing and nothing else is done: landing_sensor -> ingest_job (ingest,
features, feature_store) -> automation_condition_sensor -> examples, embeddings, index, bento
-> retrain_sensor -> retrain_job. Each stage's time is read from disk
(``support.stopwatch.loop_stages``).

The ratio loop / baseline is the daemon's overhead (sensor intervals, run launch, the runs
the automation adds). Targets on the 2-core machine: features online within 2 min of landing, a new bento
within 10 min (stage "bento": the newest bento was built against the new online day, ready for
``recassets serve``; under the daemon the serving assets follow the online store, so it does not
wait for the promotion gate; the direct baseline builds it in retrain_job, after the gate).
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from recassets.freshness import consumed_partitions
from recassets.paths import Paths
from recassets.process import stop_process_group
from recassets.serving.server import free_port
from support.stopwatch import loop_stages, watch
from support.webserver import graphql, wait_for_sensors

ROOT = Path(__file__).resolve().parents[1]
DAILY_KEYS = (
    "lake/raw_events,lake/users,lake/items,lake/user_features,lake/item_features,"
    "lake/cohort_features,featurestore/feature_store,lake/training_examples"
)
MODEL_KEYS = "models/two_tower_model,models/ranking_model"
START = "2026-01-01"
TARGETS = {"online": 120.0, "bento": 600.0}


def day(i: int) -> str:
    import datetime as dt

    return (dt.date.fromisoformat(START) + dt.timedelta(days=i)).isoformat()


def env_for(paths: Paths, **extra: str) -> dict[str, str]:
    return {
        **os.environ,
        "RECASSETS_HOME": paths.home,
        "DAGSTER_HOME": paths.dagster_home,
        # The loop lands days of January 2026 as if they were live: keep the partitions open
        # past the last landed day (recassets.paths.partition_window), as live data has them.
        "RECASSETS_END_DATE": "open",
        **extra,
    }


def run(paths: Paths, args: list[str], check: bool = True) -> int:
    proc = subprocess.run(
        args,
        cwd=ROOT,
        env=env_for(paths),
        stdout=subprocess.DEVNULL if not check else None,
        stderr=subprocess.STDOUT,
    )
    if check and proc.returncode != 0:
        raise SystemExit(f"failed ({proc.returncode}): {' '.join(args)}")
    return proc.returncode


def recassets(paths: Paths, *args: str) -> None:
    run(paths, [sys.executable, "-m", "recassets.cli", *args])


def land(paths: Paths, staged: Path, d: str) -> None:
    for dataset in ("events", "users", "items"):
        os.replace(staged / dataset / f"dt={d}", paths.landing_dir(dataset, d))


def run_polling(paths: Paths, args: list[str], stages, started: float, reached: dict) -> int:
    """Run a command while polling the stages each second, so that a direct run's stages are
    timed when they happen, as in the loop, not when the command ends."""
    proc = subprocess.Popen(
        args, cwd=ROOT, env=env_for(paths), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
    )
    while True:
        done = proc.poll() is not None
        for s in stages:
            if s.name not in reached and s.done():
                reached[s.name] = round(time.time() - started, 1)
        if done:
            return proc.returncode
        time.sleep(1)


def wait_runs_done(port: int, timeout_s: float = 120) -> None:
    """Let the runs in flight finish before stopping the daemon (the bento stage is seen when
    the bento exists, a moment before its run records it), so the instance stays truthful."""
    query = (
        "{ runsOrError(filter: {statuses: [QUEUED, STARTING, STARTED]}) "
        "{ ... on Runs { results { runId } } } }"
    )
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        try:
            if not graphql(port, query)["data"]["runsOrError"]["results"]:
                return
        except Exception:
            return
        time.sleep(2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=50_000, help="events per day")
    parser.add_argument("--history", type=int, default=3, help="days materialized first")
    parser.add_argument("--sensor-interval", type=int, help="RECASSETS_SENSOR_INTERVAL_S")
    parser.add_argument("--timeout", type=float, default=1800, help="bound on the loop (s)")
    parser.add_argument("--workdir", help="keep the home here (default: a temporary folder)")
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="recassets-freshness-")).absolute()
    if work.exists():
        shutil.rmtree(work)
    home = work / "home"
    paths = Paths(
        home=str(home), landing=str(home / "landing"), lake=str(home / "lake"),
        artifacts=str(home / "artifacts"), lineage=str(home / "lineage"),
        dagster_home=str(home / "dagster"),
    )  # fmt: skip
    h = args.history
    base_day, loop_day = day(h), day(h + 1)
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    print(f"home {home}; {h} days of history, then {base_day} (baseline) and {loop_day} (loop)")

    t = time.time()
    recassets(paths, "generate", "--days", str(h + 2), "--events-per-day", str(args.events), "--start", START)  # fmt: skip
    staged = work / "staged"
    for d in (base_day, loop_day):
        for dataset in ("events", "users", "items"):
            (staged / dataset).mkdir(parents=True, exist_ok=True)
            shutil.move(paths.landing_dir(dataset, d), staged / dataset / f"dt={d}")
    recassets(paths, "materialize", "--select", DAILY_KEYS)
    recassets(paths, "materialize", "--select", MODEL_KEYS)
    print(f"setup: {time.time() - t:.0f} s")

    # --- baseline: the same stages, run directly -----------------------------------------------
    stages = loop_stages(paths, base_day, day(h - 1))
    land(paths, staged, base_day)
    t0 = time.time()
    baseline: dict[str, float] = {}
    cli = [sys.executable, "-m", "recassets.cli"]
    daily = [*cli, "materialize", "--select", DAILY_KEYS, "--first", base_day, "--last", base_day]
    if run_polling(paths, daily, stages, t0, baseline) != 0:
        raise SystemExit("baseline: the daily run failed (see RECASSETS_HOME/logs)")
    retrain = [sys.executable, "-m", "dagster", "job", "execute", "-f", "definitions.py", "-j", "retrain_job"]  # fmt: skip
    # a failing promotion gate fails the run after the checkpoints are written: tolerated
    code = run_polling(paths, retrain, stages, t0, baseline)
    print(f"baseline (direct runs): {baseline} (retrain_job exit {code})")

    # --- the loop under the daemon -------------------------------------------------------------
    extra = {"RECASSETS_SENSOR_INTERVAL_S": str(args.sensor_interval)} if args.sensor_interval else {}  # fmt: skip
    port = free_port()
    log = open(work / "dagster-dev.log", "w")  # noqa: SIM115 (closed in finally)
    proc = subprocess.Popen(
        ["env", "--default-signal=INT,TERM", sys.executable, "-m", "dagster", "dev",
         "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env_for(paths, **extra), stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )  # fmt: skip
    try:
        wait_for_sensors(port, proc)
        time.sleep((args.sensor_interval or 30) + 5)  # a first landing_sensor tick: nothing new
        stages = loop_stages(paths, loop_day, base_day)
        t0 = time.time()
        land(paths, staged, loop_day)
        alive = lambda: None if proc.poll() is None else "dagster dev exited"  # noqa: E731
        loop = watch(stages, started=t0, timeout_s=args.timeout, poll_s=1, alive=alive)
        wait_runs_done(port)
    finally:
        stop_process_group(proc, timeout_s=30)
        log.close()
    assert base_day in (consumed_partitions(paths, "two_tower") or [])

    print(f"\nseconds from landing ({args.events} events/day, load {os.getloadavg()}):")
    print("| stage | loop (daemon) | baseline (direct) | loop / baseline | target |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, secs in loop.items():
        b = baseline.get(name)
        ratio = f"{secs / b:.2f}x" if b else "n/a"
        target = TARGETS.get(name)
        mark = (
            "" if target is None else f"{target:.0f} s ({'met' if secs <= target else 'not met'})"
        )
        print(f"| {name} | {secs:.1f} | {b if b is not None else 'n/a'} | {ratio} | {mark} |")


if __name__ == "__main__":
    main()
