"""A range backfill in one pass against the per-day loop, on the same data, in one run.

Two histories, each ingested once and copied into two homes: the feature tables, the quality
checks of raw_events and the feature tables, and ``training_examples`` are built over the whole
range by the per-day loop (``mode="daily"``:
what every day of a range cost before) in one home and by the range pass (``mode="range"``) in
the other, timed the same way (wall clock around the same library call, the same Spark
session, cold Delta caches in both: each home is fresh). Before the timed runs both paths run
once over the history's first day, each in a throwaway copy of the home (untimed: the JVM's
code, Spark's plans and Great Expectations' import warm for both sides, as
``benchmarks.quality_range`` warms). The two sides' order alternates from one history to the
next (sparse: the range pass first; dense: the per-day loop first) and is printed. Then the
tables are compared row for row (doubles to 9 significant digits: Spark sums in no fixed
order).

* dense: 90 days x 20,000 events (the synthetic default world);
* sparse: 160 days x about 500 events, every 20th day without a single event (its landing
  folder removed), as a small product's or an old dataset's history has.

Targets: the range pass at least 5x faster on both, identical tables. Also printed: events per
second through the feature stage, and the range pass's time over the first third, two thirds
and all of the dense history (30, 60, 90 days by default: it should grow far slower than the
day count).

    .venv/bin/python -m benchmarks.backfill [--dense-days 90] [--sparse-days 160] [--no-growth]
        [--only dense|sparse]
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import tempfile
import time
from pathlib import Path

from benchmarks._common import frame_differences
from recassets.features.pipelines import FEATURE_TABLES, build_features
from recassets.ingest import ingest
from recassets.paths import Paths
from recassets.quality import (
    check_feature_table,
    check_feature_table_range,
    check_raw_events,
    check_raw_events_range,
)
from recassets.spark import get_spark
from recassets.synthetic import SyntheticConfig, generate
from recassets.training.examples import TABLE as EXAMPLES
from recassets.training.examples import build_training_examples

TABLES = (*FEATURE_TABLES, EXAMPLES)


def land(root: Path, cfg: SyntheticConfig, empty_every: int) -> tuple[Paths, list[dt.date], int]:
    """Generate and ingest one history into ``root``; every ``empty_every``-th day (if any)
    loses its events folder first. Returns the home, the days and the number of events."""
    paths = Paths.from_env(str(root))
    summary = generate(paths, cfg)
    days = [cfg.start + dt.timedelta(days=i) for i in range(cfg.days)]
    events = summary.events
    if empty_every:
        for i in range(empty_every - 1, cfg.days - 1, empty_every):
            folder = Path(paths.landing_dir("events", days[i]))
            events -= sum(1 for f in folder.glob("*.jsonl") for _ in f.open())
            shutil.rmtree(folder)
    spark = get_spark()
    for dataset in ("events", "users", "items"):
        ingest(spark, paths, dataset, days, allow_missing_days=dataset != "events")
    return paths, days, events


def copy_home(src: Paths, root: Path) -> Paths:
    shutil.copytree(src.lake, root / "lake")
    return Paths.from_env(str(root))


def check(paths: Paths, days: list[dt.date], mode: str) -> int:
    """The quality checks of the range's raw_events and feature tables (what the blocking asset
    checks run): one validation per table over the range, or one per day. Failed days."""
    spark = get_spark()
    if mode == "range":
        reports = [check_raw_events_range(spark, paths, days)]
        reports += [check_feature_table_range(spark, paths, t, days) for t in FEATURE_TABLES]
    else:
        reports = [{d: check_raw_events(spark, paths, d) for d in days}]
        reports += [
            {d: check_feature_table(spark, paths, t, d) for d in days} for t in FEATURE_TABLES
        ]
    return sum(not r.success for by_day in reports for r in by_day.values())


def build(paths: Paths, days: list[dt.date], mode: str) -> dict[str, float]:
    """Features, their checks and the training examples of ``days``, each stage timed."""
    spark = get_spark()
    t0 = time.perf_counter()
    build_features(spark, paths, days, mode=mode)
    t1 = time.perf_counter()
    failed = check(paths, days, mode)
    t2 = time.perf_counter()
    build_training_examples(spark, paths, days, mode=mode)
    t3 = time.perf_counter()
    return {
        "features": t1 - t0,
        "checks": t2 - t1,
        "examples": t3 - t2,
        "total": t3 - t0,
        "failed_checks": failed,
    }


def differences(a: Paths, b: Paths, table: str) -> int:
    """Rows in one table and not in the other, both ways (doubles to 9 significant digits)."""
    spark = get_spark()
    x, y = (spark.read.format("delta").load(p.table(table)) for p in (a, b))
    return frame_differences(x, y)


def compare(
    name: str, src: Paths, days: list[dt.date], events: int, root: Path, range_first: bool
) -> None:
    # warm both paths on the first day, each in its own throwaway copy (untimed), so neither
    # side pays the first run's code loading and plan compilation alone
    for mode in ("daily", "range"):
        warm = copy_home(src, root / f"{name}-warm-{mode}")
        build(warm, days[:1], mode)
        shutil.rmtree(warm.home, ignore_errors=True)
    daily_home = copy_home(src, root / f"{name}-daily")
    range_home = copy_home(src, root / f"{name}-range")
    timed: dict[str, dict[str, float]] = {}
    sides = [("range", range_home, "range pass"), ("daily", daily_home, "per-day loop")]
    for mode, home, label in sides if range_first else sides[::-1]:
        print(f"{name}: {label} over {len(days)} days ...", flush=True)
        timed[mode] = build(home, days, mode)
    loop, one = timed["daily"], timed["range"]
    order = "range pass first" if range_first else "per-day loop first"
    diffs = {t: differences(daily_home, range_home, t) for t in TABLES}
    print(f"\n{name}: {len(days)} days, {events} events ({order}, both warmed on day 1)")
    for stage in ("features", "checks", "examples", "total"):
        print(
            f"  {stage:9s} per-day loop {loop[stage]:8.1f} s   range pass {one[stage]:7.1f} s"
            f"   speedup loop/range {loop[stage] / one[stage]:5.1f}x"
            + ("  (target >= 5x)" if stage == "total" else "")
        )
    print(
        f"  events/s through the feature stage: range pass {events / one['features']:,.0f}, "
        f"per-day loop {events / loop['features']:,.0f}"
    )
    print(f"  failed check days: per-day {loop['failed_checks']}, range {one['failed_checks']}")
    same = all(n == 0 for n in diffs.values())
    print(
        f"  tables identical: {same} "
        + ", ".join(f"{t} {n} differing rows" for t, n in diffs.items())
    )
    print(flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--dense-days", type=int, default=90)
    ap.add_argument("--dense-events", type=int, default=20_000)
    ap.add_argument("--sparse-days", type=int, default=160)
    ap.add_argument("--sparse-events", type=int, default=500)
    ap.add_argument("--no-growth", action="store_true", help="skip the 30/60/90-day series")
    ap.add_argument("--only", choices=("dense", "sparse"), help="one history (each takes hours "
                    "at full size on two cores: the per-day loop is the baseline)")  # fmt: skip
    args = ap.parse_args()

    root = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    try:
        dense_cfg = SyntheticConfig(days=args.dense_days, events_per_day=args.dense_events)
        # A small product: few users and items, a few hundred events a day.
        sparse_cfg = SyntheticConfig(
            days=args.sparse_days, events_per_day=args.sparse_events, initial_users=300,
            initial_items=200, new_users_per_day=3, new_items_per_day=2, seed=11,
        )  # fmt: skip
        configs = {"sparse": (sparse_cfg, 20), "dense": (dense_cfg, 0)}
        names = [n for n in configs if args.only in (None, n)]
        landed = {n: land(root / n, configs[n][0], empty_every=configs[n][1]) for n in names}
        get_spark()  # started by the ingestion above: neither side pays the JVM's start
        for i, (name, (home, days, events)) in enumerate(landed.items()):
            # the sides' order alternates from one history to the next
            compare(name, home, days, events, root, range_first=i % 2 == 0)
        if not args.no_growth and "dense" in landed:
            dense, dense_days, _ = landed["dense"]
            print("range pass time against the range's length (dense history):", flush=True)
            k = len(dense_days)
            for n in sorted({max(2, k // 3), max(2, 2 * k // 3), k}):
                home = copy_home(dense, root / f"growth-{n}")
                t = build(home, dense_days[:n], "range")["total"]
                print(f"  {n:3d} days: {t:6.1f} s  ({t / n:.2f} s a day)", flush=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
