"""FAISS retrieval index against exact search: recall@k and queries/s on the same queries,
both sides timed by the same timer the same number of times.

    .venv/bin/python -m benchmarks.serve_index                 # 1M x 64 vectors (about 1 GB)
    .venv/bin/python -m benchmarks.serve_index --quick         # 200k vectors, fewer queries
    .venv/bin/python -m benchmarks.serve_index --items 300000 --repeats 3 --single-queries 100

Needs no home: CPU and memory only.

Data. ``--items`` synthetic unit vectors of ``--dim`` (64) from a clustered generator
(``clustered_vectors``): trained item embeddings are not uniform on the sphere but clumped by
topic, with topics of very unequal size. ``--clusters`` (1,000) centres uniform on the unit
sphere, cluster sizes Zipf-like (weight 1 / rank^0.8), each item its centre plus isotropic
Gaussian noise of norm about ``--spread`` (1.0: two items of one cluster have a cosine of
about 0.5), normalised. 1,000 tuning queries and ``--queries`` (1,000) held-out queries
(users) are drawn from the same mixture, independently of the items.

Sides. ``build_index`` makes its size-based choice (IVF2048,Flat at 1M items, nprobe tuned
to recall 0.97 on the tuning queries); the baseline is exact inner-product search
(``IndexFlatIP``) over the same vectors. Both are built outside the timing (build times are
printed for information) and both are queried through ``ItemIndex.search``, serving's call,
for the top ``--k`` (100).

Timing (``benchmarks._common.timed_blocks``: one ``perf_counter`` pair per call, sides in
rotating order, a GC before each block, one untimed warm-up call per side first):

- batched: all held-out queries in one call, ``--repeats`` (5) calls per side, FAISS at its
  default thread count; queries/s from each side's median call;
- one query at a time on one thread (a serving worker's shape): the first
  ``--single-queries`` (200) held-out queries, each one call, in ``--rounds`` (3) blocks;
  queries/s = 1000 / mean ms, with p50 and p99.

recall@k is of the index's answers against the exact side's on the held-out queries.
Targets (issue 5), at 1M items: recall@100 >= 0.95 and >= 10x exact's batched queries/s. The
exit status is 0 either way: benchmarks report, they do not gate.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks._common import (
    latency_line,
    machine_line,
    percentile,
    print_summary,
    row,
    timed_blocks,
)

TARGET_ITEMS = 1_000_000  # the size the targets are stated at


def clustered_vectors(n: int, centres: Any, weights: Any, spread: float, rng: Any) -> Any:
    """(n, D) float32 unit vectors from the mixture: a centre drawn by ``weights``, plus
    isotropic Gaussian noise of expected norm about ``spread``, normalised."""
    import numpy as np

    dim = centres.shape[1]
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, 200_000):  # in chunks: the float64 noise of 1M rows is 0.5 GB
        m = min(200_000, n - s)
        pick = rng.choice(len(centres), m, p=weights)
        v = centres[pick] + rng.standard_normal((m, dim)) * (spread / np.sqrt(dim))
        out[s : s + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def run(args: argparse.Namespace) -> dict[str, Any]:
    import faiss
    import numpy as np

    from recassets.retrieval.index import IndexInfo, ItemIndex, build_index, recall_at_k

    rng = np.random.default_rng(args.seed)
    centres = rng.standard_normal((args.clusters, args.dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = 1.0 / np.arange(1, args.clusters + 1) ** 0.8
    weights /= weights.sum()
    t0 = time.perf_counter()
    items = clustered_vectors(args.items, centres, weights, args.spread, rng)
    tune = clustered_vectors(1000, centres, weights, args.spread, rng)
    held = clustered_vectors(args.queries, centres, weights, args.spread, rng)
    t1 = time.perf_counter()
    index, info = build_index(items, queries=tune, k=args.k, target_recall=0.97, seed=args.seed)
    t2 = time.perf_counter()
    flat = faiss.IndexFlatIP(args.dim)
    flat.add(items)
    t3 = time.perf_counter()
    ids = np.arange(args.items, dtype=np.int64)
    sides = {
        info.factory: ItemIndex(index, ids, info),
        "exact": ItemIndex(flat, ids, IndexInfo("Flat", args.items, args.dim, None, None,
                                                args.k, "cpu", t3 - t2)),
    }  # fmt: skip
    name = info.factory
    threads = faiss.omp_get_max_threads()
    print(f"  {args.items} x {args.dim} vectors, {args.clusters} clusters, spread {args.spread} "
          f"(generated in {t1 - t0:.1f} s); {name} nprobe={info.nprobe} (tuning recall@{args.k} "
          f"{info.build_recall or 1.0:.4f}) built on {info.device} in {t2 - t1:.1f} s; exact "
          f"IndexFlatIP built in {t3 - t2:.1f} s; FAISS threads {threads}")  # fmt: skip

    # recall on the held-out queries; these calls are also each side's untimed warm-up
    _, approx = sides[name].search(held, args.k)
    _, exact = sides["exact"].search(held, args.k)
    recall = recall_at_k(approx, exact)
    print(f"  recall@{args.k} on {len(held)} held-out queries: {recall:.4f}")

    def searcher(ix: ItemIndex) -> Any:
        return lambda q: ix.search(q, args.k)

    batched = timed_blocks(
        {n: searcher(ix) for n, ix in sides.items()}, [held] * args.repeats, rounds=args.repeats
    )
    print(
        f"  batched: {len(held)} queries a call, {args.repeats} calls per side, {threads} threads"
    )
    for n, samples in batched.items():
        print(latency_line(n, samples, 16))
    single = [held[i : i + 1] for i in range(min(args.single_queries, len(held)))]
    faiss.omp_set_num_threads(1)
    try:
        for ix in sides.values():  # warm-up on the one-thread path
            ix.search(single[0], args.k)
        one = timed_blocks({n: searcher(ix) for n, ix in sides.items()}, single, rounds=args.rounds)
    finally:
        faiss.omp_set_num_threads(threads)
    print(f"  one query at a time, 1 thread: {len(single)} queries x 1 call per side, "
          f"{args.rounds} blocks")  # fmt: skip
    for n, samples in one.items():
        print(latency_line(n, samples, 16))

    def qps_batched(n: str) -> float:
        return len(held) * 1000 / percentile(batched[n], 50)

    def qps_one(n: str) -> float:
        return 1000 * len(one[n]) / sum(one[n])

    return {
        "factory": name,
        "nprobe": info.nprobe,
        "recall": recall,
        "index_qps": qps_batched(name),
        "exact_qps": qps_batched("exact"),
        "index_one": qps_one(name),
        "exact_one": qps_one("exact"),
        "index_one_p99": percentile(one[name], 99),
        "exact_one_p99": percentile(one["exact"], 99),
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--items", type=int, default=TARGET_ITEMS, help="synthetic item vectors")
    ap.add_argument("--dim", type=int, default=64, help="vector dimension")
    ap.add_argument("--clusters", type=int, default=1000, help="topics of the generator")
    ap.add_argument("--spread", type=float, default=1.0, help="noise norm around a centre")
    ap.add_argument("--queries", type=int, default=1000, help="held-out queries")
    ap.add_argument("--k", type=int, default=100, help="top-k searched (recall@k)")
    ap.add_argument("--repeats", type=int, default=5, help="batched calls per side")
    ap.add_argument("--single-queries", type=int, default=200,
                    help="queries timed one at a time on one thread")  # fmt: skip
    ap.add_argument("--rounds", type=int, default=3, help="blocks of the one-at-a-time timing")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 200k vectors, 300 queries, 3 repeats, 50 single queries")  # fmt: skip
    a = ap.parse_args(argv)
    if a.quick:
        a.items, a.queries, a.repeats, a.single_queries = 200_000, 300, 3, 50

    print(machine_line())
    print("FAISS index vs exact search")
    r = run(a)
    at_target = a.items >= TARGET_ITEMS
    s, s1 = r["index_qps"] / r["exact_qps"], r["index_one"] / r["exact_one"]
    print_summary([
        row(f"recall@{a.k}, {r['factory']} nprobe={r['nprobe']} (exact = 1)", r["recall"], 1.0,
            None, ">= 0.95", r["recall"] >= 0.95, "9.4f"),
        row(f"queries/s batched, {a.items} items (index/exact)", r["index_qps"], r["exact_qps"], s,
            "speedup >= 10x at 1M", s >= 10 if at_target else None, "9.0f"),
        row("queries/s one at a time, 1 thread (index/exact)", r["index_one"], r["exact_one"], s1,
            "-", None, "9.0f"),
        row("p99 ms one at a time, 1 thread (speedup exact/index)", r["index_one_p99"], r["exact_one_p99"],
            r["exact_one_p99"] / r["index_one_p99"], "-", None, "9.3f"),
    ])  # fmt: skip


if __name__ == "__main__":
    main()
