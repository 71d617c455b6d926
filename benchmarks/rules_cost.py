"""What the list-wise rules cost in accuracy: the blend's page under each rule set against the
same page with no rule, on the same held-out units, in one evaluation.

The rules (``recassets.funnel.diversity.page``, what serving runs after the ranked list: the
per-category cap, on by default at max(5, a quarter of the page); a per-creator cap; MMR; a
freshness boost) trade accuracy for variety or novelty. This scores each on a built home's
latest models with ``evaluation.evaluate(rules=...)``: one pass over the units, every page
built from the same ranked union (``sources.union_blend``), so the only difference between two
rows is the rule. The baseline: the blend's top K with no rule (``none``). What they buy
(variety, new items seen) is not measured here: held-out engagements only say what they cost.

    .venv/bin/python -m benchmarks.rules_cost --home HOME [--k 50]
"""

from __future__ import annotations

import argparse
import os
import time

from benchmarks._common import blend_models

# name -> FunnelConfig fields; ``none`` is the baseline, ``served`` the serving defaults
RULE_SETS: dict[str, dict[str, float]] = {
    "none": {"max_per_category": 0},
    "served": {},
    "category_cap_5_fixed": {"max_per_category": 5, "category_share": 0},  # before 2026-12-05
    "category_cap_3_fixed": {"max_per_category": 3, "category_share": 0},
    "creator_cap_2": {"max_per_category": 0, "max_per_creator": 2},
    "mmr_0.8": {"max_per_category": 0, "mmr_lambda": 0.8},
    "mmr_0.5": {"max_per_category": 0, "mmr_lambda": 0.5},
    "fresh_boost_0.1": {"max_per_category": 0, "fresh_boost": 0.1},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--home", default=os.environ.get("RECASSETS_HOME"), required=False)
    ap.add_argument("--k", type=int, default=50)
    ap.add_argument("--bootstrap", type=int, default=200)
    args = ap.parse_args()
    from recassets.funnel.config import FunnelConfig
    from recassets.training import evaluation as E
    from recassets.training.report import BLEND

    paths, tt, sim = blend_models(args.home)
    rules = {name: FunnelConfig(**fields) for name, fields in RULE_SETS.items()}  # type: ignore[arg-type]
    t = time.perf_counter()
    report = E.evaluate(paths, tt, None, k=args.k, similarity=sim, rules=rules,
                        bootstrap=args.bootstrap)  # fmt: skip
    took = time.perf_counter() - t
    r, n = f"recall@{args.k}", f"ndcg@{report.ndcg_at}"
    base = report.retrieval[f"{BLEND}+none"]
    units = int(base.get("user_days", 0))
    print(f"eval days {report.eval_days}, {units} user-days, {took:.1f} s")
    print(f"| rules | {r} | vs none | {n} | vs none |")
    print("|---|---|---|---|---|")
    for name in RULE_SETS:
        m = report.retrieval[f"{BLEND}+{name}"]
        cells = []
        for key in (r, n):
            lo, hi = m.get(f"{key}_lo", float("nan")), m.get(f"{key}_hi", float("nan"))
            cells += [f"{m[key]:.4f} [{lo:.3f}, {hi:.3f}]", f"{m[key] / base[key]:.3f}x"]
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
