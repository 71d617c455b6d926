"""The online store fails under a running bento: a real ``redis-server`` on 127.0.0.1 is
stopped, then started again, while ``bentoml serve`` serves from it (issue 15).

While Redis is down every request is still answered, from the cold-start path (the item
arrays are in memory), with a note, counted in ``/metrics``, and ``/readyz`` says the replica
is degraded; once Redis is back the next requests read it again, with no restart. Redis
keeps its data across the restart (append-only file), as a production Redis would.
The serving bento here is the popularity policy (no models to train: the store is the
point); the SQLite store's failures (locked, missing) are in test_serving.py.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from recassets.bento import bundle as B
from recassets.bento import server
from recassets.featurestore import config as fcfg
from recassets.featurestore.store import materialize_day
from recassets.process import stop_process_group
from recassets.training import policy as P
from tests.integration.test_redis_online_store import free_port, redis_server_binary
from tests.integration.test_serving import STORE_DOWN, fallbacks
from tests.unit.featurestore.factories import day_rows, write_day

pytestmark = pytest.mark.integration

DAY = "2026-01-03"
USERS, ITEMS = range(1, 21), range(1, 41)


class Redis:
    """A redis-server that can be stopped and started again on the same port and data."""

    def __init__(self, workdir: Path) -> None:
        self.binary = redis_server_binary()
        self.port = free_port()
        self.workdir = workdir
        self.proc: subprocess.Popen[bytes] | None = None
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        import redis

        # env --default-signal: background servers here may otherwise ignore SIGTERM.
        self.proc = subprocess.Popen(
            ["env", "--default-signal=INT,TERM", self.binary, "--port", str(self.port),
             "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes",
             "--appendfsync", "always", "--dir", str(self.workdir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
        deadline = time.time() + 30
        while True:
            try:
                if redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=1).ping():
                    return
            except redis.ConnectionError:
                pass
            if self.proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"redis-server did not come up on port {self.port}")
            time.sleep(0.1)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process_group(self.proc, timeout_s=10)
            self.proc = None


@pytest.fixture(scope="module")
def redis_store(tmp_path_factory):
    store = Redis(tmp_path_factory.mktemp("redis_serving"))
    store.start()
    try:
        yield store
    finally:
        store.stop()


@pytest.fixture(scope="module")
def redis_srv(make_home, spark, redis_store):
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv(fcfg.REDIS_URL_ENV, raising=False)
        paths = make_home("serving_redis")
        write_day(spark, paths, DAY, day_rows(DAY, USERS, ITEMS))
        materialize_day(paths, DAY, redis_url=redis_store.url)
        P.write_policy(paths, {"policy": "popularity", "variant": "trailing_7d"})
        tag = B.build_bento(paths, B.write_bundle(paths))
        env = {fcfg.REDIS_URL_ENV: redis_store.url}
        with server.serving(paths, tag, env=env, ready_timeout_s=240) as s:
            yield s


def test_redis_down_is_answered_from_cold_start_and_recovers_when_it_is_back(
    redis_srv, redis_store
):
    status, body = redis_srv.post("/recommend", {"user_id": 3, "k": 5})
    assert status == 200 and body["policy"] == "popularity" and body["notes"] == [], body
    before = fallbacks(redis_srv)

    redis_store.stop()
    try:
        for payload in ({"user_id": 3, "k": 5}, {"user_id": 4, "k": 3, "country": "fr"}):
            status, body = redis_srv.post("/recommend", payload)
            assert status == 200, body
            assert body["policy"] == "cold_start" and len(body["items"]) == payload["k"], body
            assert any(STORE_DOWN in n for n in body["notes"]), body["notes"]
        status, batch = redis_srv.post("/recommend_batch", {"requests": [{"user_id": 5}]})
        assert status == 200 and batch[0]["policy"] == "cold_start", batch
        status, ranked = redis_srv.post("/rank", {"user_id": 3, "item_ids": [1, 2]})
        assert status == 200 and len(ranked["items"]) == 2, ranked
        assert any(STORE_DOWN in n for n in ranked["notes"])
        assert fallbacks(redis_srv) == before + 3  # recommend x2 and recommend_batch x1
        status, ready = redis_srv.get("/readyz")
        assert status == 200, ready
        detail = json.loads(ready)["detail"]
        assert json.loads(ready)["status"] == "degraded" and "Redis" not in detail, detail
        assert detail.startswith("online store unavailable"), detail  # the cause: /info, log
        _, info = redis_srv.post("/info", {})
        assert info["online_store"]["kind"] == "redis"
        assert info["online_store"]["available"] is False
        assert "Redis" in info["online_store"]["error"], info["online_store"]
    finally:
        redis_store.start()

    # back, with its data: the next requests read it again, no restart of the bento
    status, body = redis_srv.post("/recommend", {"user_id": 3, "k": 5})
    assert status == 200 and body["policy"] == "popularity" and body["notes"] == [], body
    assert redis_srv.get("/readyz") == (200, "\n")
    _, info = redis_srv.post("/info", {})
    assert info["online_store"]["available"] is True
    assert fallbacks(redis_srv) == before + 3
