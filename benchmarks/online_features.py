"""Online feature reads for one ranking request: OnlineFeatureReader against a direct read of
the online store and against Feast's ``get_online_features``, measured in the same run.

    .venv/bin/python -m benchmarks.online_features
    .venv/bin/python -m benchmarks.online_features --requests 1000 --batch 1000
    RECASSETS_REDIS_URL=redis://127.0.0.1:6379/0 .venv/bin/python -m benchmarks.online_features

A request is one user's features plus ``--batch`` items' features (ranking's candidates),
the features of the ``ranking_v1`` service (user: 27, item: 22 including a 16-float
embedding). A synthetic catalog (``--users`` users, ``--items`` items, up to 50 engagements
per user) is written by Spark as the lake's Delta feature tables and materialized with
``materialize_day`` (``--workdir DIR`` keeps it, and a later run with the same DIR reuses it).
The same requests go through three read paths, each timed in its own blocks (three rounds,
rotating order, a full GC before each block):

(a) ours: ``OnlineFeatureReader.user(u)`` (a point read of the store) + ``.items(ids)``
    (a gather from in-memory arrays).
(b) direct: the same keys read from the online store per request (one query for the user,
    one for the items) and decoded; no Feast.
(c) Feast: ``FeatureStore.get_online_features(...).to_dict()`` for the user, then the items.

All three return the same values (checked on the first request). Targets: Feast p99 / ours
p99 >= 20, ours p99 <= 10 ms.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import os
import platform
import random
import shutil
import sqlite3
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from recassets.features.schema import (
    EMBEDDING_DIM,
    ENGAGEMENT_TYPES,
    SEQUENCE_LENGTH,
    TABLES,
    WINDOWS,
)
from recassets.featurestore import (
    FOUND,
    OnlineFeatureReader,
    feature_refs,
    get_store,
    materialize_day,
    online_store_settings,
    same_value,
    wire,
)
from recassets.featurestore.config import REDIS_URL_ENV
from recassets.paths import Paths
from recassets.spark import get_spark

DAY = dt.date(2026, 1, 14)
SERVICE = "ranking_v1"


def home_at(root: Path) -> Paths:
    # Built directly: RECASSETS_* in the environment must not send the benchmark to real data.
    return Paths(
        *(str(root / n) for n in ("", "landing", "lake", "artifacts", "lineage", "dagster"))
    )


def counters(rng: np.random.Generator) -> list:
    out = []
    for w in WINDOWS:
        impressions = int(rng.integers(0, 50 * w))
        clicks = int(rng.integers(0, impressions + 1))
        out += [
            impressions,
            clicks,
            int(rng.integers(0, clicks + 1)),
            clicks + int(rng.integers(0, 3)),
            float(rng.gamma(2.0, 30.0 * w)),
        ]
    return out


def catalog_rows(users: int, items: int, seed: int) -> dict[str, list[tuple]]:
    """Rows in DDL column order (Spark tuples)."""
    rng = np.random.default_rng(seed)
    countries, ages, devices = (
        ["fr", "us", "br", "in", "unknown"],
        ["18-24", "25-34", "35-44", "45+"],
        ["ios", "android", "web"],
    )
    categories = [f"cat{i}" for i in range(20)]
    noon = dt.datetime.combine(DAY, dt.time(12), tzinfo=dt.UTC)
    user_rows = []
    for u in range(1, users + 1):
        n = int(rng.integers(0, SEQUENCE_LENGTH + 1))
        seq = []
        for j in range(n):
            kind = ENGAGEMENT_TYPES[int(rng.integers(0, len(ENGAGEMENT_TYPES)))]
            value = float(rng.gamma(2.0, 20.0)) if kind in ("watch", "rating") else None
            seq.append(
                (
                    int(rng.integers(1, items + 1)),
                    kind,
                    noon - dt.timedelta(minutes=10 * (n - j)),
                    value,
                )
            )
        top = [
            (categories[int(c)], float(1.0 / (k + 1)))
            for k, c in enumerate(rng.choice(20, size=min(n, 5), replace=False))
        ]
        user_rows.append(
            (u, *counters(rng), float(rng.random()), float(rng.random()), countries[u % 5], devices[u % 3],
             ages[u % 4], seq, [s[0] for s in seq], top, DAY)
        )  # fmt: skip
    item_rows = [
        (i, *counters(rng), float(rng.random()), float(rng.random()), float(rng.integers(0, 90)) + 0.5,
         categories[i % 20], f"creator{i % 300}", float(rng.normal()), rng.normal(size=EMBEDDING_DIM).astype(np.float32).tolist(), DAY)
        for i in range(1, items + 1)
    ]  # fmt: skip
    cohort_rows = [
        (
            c,
            a,
            k,
            1000 + i,
            100 + i,
            120 + i,
            4000 + i,
            400 + i,
            480 + i,
            (400 + i) / (4000 + i),
            DAY,
        )
        for i, (c, a, k) in enumerate(
            (c, a, k) for c in countries for a in ages for k in categories
        )
    ]
    return {"user_features": user_rows, "item_features": item_rows, "cohort_features": cohort_rows}


def write_tables(paths: Paths, rows: dict[str, list[tuple]]) -> None:
    from pyspark.sql.types import StructType

    spark = get_spark()
    for table, data in rows.items():
        schema = StructType.fromDDL(TABLES[table])
        spark.createDataFrame(data, schema=schema).write.format("delta").mode(
            "overwrite"
        ).partitionBy("dt").save(paths.table(table))


class DirectRead:
    """The same keys straight from the online store, per request, decoded with Feast's
    encodings (wire.py): what a reader without the in-memory item arrays would do."""

    def __init__(
        self, paths: Paths, reader: OnlineFeatureReader, redis_url: str | None = None
    ) -> None:
        self.settings = online_store_settings(paths, redis_url)
        self.user_features, self.item_features = reader.user_features, reader.item_features
        if self.settings.kind == "sqlite":
            self.conn = sqlite3.connect(f"file:{self.settings.path}?mode=ro", uri=True)
        else:
            import redis

            self.client = redis.Redis.from_url(self.settings.url)
            self.user_fields = [
                wire.redis_field("user_daily_features", f) for f in self.user_features
            ]
            self.item_fields = [
                wire.redis_field("item_daily_features", f) for f in self.item_features
            ]

    def __call__(self, user_id: int, item_ids: list[int]) -> tuple[dict, dict]:
        if self.settings.kind == "sqlite":
            user = dict(
                self.conn.execute(
                    "SELECT feature_name, value FROM recassets_user_daily_features WHERE entity_key = ?",
                    (wire.serialize_entity_key("user_id", user_id),),
                ).fetchall()
            )
            keys = [wire.serialize_entity_key("item_id", i) for i in item_ids]
            rows = self.conn.execute(
                "SELECT entity_key, feature_name, value FROM recassets_item_daily_features "
                f"WHERE entity_key IN ({','.join('?' * len(keys))})",
                keys,
            ).fetchall()
            by_key: dict[bytes, dict] = {}
            for key, name, blob in rows:
                by_key.setdefault(key, {})[name] = blob
            items = [by_key.get(k, {}) for k in keys]
        else:
            with self.client.pipeline(transaction=False) as pipe:
                pipe.hmget(wire.redis_key("user_id", user_id, "recassets"), self.user_fields)
                for i in item_ids:
                    pipe.hmget(wire.redis_key("item_id", i, "recassets"), self.item_fields)
                got = pipe.execute()
            user = dict(zip(self.user_features, got[0], strict=True))
            items = [dict(zip(self.item_features, g, strict=True)) for g in got[1:]]
        user_out = {f: wire.decode_value(user.get(f)) for f in self.user_features}
        item_out = {f: [wire.decode_value(r.get(f)) for r in items] for f in self.item_features}
        return user_out, item_out


def feast_read(
    store, user_refs: list[str], item_refs: list[str], user_id: int, item_ids: list[int]
) -> tuple[dict, dict]:
    user = store.get_online_features(
        features=user_refs, entity_rows=[{"user_id": user_id}]
    ).to_dict()
    items = store.get_online_features(
        features=item_refs, entity_rows=[{"item_id": i} for i in item_ids]
    ).to_dict()
    return user, items


def ours_read(reader: OnlineFeatureReader, user_id: int, item_ids: list[int]) -> tuple[dict, dict]:
    return reader.user(user_id), reader.items(item_ids)


def check_equal(ours, direct, feast, item_ids) -> None:
    (ou, oi), (du, di), (fu, fi) = ours, direct, feast
    for name, value in du.items():
        assert same_value(ou[name], value) and same_value(fu[name][0], value), name
    for name, values in di.items():
        assert same_value(fi[name], values), name
        assert all(same_value(oi[name][r], v) for r, v in enumerate(values) if oi[FOUND][r]), name
    assert oi[FOUND].all(), "every requested item exists"


def percentile(samples: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(samples), q))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=2_000)
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--batch", type=int, default=500, help="items per request")
    parser.add_argument("--warmup", type=int, default=20, help="untimed requests first")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--workdir", default=None, help="where to build the catalog (default: a temp folder)"
    )
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args()

    root = Path(args.workdir or tempfile.mkdtemp(prefix="recassets-online-bench-"))
    paths = home_at(root.absolute())
    # The benchmark is an edge: it reads the online store's URL itself (unset: SQLite).
    redis_url = os.environ.get(REDIS_URL_ENV) or None
    try:
        t0 = time.perf_counter()
        reuse = args.workdir and (Path(paths.artifacts) / "feast" / "materialized.json").exists()
        if not reuse:  # --workdir of an earlier run: its catalog is reused as it is
            write_tables(paths, catalog_rows(args.users, args.items, args.seed))
        t1 = time.perf_counter()
        summary = materialize_day(paths, DAY, redis_url=redis_url) if not reuse else None
        t2 = time.perf_counter()
        reader = OnlineFeatureReader(paths, service=SERVICE, redis_url=redis_url)
        t3 = time.perf_counter()
        direct = DirectRead(paths, reader, redis_url)
        store = get_store(paths, redis_url)
        user_refs, item_refs = feature_refs("user", SERVICE), feature_refs("item", SERVICE)
        if summary:
            print(f"catalog: {args.users} users, {args.items} items written in {t1 - t0:.1f} s; "
                  f"materialized {summary.counts} into {summary.online_store} in {t2 - t1:.1f} s")  # fmt: skip
        print(
            f"reader: {len(reader.items([])) - 2} item features of {len(reader._items.ids)} items loaded in {t3 - t2:.2f} s"
        )

        rng = random.Random(args.seed)
        requests = [
            (rng.randint(1, args.users), rng.sample(range(1, args.items + 1), args.batch))
            for _ in range(args.warmup + args.requests)
        ]
        sides = {
            "ours (OnlineFeatureReader)": lambda u, ids: ours_read(reader, u, ids),
            "direct online-store read": lambda u, ids: direct(u, ids),
            "Feast get_online_features": lambda u, ids: feast_read(
                store, user_refs, item_refs, u, ids
            ),
        }
        user_id, ids = requests[0]
        check_equal(*(fn(user_id, ids) for fn in sides.values()), ids)
        times: dict[str, list[float]] = {name: [] for name in sides}
        names = list(sides)
        for user_id, ids in requests[: args.warmup]:
            for fn in sides.values():
                fn(user_id, ids)
        # Blocks, not one request of each in turn: a serving process runs one of these, and
        # Feast's garbage must not be collected inside our timings (nor ours inside Feast's).
        # Three rounds, the sides in rotating order, so that drift in machine load is shared.
        timed = requests[args.warmup :]
        rounds = [timed[i::3] for i in range(3)]
        for r, block in enumerate(rounds):
            for name in names[r:] + names[:r]:
                gc.collect()
                fn = sides[name]
                for user_id, ids in block:
                    start = time.perf_counter()
                    fn(user_id, ids)
                    times[name].append((time.perf_counter() - start) * 1000)

        print(f"\n{args.requests} requests of 1 user + {args.batch} items ({SERVICE}), "
              f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, "
              f"load average {os.getloadavg()[0]:.1f} (p99 is sensitive to other processes on these CPUs)")  # fmt: skip
        print(f"{'':30} {'p50 ms':>9} {'p99 ms':>9} {'mean ms':>9}")
        for name, samples in times.items():
            print(
                f"{name:30} {percentile(samples, 50):9.3f} {percentile(samples, 99):9.3f} {statistics.fmean(samples):9.3f}"
            )
        ours = percentile(times[names[0]], 99)
        ratio = percentile(times[names[2]], 99) / ours
        vs_direct = percentile(times[names[1]], 99) / ours
        print(
            f"\nFeast p99 / ours p99 = {ratio:.1f}x (target >= 20x): {'met' if ratio >= 20 else 'NOT met'}"
        )
        print(f"direct p99 / ours p99 = {vs_direct:.1f}x")
        print(f"ours p99 = {ours:.3f} ms (target <= 10 ms): {'met' if ours <= 10 else 'NOT met'}")
    finally:
        if not args.keep and not args.workdir:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
