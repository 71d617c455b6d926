"""One day through local Spark against the same day through a Spark Connect server, in the
same run.

    .venv/bin/python -m benchmarks.scale_connect                      # 20,000 events, 3 rounds
    .venv/bin/python -m benchmarks.scale_connect --events 100000 --repeat 5

One synthetic day (events, users, items) is landed once and copied into two homes. Each side
is a long-lived child process holding one session: ``classic`` a local Spark session in the
child's own JVM (``get_spark``), ``connect`` a Spark Connect client (``get_spark(remote=...)``)
of a server started here from pyspark's distribution with delta-spark's jars
(``support/spark_connect.py``). Both JVMs get the same master (``local[2]``), the same driver
memory and ``get_spark``'s default SQL conf; the client sends the same conf with its session.
A round is the data path of the day, as the assets run it: ingest events, users and items, then
the three feature tables (an idempotent overwrite of the day's partitions, as a re-run is).
Each side runs one round first (JVM warm-up, class loading, the tables' creation), then
``--repeat`` rounds, alternating which goes first; medians. One process cannot hold both kinds
of session (a Connect session switches pyspark's functions to their Connect form process-wide),
hence the children; the parent only times what they report.

What it predicts: both JVMs share this machine's cores and disk, so the ratio is Connect's own
overhead (a gRPC round trip per action and per analysis, plans serialized, results in Arrow
batches), not a cluster's throughput; on a cluster the server's executors do the work, and the
overhead per action stays what it is here, so it matters for short per-day jobs, not big ones.

Both sides must do the same work: after the rounds, with both children and the server
stopped, a local session compares every table the rounds wrote (the ingested tables, the
quarantine, the three feature tables) between the two homes, doubles to 9 significant digits
(``frame_differences``), and the run fails if any differs.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import frame_differences, machine_line

START = dt.date(2026, 1, 1)
DATASETS = ("users", "items", "events")
MASTER = "local[2]"
JVM = {"spark.driver.memory": "2g"}  # both sides' driver JVM (the default 4g is half this box)
ROOT = Path(__file__).resolve().parents[1]


def round_once(spark, home: str) -> float:
    """One round: the day through ingestion and the feature tables, in seconds."""
    from recassets.features.pipelines import build_features
    from recassets.ingest import ingest
    from recassets.paths import Paths

    paths = Paths.at(home)
    day = START.isoformat()
    t = time.perf_counter()
    for dataset in DATASETS:
        ingest(spark, paths, dataset, [day], allow_missing_days=dataset != "events")
    build_features(spark, paths, [day])
    return time.perf_counter() - t


def child(side: str, home: str, url: str) -> None:
    """A side's process: one session, a round per line read from stdin, its time printed."""
    from recassets.spark import get_spark

    spark = get_spark(MASTER, conf=JVM, remote=url if side == "connect" else None)
    for _ in sys.stdin:
        print(json.dumps({"seconds": round_once(spark, home)}), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=20_000, help="events of the day")
    ap.add_argument("--repeat", type=int, default=3, help="timed rounds per side")
    ap.add_argument("--child", nargs=3, metavar=("SIDE", "HOME", "URL"), help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        child(*a.child)
        return
    print(machine_line(), flush=True)

    from recassets.paths import Paths
    from recassets.process import stop_process_group
    from recassets.spark import session_conf
    from recassets.synthetic import SyntheticConfig, generate
    from support.spark_connect import start_connect_server

    with tempfile.TemporaryDirectory(prefix="scale_connect-") as tmp:
        root = Path(tmp)
        landed = Paths.at(root / "classic")
        summary = generate(landed, SyntheticConfig(start=START, days=1, events_per_day=a.events))
        shutil.copytree(landed.landing, Paths.at(root / "connect").landing)
        print(f"one day: {summary.events} events landed, copied to both homes", flush=True)
        # the server's JVM as get_spark's: its default conf (driver options included) and JVM
        server_conf = {k: v for k, v in session_conf(JVM, {}).items() if k.startswith("spark.")}
        t = time.perf_counter()
        server, url = start_connect_server(root / "server.log", server_conf, MASTER)
        print(f"Spark Connect server up in {time.perf_counter() - t:.1f} s at {url}", flush=True)
        procs: dict[str, subprocess.Popen] = {}
        try:
            for side in ("classic", "connect"):
                procs[side] = subprocess.Popen(
                    [sys.executable, "-m", "benchmarks.scale_connect", "--child", side,
                     str(root / side), url],
                    cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                    start_new_session=True,
                )  # fmt: skip
            times = run(procs, a.repeat)
        finally:
            for p in procs.values():
                stop_process_group(p)
            stop_process_group(server)
        diffs = compare_homes(Paths.at(root / "classic"), Paths.at(root / "connect"))
    median = {side: statistics.median(t) for side, t in times.items()}
    print(f"\none day ({summary.events} events): ingest + the three feature tables, median of "
          f"{a.repeat}:")  # fmt: skip
    for side, t in times.items():
        print(f"  {side:<8} {median[side]:6.1f} s   ({', '.join(f'{x:.1f}' for x in t)})")
    print(f"  Spark Connect / local Spark: {median['connect'] / median['classic']:.2f}x")
    same = not any(diffs.values())
    print(f"  the two homes' tables identical: {same} ("
          + ", ".join(f"{t} {n}" for t, n in diffs.items()) + " differing rows)")  # fmt: skip
    if not same:
        sys.exit("the two sides wrote different tables: the ratio compares different work")


def compare_homes(a: Any, b: Any) -> dict[str, int]:
    """Rows that differ between the two homes' copies of each table the rounds wrote."""
    from recassets.features.pipelines import FEATURE_TABLES
    from recassets.ingest.pipeline import QUARANTINE_TABLE
    from recassets.ingest.results import TABLE_NAMES
    from recassets.spark import get_spark

    spark = get_spark(MASTER, conf=JVM)
    try:
        names = [*(TABLE_NAMES[d] for d in DATASETS), QUARANTINE_TABLE, *FEATURE_TABLES]
        read = lambda paths, name: spark.read.format("delta").load(paths.table(name))  # noqa: E731
        return {n: frame_differences(read(a, n), read(b, n)) for n in names}
    finally:
        spark.stop()


def run(procs: dict[str, subprocess.Popen], repeat: int) -> dict[str, list[float]]:
    def one(side: str) -> float:
        p = procs[side]
        assert p.stdin is not None and p.stdout is not None
        p.stdin.write("go\n")
        p.stdin.flush()
        while line := p.stdout.readline():  # anything else the child prints is passed on
            if line.startswith('{"seconds"'):
                return float(json.loads(line)["seconds"])
            print(f"  [{side}] {line.rstrip()}", flush=True)
        raise RuntimeError(f"the {side} side exited (status {p.wait()})")

    for side in procs:
        print(f"warm-up, {side}: {one(side):.1f} s", flush=True)
    times: dict[str, list[float]] = {side: [] for side in procs}
    for i in range(repeat):
        for side in list(procs) if i % 2 == 0 else list(reversed(procs)):
            times[side].append(one(side))
    return times


if __name__ == "__main__":
    sys.exit(main())
