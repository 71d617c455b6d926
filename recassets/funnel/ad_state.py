"""The ads' counters: spend per campaign and UTC day, impressions per (user, campaign) and day.

``AdState`` is the interface the auction uses (``recassets.funnel.ads``): ``read`` (the
candidates' spend and the user's impressions), ``charge`` (an atomic check-and-charge) and
``refund`` (a charge taken back, when the page it paid for is not served). Besides, each
campaign's spend on users the online store does not know (``cold_spend``): a charge for such
a user (``cold_budget``) must also fit their share of the budget (``AdsConfig.cold_share``;
why: docs/ads.md), checked and charged in the same atomic step as the rest.

``InProcessAdState`` keeps them in this process behind a lock (one replica, one worker; it
forgets them on restart). Several replicas, or several workers of one ``bentoml serve``, that
each count alone would each spend the whole budget and each show the capped number of
impressions: they need one shared store. ``RedisAdState`` is that store, the Redis the online
features already use, with the check and the charge made atomic by one Lua script.
``state_kind`` resolves ``RECASSETS_ADS_STATE``; ``check_workers`` refuses several workers
with counters in process (preflight and ``Ads.from_env`` both call it).
"""

from __future__ import annotations

import datetime as dt
import threading
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from typing import Any

from recassets.funnel.campaigns import Campaign

STATE_ENV = "RECASSETS_ADS_STATE"  # auto (default), process or redis
REDIS_URL_ENV = "RECASSETS_REDIS_URL"
WORKERS_ENV = "RECASSETS_SERVE_WORKERS"
# The most an impression's cost may exceed the budget by, against float rounding only.
EPS = 1e-9


def state_kind(env: Mapping[str, str]) -> str:
    """``process`` or ``redis``: ``RECASSETS_ADS_STATE`` resolved (``auto``, the default:
    Redis when ``RECASSETS_REDIS_URL`` is set, as it is where replicas share an online store);
    a ``ValueError`` naming the variable when it is wrong."""
    kind = env.get(STATE_ENV, "auto")
    url = env.get(REDIS_URL_ENV)
    if kind not in ("auto", "process", "redis"):
        raise ValueError(f"{STATE_ENV}={kind[:40]!r}: auto, process or redis")
    if kind == "redis" and not url:
        raise ValueError(f"{STATE_ENV}=redis needs {REDIS_URL_ENV}")
    return "redis" if url and kind != "process" else "process"


def check_workers(env: Mapping[str, str], campaigns: int) -> None:
    """Refuse several serving workers (``RECASSETS_SERVE_WORKERS`` > 1) with the counters in
    process while there are ``campaigns`` to serve (0 when there are none or ads are off):
    each worker builds its own state, so each would spend every campaign's whole daily budget
    and show each user the capped impressions again (two workers: twice the budget)."""
    from recassets.freshness import env_int

    workers = env_int(WORKERS_ENV, 1, minimum=1, env=env)
    if campaigns <= 0 or workers <= 1 or state_kind(env) != "process":
        return
    why = (
        f"{STATE_ENV}=process" if env.get(STATE_ENV, "auto") == "process"
        else f"{STATE_ENV}=auto without {REDIS_URL_ENV}"
    )  # fmt: skip
    raise ValueError(
        f"{WORKERS_ENV}={workers} with the ads' counters in process ({why}): each worker would "
        f"spend every campaign's daily budget and show each user the capped impressions on "
        f"its own, {workers} times over. To serve {campaigns} campaign(s), set {REDIS_URL_ENV} "
        f"(the counters in Redis, shared by the workers; {STATE_ENV}=auto or redis) or "
        f"{WORKERS_ENV}=1 (or RECASSETS_ADS=off)"
    )


class AdState(ABC):
    """Spend per campaign per day and impressions per (user, campaign) per day, shared by the
    requests of a process (thread-safe) or, in Redis, by every replica."""

    kind = "abstract"

    @abstractmethod
    def read(
        self, day: dt.date, user_id: int, campaign_ids: Iterable[str] | None = None
    ) -> tuple[dict[str, float], dict[str, int]]:
        """(spend by campaign, this user's impressions by campaign) of ``day``: the spend of
        ``campaign_ids`` alone (one not spent today is absent), of every campaign spent today
        when None (audits and tests; a request reads its candidates')."""

    @abstractmethod
    def cold_spend(self, day: dt.date, campaign_ids: Iterable[str]) -> dict[str, float]:
        """The spend of ``campaign_ids`` on ``day`` on users the online store does not know
        (charged with ``cold_budget``), part of their spend; one not spent so is absent."""

    @abstractmethod
    def charge(
        self,
        day: dt.date,
        user_id: int,
        campaign: Campaign,
        cost: float,
        frequency_cap: int,
        cold_budget: float | None = None,
    ) -> bool:
        """Atomically: when ``cost`` fits the campaign's budget left on ``day`` and the user is
        under ``frequency_cap``, add ``cost`` to its spend and one impression; else False.
        ``cold_budget`` (a user the store does not know): ``cost`` must also fit that much of
        ``cold_spend``, which it is added to as well."""

    @abstractmethod
    def refund(
        self, day: dt.date, user_id: int, campaign: Campaign, cost: float, cold: bool = False
    ) -> None:
        """Take back one charge of ``charge``: ``cost`` off the campaign's spend of ``day``
        (and off ``cold_spend`` when ``cold``, a charge made with a ``cold_budget``) and one
        impression off the user's count (a compensating write, atomic)."""


