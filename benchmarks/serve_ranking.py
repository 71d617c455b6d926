"""Ranking in process, on a built bento's own bundle and the home's online store: the
broadcast form against N replicated user rows, then the whole funnel pinned to one thread
against the process's default thread count. Same users, same candidates, same timer.

    .venv/bin/python -m benchmarks.serve_ranking                # RECASSETS_HOME (or .recassets)
    .venv/bin/python -m benchmarks.serve_ranking --home /tmp/srv/home --quick
    .venv/bin/python -m benchmarks.serve_ranking --candidates 1000 --users 500

Needs a home whose Bento store holds a built recommender (``recassets demo``, or materialize
``serving/recommender_bento``); exits 2 when it has none. ``--bento`` picks a tag (default:
the newest).

Calls. ``--users`` (300) users drawn (``--seed``) from ``user_features`` of the day the online
store serves, each with its online row and its top N = ``--candidates`` (500) retrieved
items, prepared once, untimed; every side then gets exactly these calls.

1. Ranking, torch and FAISS pinned to one thread (``pin_threads(1)``, as the service does):
   ``Recommender.rank`` (the user part computed once and broadcast over the N candidates)
   against ``Recommender.rank_replicated`` (N rows that repeat the user's features: the
   training path). Both return the same logits (the largest difference is printed). Beside
   them, for information and in no ratio: the interaction network alone (cross layers, deep
   MLP, head) on one request's x0, the part both forms share.
2. The whole funnel (``Recommender.recommend``, N candidates, k = ``--k``) pinned to one
   thread against the default thread count (information: it documents the pinning).

Timing (``benchmarks._common.timed_blocks``): one ``perf_counter`` pair per call, the calls
dealt into ``--rounds`` (3) blocks, sides in rotating order, a GC (and for the funnel the
thread setting) before each block, five untimed warm-up calls per side first. Ratios are
speedups: the baseline's p50 over ours.

Target (issue 5): broadcast ranking >= 2x faster than replicated at p50. The exit status is
0 either way (2 when the home has no bento): benchmarks report, they do not gate.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from benchmarks._common import (
    bento_parser,
    forget_ranking,
    known_users,
    latency_line,
    machine_line,
    percentile,
    print_summary,
    require_bento,
    row,
    timed_blocks,
)


def run(args: argparse.Namespace, paths: Any, bundle_dir: Path, users: list[int]) -> dict:
    import numpy as np
    import torch

    from recassets.funnel.recommender import Bundle, FunnelConfig, Recommender, pin_threads

    default_threads = torch.get_num_threads()  # before anything pins
    rec = Recommender(Bundle.load(bundle_dir), paths, FunnelConfig(candidates=args.candidates))
    out: dict[str, Any] = {"default_threads": default_threads}
    if not rec.model:
        print("  the bundle serves the popularity policy: no ranker to time")
        return out
    size = rec.index.size  # type: ignore[union-attr]
    n = min(args.candidates, size)
    out["n"] = n
    if n < args.candidates:
        print(f"  the catalog holds {size} items (< N = {args.candidates}): ranking all {n}")
    pin_threads(1)
    prepared = []
    for u in users:
        values = rec.user_row(u)
        if values is None:
            continue
        ids, _ = rec.retrieve(u, values, n)
        prepared.append((u, values, ids))
    if not prepared:
        raise SystemExit("no user of the sample has an online row: is the online store current?")
    u, values, ids = prepared[0]
    a, _ = rec.rank(u, values, ids)
    b = rec.rank_replicated(u, values, ids)
    out["max_abs_diff"] = float(np.max(np.abs(a - b)))
    # x0 (N, X) as the cross layers receive it, captured from one broadcast call: the
    # interaction network on it is the part both forms share
    captured: list[Any] = []
    ranker = rec.ranker
    assert ranker is not None
    finish = ranker._finish
    ranker._finish = lambda x0, *rest: (captured.append(x0), finish(x0, *rest))[1]  # type: ignore[method-assign]
    # the same call again would be answered from the ranking's memo of the call above
    # (``Ranking._scored``) and never reach ``_finish``: forget it first
    forget_ranking(rec._ranking)
    try:
        rec.rank(u, values, ids)
    finally:
        del ranker._finish
    if not captured:
        raise SystemExit("the broadcast call did not reach DCNv2._finish: nothing to time")
    x0 = captured[0]

    def interact(_: Any) -> None:
        with torch.inference_mode():
            ranker.interact(x0)

    sides = {
        "broadcast": lambda c: rec.rank(*c),
        "replicated": lambda c: rec.rank_replicated(*c),
        "shared part": interact,
    }
    for call in prepared[:5]:  # warm-up
        for fn in sides.values():
            fn(call)
    # each block starts cold: its first broadcast call must not meet a memo of the same user
    # and row left by the warm-up or the block before (every call within a block is another
    # user, so no call inside it can be answered from the memo)
    forget = {"broadcast": lambda: forget_ranking(rec._ranking)}
    t = timed_blocks(sides, prepared, rounds=args.rounds, setup=forget)
    out["rank"] = t
    print(f"  ranking {n} candidates for {len(prepared)} users, 1 call each per side, torch/FAISS "
          f"1 thread; max |broadcast - replicated| logit {out['max_abs_diff']:.2e}; shared part "
          f"= the interaction network alone on x0 {tuple(x0.shape)} ({ranker.config.cross_layers} "
          f"cross layers + deep {ranker.config.deep}), in either form")  # fmt: skip
    for name, samples in t.items():
        print(latency_line(name, samples))

    calls = [p[0] for p in prepared]
    for user in calls[:5]:  # warm-up
        rec.recommend(user, args.k)
    pinned, default = "pinned (1)", f"default ({default_threads})"
    fsides = {name: lambda user: rec.recommend(user, args.k) for name in (pinned, default)}
    setup = {pinned: lambda: pin_threads(1), default: lambda: pin_threads(default_threads)}
    t = timed_blocks(fsides, calls, rounds=args.rounds, setup=setup)
    out["funnel"] = t
    print(f"  whole funnel in process (recommend, N = {n}, k = {args.k}), {len(calls)} users:")
    for name, samples in t.items():
        print(latency_line(name, samples))
    pin_threads(default_threads)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = bento_parser(__doc__)
    ap.add_argument("--users", type=int, default=300, help="users timed (one call each a side)")
    ap.add_argument("--rounds", type=int, default=3, help="blocks, sides in rotating order")
    ap.add_argument("--seed", type=int, default=0, help="which users")
    ap.add_argument("--quick", action="store_true", help="smoke run: 60 users")
    a = ap.parse_args(argv)
    if a.quick:
        a.users = 60

    paths, tag, bundle_dir = require_bento(a.home, a.bento)
    print(machine_line())
    print(f"home {paths.home}, bento {tag}, N = {a.candidates}, k = {a.k}")
    users = known_users(paths, a.users, a.seed)
    r = run(a, paths, bundle_dir, users)
    if "rank" not in r:
        return
    b, rep = percentile(r["rank"]["broadcast"], 50), percentile(r["rank"]["replicated"], 50)
    names = list(r["funnel"])
    p, d = percentile(r["funnel"][names[0]], 50), percentile(r["funnel"][names[1]], 50)
    print_summary([
        row(f"rank {r['n']} p50 ms, 1 thread (speedup: replicated/ours)", b, rep, rep / b,
            "speedup >= 2x", rep / b >= 2, "9.3f"),
        row(f"funnel p50 ms, 1 thread ({r['default_threads']} threads/pinned)", p, d, d / p,
            "(documents pinning)", None, "9.3f"),
    ])  # fmt: skip


if __name__ == "__main__":
    main()
