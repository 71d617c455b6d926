"""What the cascade gains or loses when its pool takes the other candidate sources: the light
ranker cuts the ANN's ``light_pool`` alone (the baseline, what serving does), or together
with the week's trending items, the day's new items and the cohort's trending items, each up
to a quota; the DCN-v2 orders what it keeps. On a built home's latest models, the same
held-out units in each row (``evaluation.evaluate(pool_quotas=...)``).

    .venv/bin/python -m benchmarks.cascade_pool --home HOME [--quotas 100 300]
"""

from __future__ import annotations

import argparse
import os
import time

from benchmarks._common import machine_line


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--home", default=os.environ.get("RECASSETS_HOME"), required=False)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--quotas", type=int, nargs="+", default=[100, 300],
                    help="the trending and cohort quota of each wider pool (fresh: 50)")  # fmt: skip
    ap.add_argument("--bootstrap", type=int, default=200)
    args = ap.parse_args()
    from recassets.paths import Paths
    from recassets.training import evaluation as E
    from recassets.training import light as L
    from recassets.training import policy as P
    from recassets.training.report import LIGHT, RANKER_ALL, SERVED

    print(machine_line())
    paths = Paths.from_env(args.home)
    tt, rk = P.latest_checkpoint(paths, "two_tower"), P.latest_checkpoint(paths, "ranking")
    light = L.latest_for(paths, tt) if tt is not None else None
    if tt is None or rk is None or light is None:
        raise SystemExit(f"no two-tower, ranker or light ranker under {paths.artifacts}")
    r, n = f"recall@{args.k}", "ndcg@10"
    print(f"| pool | policy | {r} | {n} | s |")
    print("|---|---|---|---|---|")
    pools: list[dict[str, int] | None] = [None]
    pools += [{"trending": q, "fresh": 50, "cohort": q} for q in args.quotas]
    units = 0
    for pool in pools:
        t = time.perf_counter()
        report = E.evaluate(paths, str(tt), str(rk), k=args.k, light=light,
                            bootstrap=args.bootstrap, pool_quotas=pool)  # fmt: skip
        took = time.perf_counter() - t
        units = int(report.retrieval[SERVED]["user_days"])
        name = "ANN alone" if pool is None else f"ANN + {pool}"
        for key in (SERVED, RANKER_ALL, LIGHT):
            m = report.retrieval[key]
            cells = [f"{m[x]:.4f} [{m[x + '_lo']:.3f}, {m[x + '_hi']:.3f}]" for x in (r, n)]
            print(f"| {name} | {key} | {' | '.join(cells)} | {took:.0f} |")
    print(f"units: {units} user-days")


if __name__ == "__main__":
    main()