class InProcessAdState(AdState):
    """Counters in this process, under one lock. Only the newest two days are kept (a request
    that started before midnight may still charge yesterday), so memory is one day of ads.
    Impressions are kept per user (day -> user -> campaign -> count), so a request reads its
    own user's counts, not a scan of every user served that day."""

    kind = "process"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spend: dict[dt.date, dict[str, float]] = {}
        self._seen: dict[dt.date, dict[int, dict[str, int]]] = {}
        self._cold: dict[dt.date, dict[str, float]] = {}  # the spend on unknown users

    def _day(self, day: dt.date) -> tuple[dict[str, float], dict[int, dict[str, int]]]:
        if day not in self._spend:
            self._spend[day], self._seen[day], self._cold[day] = {}, {}, {}
            for old in sorted(self._spend)[:-2]:
                del self._spend[old], self._seen[old], self._cold[old]
        return self._spend[day], self._seen[day]

    def read(
        self, day: dt.date, user_id: int, campaign_ids: Iterable[str] | None = None
    ) -> tuple[dict[str, float], dict[str, int]]:
        with self._lock:
            spend, seen = self._day(day)
            mine = dict(seen.get(user_id, {}))
            if campaign_ids is None:
                return dict(spend), mine
            return {c: spend[c] for c in campaign_ids if c in spend}, mine

    def cold_spend(self, day: dt.date, campaign_ids: Iterable[str]) -> dict[str, float]:
        with self._lock:
            self._day(day)
            cold = self._cold[day]
            return {c: cold[c] for c in campaign_ids if c in cold}

    def charge(
        self,
        day: dt.date,
        user_id: int,
        campaign: Campaign,
        cost: float,
        frequency_cap: int,
        cold_budget: float | None = None,
    ) -> bool:
        with self._lock:
            spend, seen = self._day(day)
            cold = self._cold[day]
            cid = campaign.campaign_id
            if spend.get(cid, 0.0) + cost > campaign.daily_budget + EPS:
                return False
            if cold_budget is not None and cold.get(cid, 0.0) + cost > cold_budget + EPS:
                return False
            mine = seen.setdefault(user_id, {})
            if mine.get(cid, 0) >= frequency_cap:
                return False
            spend[cid] = spend.get(cid, 0.0) + cost
            if cold_budget is not None:
                cold[cid] = cold.get(cid, 0.0) + cost
            mine[cid] = mine.get(cid, 0) + 1
            return True

    def refund(
        self, day: dt.date, user_id: int, campaign: Campaign, cost: float, cold: bool = False
    ) -> None:
        with self._lock:
            if day not in self._spend:  # a day already dropped: nothing left to take back
                return
            spend, seen = self._spend[day], self._seen[day]
            cid = campaign.campaign_id
            if cid in spend:
                spend[cid] -= cost
            if cold and cid in self._cold[day]:
                self._cold[day][cid] -= cost
            mine = seen.get(user_id, {})
            if mine.get(cid, 0) > 1:
                mine[cid] -= 1
            else:
                mine.pop(cid, None)


# KEYS: spend hash, user hash, cold-spend hash; ARGV: campaign id, cost, budget, cap, eps, ttl
# seconds, the cold budget (negative: a user the store knows, the cold hash left alone). One
# script: the share of unknown users is checked and charged in the same atomic step.
_CHARGE_LUA = """
local spent = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local shown = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
local cold = tonumber(ARGV[7]) >= 0
if spent + tonumber(ARGV[2]) > tonumber(ARGV[3]) + tonumber(ARGV[5]) then return 0 end
if cold then
  local cold_spent = tonumber(redis.call('HGET', KEYS[3], ARGV[1]) or '0')
  if cold_spent + tonumber(ARGV[2]) > tonumber(ARGV[7]) + tonumber(ARGV[5]) then return 0 end
end
if shown >= tonumber(ARGV[4]) then return 0 end
redis.call('HINCRBYFLOAT', KEYS[1], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[6])
if cold then
  redis.call('HINCRBYFLOAT', KEYS[3], ARGV[1], ARGV[2])
  redis.call('EXPIRE', KEYS[3], ARGV[6])
end
return 1
"""

