"""Ingestion throughput against a plain Spark JSON -> Delta copy, measured in the same run.

    .venv/bin/python -m benchmarks.ingest                       # 1M events, then the backfill
    .venv/bin/python -m benchmarks.ingest --events 200000 --backfill-days 0

(a) One day of ``--events`` synthetic events (JSON Lines) through ``recassets.ingest.ingest``:
    validation, duplicates, quarantine and lineage, one Delta commit per table.
(b) Baseline: ``spark.read.json(files).write.format("delta").mode("overwrite")`` of the same
    files: no validation, schema inferred, nothing quarantined. Target: (a) takes at most twice
    as long as (b).
(c) Backfill: ``--backfill-days`` days of ``--backfill-events-per-day`` events in one
    ``ingest()`` call (one Spark job, as Dagster's single-run backfill does).

Both sides run twice on a smaller day first (``--warmup-events``), so neither pays the JVM's
start-up, class loading, Delta's first table creation or the JIT's first compilations. Each
side then runs ``--repeat`` times, alternating which goes first; medians are shown. The Spark
session is the platform's own (``recassets.spark.get_spark``: ``local[*]``, its default conf,
``RECASSETS_SPARK_CONF``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from recassets.ingest import ingest
from recassets.paths import Paths
from recassets.spark import get_spark
from recassets.synthetic import SyntheticConfig, generate

START = dt.date(2026, 1, 1)


def home_at(root: Path) -> Paths:
    # Built directly: RECASSETS_* in the environment must not send the benchmark to real data.
    return Paths(
        *(str(root / n) for n in ("", "landing", "lake", "artifacts", "lineage", "dagster"))
    )


def land(root: Path, days: int, events_per_day: int, max_rows_per_file: int) -> tuple[Paths, int]:
    paths = home_at(root)
    config = SyntheticConfig(
        start=START, days=days, events_per_day=events_per_day, max_rows_per_file=max_rows_per_file
    )
    summary = generate(paths, config)
    return paths, summary.events


def jsonl_files(paths: Paths, day: dt.date) -> list[str]:
    return sorted(str(p) for p in Path(paths.landing_dir("events", day)).glob("*.jsonl"))


def baseline(spark: Any, files: list[str], target: str) -> None:
    spark.read.json(files).write.format("delta").mode("overwrite").save(target)


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def mib(paths: Paths, dataset: str = "events") -> float:
    root = Path(paths.landing) / dataset
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / (1 << 20)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000, help="events in the one-day run")
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed runs of each side (median shown)"
    )
    parser.add_argument(
        "--warmup-events", type=int, default=100_000, help="events of the warm-up day"
    )
    parser.add_argument("--backfill-days", type=int, default=90, help="0 skips the backfill")
    parser.add_argument("--backfill-events-per-day", type=int, default=20_000)
    parser.add_argument("--max-rows-per-file", type=int, default=200_000)
    parser.add_argument("--workdir", default=None, help="where to land (default: a temp folder)")
    parser.add_argument("--keep", action="store_true", help="keep the landed files and tables")
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="recassets-bench-ingest-")).absolute()
    work.mkdir(parents=True, exist_ok=True)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f} "
        f"(other processes share these CPUs: compare only figures from the same run); work dir {work}"
    )
    try:
        run(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> None:
    t0 = time.perf_counter()
    spark = get_spark()
    print(f"spark: {spark.version}, master {spark.sparkContext.master}, "
          f"shuffle partitions {spark.conf.get('spark.sql.shuffle.partitions')}, "
          f"started in {time.perf_counter() - t0:.1f} s")  # fmt: skip

    # Warm-up: both code paths twice on a smaller day, so that neither pays start-up, class
    # loading, the first Delta commit or the JIT's first compilations below.
    warm, _ = land(work / "warm", 1, args.warmup_events, args.max_rows_per_file)
    w = 0.0
    for _ in range(2):
        w += timed(lambda: ingest(spark, warm, "events", [START]))
        w += timed(lambda: baseline(spark, jsonl_files(warm, START), str(work / "warm-baseline")))
    print(f"warm-up: {w:.1f} s")

    t = time.perf_counter()
    day, n = land(work / "day", 1, args.events, args.max_rows_per_file)
    files = jsonl_files(day, START)
    print(f"\nlanded {n:,} events in {len(files)} JSONL file(s), {mib(day):.0f} MiB, "
          f"in {time.perf_counter() - t:.1f} s")  # fmt: skip

    ours, base = [], []
    result = None
    for i in range(args.repeat):
        # Alternate the order, so neither side always runs on the warmer page cache.
        sides = (
            [("ours", ours), ("baseline", base)]
            if i % 2 == 0
            else [("baseline", base), ("ours", ours)]
        )
        for name, times in sides:
            if name == "ours":
                start = time.perf_counter()
                result = ingest(spark, day, "events", [START])
                times.append(time.perf_counter() - start)
            else:
                times.append(timed(lambda: baseline(spark, files, str(work / "baseline"))))
    assert result is not None
    # the baseline did the work it is credited with: every landed line is a row of its table
    # (untimed; ours' rows + quarantined are printed below, duplicates dropped on its side)
    lines = sum(1 for f in files for _ in open(f, "rb"))
    base_rows = spark.read.format("delta").load(str(work / "baseline")).count()
    print(f"    baseline table: {base_rows:,} rows of {lines:,} landed lines")
    if base_rows != lines:
        raise SystemExit("the baseline did not copy every landed line: the comparison is void")
    t_ours, t_base = statistics.median(ours), statistics.median(base)
    print(f"(a) recassets ingest: {t_ours:7.1f} s  {n / t_ours:10,.0f} events/s  "
          f"({result.rows:,} rows, {result.quarantined:,} quarantined)")  # fmt: skip
    print(f"(b) baseline copy:    {t_base:7.1f} s  {n / t_base:10,.0f} events/s  "
          f"(spark.read.json -> Delta overwrite)")  # fmt: skip
    verdict = "within" if t_ours <= 2 * t_base else "OVER"
    print(f"    ratio ours/baseline time: {t_ours / t_base:.2f}x ({verdict} the 2x target)")
    if args.repeat > 1:
        print(f"    runs: ours {', '.join(f'{x:.1f}' for x in ours)}; "
              f"baseline {', '.join(f'{x:.1f}' for x in base)}")  # fmt: skip
    shutil.rmtree(work / "day", ignore_errors=True)
    shutil.rmtree(work / "baseline", ignore_errors=True)

    print(f"    load average now {os.getloadavg()[0]:.1f}")

    if args.backfill_days > 0:
        t = time.perf_counter()
        back, n = land(work / "backfill", args.backfill_days, args.backfill_events_per_day,
                       args.max_rows_per_file)  # fmt: skip
        print(f"\nlanded {args.backfill_days} days, {n:,} events, {mib(back):.0f} MiB, "
              f"in {time.perf_counter() - t:.1f} s")  # fmt: skip
        days = [START + dt.timedelta(days=d) for d in range(args.backfill_days)]
        start = time.perf_counter()
        result = ingest(spark, back, "events", days)
        elapsed = time.perf_counter() - start
        print(f"(c) backfill, one ingest() over {len(days)} days: {elapsed:.1f} s, "
              f"{n / elapsed:,.0f} events/s ({result.rows:,} rows, {result.quarantined:,} quarantined, "
              f"Delta version {result.delta_version})")  # fmt: skip


if __name__ == "__main__":
    main()
