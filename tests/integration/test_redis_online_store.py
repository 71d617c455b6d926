"""The scale-out online store: a real ``redis-server`` on 127.0.0.1, materialized by Feast and
read back equal to the embedded SQLite store, through Feast and through OnlineFeatureReader.

Needs the ``redis-server`` binary (Debian/Ubuntu: ``apt-get install -y redis-server``; CI's
.ci/run installs it). When it is missing the test tries that install itself (as root, with
apt-get) and skips, saying why, only if that fails too.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest

from recassets.featurestore import (
    FOUND,
    OnlineFeatureReader,
    materialize_day,
    offline_rows,
    online_features,
    same_value,
    skew_check,
    wire,
)
from recassets.featurestore import config as cfg
from recassets.process import stop_process_group
from tests.conftest import home_at
from tests.unit.featurestore.factories import day_rows, item_row, write_day

pytestmark = pytest.mark.integration

DAY1, DAY2 = "2026-01-01", "2026-01-02"
USERS, ITEMS = range(1, 11), range(1, 26)
ENTITIES = {
    "user": ("user_features", "user_id"),
    "item": ("item_features", "item_id"),
    "cohort": ("cohort_features", "cohort_id"),
}


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found:
        return found
    why = "redis-server is not installed"
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        try:
            subprocess.run(
                ["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=300, check=True
            )
            subprocess.run(
                ["apt-get", "install", "-y", "-qq", "redis-server"],
                env=env,
                capture_output=True,
                timeout=300,
                check=True,
            )
        except (subprocess.SubprocessError, OSError) as exc:
            why += f" and `apt-get install -y redis-server` failed ({str(exc)[-300:]})"
        found = shutil.which("redis-server")
        if found:
            return found
    else:
        why += " and cannot be installed here (needs root and apt-get)"
    pytest.skip(f"{why}: install redis-server to run the Redis online store test")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_port(tmp_path_factory):
    import redis

    binary = redis_server_binary()
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    # env --default-signal: background servers here may otherwise ignore SIGTERM.
    proc = subprocess.Popen(
        ["env", "--default-signal=INT,TERM", binary, "--port", str(port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(workdir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 30
        while True:
            try:
                if redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping():
                    break
            except redis.ConnectionError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"redis-server did not come up on 127.0.0.1:{port} within 30 s")
            time.sleep(0.1)
        yield port
    finally:
        stop_process_group(proc, timeout_s=10)


@pytest.fixture(scope="module")
def lake(make_home, spark):
    paths = make_home("redis_lake")
    write_day(spark, paths, DAY1, day_rows(DAY1, USERS, ITEMS))
    write_day(spark, paths, DAY2, day_rows(DAY2, USERS, ITEMS))
    return paths


def home_with_lake(lake, tmp_path_factory, name):
    paths = home_at(tmp_path_factory.mktemp(name).absolute())
    shutil.copytree(lake.lake, paths.lake)
    return paths


@pytest.fixture(scope="module")
def stores(lake, redis_port, tmp_path_factory):
    """The same two days materialized into SQLite (one home) and Redis db 0 (another)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(cfg.REDIS_URL_ENV, raising=False)
        sqlite_home = home_with_lake(lake, tmp_path_factory, "sqlite_home")
        redis_home = home_with_lake(lake, tmp_path_factory, "redis_home")
        url = f"redis://127.0.0.1:{redis_port}/0"
        for day in (DAY1, DAY2):
            materialize_day(sqlite_home, day)
            summary = materialize_day(redis_home, day, redis_url=url)
        assert summary.online_store == f"redis:{url}" and summary.wrote_online
        yield sqlite_home, redis_home, url


@pytest.mark.parametrize("entity", ["user", "item", "cohort"])
def test_redis_serves_what_sqlite_serves(stores, entity):
    sqlite_home, redis_home, url = stores
    table, key = ENTITIES[entity]
    ids = [
        *offline_rows(sqlite_home, table, DAY2).column(key).to_pylist(),
        *([424242] if entity != "cohort" else ["x|y|z"]),
    ]
    from_redis = online_features(redis_home, entity, ids, redis_url=url)
    from_sqlite = online_features(sqlite_home, entity, ids)
    assert set(from_redis) == set(from_sqlite)
    for name in from_sqlite:
        bad = [
            (i, a, b)
            for i, a, b in zip(ids, from_sqlite[name], from_redis[name], strict=True)
            if not same_value(a, b)
        ]
        assert bad == [], name
    assert from_redis[next(n for n in from_redis if n != key)][-1] is None  # the unknown id


