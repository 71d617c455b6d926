"""The ads' counters in a real ``redis-server`` on 127.0.0.1, as several replicas share them:
two states on two connections spend one budget and one frequency cap between them, the
check-and-charge is atomic under concurrent requests, a new day starts afresh, keys expire,
and a page placed through Redis equals one placed in process."""

from __future__ import annotations

import datetime as dt
import threading
from typing import cast

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


def test_the_spend_of_the_candidates_only_is_read(redis_url):
    """Every request read the day's whole spend hash (HGETALL: 100,000 campaigns spent today
    cost 100,000 fields a request); now the candidates' spend is read (HMGET), in the same
    round trip as the user's impressions, with the same values."""
    import redis

    admin = redis.Redis.from_url(redis_url)
    state = _state(redis_url, "t5")
    many = [A.Campaign(f"c{j:04d}", "adv", 1000 + j, 1.0 + j / 1000, 100.0) for j in range(1000)]
    admin.hset(f"t5:{DAY}:spend", mapping={c.campaign_id: 0.01 for c in many})
    ads = A.Ads(tuple(many), state, A.AdsConfig(candidates=3))
    admin.config_resetstat()
    organic = [{"item_id": 100 + j, "score": 1.0, "stages": ["r"]} for j in range(10)]
    page = ads.place(1, 10, organic, set(),
                     lambda ids: (np.full(len(ids), 0.2), "t"),
                     lambda ids: np.full(len(ids), None, dtype=object), DAY)  # fmt: skip
    assert [i["campaign_id"] for i in page if i.get("ad")] == ["c0999", "c0998"]
    stats = cast(dict, admin.info("commandstats"))
    assert stats["cmdstat_hmget"]["calls"] == 1
    assert stats["cmdstat_hgetall"]["calls"] == 1  # the user's hash alone
    spend, shown = state.read(DAY, 1, ["c0999", "c0001", "absent"])
    assert spend == {"c0999": pytest.approx(0.01 + page[2]["cost"]), "c0001": pytest.approx(0.01)}
    assert shown == {"c0999": 1, "c0998": 1}
    assert len(state.read(DAY, 1)[0]) == 1000  # without ids: every campaign spent today


def test_a_charge_that_times_out_is_logged_for_billing(redis_url, caplog):
    """Redis busy for half a second (another client's long script) after slot 3's charge:
    slot 8's script times out on the client, and may still run once Redis is free. Before,
    the page went organic with both charged. Now slot 3's ad is served (charged: shown) and
    slot 8's campaign and amount are logged as an unknown outcome for billing to reconcile."""
    import logging
    import threading
    import time
    from types import SimpleNamespace

    import redis

    from recassets.funnel.recommender import Recommendation

    admin = redis.Redis.from_url(redis_url)
    state = A.RedisAdState(redis.Redis.from_url(redis_url, socket_timeout=0.2), prefix="t6")
    charge = state.charge
    busy = "local t = redis.call('TIME') repeat local n = redis.call('TIME') " \
           "until (n[1] - t[1]) * 1e6 + (n[2] - t[2]) > 600000 return 1"  # fmt: skip

    busied: list[threading.Thread] = []

    def charge_then_busy(*args, **kwargs):
        ok = charge(*args, **kwargs)
        if not busied:  # after the first charge only
            busied.append(threading.Thread(target=lambda: admin.eval(busy, 0)))
            busied[0].start()
            time.sleep(0.05)
        return ok

    state.charge = charge_then_busy
    block = SimpleNamespace(category_of=lambda ids: np.full(len(ids), None, dtype=object))
    funnel = SimpleNamespace(catalog=SimpleNamespace(block=lambda: block),
                             user_row=lambda _u: {"seen_item_ids": []})  # fmt: skip
    campaigns = (A.Campaign("a", "adv1", 11, 1.0, 100.0), A.Campaign("b", "adv2", 12, 0.5, 100.0))
    ads = A.Ads(campaigns, state, pctr=lambda *_a: (np.full(len(_a[-1]), 0.2), "t"),
                today=lambda: DAY)  # fmt: skip
    organic = [{"item_id": 100 + j, "score": 1.0, "stages": ["ranking"]} for j in range(10)]
    with caplog.at_level(logging.ERROR, logger=A.__name__):
        out = ads.apply(funnel, Recommendation(1, "model", organic, "2026-01-04", []), 10)
    assert [i["campaign_id"] for i in out.items if i.get("ad")] == ["a"]
    (said,) = [r.getMessage() for r in caplog.records if "outcome unknown" in r.getMessage()]
    assert "campaign=b" in said and f"cost={0.05 * 0.2!r}" in said and "user=1" in said
    busied[0].join()  # the busy script ends; slot 8's script may have run after it
    time.sleep(0.1)
    spend, _ = A.RedisAdState(admin, prefix="t6").read(DAY, 1)
    assert spend["a"] == pytest.approx(0.1) and spend.get("b", 0.01) == pytest.approx(0.01)
