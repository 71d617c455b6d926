"""Freshness: wall time from a day's files landing to its features online in Feast and to a new
model and a new bento, under the real daemon, next to the same runs launched directly, in the
same run of this script, on the same day landing on the same home.

    .venv/bin/python -m benchmarks.freshness                      # 50,000 events a day
    .venv/bin/python -m benchmarks.freshness --events 2000 --history 2 --sensor-interval 5

Setup (not timed): ``--history`` (3) days of ``--events`` synthetic events a day are
generated and materialized with ``recassets materialize`` (every asset: the daily assets, the
models and their evaluation, embeddings, index and bento), on a fresh home under
``--workdir``. One more day, generated with them (the same volume), is kept aside: the day
both sides land. The home is then copied whole (lake, Feast, checkpoints, bento store, Dagster
instance): both sides start from this copy, restored at the same path.

Both sides then time the same thing: the same day's files move into landing (an atomic
rename), and from that moment ``support.stopwatch.loop_stages`` is polled every second
(``watch``) until each stage is on disk (ingested, features, training examples, online in
Feast, both models having consumed the day before, a bento built against the new online day)
or the side has nothing left running.

Baseline (direct): the runs the loop launches, each a Dagster run started from the command
line (``dagster asset materialize --select ... [--partition DAY]``, ``dagster job execute``),
in the loop's order with no waiting between steps: the landing sensor's ``ingest_job``
selection for the day (ingestion, features, Feast); then at once, as one automation tick
launches them, the day's training examples and item embeddings, index and bento from the
current policy; then ``retrain_job`` (what the retrain sensor launches: warm start over the
newly trainable day, evaluation, the promotion gate, then embeddings, index and bento again).

Loop (daemon): ``dagster dev`` on the restored home (webserver, daemon, code server), sensors
at their defaults (``--sensor-interval`` overrides RECASSETS_SENSOR_INTERVAL_S), started and
given one sensor tick before the day lands; then nothing is done but watching: landing_sensor
-> ingest_job -> automation_condition_sensor -> examples, embeddings, index, bento ->
retrain_sensor -> retrain_job. The runs it launched are listed afterwards.

loop / baseline is then the daemon's own cost: sensor intervals and run launches (its
webserver and code server share the cores too). Targets on the 2-core machine: features online within 2 min of
landing, a new bento within 10 min. A failing promotion gate fails retrain_job after the
checkpoints are written: tolerated on both sides (the model stage is read from the
checkpoints), and only there: the baseline fails on any other failed step, and the loop's
listing names the failed steps of each failed run.
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from recassets.bento.server import free_port
from recassets.paths import Paths
from recassets.process import stop_process_group
from support.stopwatch import Stage, loop_stages, watch
from support.webserver import GATE_STEP, failed_steps, graphql, wait_for_sensors

ROOT = Path(__file__).resolve().parents[1]
START = "2026-01-01"
TARGETS = {"online": 120.0, "bento": 600.0}
POLL_S = 1.0  # both sides' stopwatch
# What the loop's runs materialize, as direct runs (sensors/landing.py ingest_job; the
# automation conditions of sensors/conditions.py; sensors/retrain.py retrain_job).
INGEST_JOB_KEYS = (
    "lake/raw_events,lake/users,lake/items,lake/user_features,lake/item_features,"
    "lake/cohort_features,featurestore/feature_store"
)
EXAMPLES_KEYS = "lake/training_examples"
SERVING_KEYS = "retrieval/item_embeddings,retrieval/item_index,serving/recommender_bento"
RUNS_QUERY = (
    "{ runsOrError { ... on Runs { results { runId jobName status startTime endTime "
    "assetSelection { path } tags { key value } } } } }"
)


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


def recassets(paths: Paths, *args: str) -> None:
    code = subprocess.call([sys.executable, "-m", "recassets.cli", *args], cwd=ROOT,
                           env=env_for(paths))  # fmt: skip
    if code != 0:
        raise SystemExit(f"failed ({code}): recassets {' '.join(args)}")


def stage_day(paths: Paths, d: str, pending: Path) -> None:
    """Move day ``d``'s landed folders to ``pending`` (same filesystem), not yet landed."""
    for dataset in ("events", "users", "items"):
        (pending / dataset).mkdir(parents=True, exist_ok=True)
        shutil.move(paths.landing_dir(dataset, d), pending / dataset / f"dt={d}")


def land(paths: Paths, pending: Path, d: str) -> None:
    """Land day ``d`` (one rename per dataset: each folder appears whole)."""
    for dataset in ("events", "users", "items"):
        os.replace(pending / dataset / f"dt={d}", paths.landing_dir(dataset, d))


