"""The cascade (the light ranker cuts the two-tower's pool, the L2 orders what it keeps) under
the choices serving makes, each row on a built home's latest models and the same held-out units
(``evaluation.evaluate``):

- its order (``--weights``): the DCN-v2's logits alone (weight 0, the baseline) or both stages'
  standardised scores summed, the light one weighted (``light.fuse``; serving's default 1);
- its pool (``--quotas``): the ANN's ``light_pool`` alone (serving's) or with the week's
  trending items, the day's new items and the cohort's trending items, each up to a quota
  (``pool_quotas``), at serving's weight.

    .venv/bin/python -m benchmarks.cascade --home HOME [--weights 0 0.5 1 2] [--quotas 100 300]
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

from benchmarks._common import machine_line


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--home", default=os.environ.get("RECASSETS_HOME"), required=False)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--weights", type=float, nargs="*", default=[0.0, 0.5, 1.0, 2.0])
    ap.add_argument("--quotas", type=int, nargs="*", default=[100, 300],
                    help="the trending and cohort quota of each wider pool (fresh: 50)")  # fmt: skip
    ap.add_argument("--sim-weights", type=float, nargs="*", default=[0.5, 1.0, 2.0],
                    help="the item similarity's weight in the fused order, at serving's light weight")  # fmt: skip
    ap.add_argument("--sim-quotas", type=int, nargs="*", default=[100, 300],
                    help="the item similarity's best items added to the pool")  # fmt: skip
    ap.add_argument("--bootstrap", type=int, default=200)
    args = ap.parse_args()
    from recassets.paths import Paths
    from recassets.training import evaluation as E
    from recassets.training import light as L
    from recassets.training import policy as P
    from recassets.training import similarity as S
    from recassets.training.report import LIGHT, SERVED

    print(machine_line())
    paths = Paths.from_env(args.home)
    tt, rk = P.latest_checkpoint(paths, "two_tower"), P.latest_checkpoint(paths, "ranking")
    light = L.latest_for(paths, tt) if tt is not None else None
    if tt is None or rk is None or light is None:
        raise SystemExit(f"no two-tower, ranker or light ranker under {paths.artifacts}")
    r, n = f"recall@{args.k}", "ndcg@10"
    runs: list[tuple[str, dict[str, Any]]] = [
        (f"ANN's pool, weight {w:g}", {"light_weight": w}) for w in args.weights
    ]
    runs += [(f"ANN + trending/cohort {q}, fresh 50", {"pool_quotas": {"trending": q, "fresh": 50, "cohort": q}})
             for q in args.quotas]  # fmt: skip
    sims = S.versions(paths)
    if sims and args.sim_weights:
        runs += [(f"ANN's pool, item similarity weighted {w:g}",
                  {"similarity": str(sims[-1]), "similarity_weight": w}) for w in args.sim_weights]  # fmt: skip
        runs += [(f"ANN + the item similarity's {q}, similarity weighted {w:g}",
                  {"similarity": str(sims[-1]), "similarity_weight": w,
                   "pool_quotas": {"trending": 0, "fresh": 0, "cohort": 0, "similarity": q}})
                 for q in args.sim_quotas for w in args.sim_weights]  # fmt: skip
    print(f"| cascade | {r} | {n} | s |")
    print("|---|---|---|---|")
    units, light_row = 0, ""
    for name, kwargs in runs:
        t = time.perf_counter()
        report = E.evaluate(paths, str(tt), str(rk), k=args.k, light=light,
                            bootstrap=args.bootstrap, **kwargs)  # fmt: skip
        took = time.perf_counter() - t
        m = report.retrieval[SERVED]
        units = int(m["user_days"])
        cells = [f"{m[x]:.4f} [{m[x + '_lo']:.3f}, {m[x + '_hi']:.3f}]" for x in (r, n)]
        print(f"| {name} | {' | '.join(cells)} | {took:.0f} |", flush=True)
        if not light_row:  # the first run's pool: the ANN's
            lm = report.retrieval[LIGHT]
            light_row = f"| the light ranker's order alone | {lm[r]:.4f} | {lm[n]:.4f} | |"
    print(light_row)
    print(f"units: {units} user-days")


if __name__ == "__main__":
    main()
