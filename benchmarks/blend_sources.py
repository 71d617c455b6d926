"""What each candidate source of the blend adds: the union and the blend's top K with the
cohort source's quota varied, on a built home's latest models, the same held-out units in each
row (``evaluation.evaluate(quotas=...)``: the blend as serving runs it, every other quota at
its default). The baseline is the same union with the cohort source off (quota 0).

    .venv/bin/python -m benchmarks.blend_sources --home HOME [--quotas 0 100 300]
"""

from __future__ import annotations

import argparse
import os
import time

from benchmarks._common import blend_models


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--home", default=os.environ.get("RECASSETS_HOME"), required=False)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--candidates", type=int, default=200, help="model_evaluation's default")
    ap.add_argument("--quotas", type=int, nargs="+", default=[0, 100, 300])
    ap.add_argument("--bootstrap", type=int, default=1000)
    args = ap.parse_args()
    from recassets.funnel.config import FunnelConfig
    from recassets.training import evaluation as E
    from recassets.training.report import BLEND

    paths, tt, sim = blend_models(args.home)
    r = f"recall@{args.k}"
    print(f"| cohort quota | cohort | union | union size | blend {r} | ndcg@10 | s |")
    print("|---|---|---|---|---|---|---|")
    units, days = 0, ""
    for quota in args.quotas:
        quotas = FunnelConfig(candidates=args.candidates, cohort_quota=quota).quotas()
        t = time.perf_counter()
        report = E.evaluate(paths, tt, None, k=args.k, candidates=args.candidates,
                            similarity=sim, quotas=quotas,
                            bootstrap=args.bootstrap)  # fmt: skip
        took = time.perf_counter() - t
        m, st = report.retrieval[BLEND], report.stages
        units, days = int(m["user_days"]), f"{report.eval_days[0]}..{report.eval_days[-1]}"
        cells = [f"{m[key]:.4f} [{m[key + '_lo']:.3f}, {m[key + '_hi']:.3f}]"
                 for key in (r, "ndcg@10")]  # fmt: skip
        print(
            f"| {quota} | {st['cohort']:.3f} | {st['union']:.3f} | {st['union_size']:.0f} | "
            f"{' | '.join(cells)} | {took:.0f} |"
        )
    print(f"units: {units} user-days, eval days {days}")


if __name__ == "__main__":
    main()
