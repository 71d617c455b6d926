"""The evaluation's memory for its history: what ``evaluation.evaluate`` reads of the days before
its window, read one day at a time (ours: ``eval_history.read_history``) against the reading it
replaced (baseline: every history day in one read, the item columns of every row ever in
another, then the seen and engaged sets of every user), on the same table and the same days.

    .venv/bin/python -m benchmarks.eval_memory [--table PATH] [--short 2] [--long 9]

The window is the day after the history; the history is the table's first ``--short`` days,
then its first ``--long`` days. Each side runs alone in a fresh process, and its peak resident
memory (``ru_maxrss``) is printed beside a process that only imports the same modules; what a
day of history adds is the difference between the two histories, divided by the days between.
Both sides' results (each eval day's item rows, the window users' seen and engaged items, the
positives) are digested and must match, or the comparison is void. On the review's volume home
(/tmp/rev-scale/big: 10 days of about 175k examples) the baseline grew about 50 MB a day.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import subprocess
import sys
import time

from benchmarks._common import machine_line, print_summary, row


def _side(name: str, table: str, days: int) -> dict[str, object]:
    """Run one side in this process; its peak RSS, seconds and result digest."""
    import pyarrow.compute as pc

    from recassets.training import eval_history as H
    from recassets.training.examples import available_days
    from recassets.training.heldout import (
        ITEM_COLUMNS,
        SEEN_SOURCES,
        engaged_items,
        items_as_of,
        latest_per_day,
        read_days,
        seen_items,
    )

    all_days = available_days(table)
    history, window = all_days[:days], all_days[days : days + 1]
    t = time.perf_counter()
    digest = ""
    if name != "imports":
        users = read_days(table, window, ("user_id",))["user_id"]
        if name == "ours":
            got = H.read_history(table, history, window, users, SEEN_SOURCES)
        else:  # the reading before 2026-12-07
            past = read_days(table, history, ("user_id", "item_id", "label", "source"))
            items = latest_per_day(read_days(table, [*history, *window], (*ITEM_COLUMNS, "ts")))
            pos = past.filter(pc.equal(past["label"], 1)).select(H.POSITIVE_COLUMNS)
            got = H.History(seen_items(past, SEEN_SOURCES), engaged_items(past), items, pos)
        wanted = set(pc.unique(users).to_pylist())
        h = hashlib.sha256()
        for day in window:
            h.update(str(items_as_of(got.items, day).to_pydict()).encode())
        for sets in (got.seen, got.engaged):
            h.update(str(sorted((u, sorted(s)) for u, s in sets.items() if u in wanted)).encode())
        key = [("user_id", "ascending"), ("item_id", "ascending"), ("dt", "ascending")]
        h.update(str(got.positives.sort_by(key).to_pydict()).encode())
        digest = h.hexdigest()
    return {
        "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "seconds": time.perf_counter() - t,
        "digest": digest,
    }


def _run(name: str, table: str, days: int) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.eval_memory", "--side", name, "--table", table,
         "--short", str(days)],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    home = os.environ.get("RECASSETS_HOME", ".recassets")
    ap.add_argument("--table", default=os.path.join(home, "lake", "training_examples"))
    ap.add_argument("--short", type=int, default=2, help="days of the short history")
    ap.add_argument("--long", type=int, default=9, help="days of the long history")
    ap.add_argument("--side", choices=("imports", "ours", "baseline"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.side:  # a child: one side, its figures as the last line
        print(json.dumps(_side(args.side, args.table, args.short)))
        return
    print(machine_line())
    base = _run("imports", args.table, 0)["rss_mb"]
    got: dict[tuple[str, int], dict[str, object]] = {}
    for days in (args.short, args.long):
        for name in ("ours", "baseline"):
            got[(name, days)] = r = _run(name, args.table, days)
            print(f"{name:8s} {days} history day(s): peak RSS {r['rss_mb']:,.0f} MB "
                  f"({float(r['rss_mb']) - float(base):,.0f} MB over the imports' {base:,.0f}), "
                  f"{r['seconds']:.1f} s")  # fmt: skip
        if got[("ours", days)]["digest"] != got[("baseline", days)]["digest"]:
            raise SystemExit(f"{days} days: the two sides read different things: void")
    span = args.long - args.short

    def per_day(name: str) -> float:
        return (float(got[(name, args.long)]["rss_mb"]) - float(got[(name, args.short)]["rss_mb"])) / span  # fmt: skip

    ours, baseline = per_day("ours"), per_day("baseline")
    long_ours, long_base = (float(got[(n, args.long)]["rss_mb"]) for n in ("ours", "baseline"))
    print_summary([
        row("evaluation history, MB more per history day", ours, baseline,
            ours / baseline if baseline > 0 else None, "below the baseline's", ours < baseline,
            fmt="9.1f"),
        row(f"evaluation history, peak RSS MB at {args.long} days", long_ours, long_base,
            long_ours / long_base, "below the baseline's", long_ours < long_base, fmt="9.0f"),
    ])  # fmt: skip


if __name__ == "__main__":
    main()