def test_skew_check_passes_on_redis(stores):
    _, redis_home, url = stores
    report = skew_check(redis_home, DAY2, sample=100, redis_url=url)
    assert report.passed, report.markdown()
    assert report.online_store == f"redis:{url}"
    assert report.checked == {
        "user_daily_features": len(USERS),
        "item_daily_features": len(ITEMS),
        "cohort_daily_features": 8,
    }


def test_reader_on_redis_equals_feast_on_redis(stores):
    sqlite_home, redis_home, url = stores
    reader = OnlineFeatureReader(redis_home, redis_url=url)
    assert reader.day == DAY2
    users = [*USERS, 424242]
    feast_users = online_features(redis_home, "user", users, redis_url=url)
    for row, user_id in enumerate(users):
        ours = reader.user(user_id)
        assert all(same_value(ours[n], v[row]) for n, v in feast_users.items()), user_id
    ids = [*ITEMS, 424242, 7]
    feast_items = online_features(redis_home, "item", ids, redis_url=url)
    ours = reader.items(ids)
    assert ours[FOUND].tolist() == [True] * len(ITEMS) + [False, True]
    for name, values in feast_items.items():
        assert all(same_value(ours[name][r], v) for r, v in enumerate(values) if ours[FOUND][r]), (
            name
        )
    # and the same arrays as the SQLite store gives
    from_sqlite = OnlineFeatureReader(sqlite_home).items(ids)
    assert all(same_value(from_sqlite[n], ours[n]) for n in ours)


def test_a_serving_pod_with_no_home_reads_the_bundles_catalog_and_the_marker_in_redis(
    stores, tmp_path
):
    """A bento served on Redis from an empty home (deploy/k8s/recommender.yaml: an emptyDir)
    failed at start: "no Feast catalog at HOME/artifacts/feast/catalog.json", a worker
    restarted every 10 s for ever; and with a catalog it would have loaded no item, the
    marker of which day the store serves being in the home alone (probe, 2026-12-06)."""
    import json

    import redis

    _, redis_home, url = stores
    bundle_catalog = tmp_path / "bundle" / "feast" / "catalog.json"
    bundle_catalog.parent.mkdir(parents=True)
    shutil.copy2(cfg.catalog_path(redis_home), bundle_catalog)
    empty = home_at(tmp_path / "pod-home")
    with pytest.raises(FileNotFoundError, match="no Feast catalog at"):
        OnlineFeatureReader(empty, redis_url=url)  # neither the bundle's nor the home's
    reader = OnlineFeatureReader(empty, redis_url=url, catalog=bundle_catalog, check_interval_s=0)
    assert reader.day == DAY2  # the marker Redis holds, as the home's file says
    features = reader.user(USERS[1])
    assert reader.items(ITEMS)[FOUND].all() and any(
        v is not None for k, v in features.items() if k != reader.user_key
    )
    # a newer materialization elsewhere moves the marker in Redis: the pod reloads
    key = cfg.REDIS_MARKER_KEY.format(project=cfg.PROJECT)
    client = redis.Redis.from_url(url)
    kept = client.get(key)
    assert kept is not None and json.loads(kept)["day"] == DAY2
    client.set(key, json.dumps({**json.loads(kept), "day": "2026-03-09"}))
    try:
        assert reader.maybe_refresh() and reader.day == "2026-03-09"
        # a home whose file says the day before (another machine materialized since): on
        # Redis, the store's own marker decides
        assert cfg.read_json(cfg.marker_path(redis_home))["day"] == DAY2
        assert OnlineFeatureReader(redis_home, redis_url=url).day == "2026-03-09"
        # no marker anywhere (a Redis restarted without it): the pod keeps the items it
        # serves and says why it holds no newer day, rather than empty every page
        client.delete(key)
        assert not reader.maybe_refresh() and reader.day == "2026-03-09"
        assert reader.items(ITEMS)[FOUND].all() and "is gone" in (reader.marker_error or "")
    finally:
        client.set(key, kept)


