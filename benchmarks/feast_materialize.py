"""Feast's online load of one day: the DuckDB offline store (what recassets uses) against the
file offline store (Dask) it replaced, on the same snapshots, registry and day.

    python -m benchmarks.feast_materialize [--home HOME] [--day DAY]

HOME is a materialized home (default ``RECASSETS_HOME``; a `make demo MOVIELENS=...` home has
215 daily snapshots). Each side gets a copy of the home's Feast folder with only the offline
store's type changed (and the sources' paths pointed at the copy), applies the same
repository, and is timed around the same ``store.materialize`` of the day into its own fresh
SQLite online store; then both online stores must hold the same values for a sample of users
and items. Both sides read the same Parquet files: what differs is how the store reads them
(Dask reads and sorts every snapshot; DuckDB prunes by the timestamp's Parquet statistics).
The work is the same on both sides (the same rows of the same day into the same kind of
online store, through the same ``store.materialize`` call); the baseline is the store this
replaced, so the ratio measures that choice, as ``serve_index`` measures IVF against exact.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import tempfile
import time
import warnings
from pathlib import Path

from benchmarks._common import machine_line
from recassets.featurestore import config as cfg
from recassets.featurestore import repo
from recassets.featurestore.snapshot import end_of_day
from recassets.paths import Paths


def side(paths: Paths, kind: str, day: str, scratch: Path) -> tuple[float, dict]:
    """Seconds of ``store.materialize`` of ``day`` with offline store ``kind``, and a sample
    of the online values it wrote."""
    from feast import FeatureStore, RepoConfig

    folder = scratch / kind
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
    sample = store.get_online_features(
        features=["user_daily_features:clicks_28d", "user_daily_features:history_item_ids"],
        entity_rows=[{"user_id": u} for u in range(1, 51)],
    ).to_dict()
    return seconds, sample


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", default=os.environ.get("RECASSETS_HOME"))
    parser.add_argument("--day", help="the day to load (default: the day the home serves)")
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
    with tempfile.TemporaryDirectory(prefix="feast-bench-") as scratch:
        duck, duck_values = side(paths, "duckdb", day, Path(scratch))
        dask, dask_values = side(paths, "file", day, Path(scratch))
    same = duck_values == dask_values
    print(f"| offline store | materialize {day} | ratio |")
    print("| --- | ---: | ---: |")
    print(f"| DuckDB (recassets) | {duck:.1f} s | **{dask / duck:.0f}x** faster |")
    print(f"| file (Dask), the baseline | {dask:.1f} s | |")
    print(f"online values of 50 users identical on both sides: {same}")
    if not same:
        raise SystemExit("the two online stores differ: the comparison is void")


if __name__ == "__main__":
    main()
