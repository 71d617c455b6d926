"""Co-occurrence as it would serve, against the baseline co-occurrence and popularity, on a
home's gate window: what serves when nothing learned passes (``policy.cooccurrence_serves``).

Quality, not speed: every row is scored on the same held-out units in the same run, and the
bar the fallback must clear is popularity's rows (the gate's rule), not the baseline
co-occurrence's. That row is shown beside it as a reference only: it is fitted otherwise
(refitted as of each day's eve, over every item, all-time popularity for users without a
history), where the served file is frozen at the window's start, keeps 100 neighbours an
item and is served through the blend's union, so no ratio of the two is printed: it would
mix the fitting schedule into the figure. Nothing is promoted: the pointer is left as it is.

    .venv/bin/python -m benchmarks.cooccurrence_fallback --home HOME [--k 50]

It fits co-occurrence on the latest EASE file's days when the home has no such fit (a home
built before 2026-12-05), into the home's ``models/cooccurrence/``, as the asset would.
"""

from __future__ import annotations

import argparse
import os
import time

ROWS = ("candidate_blend", "cooccurrence_served", "cooccurrence", "popularity_all_time",
        "popularity_trailing_7d")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", required=True)
    parser.add_argument("--k", type=int, default=50)
    args = parser.parse_args(argv)
    os.environ["RECASSETS_HOME"] = args.home
    from recassets.paths import Paths
    from recassets.training import cooccurrence as C
    from recassets.training import evaluation as E
    from recassets.training import policy as P
    from recassets.training import similarity as S

    paths = Paths.from_env()
    sims = S.versions(paths)
    tt, rk = P.latest_checkpoint(paths, "two_tower"), P.latest_checkpoint(paths, "ranking")
    if not sims or tt is None or rk is None:
        print(f"{args.home}: no item similarity or no trained models; materialize the models")
        return 2
    ease = S.ItemSimilarity.load(sims[-1])
    started = time.perf_counter()
    _, co_path, new = C.train_next(paths, ease)
    print(f"co-occurrence {'fitted' if new else 'up to date'}: {co_path} "
          f"({time.perf_counter() - started:.1f} s)")  # fmt: skip
    report = E.evaluate(paths, str(tt), str(rk), k=args.k, similarity=str(sims[-1]),
                        cooccurrence=co_path)  # fmt: skip
    recall, ndcg = report.recall_key, report.ndcg_key
    print(f"| policy | {recall} | {ndcg} | users | user-days |")
    print("| --- | --- | --- | --- | --- |")
    for name in ROWS:
        m = report.retrieval.get(name)
        if m:
            cells = [f"{m[key]:.4f} [{m.get(key + '_lo', float('nan')):.3f}, "
                     f"{m.get(key + '_hi', float('nan')):.3f}]" for key in (recall, ndcg)]  # fmt: skip
            print(f"| {name} | {' | '.join(cells)} | {int(m['users'])} | {int(m['user_days'])} |")
    gate = P.gate_report(report)
    co = P.cooccurrence_serves(report)
    print(f"the gate would {'promote the candidate' if gate.passed else 'refuse the candidate'}; "
          f"with nothing learned serving, {'co-occurrence' if co else 'popularity'} would serve"
          + (f": {co}" if co else ""))  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
