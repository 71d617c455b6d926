"""Model variants on the ML-1M split, trained and evaluated directly on a built home.

``python -m benchmarks.movielens_1m --run`` builds the lake once (import, features,
training_examples) in ``RECASSETS_HOME``; this script then trains two-tower (and ranker)
variants with the library's own functions (``recassets.training.loop``) on the split's training
days and scores each with ``recassets.training.evaluation.evaluate`` on its eval window, so that
each change is measured on the same units, truth and baselines::

    RECASSETS_HOME=/tmp/ml1m-home python -m benchmarks.movielens_1m_models default no_logq
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.movielens_1m import SPLIT

VARIANTS: dict[str, dict[str, Any]] = {
    # the platform's defaults
    "default": {},
    # what the defaults were before issue 14
    "before": {"same_day_history": False, "two_tower": {"logq_weight": 1.0, "user_id": True}},
    "no_same_day": {"same_day_history": False},
    "user_id": {"two_tower": {"user_id": True}},
    "user_id_logq_1": {"two_tower": {"user_id": True, "logq_weight": 1.0}},
    "user_id_logq_3": {"two_tower": {"user_id": True, "logq_weight": 3.0}},
    "user_id_logq_5": {"two_tower": {"user_id": True, "logq_weight": 5.0}},
    "no_user_id": {"two_tower": {"user_id": False}},
    "logq_0": {"two_tower": {"logq_weight": 0.0}},
    "logq_05": {"two_tower": {"logq_weight": 0.5}},
    "logq_1": {"two_tower": {"logq_weight": 1.0}},
    "logq_15": {"two_tower": {"logq_weight": 1.5}},
    "logq_2": {"two_tower": {"logq_weight": 2.0}},
    "logq_3": {"two_tower": {"logq_weight": 3.0}},
    "logq_5": {"two_tower": {"logq_weight": 5.0}},
    "logq_2_t01": {"two_tower": {"logq_weight": 2.0, "temperature": 0.1}},
    "temp_01": {"two_tower": {"temperature": 0.1}},
    "temp_02": {"two_tower": {"temperature": 0.2}},
    "epochs_1": {"epochs": 1},
    "epochs_5": {"epochs": 5},
    "dim_32": {"two_tower": {"dim": 32}},
    "dim_128": {"two_tower": {"dim": 128}},
}


def config(name: str, base: Any) -> Any:
    from recassets.training.loop import TwoTowerTrainConfig

    spec = dict(VARIANTS[name])
    tt = spec.pop("two_tower", {})
    return replace(base, **spec, two_tower=replace(base.two_tower or TwoTowerTrainConfig(), **tt))


def main(argv: list[str] | None = None) -> None:
    from recassets.paths import Paths
    from recassets.training import evaluation as E
    from recassets.training.loop import TrainConfig, train_ranking, train_two_tower

    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("variants", nargs="*", default=["default"])
    p.add_argument("--eval-days", type=int, default=SPLIT["eval_days"])
    p.add_argument("--ranker", action="store_true", help="also train the ranker (slow)")
    p.add_argument("--bootstrap", type=int, default=200)
    p.add_argument("--out", type=Path, default=Path("/tmp/ml1m-variants"))
    p.add_argument("--ranker-path", type=Path, help="a trained ranker checkpoint to re-use")
    p.add_argument("--two-tower-path", type=Path, help="score this checkpoint, do not train")
    p.add_argument("--similarity", action="store_true", help="also fit EASE and score the blend")
    p.add_argument("--l2", type=float, help="EASE's L2 (default: chosen as the asset does)")
    args = p.parse_args(argv)
    paths = Paths.from_env()
    days = E.available_days(paths)
    train_days = days[: -args.eval_days]
    args.out.mkdir(parents=True, exist_ok=True)
    base = TrainConfig(
        epochs=3,
        num_threads=1,
        vocab={n: {"key_type": "int64", "capacity": 100_000, "min_count": 2,
                   "num_oov_buckets": 1000, "ttl": 30} for n in ("user_id", "item_id")},
    )  # fmt: skip
    rk = None
    if args.ranker_path:
        from recassets.training.checkpoint import Checkpoint

        rk = Checkpoint.load(args.ranker_path)
    elif args.ranker:
        t = time.time()
        rk = train_ranking(paths, train_days, base, output=args.out / "ranking.pt")
        print(f"ranker trained in {time.time() - t:.0f} s", flush=True)
    sim = None
    if args.similarity:
        import pyarrow.compute as pc

        from recassets.training.similarity import BETA, ItemSimilarity, choose_weights

        t = time.time()
        rows = E.read_days(
            paths, train_days[-365:], ("user_id", "item_id", "label", "dt", "source")
        )
        l2, beta = args.l2, BETA
        if l2 is None:  # as the asset does: chosen on the training window's last days
            l2, beta, choice = choose_weights(rows)
            print(f"l2, beta chosen: {l2}, {beta} ({choice})", flush=True)
        pos = rows.filter(pc.equal(rows["label"], 1))
        sim = ItemSimilarity.fit(pos["user_id"].to_numpy(), pos["item_id"].to_numpy(), l2=l2,
                                 meta={"beta": beta})  # fmt: skip
        print(f"item similarity fitted in {time.time() - t:.0f} s: {sim.meta}", flush=True)
    for name in args.variants:
        t = time.time()
        if args.two_tower_path:
            from recassets.training.checkpoint import Checkpoint

            tt = Checkpoint.load(args.two_tower_path)
        else:
            tt = train_two_tower(paths, train_days, config(name, base),
                                 output=args.out / f"{name}.pt")  # fmt: skip
        t_train = time.time() - t
        report = E.evaluate(
            paths, tt, rk.path if rk else None, bootstrap=args.bootstrap, similarity=sim
        )
        print(f"\n## {name} (train {t_train:.0f} s, eval {time.time() - t - t_train:.0f} s)")
        print(report.to_markdown(), flush=True)
        (args.out / f"{name}.json").write_text(json.dumps(report.to_dict(), default=str))


if __name__ == "__main__":
    main()
