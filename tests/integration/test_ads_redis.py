"""The ads' counters in a real ``redis-server`` on 127.0.0.1, as several replicas share them:
two states on two connections spend one budget and one frequency cap between them, the
check-and-charge is atomic under concurrent requests, a new day starts afresh, keys expire,
and a page placed through Redis equals one placed in process."""

from __future__ import annotations

import datetime as dt
import threading

import numpy as np
import pytest

from recassets.funnel import ads as A
from tests.integration.test_serving_redis import Redis

pytestmark = pytest.mark.integration
DAY = dt.date(2026, 1, 5)


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    store = Redis(tmp_path_factory.mktemp("redis_ads"))
    store.start()
    try:
        yield store.url
    finally:
        store.stop()


def _state(url, prefix):
    import redis

    return A.RedisAdState(redis.Redis.from_url(url), prefix=prefix)


def test_two_replicas_share_one_budget_and_one_cap(redis_url):
    one, two = _state(redis_url, "t1"), _state(redis_url, "t1")
    c = A.Campaign("a", "adv", 11, 1.0, 0.25)
    assert [s.charge(DAY, u, c, 0.1, 2) for s, u in ((one, 1), (two, 2), (one, 3))] == [
        True, True, False,
    ]  # fmt: skip
    spend, shown = two.read(DAY, 1)
    assert spend == {"a": pytest.approx(0.2)} and shown == {"a": 1}
    rich = A.Campaign("b", "adv", 12, 1.0, 100.0)
    assert [s.charge(DAY, 7, rich, 0.1, 2) for s in (one, two, one)] == [True, True, False]
    assert one.read(DAY, 8)[1] == {}  # another user: under the cap
    assert one.charge(DAY + dt.timedelta(days=1), 3, c, 0.1, 2)  # a new day, a new budget


def test_concurrent_charges_on_many_connections_never_overspend(redis_url):
    campaign = A.Campaign("a", "adv", 11, 1.0, 1.0)
    states = [_state(redis_url, "t2") for _ in range(4)]
    won: list[bool] = []

    def work(j):
        won.append(states[j % 4].charge(DAY, j, campaign, 0.1, 5))

    threads = [threading.Thread(target=work, args=(j,)) for j in range(40)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(won) == 10
    assert states[0].read(DAY, 0)[0]["a"] == pytest.approx(1.0)


def test_the_counters_expire(redis_url):
    import redis

    state = _state(redis_url, "t3")
    state.charge(DAY, 1, A.Campaign("a", "adv", 11, 1.0, 1.0), 0.1, 3)
    client = redis.Redis.from_url(redis_url)
    for key in (f"t3:{DAY}:spend", f"t3:{DAY}:user:1"):
        assert 0 < client.ttl(key) <= 2 * 86_400


def test_a_page_through_redis_equals_one_in_process(redis_url):
    campaigns = (A.Campaign("a", "adv", 11, 1.0, 0.35), A.Campaign("b", "adv", 12, 0.5, 100.0))
    organic = [{"item_id": 100 + j, "score": 1.0, "stages": ["ranking"]} for j in range(10)]

    def pages(state):
        ads = A.Ads(campaigns, state, A.AdsConfig(frequency_cap=2))
        return [
            ads.place(user, 10, organic, set(), lambda ids: (np.full(len(ids), 0.2), "t"),
                      lambda ids: np.full(len(ids), None, dtype=object), DAY)
            for user in (1, 1, 1, 2, 3)
        ]  # fmt: skip

    assert pages(_state(redis_url, "t4")) == pages(A.InProcessAdState())