# KEYS: spend hash, user hash, cold-spend hash; ARGV: campaign id, minus the cost, "1" for a
# charge made with a cold budget. The compensating write of one charge: the spend (and the
# cold spend) decremented, the impression taken back (the field removed at 0, so a user's
# hash holds only the campaigns shown). Keys that expired meanwhile are left alone.
_REFUND_LUA = """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then
  redis.call('HINCRBYFLOAT', KEYS[1], ARGV[1], ARGV[2])
end
if ARGV[3] == '1' and redis.call('HEXISTS', KEYS[3], ARGV[1]) == 1 then
  redis.call('HINCRBYFLOAT', KEYS[3], ARGV[1], ARGV[2])
end
if redis.call('HINCRBY', KEYS[2], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[2], ARGV[1]) end
return 1
"""


class RedisAdState(AdState):
    """The counters in Redis, shared by every replica: ``<prefix>:<day>:spend`` (a hash of
    campaign -> spend), ``<prefix>:<day>:cold`` (campaign -> spend on users the store does not
    know) and ``<prefix>:<day>:user:<id>`` (campaign -> impressions), expiring two days after
    their last write. A request reads its candidates' spend (HMGET) and the
    user's hash in one round trip, and each won slot runs one script that checks and charges
    atomically."""

    kind = "redis"

    def __init__(self, client: Any, prefix: str = "recassets:ads", ttl_s: int = 2 * 86_400):
        self.client, self.prefix, self.ttl_s = client, prefix, ttl_s
        self._script = client.register_script(_CHARGE_LUA)
        self._refund = client.register_script(_REFUND_LUA)

    def _keys(self, day: dt.date, user_id: int) -> tuple[str, str]:
        base = f"{self.prefix}:{day.isoformat()}"
        return f"{base}:spend", f"{base}:user:{int(user_id)}"

    def _cold_key(self, day: dt.date) -> str:
        return f"{self.prefix}:{day.isoformat()}:cold"

    def read(
        self, day: dt.date, user_id: int, campaign_ids: Iterable[str] | None = None
    ) -> tuple[dict[str, float], dict[str, int]]:
        spend_key, user_key = self._keys(day, user_id)
        ids = None if campaign_ids is None else list(campaign_ids)
        pipe = self.client.pipeline(transaction=False)
        if ids is None:
            pipe.hgetall(spend_key)
        elif ids:  # HMGET takes at least one field
            pipe.hmget(spend_key, ids)
        pipe.hgetall(user_key)
        out = pipe.execute()
        seen = out[-1]
        if ids is None:
            spend = {_text(c): float(v) for c, v in out[0].items()}
        else:
            values = out[0] if ids else []
            spend = {c: float(v) for c, v in zip(ids, values, strict=True) if v is not None}
        return spend, {_text(c): int(v) for c, v in seen.items()}

    def cold_spend(self, day: dt.date, campaign_ids: Iterable[str]) -> dict[str, float]:
        ids = list(campaign_ids)
        if not ids:
            return {}
        values = self.client.hmget(self._cold_key(day), ids)
        return {c: float(v) for c, v in zip(ids, values, strict=True) if v is not None}

    def charge(
        self,
        day: dt.date,
        user_id: int,
        campaign: Campaign,
        cost: float,
        frequency_cap: int,
        cold_budget: float | None = None,
    ) -> bool:
        cold = -1.0 if cold_budget is None else max(0.0, float(cold_budget))
        args = [campaign.campaign_id, repr(float(cost)), repr(float(campaign.daily_budget)),
                int(frequency_cap), repr(EPS), int(self.ttl_s), repr(cold)]  # fmt: skip
        keys = [*self._keys(day, user_id), self._cold_key(day)]
        return bool(self._script(keys=keys, args=args))

    def refund(
        self, day: dt.date, user_id: int, campaign: Campaign, cost: float, cold: bool = False
    ) -> None:
        args = [campaign.campaign_id, repr(-float(cost)), "1" if cold else "0"]
        self._refund(keys=[*self._keys(day, user_id), self._cold_key(day)], args=args)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


__all__ = [
    "EPS",
    "STATE_ENV",
    "AdState",
    "InProcessAdState",
    "RedisAdState",
    "check_workers",
    "state_kind",
]
