"""Ingesting one day to local disk against the same day to an S3 API server, in the same run.

    .venv/bin/python -m benchmarks.scale_s3                        # 20,000 events, 3 rounds
    .venv/bin/python -m benchmarks.scale_s3 --events 100000 --repeat 5

One synthetic day (events, users, items) is landed once, locally. ``recassets.ingest.ingest``
then writes it into two lakes from the same Spark session (the platform's own, ``get_spark``):
a folder on local disk, and ``s3a://<bucket>/lake`` on a moto S3 server (``moto_server``, the
one the tests use) on a free loopback port, with the settings a user gives (``AWS_ENDPOINT_URL``
and credentials; ``recassets.spark.s3a_conf`` derives S3A's). Same files, same code, same JVM:
the difference is the filesystem under Delta. Each lake is written once first (JVM warm-up,
class loading, the tables' creation), then ``--repeat`` times, alternating which goes first,
each time over the same day (an idempotent overwrite of the partition, as a re-run is); medians.

What it predicts: moto keeps objects in the memory of one Python process on this machine, so
the ratio is S3A's and Delta-on-S3's own overhead (a request per object, listing, the commit
protocol), not network latency or a real store's throughput. A real bucket adds a round trip of
milliseconds per request to that, and S3A's parallel uploads help big files more than here.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks._common import machine_line

START = dt.date(2026, 1, 1)
BUCKET = "recassets-bench"
DATASETS = ("users", "items", "events")


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--events", type=int, default=20_000, help="events of the day")
    ap.add_argument("--repeat", type=int, default=3, help="timed rounds per side")
    a = ap.parse_args()
    print(machine_line(), flush=True)

    from recassets.process import stop_process_group
    from support.s3_server import s3_client, s3_lake_env, start_moto

    with tempfile.TemporaryDirectory(prefix="scale_s3-") as tmp:
        root = Path(tmp)
        proc, endpoint = start_moto(root / "moto.log")
        try:
            s3_client(endpoint).create_bucket(Bucket=BUCKET)
            # The edge: what a user sets. get_spark reads it once, when the session starts.
            os.environ.update(s3_lake_env(endpoint, BUCKET))
            run(root, a.events, a.repeat)
        finally:
            stop_process_group(proc)


def run(root: Path, events: int, repeat: int) -> None:
    from recassets.ingest import ingest
    from recassets.paths import Paths
    from recassets.spark import get_spark
    from recassets.synthetic import SyntheticConfig, generate

    local = Paths.at(root / "home")
    s3 = Paths.at(root / "home", lake=f"s3a://{BUCKET}/lake", lineage=str(root / "s3-lineage"))
    summary = generate(local, SyntheticConfig(start=START, days=1, events_per_day=events))
    day = START.isoformat()
    print(f"one day: {summary.events} events landed in {local.landing}", flush=True)

    started = time.perf_counter()
    spark = get_spark()
    print(f"Spark with hadoop-aws started in {time.perf_counter() - started:.1f} s", flush=True)

    def ingest_day(paths: Paths) -> float:
        t = time.perf_counter()
        for dataset in DATASETS:
            ingest(spark, paths, dataset, [day], allow_missing_days=dataset != "events")
        return time.perf_counter() - t

    sides = {"local disk": local, "S3 API (moto)": s3}
    for name, paths in sides.items():
        print(f"warm-up, {name}: {ingest_day(paths):.1f} s", flush=True)
    times: dict[str, list[float]] = {name: [] for name in sides}
    for i in range(repeat):
        order = list(sides) if i % 2 == 0 else list(reversed(sides))
        for name in order:
            times[name].append(ingest_day(sides[name]))
    rows = spark.read.format("delta").load(s3.table("raw_events")).count()
    assert rows == spark.read.format("delta").load(local.table("raw_events")).count()

    print(f"\ningest of one day ({summary.events} events, {rows} rows in raw_events), "
          f"median of {repeat}:")  # fmt: skip
    median = {name: statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        print(f"  {name:<15} {median[name]:6.1f} s   ({', '.join(f'{x:.1f}' for x in t)})")
    ratio = median["S3 API (moto)"] / median["local disk"]
    print(f"  S3 API / local disk: {ratio:.2f}x", flush=True)


if __name__ == "__main__":
    sys.exit(main())
