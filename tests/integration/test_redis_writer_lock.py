"""Two homes (two deployments, two machines) materializing into one Redis: the newer day wins
whatever the order in which they arrive, and the older says it was refused. Each home's file
lock serialized its own runs only: both checked the marker before either wrote it, and the
older day, written last, was served under its marker with the newer day's new entities.

Needs ``redis-server`` (see test_redis_online_store.py, whose server and lake it uses).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import redis

from recassets.featurestore import config as cfg
from recassets.featurestore import skew_check, upkeep
from tests.integration.test_redis_online_store import (  # noqa: F401 - fixtures
    DAY1,
    DAY2,
    home_with_lake,
    lake,
    redis_port,
)

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
MARKER = cfg.REDIS_MARKER_KEY.format(project=cfg.PROJECT)
# A materialization whose writes take WRITE_S (Feast's materialize made slow): the other home
# starts while it writes, and checks the marker before it ends.
WRITE_S = 12
RUN = """
import json, sys, time
from pathlib import Path
from feast import FeatureStore
from recassets.featurestore import materialize_day
from tests.conftest import home_at
home, day, url, slow = sys.argv[1:5]
original = FeatureStore.materialize
def slow_materialize(self, *args, **kwargs):
    time.sleep(float(slow))
    return original(self, *args, **kwargs)
FeatureStore.materialize = slow_materialize
s = materialize_day(home_at(Path(home)), day, redis_url=url)
print(json.dumps({"wrote": s.wrote_online, "served": s.served_day}))
"""


def start(home, day: str, url: str, slow: float) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != cfg.REDIS_URL_ENV}
    return subprocess.Popen(
        [sys.executable, "-c", RUN, home.home, day, url, str(slow)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def outcome(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.parametrize("first,second", [(DAY2, DAY1), (DAY1, DAY2)])
def test_the_newer_day_wins_whatever_the_order(lake, redis_port, tmp_path_factory, first, second):  # noqa: F811
    url = f"redis://127.0.0.1:{redis_port}/3"
    client: Any = redis.Redis.from_url(url)
    client.flushdb()
    a = home_with_lake(lake, tmp_path_factory, "home_a")
    b = home_with_lake(lake, tmp_path_factory, "home_b")
    if first == DAY2:  # the store serves DAY1: B's DAY1 is not older than what it reads
        assert outcome(start(a, DAY1, url, 0))["wrote"]
    proc_a = start(a, first, url, WRITE_S)
    deadline = time.time() + 120
    while b'"writing": "' + first.encode() not in (client.get(MARKER) or b""):
        assert time.time() < deadline and proc_a.poll() is None, "A never began writing"
        time.sleep(0.05)
    proc_b = start(b, second, url, WRITE_S)
    got_a, got_b = outcome(proc_a), outcome(proc_b)
    assert got_a == {"wrote": True, "served": first}
    if second == DAY1:  # the older arrived last: refused, and says so
        assert got_b == {"wrote": False, "served": DAY2}
    else:
        assert got_b == {"wrote": True, "served": DAY2}
    assert json.loads(client.get(MARKER))["day"] == DAY2
    assert skew_check(a, DAY2, sample=100, redis_url=url).passed  # exactly DAY2's rows


def test_a_writer_that_cannot_get_the_lock_fails_naming_the_holder(redis_port):  # noqa: F811
    url = f"redis://127.0.0.1:{redis_port}/4"
    with upkeep.RedisWriterLock(url, "locktest", {"home": "/homes/a", "day": DAY2}) as held:
        with pytest.raises(upkeep.WriterLockError, match=r'held by .*"home": "/homes/a"'):
            with upkeep.RedisWriterLock(url, "locktest", {"home": "/b"}, wait_s=0.3):
                pass
        held.set_marker("locktest:marker", {"day": DAY2})
    # released: the next writer gets it at once; one whose lock was taken over writes nothing
    with upkeep.RedisWriterLock(url, "locktest", {"home": "/b"}, wait_s=0.3) as lock:
        redis.Redis.from_url(url).set(lock.key, "another writer")
        with pytest.raises(upkeep.WriterLockError, match="no longer this writer"):
            lock.set_marker("locktest:marker", {"day": DAY1})
    client: Any = redis.Redis.from_url(url)
    assert client.get(lock.key) == b"another writer"  # released only if still its own
    assert json.loads(client.get("locktest:marker"))["day"] == DAY2
