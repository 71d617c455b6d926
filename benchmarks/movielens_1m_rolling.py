"""The ML-1M split scored as the platform runs it: retrained every day, each day judged by the
models of the day before.

``python -m benchmarks.movielens_1m --run`` scores the models frozen at the start of the
28 held-out days (the gate's protocol: one decision, then four weeks without retraining). A
deployment does not run that way: the retrain sensor warm-starts the models on each new day
(one pass), and EASE is refitted with them. This script replays that on a copy of such a home:
for each held-out day d, in order, the blend's models (``models/two_tower_model`` and
``models/item_similarity``, through the assets in one Dagster run, ``holdout_days`` = the days
from d on, warm start) learn the day before d, and ``evaluation.evaluate`` scores day d alone:
the blend and every baseline on the same units (the baselines need no training: popularity
and co-occurrence count up to d-1 in both protocols). The days' means, weighted by their
user-days, are the means over all units (every metric is a mean over user-days); the rows
are comparable with the frozen protocol's on the same 28 days.

    cp -a /tmp/ml1m-home /tmp/ml1m-roll      # a home built by benchmarks.movielens_1m --run
    RECASSETS_HOME=/tmp/ml1m-roll DAGSTER_HOME=/tmp/ml1m-roll/dagster \\
        python -m benchmarks.movielens_1m_rolling [--days 28]

It retrains in place (new model versions in that home): run it on a copy.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from benchmarks._common import machine_line
from benchmarks.movielens_1m import SPLIT

ROWS = ("candidate_blend", "candidate_blend+served_rules", "candidate", "popularity_trailing_7d",
        "popularity_all_time", "cooccurrence")  # fmt: skip
METRICS = ("recall@50", "ndcg@10")


def retrain(held: int) -> None:
    """The blend's models through their assets, warm start, the last ``held`` days out."""
    import dagster as dg

    from assets.models import item_similarity, two_tower_model
    from recassets.paths import Paths
    from resources import LakeResource

    paths = Paths.from_env()
    dg.materialize(  # raises, naming the step, when a model fails
        [two_tower_model, item_similarity],
        resources={"lake": LakeResource(home=paths.home)},
        run_config={
            "ops": {
                "models__two_tower_model": {"config": {"holdout_days": held, "num_threads": 1}},
                "models__item_similarity": {"config": {"holdout_days": held}},
            }
        },
    )


def main(argv: list[str] | None = None) -> None:
    from recassets.funnel.config import FunnelConfig
    from recassets.paths import Paths
    from recassets.training import evaluation as E
    from recassets.training import policy as P
    from recassets.training import similarity as S

    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--days", type=int, default=SPLIT["eval_days"], help="held-out days")
    p.add_argument("--out", type=Path, default=Path("/tmp/ml1m-rolling.json"))
    args = p.parse_args(argv)
    print(machine_line())
    paths = Paths.from_env()
    days = E.available_days(paths)[-args.days :]
    per_day: list[dict[str, Any]] = []
    for i, day in enumerate(days):
        t = time.time()
        retrain(len(days) - i)
        tt = P.latest_checkpoint(paths, "two_tower")
        sim = S.versions(paths)[-1]
        report = E.evaluate(
            paths, str(tt), None, eval_days=[day], similarity=str(sim), bootstrap=0,
            rules={"served_rules": FunnelConfig()},
        )  # fmt: skip
        got = {row: {m: report.retrieval[row][m] for m in (*METRICS, "user_days")}
               for row in ROWS if row in report.retrieval}  # fmt: skip
        per_day.append({"day": day, "trained_through": E.as_checkpoint(tt).partitions[-1],
                        "rows": got})  # fmt: skip
        blend, pop = got["candidate_blend"], got["popularity_trailing_7d"]
        print(f"{day}: {int(blend['user_days'])} user-days, blend "
              f"{blend['recall@50']:.4f} / {blend['ndcg@10']:.4f}, trailing popularity "
              f"{pop['recall@50']:.4f} / {pop['ndcg@10']:.4f} ({time.time() - t:.0f} s)",
              flush=True)  # fmt: skip
        args.out.write_text(json.dumps(per_day, indent=1))
    units = sum(d["rows"]["candidate_blend"]["user_days"] for d in per_day)
    print(f"\n{len(per_day)} days, {int(units)} user-days, retrained before each day")
    print("| policy | Recall@50 | NDCG@10 |\n| --- | --- | --- |")
    means = {}
    for row in ROWS:
        # a day without a unit has NaN metrics and weighs nothing: left out
        w = [(d["rows"][row], d["rows"][row]["user_days"]) for d in per_day
             if row in d["rows"] and d["rows"][row]["user_days"] > 0]  # fmt: skip
        means[row] = {m: sum(r[m] * n for r, n in w) / sum(n for _, n in w) for m in METRICS}
        print(f"| {row} | {means[row]['recall@50']:.4f} | {means[row]['ndcg@10']:.4f} |")
    base = means["popularity_trailing_7d"]
    for row in ("candidate_blend", "candidate_blend+served_rules"):
        gain = {m: means[row][m] / base[m] - 1 for m in METRICS}
        wins = sum(d["rows"][row]["ndcg@10"] > d["rows"]["popularity_trailing_7d"]["ndcg@10"]
                   for d in per_day if d["rows"][row]["user_days"] > 0)  # fmt: skip
        print(f"{row} against trailing popularity: Recall@50 {gain['recall@50']:+.1%}, "
              f"NDCG@10 {gain['ndcg@10']:+.1%}; ahead on NDCG@10 on {wins} of {len(per_day)} days")  # fmt: skip


if __name__ == "__main__":
    main()