def test_skew_check_fails_when_redis_is_tampered_with(lake, redis_port, tmp_path_factory):
    import redis
    from feast.protos.feast.types.Value_pb2 import Value

    home = home_with_lake(lake, tmp_path_factory, "tampered_home")
    url = f"redis://127.0.0.1:{redis_port}/1"  # a keyspace of its own
    materialize_day(home, DAY2, redis_url=url)
    assert skew_check(home, DAY2, sample=100, redis_url=url).passed
    client = redis.Redis.from_url(url)
    key = wire.redis_key("item_id", 6, "recassets")
    assert (
        client.hset(
            key,
            wire.redis_field("item_daily_features", "trending"),
            Value(double_val=99.0).SerializeToString(),
        )
        == 0
    )
    report = skew_check(home, DAY2, sample=100, redis_url=url)
    assert not report.passed
    assert [(m.view, m.key, m.feature, m.offline, m.online) for m in report.mismatches] == [
        ("item_daily_features", 6, "trending", item_row(6, DAY2)["trending"], 99.0)
    ]
    assert Path(cfg.sqlite_path(home)).exists() is False  # nothing went to SQLite


def test_a_day_materialized_again_after_a_correction_is_served_corrected(
    lake, redis_port, tmp_path_factory, spark
):
    """Feast's Redis store skipped every row not newer than the stored one, and every row of a
    day carries that day's end: a corrected day written again wrote nothing, while the marker
    said it had, and the skew check failed with no way out but a flush."""
    home = home_with_lake(lake, tmp_path_factory, "corrected_home")
    url = f"redis://127.0.0.1:{redis_port}/2"  # a keyspace of its own
    materialize_day(home, DAY2, redis_url=url)
    before = online_features(home, "item", [6], redis_url=url)["trending"]
    rows = day_rows(DAY2, USERS, ITEMS)
    fixed = next(r for r in rows["item_features"] if r["item_id"] == 6)
    fixed["trending"] = before[0] + 5.0
    write_day(spark, home, DAY2, rows)  # the day's data corrected upstream
    summary = materialize_day(home, DAY2, redis_url=url)
    assert summary.wrote_online
    assert online_features(home, "item", [6], redis_url=url)["trending"] == [before[0] + 5.0]
    assert skew_check(home, DAY2, sample=100, redis_url=url).passed


def test_an_older_day_never_rolls_the_same_redis_back_however_its_url_is_spelled(
    lake, redis_port, tmp_path_factory
):
    """The guard once matched the home's marker to the store by the URL as written: the same
    Redis reached as ``localhost`` counted as a new store, and an older day rolled it back
    (now that every write of a day is taken, the rows too). Redis's own marker decides."""
    home = home_with_lake(lake, tmp_path_factory, "spelled_home")
    url = f"redis://127.0.0.1:{redis_port}/4"
    materialize_day(home, DAY2, redis_url=url)
    served = online_features(home, "item", [6], redis_url=url)
    other = home_with_lake(lake, tmp_path_factory, "other_home")  # another home, too
    for writer in (home, other):
        summary = materialize_day(writer, DAY1, redis_url=f"redis://localhost:{redis_port}/4")
        assert (summary.wrote_online, summary.served_day) == (False, DAY2)
    assert online_features(home, "item", [6], redis_url=url) == served
    assert materialize_day(other, DAY2, redis_url=url).wrote_online  # the same day: written


def test_a_reader_of_an_empty_redis_under_a_sqlite_marker_says_so(stores, redis_port):
    """A home's SQLite marker read by a reader of a Redis that holds no marker of its own (a
    store restarted empty, another db): it served an empty catalog and looked ready."""
    sqlite_home, _, _ = stores
    reader = OnlineFeatureReader(sqlite_home, redis_url=f"redis://127.0.0.1:{redis_port}/5")
    assert reader.day is None and "names another online store (sqlite)" in reader.marker_error
    assert OnlineFeatureReader(sqlite_home).marker_error is None  # its own store: fine
