"""Feast's online load of one day: the DuckDB offline store (what recassets uses) against the
file offline store (Dask) it replaced, on the same snapshots, registry and day.

    python -m benchmarks.feast_materialize [--home HOME] [--day DAY]

HOME is a materialized home (default ``RECASSETS_HOME``; a `make demo MOVIELENS=...` home has
215 daily snapshots). Each side gets a copy of the home's Feast folder with only the offline
store's type changed (and the sources' paths pointed at the copy), applies the same
repository, and is timed around the same ``store.materialize`` of the day into its own fresh
SQLite online store; then both online stores must hold the same values for every feature of
all three views (users, items, cohorts), on a sample of up to 50 entities of each drawn from
the day's own snapshot. The two sides run in alternating order, ``--rounds`` (2) times each,
every time in a fresh copy (the mean and each time are printed). Both sides read the same
Parquet files: what differs is how the store reads them
(Dask reads and sorts every snapshot; DuckDB prunes by the timestamp's Parquet statistics).
The work is the same on both sides (the same rows of the same day into the same kind of
online store, through the same ``store.materialize`` call); the baseline is the store this
replaced, so the ratio measures that choice, as ``serve_index`` measures IVF against exact.
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from benchmarks._common import machine_line
from recassets.featurestore import config as cfg
from recassets.featurestore import repo
from recassets.featurestore.snapshot import end_of_day
from recassets.paths import Paths


def sample_keys(paths: Paths, day: str, n: int = 50) -> dict[str, list[dict]]:
    """Up to ``n`` entity rows of each view, read from the day's own offline snapshot (so the
    comparison looks at entities both stores must hold), in a fixed order."""
    import pyarrow.parquet as pq
    from feast import Entity

    join_key = {o.name: o.join_key for o in repo.OBJECTS if isinstance(o, Entity)}
    out = {}
    for view in repo.FEATURE_VIEWS:
        table = view.name.replace("_daily", "")  # user_daily_features reads user_features
        keys = [join_key[e] for e in view.entities]
        snap = cfg.feast_dir(paths) / "offline" / table / f"dt={day}.parquet"
        rows = pq.read_table(snap, columns=keys).to_pylist() if snap.exists() else []
        out[view.name] = sorted(rows, key=lambda r: tuple(str(r[k]) for k in keys))[:n]
    return out


def nan_safe(x: Any) -> Any:
    """``x`` with every float NaN made a string: NaN != NaN, and an unset value of an array
    feature (``last_engagement_values``) reads NaN on both sides alike."""
    if isinstance(x, float) and math.isnan(x):
        return "nan"
    if isinstance(x, dict):
        return {k: nan_safe(v) for k, v in x.items()}
    if isinstance(x, list):
        return [nan_safe(v) for v in x]
    return x


def side(
    paths: Paths, kind: str, day: str, scratch: Path, keys: dict[str, list[dict]]
) -> tuple[float, dict]:
    """Seconds of ``store.materialize`` of ``day`` with offline store ``kind``, and the online
    values it wrote for ``keys``: every feature of every view."""
    from feast import FeatureStore, RepoConfig

    folder = scratch
    shutil.copytree(cfg.feast_dir(paths), folder, ignore=shutil.ignore_patterns("online.db"))
    config = cfg.repo_config(paths)
    config["registry"]["path"] = str(folder / "registry.db")
    config["online_store"] = {"type": "sqlite", "path": str(folder / "online.db")}
    config["offline_store"] = {"type": kind}
    repo_config = RepoConfig(**config)
    repo_config.repo_path = folder
    store = FeatureStore(repo_path=str(folder), config=repo_config)
    repo.locate(folder)  # both read the copy's snapshots, by absolute path
    if kind == "file":  # Dask takes the folder of daily files, not a glob
        for view in repo.FEATURE_VIEWS:
            uri = view.batch_source.file_options.uri  # type: ignore[union-attr]
            view.batch_source.file_options.uri = uri.rsplit("/", 1)[0]  # type: ignore[union-attr]
    store.apply(repo.OBJECTS)
    start = dt.datetime.combine(dt.date.fromisoformat(day), dt.time.min, tzinfo=dt.UTC)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t0 = time.perf_counter()
        store.materialize(
            start_date=start,
            end_date=end_of_day(day),
            feature_views=[v.name for v in repo.FEATURE_VIEWS],
        )
        seconds = time.perf_counter() - t0
    sample = {
        view.name: store.get_online_features(
            features=[f"{view.name}:{f.name}" for f in view.features],
            entity_rows=keys[view.name],
        ).to_dict()
        for view in repo.FEATURE_VIEWS
        if keys[view.name]
    }
    return seconds, sample


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--home", default=os.environ.get("RECASSETS_HOME"))
    parser.add_argument("--day", help="the day to load (default: the day the home serves)")
    parser.add_argument("--rounds", type=int, default=2, help="runs a side, order alternating")
    args = parser.parse_args()
    if not args.home:
        parser.error("--home or RECASSETS_HOME is required")
    os.environ["RECASSETS_HOME"] = args.home
    paths = Paths.from_env()
    day = args.day or (cfg.read_json(cfg.marker_path(paths)) or {}).get("day")
    if not day:
        parser.error(f"no materialized day in {args.home}: run the demo first or pass --day")
    days = len(list((cfg.feast_dir(paths) / "offline" / "user_features").glob("*.parquet")))
    print(machine_line())
    print(f"home {args.home}: {days} daily snapshots per table; loading {day} online")
    keys = sample_keys(paths, day)
    times: dict[str, list[float]] = {"duckdb": [], "file": []}
    values: dict[str, list[dict]] = {"duckdb": [], "file": []}
    with tempfile.TemporaryDirectory(prefix="feast-bench-") as scratch:
        for r in range(args.rounds):
            # the order alternates: neither side always pays the first run's imports alone
            for kind in ("duckdb", "file") if r % 2 == 0 else ("file", "duckdb"):
                seconds, got = side(paths, kind, day, Path(scratch) / f"{kind}-{r}", keys)
                times[kind].append(seconds)
                values[kind].append(got)
    duck = sum(times["duckdb"]) / len(times["duckdb"])
    dask = sum(times["file"]) / len(times["file"])
    # every run of both sides must agree with the first DuckDB run, view by view
    ref = nan_safe(values["duckdb"][0])
    same = {
        v: all(nan_safe(run).get(v) == ref[v] for k in values for run in values[k]) for v in ref
    }

    def each(kind: str) -> str:
        return " / ".join(f"{t:.1f}" for t in times[kind])

    print(f"| offline store | materialize {day}, mean of {args.rounds} (each run) | ratio |")
    print("| --- | ---: | ---: |")
    print(f"| DuckDB (recassets) | {duck:.1f} s ({each('duckdb')}) | speedup file/DuckDB "
          f"**{dask / duck:.0f}x** |")  # fmt: skip
    print(f"| file (Dask), the baseline | {dask:.1f} s ({each('file')}) | |")
    for view, ok in same.items():
        print(f"online values of {len(keys[view])} entities, all features of {view}, identical "
              f"on both sides: {ok}")  # fmt: skip
    if not ref or not all(same.values()):
        raise SystemExit("the two online stores differ (or nothing was compared): void")


if __name__ == "__main__":
    main()
