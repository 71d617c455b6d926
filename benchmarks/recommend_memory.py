"""Batch recommendations' memory: what ``recassets recommend`` holds per user until its table is
made, in the representation it uses against the one it used before, on the same lists.

    .venv/bin/python -m benchmarks.recommend_memory [--users 50000] [--k 100] [--time-rounds 2]

A batch keeps every user's list (item ids and scores, best first) until the last user is done,
then makes one table. Ours (``recommend._pack`` / ``recommend._to_table``): two arrays a user,
one concatenation into the table's columns. Baseline: the former representation, a list of
(item, score) tuples a user, then four Python column lists. The same lists (``--users`` users,
``--k`` items each, drawn with ``--seed``), the same table at the end (checked equal).

Memory: each side alone, from empty, its peak divided by the users, **the final table counted
on both sides**. ``tracemalloc`` sees Python objects and NumPy's buffers: ours' table is made of
its NumPy columns (Arrow wraps them without a copy), so it is counted there; the baseline's
table is allocated by Arrow's pool, which tracemalloc does not see. So each side's figure is
its tracemalloc peak plus the bytes Arrow's pool holds for its table when it returns (read from
``pa.total_allocated_bytes``, the table still alive). The pool's table is made while the
side's lists are all still held, at its traced peak, so the sum is that moment's footprint.

Time: a separate pass with tracemalloc off (it slows the allocation-heavy side far more than
the other), ``--time-rounds`` (2) rounds, the sides' order alternating, the mean printed.
"""

from __future__ import annotations

import argparse
import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa

from benchmarks._common import machine_line, print_summary, row
from recassets.training import recommend as R


def lists_of_tuples(items: np.ndarray, scores: np.ndarray) -> pa.Table:
    """The former representation and table (the code before 2026-12-05)."""
    out: dict[int, list[tuple[int, float]]] = {}
    for u in range(len(items)):
        out[u] = [(int(i), float(s)) for i, s in zip(items[u], scores[u], strict=True)]
    cols: dict[str, list[Any]] = {"user_id": [], "item_id": [], "rank": [], "score": []}
    for u in range(len(items)):
        for rank, (item, score) in enumerate(out[u], start=1):
            cols["user_id"].append(u)
            cols["item_id"].append(item)
            cols["rank"].append(rank)
            cols["score"].append(score)
    return pa.table(cols, schema=R.RESULT_SCHEMA)


def arrays(items: np.ndarray, scores: np.ndarray) -> pa.Table:
    """Ours: what ``recommend`` keeps and makes."""
    out = {u: R._pack(items[u], scores[u]) for u in range(len(items))}
    return R._to_table(list(range(len(items))), out)


def measure(
    side: Callable[[np.ndarray, np.ndarray], pa.Table], *data: np.ndarray
) -> tuple[pa.Table, int]:
    """The side's table and its peak bytes, the table counted (see the docstring)."""
    gc.collect()
    pool = pa.total_allocated_bytes()
    tracemalloc.start()
    table = side(*data)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return table, peak + max(0, pa.total_allocated_bytes() - pool)


def timed(
    sides: dict[str, Callable[[np.ndarray, np.ndarray], pa.Table]], rounds: int, *data: np.ndarray
) -> dict[str, float]:
    """Mean seconds per side, tracemalloc off, the order alternating round by round."""
    times: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            gc.collect()
            t = time.perf_counter()
            sides[name](*data)
            times[name].append(time.perf_counter() - t)
    return {name: sum(ts) / len(ts) for name, ts in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--users", type=int, default=50_000)
    ap.add_argument("--k", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--time-rounds", type=int, default=2, help="timing passes a side")
    args = ap.parse_args()
    print(machine_line())
    rng = np.random.default_rng(args.seed)
    # each user's k distinct items of a 100,000-item catalog, scores descending
    items = np.stack([rng.choice(100_000, args.k, replace=False) for _ in range(args.users)])
    scores = -np.sort(-rng.standard_normal((args.users, args.k)), axis=1)
    ours, ours_peak = measure(arrays, items, scores)
    base, base_peak = measure(lists_of_tuples, items, scores)
    if not ours.equals(base):
        raise SystemExit("the two sides made different tables: the comparison is void")
    del ours, base
    secs = timed({"ours": arrays, "base": lists_of_tuples}, args.time_rounds, items, scores)
    ours_s, base_s = secs["ours"], secs["base"]
    per_ours, per_base = ours_peak / args.users, base_peak / args.users
    print(f"{args.users:,} users, k = {args.k}: peak {ours_peak / 2**20:,.1f} MiB (arrays) "
          f"against {base_peak / 2**20:,.1f} MiB (tuples), the final table counted on both; "
          f"{ours_s:.2f} s against {base_s:.2f} s (tracemalloc off, mean of "
          f"{args.time_rounds}, order alternating)")  # fmt: skip
    print_summary([
        row("batch recommend, peak bytes per user (ours/tuples)", per_ours, per_base,
            per_ours / per_base, "below the tuples'", per_ours < per_base, fmt="9.0f"),
        row("batch recommend, seconds (ours/tuples, info)", ours_s, base_s, ours_s / base_s,
            "", None),
    ])  # fmt: skip


if __name__ == "__main__":
    main()
