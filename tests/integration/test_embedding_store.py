"""Embedding rows outside the serving process (``recassets.funnel.embedding_store``), against a
real ``redis-server`` on 127.0.0.1: a bundle's model rows published to Redis, a funnel that
keeps only a bounded cache of them answers exactly as the funnel with the tables in process
(items, scores, order), holds no table in memory, counts its cache hits and misses, and refuses
a store that lacks the rows, naming them."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from recassets.funnel import embedding_store as E
from recassets.funnel.recommender import Bundle, FunnelConfig, Recommender
from tests.integration.test_serving import UNKNOWN_USER, built, home  # noqa: F401 (fixtures)
from tests.integration.test_serving_redis import Redis

pytestmark = pytest.mark.integration
CACHE_ROWS = 64  # well under the tables' rows: the cache must evict


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    store = Redis(tmp_path_factory.mktemp("redis_embeddings"))
    store.start()
    try:
        yield store.url
    finally:
        store.stop()


@pytest.fixture(scope="module")
def client(redis_url):
    import redis

    return redis.Redis.from_url(redis_url)


@pytest.fixture(scope="module")
def published(built, client):  # noqa: F811 (fixture)
    bundle = Bundle.load(built["bundle"])
    files = {k: str(bundle.path(k)) for k in ("two_tower", "ranking")}
    rows = E.publish_bundle(client, bundle.manifest, files)
    return bundle, rows


@pytest.fixture(scope="module")
def funnels(home, published, redis_url):  # noqa: F811 (fixture)
    bundle, _ = published
    lookups = []
    local = Recommender(bundle, home)
    external = Recommender(
        Bundle.load(bundle.folder),
        home,
        FunnelConfig(embeddings="redis", embedding_cache_rows=CACHE_ROWS),
        embeddings_url=redis_url,  # the online features stay in the home's SQLite here
        on_embedding_lookup=lambda h, m: lookups.append((h, m)),
    )
    return local, external, lookups


def test_every_row_is_published_once_per_model(published, client):
    bundle, rows = published
    for kind in ("two_tower", "ranking"):
        key = E.model_key(bundle.manifest["lineage"][kind]["sha256"])
        tables = [k.decode() for k in client.keys(f"{key}:*") if not k.endswith(b":meta")]
        assert sum(client.hlen(t) for t in tables) == rows[kind] > 0
    # content-addressed: publishing again writes the same keys, no more
    before = client.dbsize()
    E.publish_bundle(client, bundle.manifest, {k: str(bundle.path(k)) for k in rows})
    assert client.dbsize() == before


def test_answers_are_identical_with_the_rows_in_redis(funnels):
    local, external, _ = funnels
    for user in [*range(1, 21), 35, UNKNOWN_USER]:
        assert external.recommend(user, k=20).to_dict() == local.recommend(user, k=20).to_dict(), user  # fmt: skip
        ids = np.arange(1, 41, dtype=np.int64)
        a, found_a = local.rank(user, local.user_row(user), ids)
        b, found_b = external.rank(user, external.user_row(user), ids)
        assert np.array_equal(a, b) and np.array_equal(found_a, found_b)


def test_the_external_funnel_holds_no_table_and_a_bounded_cache(funnels):
    local, external, lookups = funnels
    weights = [k for k in external.two_tower.state_dict() if "embedding_bags" in k]
    assert weights == [] and [k for k in local.two_tower.state_dict() if "embedding_bags" in k]
    stores = external.embedding_stores
    assert all(0 < len(s) <= CACHE_ROWS for s in stores.values())
    hits, misses = sum(h for h, _ in lookups), sum(m for _, m in lookups)
    assert hits > 0 and misses > 0  # a bounded cache over more rows than it holds
    rate = sum(s.hits for s in stores.values()) / sum(s.hits + s.misses for s in stores.values())
    assert 0 < rate < 1 and hits == sum(s.hits for s in stores.values())


def test_a_store_without_the_rows_is_refused_naming_them(published, client, home):  # noqa: F811
    bundle, _ = published
    with pytest.raises(E.MissingRowsError, match="no embedding rows for model 0000000000000000"):
        E.RowStore(client, "0" * 64)
    sha = bundle.manifest["lineage"]["ranking"]["sha256"]
    store = E.RowStore(client, sha)
    table = next(iter(store.shapes))
    with pytest.raises(IndexError, match=f"{table}: rows"):
        store.rows(table, np.asarray([store.shapes[table][0] + 5]))
    # a row gone from Redis (evicted) is named, not served as zeros
    key = f"{E.model_key(sha)}:{table}"
    saved = client.hget(key, "0")
    client.hdel(key, "0")
    try:
        with pytest.raises(E.MissingRowsError, match=f"{key} has no row 0"):
            E.RowStore(client, sha).rows(table, np.asarray([0]))
    finally:
        client.hset(key, "0", saved)


def test_the_pooled_lookup_equals_the_tables_bit_for_bit(funnels):
    # the kernel-level claim behind the identical answers: the same KJT through both modules
    from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

    local, external, _ = funnels
    features = list(local.ranker.embeddings.feature_names)
    lengths = torch.tensor([1, 0, 3] * len(features), dtype=torch.int32)
    values = torch.tensor([2, 5, 7, 2] * len(features), dtype=torch.int64)
    kjt = KeyedJaggedTensor.from_lengths_sync(keys=features, values=values, lengths=lengths)
    with torch.inference_mode():
        a, b = local.ranker.embeddings(kjt), external.ranker.embeddings(kjt)
    assert a.keys() == b.keys() and all(torch.equal(a[f], b[f]) for f in a)
    assert not all(torch.equal(a[f], torch.zeros_like(a[f])) for f in a)


def test_rows_that_cannot_be_read_degrade_the_answer_and_readiness(home, published, redis_url):  # noqa: F811
    """Redis down (here: the stores' client pointed at a closed port, the cache emptied), then
    a row evicted: ``/recommend`` answers the week's popularity minus seen items and ``/rank``
    the popularity order, each degraded with ``ROWS_DOWN``, and the stores' ``ping`` (what
    ``/readyz`` reports) says why; both were 500s. Back: the models answer again."""
    import redis

    from recassets.funnel.notes import ROWS_DOWN

    bundle, _ = published
    funnel = Recommender(Bundle.load(bundle.folder), home,
                         FunnelConfig(embeddings="redis", embedding_cache_rows=CACHE_ROWS),
                         embeddings_url=redis_url)  # fmt: skip
    stores = funnel.embedding_stores
    user, ids = 3, list(range(1, 11))
    assert funnel.recommend(user, k=10).policy == "model"
    live = stores["two_tower"].client
    dead = redis.Redis(port=1, socket_connect_timeout=0.5)
    for s in stores.values():
        s.client, _ = dead, s._cache.clear()
    rec = funnel.recommend(user, k=10)
    assert (rec.policy, rec.degraded, ROWS_DOWN in rec.notes) == ("popularity", True, True)
    assert len(rec.items) == 10 and all(
        i["stages"][0] in ("popularity", "backfill") for i in rec.items
    )
    notes: list[str] = []
    ranked = funnel.rank_request(user, ids, notes)
    assert ROWS_DOWN in notes and {i["stages"][0] for i in ranked} == {"popularity"}
    assert not stores["two_tower"].ping() and "ConnectionError" in stores["two_tower"].health.error
    for s in stores.values():
        s.client = live
    assert all(s.ping() for s in stores.values())  # back: ready again, before any read
    assert funnel.recommend(user, k=10).policy == "model"
    # a row the user needs, gone from Redis (evicted): degraded until a read finds it again
    store = stores["two_tower"]
    table = next(t for t in store.shapes if "user" in t)
    key = f"{store.key}:{table}"
    saved = {f: v for f, v in live.hgetall(key).items()}
    live.delete(key)
    store._cache.clear()
    try:
        rec = funnel.recommend(user, k=10)
        assert rec.policy == "popularity" and ROWS_DOWN in rec.notes
        assert not store.ping() and f"{key} has no row" in store.health.error
    finally:
        live.hset(key, mapping=saved)
    assert funnel.recommend(user, k=10).policy == "model" and store.ping()


def _tables(rows: int, seed: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {"t_item": torch.rand(rows, 8, generator=g), "t_user": torch.rand(rows, 8, generator=g)}


def test_models_no_recent_bento_serves_are_pruned_after_their_grace(tmp_path_factory):
    """Nothing was ever deleted: every daily retrain added a model's rows to the Redis the
    online features share, until writes were refused (review of 2026-12-07). Kept: the named
    models and those published within the grace; the rest go, meta first."""
    import redis

    store = Redis(tmp_path_factory.mktemp("redis_prune"))
    store.start()
    try:
        client = redis.Redis.from_url(store.url)
        served, recent, old = "a" * 64, "b" * 64, "c" * 64
        for sha in (served, recent, old):
            E.publish(client, sha, _tables(50, len(sha) + ord(sha[0])))
        legacy = "d" * 64  # published before the registry existed: meta and rows, no entry
        E.publish(client, legacy, _tables(50, 7))
        client.hdel(E.REGISTRY_KEY, legacy[:16])
        now = time.time()
        day_ago = now - 25 * 3600
        for sha in (served, old):
            client.hset(E.REGISTRY_KEY, sha[:16], str(day_ago))
        assert E.prune(client, keep=[served], keep_hours=24, now=now) == [old[:16]]
        assert not client.keys(f"{E.model_key(old)}:*")  # every table and the meta gone
        for sha in (served, recent, legacy):  # kept; the legacy model entered the registry
            assert E.RowStore(client, sha).shapes == {"t_item": (50, 8), "t_user": (50, 8)}
        later = now + 25 * 3600
        assert E.prune(client, keep=[served], keep_hours=24, now=later) == sorted(
            [recent[:16], legacy[:16]]
        )
        with pytest.raises(E.MissingRowsError, match="build the bento with"):
            E.RowStore(client, recent)
        assert E.RowStore(client, served).shapes["t_item"] == (50, 8)
    finally:
        store.stop()


def test_a_store_that_refuses_the_rows_is_said_in_one_line(tmp_path_factory):
    """Redis's out-of-memory error quoted the refused command, rows included: 635,564
    characters in the run's log for one full store."""
    import redis

    store = Redis(tmp_path_factory.mktemp("redis_full"))
    store.start()
    try:
        client = redis.Redis.from_url(store.url)
        client.config_set("maxmemory", "2mb")
        client.config_set("maxmemory-policy", "noeviction")
        with pytest.raises(RuntimeError, match=r"publishing embedding rows to .* failed") as e:
            E.publish(client, "e" * 64, _tables(40_000, 3))
        assert len(str(e.value)) < 400 and "\n" not in str(e.value)
        assert client.get(f"{E.model_key('e' * 64)}:meta") is None  # never said complete
    finally:
        store.stop()
