"""``/recommend`` with the models' embedding rows in process against the same rows in Redis
through a bounded cache of hot rows (``RECASSETS_SERVE_EMBEDDINGS=redis``), in one run on the
same bento, users and requests: latency of each side and the cache's hit rate, under a Zipf-like
user mix (a few users come back often, most rarely), for a cache far smaller than the tables.

The baseline is the same funnel (``Recommender.recommend``, same bundle, same users, same k)
with the tables in the model: the ratio is what fetching rows from Redis through the cache
costs. A real ``redis-server`` is started on a free loopback port (Debian's ``redis-server``);
the rows are published to it as a bento build does. An overhead to know, not a target.

    .venv/bin/python -m benchmarks.scale_embeddings                 # RECASSETS_HOME's bento
    .venv/bin/python -m benchmarks.scale_embeddings --requests 2000 --cache-rows 2000
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks._common import (
    bento_parser,
    known_users,
    latency_line,
    machine_line,
    percentile,
    print_summary,
    require_bento,
    row,
    timed_blocks,
)


def zipf_users(users: list[int], n: int, a: float, seed: int) -> list[int]:
    """``n`` requests over ``users``: user of rank r drawn with weight 1 / r^a."""
    import numpy as np

    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(users) + 1) ** a
    picks = rng.choice(len(users), size=n, p=weights / weights.sum())
    return [users[i] for i in picks]


def main() -> None:
    ap = bento_parser(__doc__)
    ap.add_argument("--users", type=int, default=500, help="distinct users in the mix")
    ap.add_argument("--requests", type=int, default=1000)
    ap.add_argument("--zipf", type=float, default=1.1, help="exponent of the user mix")
    ap.add_argument("--cache-rows", type=int, default=5_000, help="rows the local cache holds")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    print(machine_line())
    import redis

    from recassets.funnel import embedding_store as E
    from recassets.funnel.recommender import Bundle, FunnelConfig, Recommender, pin_threads
    from tests.integration.test_serving_redis import Redis

    paths, tag, bundle_dir = require_bento(a.home, a.bento)
    bundle = Bundle.load(bundle_dir)
    if not bundle.manifest.get("files"):
        raise SystemExit(f"{tag} serves the popularity policy: no embedding tables to move")
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as tmp:
        server = Redis(Path(tmp))
        server.start()
        try:
            client = redis.Redis.from_url(server.url)
            files = {k: str(bundle.path(k)) for k in ("two_tower", "ranking")}
            published = E.publish_bundle(client, bundle.manifest, files)
            config = FunnelConfig(candidates=a.candidates)
            local = Recommender(bundle, paths, config)
            ext_config = FunnelConfig(
                candidates=a.candidates, embeddings="redis", embedding_cache_rows=a.cache_rows
            )
            external = Recommender(
                Bundle.load(bundle_dir), paths, ext_config, embeddings_url=server.url
            )
            pin_threads(1)
            users = zipf_users(known_users(paths, a.users, a.seed), a.requests, a.zipf, a.seed)
            for u in users[:20]:  # warm-up, and the answers agree
                assert external.recommend(u, a.k).to_dict() == local.recommend(u, a.k).to_dict()
            stores = external.embedding_stores.values()
            for s in stores:
                s.hits = s.misses = 0
            times = timed_blocks(
                {
                    "in process": lambda u: local.recommend(u, a.k),
                    "redis+cache": lambda u: external.recommend(u, a.k),
                },
                users,
                rounds=a.rounds,
            )
        finally:
            server.stop()
    hits, misses = sum(s.hits for s in stores), sum(s.misses for s in stores)
    rows = sum(published.values())
    print(f"\n{tag}: {rows} embedding rows published to Redis; cache {a.cache_rows} rows "
          f"({a.cache_rows / rows:.1%} of them); {len(users)} requests over {len(set(users))} "
          f"users (Zipf a={a.zipf}), k={a.k}, N={a.candidates}, torch 1 thread")  # fmt: skip
    for name, samples in times.items():
        print(latency_line(name, samples, width=12))
    p50 = {n: percentile(t, 50) for n, t in times.items()}
    p99 = {n: percentile(t, 99) for n, t in times.items()}
    rate = hits / (hits + misses) if hits + misses else float("nan")
    print_summary([
        row("/recommend p50, rows in Redis + cache (ms)", p50["redis+cache"], p50["in process"],
            p50["redis+cache"] / p50["in process"], "info: an overhead", None),
        row("/recommend p99, rows in Redis + cache (ms)", p99["redis+cache"], p99["in process"],
            p99["redis+cache"] / p99["in process"], "info: an overhead", None),
        row("cache hit rate (rows)", rate, None, None, "info", None, fmt="9.3f"),
    ])  # fmt: skip


if __name__ == "__main__":
    main()
