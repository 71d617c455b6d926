"""Range backfill of the feature tables: the range pass against the per-day loop, same run.

Lands a synthetic history, ingests it, then builds the feature tables of every day twice on
copies of the same lake: ``build_features(mode="daily")`` (one ``compute_day`` per day) and
``build_features(mode="range")`` (``recassets.features.backfill``: one pass). Prints the time
and the number of Spark jobs of each, and those of the range pass over half the days: its job
count must not grow with the number of days (target: equal), and the tables must be equal:
row counts per day and table, and every row, doubles to 9 significant digits (Spark sums in
no fixed order), compared both ways in Spark (``benchmarks.backfill.differences``).

Both paths run once over the first day before anything is timed, each in a throwaway copy of
the lake (untimed: the JVM's code and Spark's plans warm for both sides alike; before, the
range pass over half the days warmed the range pass alone).

    .venv/bin/python -m benchmarks.features_range [--days 30] [--events-per-day 5000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.backfill import differences
from recassets.features.pipelines import build_features
from recassets.features.schema import TABLES
from recassets.ingest import ingest
from recassets.paths import Paths
from recassets.spark import get_spark
from recassets.synthetic import SyntheticConfig, generate


def copy_lake(source: Paths, root: Path, name: str) -> Paths:
    paths = Paths.from_env(str(root / name))
    shutil.copytree(source.lake, paths.lake)
    return paths


def timed_jobs(spark: Any, label: str, fn: Callable[[], Any]) -> tuple[float, int]:
    """Seconds and Spark jobs of ``fn()``, the jobs counted by a job group."""
    sc = spark.sparkContext
    sc.setJobGroup(label, label)
    t = time.perf_counter()
    fn()
    seconds = time.perf_counter() - t
    sc.setLocalProperty("spark.jobGroup.id", None)
    return seconds, len(sc.statusTracker().getJobIdsForGroup(label))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--events-per-day", type=int, default=5_000)
    ap.add_argument("--skip-daily", action="store_true", help="time the range pass only")
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-features-range-"))
    source = Paths.from_env(str(root / "source"))
    cfg = SyntheticConfig(days=args.days, events_per_day=args.events_per_day)
    try:
        t = time.perf_counter()
        generate(source, cfg)
        print(
            f"generated {args.days} days x {args.events_per_day} events in {time.perf_counter() - t:.1f} s"
        )
        # Every job of a 30-day per-day loop must stay countable (the default keeps 1000).
        spark = get_spark(conf={"spark.ui.retainedJobs": "100000"})
        days = [cfg.start + dt.timedelta(days=i) for i in range(args.days)]
        t = time.perf_counter()
        for dataset in ("events", "users", "items"):
            ingest(spark, source, dataset, days, allow_missing_days=dataset != "events")
        print(f"ingested in {time.perf_counter() - t:.1f} s", flush=True)

        # warm both paths on day 1, each in its own throwaway copy, untimed
        for mode in ("daily", "range"):
            warm = copy_lake(source, root, f"warm-{mode}")
            build_features(spark, warm, days[:1], mode=mode)
            shutil.rmtree(warm.home, ignore_errors=True)

        half = days[: max(2, len(days) // 2)]
        small = copy_lake(source, root, "range-half")
        t_half, j_half = timed_jobs(
            spark, "range-half", lambda: build_features(spark, small, half, mode="range")
        )
        print(f"range pass, {len(half)} days: {t_half:7.1f} s, {j_half} Spark jobs", flush=True)
        ranged = copy_lake(source, root, "range")
        t_range, j_range = timed_jobs(
            spark, "range", lambda: build_features(spark, ranged, days, mode="range")
        )
        print(f"range pass, {len(days)} days: {t_range:7.1f} s, {j_range} Spark jobs", flush=True)
        if args.skip_daily:
            return
        daily = copy_lake(source, root, "daily")
        t_daily, j_daily = timed_jobs(
            spark, "daily", lambda: build_features(spark, daily, days, mode="daily")
        )
        print(f"per-day loop, {len(days)} days: {t_daily:7.1f} s, {j_daily} Spark jobs", flush=True)

        same = True
        for name in TABLES:
            per_day = [
                {r["dt"]: r["count"] for r in spark.read.format("delta").load(p.table(name))
                 .groupBy("dt").count().collect()}
                for p in (daily, ranged)
            ]  # fmt: skip
            days_differing = sum(
                per_day[0].get(d) != per_day[1].get(d) for d in per_day[0].keys() | per_day[1]
            )
            diff = differences(daily, ranged, name)
            same &= diff == 0 and days_differing == 0
            print(f"{name}: rows {sum(per_day[0].values())} / {sum(per_day[1].values())}, days "
                  f"with other row counts: {days_differing}, rows differing (doubles to 9 "
                  f"significant digits): {diff}")  # fmt: skip
        print(f"tables identical: {same}")
        print()
        print(f"per-day loop: {t_daily:7.1f} s ({t_daily / len(days):.1f} s/day, {j_daily} jobs)")
        print(
            f"range pass:   {t_range:7.1f} s ({t_range / len(days):.1f} s/day, {j_range} jobs; "
            f"{j_half} jobs over {len(half)} days)   speedup loop/range {t_daily / t_range:.1f}x"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
