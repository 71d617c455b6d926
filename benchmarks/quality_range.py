"""raw_events quality over a range: one Great Expectations validation for the range
(``check_raw_events_range``) against the per-day loop (``check_raw_events`` for each day, what
``raw_events_quality`` did before), on the same table, in one run.

A synthetic history is generated and ingested once (``--days`` x ``--events-per-day``); then
both forms are timed over it twice: clean, and with one day broken in the middle (rows of it
appended again: duplicate event_ids, volume still in its band), which sends the range form
through its locating groupBy and its detail validation. Before timing, one day is checked so
that Spark, the JVM's code and Great Expectations' import are warm for both. The verdicts of
the two forms must agree day by day.

Target: the range form at least 5x faster on the clean history.

    .venv/bin/python -m benchmarks.quality_range [--days 30] [--events-per-day 2000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

from recassets.ingest import ingest
from recassets.paths import Paths
from recassets.quality import check_raw_events, check_raw_events_range
from recassets.spark import get_spark
from recassets.synthetic import SyntheticConfig, generate


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def compare(spark, paths: Paths, days: list[str], label: str) -> float:
    loop, t_loop = timed(lambda: {d: check_raw_events(spark, paths, d) for d in days})
    ranged, t_range = timed(lambda: check_raw_events_range(spark, paths, days))
    verdicts = {d: r.success for d, r in loop.items()}
    assert verdicts == {d: r.success for d, r in ranged.items()}, "verdicts differ"
    failed = [d for d, ok in verdicts.items() if not ok]
    print(
        f"{label:<24} per-day loop {t_loop:7.1f} s ({t_loop / len(days):.2f} s/day)   "
        f"range {t_range:6.1f} s   x{t_loop / t_range:5.1f}   failed days: {failed or 'none'}"
    )
    return t_loop / t_range


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--events-per-day", type=int, default=2000)
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="quality-range-"))
    paths = Paths.from_env(str(root))
    cfg = SyntheticConfig(
        days=args.days, events_per_day=args.events_per_day, initial_users=500, initial_items=300
    )
    generate(paths, cfg)
    days = [(cfg.start + dt.timedelta(days=i)).isoformat() for i in range(cfg.days)]
    spark = get_spark()
    _, t_ingest = timed(lambda: ingest(spark, paths, "events", days))
    print(f"{args.days} days x ~{args.events_per_day} events ingested in {t_ingest:.1f} s")

    check_raw_events_range(spark, paths, days[:1])  # warm: GE import, Spark code paths
    check_raw_events(spark, paths, days[0])
    speedup = compare(spark, paths, days, "clean")

    from pyspark.sql import functions as F

    bad = days[len(days) // 2]
    table = spark.read.format("delta").load(paths.table("raw_events"))
    table.where(F.col("dt") == bad).limit(5).write.format("delta").mode("append").save(
        paths.table("raw_events")
    )
    compare(spark, paths, days, f"one bad day ({bad})")
    print(f"target: range >= 5x faster on the clean history: {'met' if speedup >= 5 else 'MISSED'}")


if __name__ == "__main__":
    main()