def clock(
    stages: Sequence[Stage], started: float, timeout_s: float, alive: Callable[[], str | None]
) -> dict[str, float]:
    """Seconds from ``started`` to each stage, polled every POLL_S (``watch``): the one
    stopwatch of both sides. A stage not reached before ``alive`` gives a reason to stop (or
    ``timeout_s``) is left out and reported."""
    try:
        return watch(stages, started=started, timeout_s=timeout_s, poll_s=POLL_S, alive=alive)
    except TimeoutError as e:
        print(f"  stopped watching: {e}")
        return {s.name: round(s.reached_at - started, 1) for s in stages if s.reached_at}


class Direct(threading.Thread):
    """The baseline's runs in a thread while the main thread watches: steps one after another
    with no waiting, the runs of a step at once (as one daemon tick launches them)."""

    def __init__(self, paths: Paths, day_: str, logs: Path) -> None:
        super().__init__(daemon=True)
        self.paths, self.logs, self.codes, self.failed = paths, logs, {}, None
        dagster = [sys.executable, "-m", "dagster"]
        assets = [*dagster, "asset", "materialize", "-f", "definitions.py", "--select"]
        retrain = [*dagster, "job", "execute", "-f", "definitions.py", "-j", "retrain_job"]
        # (name, command, whether a failure is tolerated), by step
        self.steps = [
            [("ingest_job's selection", [*assets, INGEST_JOB_KEYS, "--partition", day_], False)],
            [
                ("training examples", [*assets, EXAMPLES_KEYS, "--partition", day_], False),
                ("embeddings, index, bento", [*assets, SERVING_KEYS], False),
            ],
            [("retrain_job", retrain, True)],  # a refusing gate fails it after the checkpoints
        ]
        self._seen_done = False

    def run(self) -> None:
        self.logs.mkdir(parents=True, exist_ok=True)
        for i, step in enumerate(self.steps):
            t = time.time()
            procs = []
            for j, (name, cmd, tolerated) in enumerate(step):
                with open(self.logs / f"step{i + 1}-{j + 1}.log", "w") as log:
                    proc = subprocess.Popen(cmd, cwd=ROOT, env=env_for(self.paths), stdout=log,
                                            stderr=subprocess.STDOUT)  # fmt: skip
                procs.append((j, name, proc, tolerated))
            while procs:  # each run's own end, whichever ends first
                for j, name, proc, tolerated in list(procs):
                    code = proc.poll()
                    if code is not None:
                        steps = steps_failed(self.logs / f"step{i + 1}-{j + 1}.log") if code else []
                        self.codes[name] = (code, round(time.time() - t, 1), steps)
                        # tolerated: a failure at the gate only (any other failed step is one)
                        if code and not (tolerated and steps and set(steps) <= {GATE_STEP}):
                            self.failed = self.failed or name
                        procs.remove((j, name, proc, tolerated))
                time.sleep(0.2)
            if self.failed:
                return

    def alive(self) -> str | None:
        """None while runs remain, and for one more poll after the last ended (so that what
        it wrote is seen); then why the watch should stop."""
        if self.is_alive() or not self._seen_done:
            self._seen_done = not self.is_alive()
            return None
        return f"the direct runs ended{f' ({self.failed} failed)' if self.failed else ''}"


def steps_failed(log: Path) -> list[str]:
    """The failed steps a ``dagster job execute`` log names ("Steps failed: [...]")."""
    found = re.search(r"Steps failed: (\[[^\]]*\])", log.read_text(errors="replace"))
    return sorted(ast.literal_eval(found.group(1))) if found else []


def runs_by_id(port: int) -> dict[str, dict]:
    try:
        results = graphql(port, RUNS_QUERY)["data"]["runsOrError"]["results"]
    except (OSError, KeyError, TypeError, ValueError):
        return {}
    return {r["runId"]: r for r in results}


def describe_run(r: dict) -> str:
    tags = {t["key"]: t["value"] for t in r.get("tags") or []}
    keys = ",".join("/".join(a["path"]) for a in r.get("assetSelection") or [])
    launched = tags.get("dagster/sensor_name", "-")
    part = tags.get("dagster/partition", "")
    took = (
        f", {r['endTime'] - r['startTime']:.0f} s"
        if r.get("startTime") and r.get("endTime")
        else ""
    )
    failed = f" (failed steps: {', '.join(r['failedSteps'])})" if r.get("failedSteps") else ""
    return (
        f"{r['jobName']} ({launched}{', ' + part if part else ''}) {r['status']}{took}{failed}: "
        f"{keys}"
    )


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


def restore(snapshot: Path, home: Path, keep: Path) -> None:
    """Put the setup's home back at ``home`` (the same absolute path), the used one to ``keep``."""
    os.replace(home, keep)
    shutil.copytree(snapshot, home, symlinks=True)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=50_000, help="events per day, every day")
    parser.add_argument("--history", type=int, default=3,
                        help="days materialized before the measured day (at least 2: one is "
                        "held out from training)")  # fmt: skip
    parser.add_argument("--sensor-interval", type=int, help="RECASSETS_SENSOR_INTERVAL_S")
    parser.add_argument("--timeout", type=float, default=1800, help="bound on each side (s)")
    parser.add_argument("--workdir", help="keep the homes here (default: a temporary folder)")
    args = parser.parse_args()
    if args.history < 2:
        parser.error("--history must be at least 2 (the models hold the last day out)")

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
    new_day, trainable_day = day(h), day(h - 1)
    print(f"machine: {platform.node()}, {os.cpu_count()} CPUs, load {os.getloadavg()}")
    print(f"home {home}: {h} days of history from {START}, then {new_day} lands on each side "
          f"({args.events} events every day)")  # fmt: skip

    # --- setup: history, everything built, the new day aside, the home copied ---------------
    t = time.time()
    recassets(paths, "generate", "--days", str(h + 1), "--events-per-day", str(args.events), "--start", START)  # fmt: skip
    pending = work / "pending"
    stage_day(paths, new_day, pending)
    recassets(paths, "materialize")  # every asset over the history: daily, models, serving
    day_files = work / "day"
    shutil.copytree(pending, day_files)  # the loop lands its own copy of the same files
    snapshot = work / "snapshot"
    shutil.copytree(home, snapshot, symlinks=True)
    print(f"setup: {time.time() - t:.0f} s")

    # --- baseline: the same runs, launched directly -------------------------------------------
    print(f"\nbaseline (direct runs), load {os.getloadavg()[0]:.1f}")
    stages = loop_stages(paths, new_day, trainable_day)
    direct = Direct(paths, new_day, work / "direct-logs")
    t0 = time.time()
    land(paths, pending, new_day)
    direct.start()
    baseline = clock(stages, t0, args.timeout, direct.alive)
    direct.join()
    for name, (code, secs, steps) in direct.codes.items():
        failed = f" (failed steps: {', '.join(steps)})" if steps else ""
        print(f"  {name}: exit {code}, {secs} s from its step's start{failed}")
    print(f"  stages (s from landing): {baseline}")
    if direct.failed:
        print(f"  the {direct.failed} run failed: see {work / 'direct-logs'}")

    # --- the loop under the daemon, from the same state ---------------------------------------
    restore(snapshot, home, work / "home-direct")
    shutil.rmtree(pending)  # emptied by the baseline's landing
    os.replace(day_files, pending)
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
        print(f"\nloop (daemon), load {os.getloadavg()[0]:.1f}")
        before = runs_by_id(port)
        stages = loop_stages(paths, new_day, trainable_day)
        alive = lambda: None if proc.poll() is None else "dagster dev exited"  # noqa: E731
        t0 = time.time()
        land(paths, pending, new_day)
        loop = clock(stages, t0, args.timeout, alive)
        wait_runs_done(port)
        launched = [r for i, r in runs_by_id(port).items() if i not in before]
        for r in launched:  # what failed in a failed run: the gate alone, or something broken
            if r["status"] == "FAILURE":
                r["failedSteps"] = failed_steps(port, r["runId"])
    finally:
        stop_process_group(proc, timeout_s=30)
        log.close()
    print(f"  stages (s from landing): {loop}")
    print(f"  {len(launched)} runs launched by the daemon (newest first):")
    for r in launched:
        print(f"    {describe_run(r)}")

    print(f"\nseconds from landing {new_day} ({args.events} events a day, {h} days of history, "
          f"load {os.getloadavg()[0]:.1f}):")  # fmt: skip
    print("| stage | loop (daemon) | baseline (direct) | loop / baseline | target |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for s in stages:
        secs, b = loop.get(s.name), baseline.get(s.name)
        ratio = f"{secs / b:.2f}x" if secs is not None and b else "n/a"
        target = TARGETS.get(s.name)
        mark = (
            ""
            if target is None
            else f"{target:.0f} s"
            + ("" if secs is None else f" ({'met' if secs <= target else 'not met'})")
        )
        print(f"| {s.name} | {secs if secs is not None else 'n/a'} | "
              f"{b if b is not None else 'n/a'} | {ratio} | {mark} |")  # fmt: skip


if __name__ == "__main__":
    main()
