"""Ads on the page: campaigns, their daily counters, and a second-price auction for reserved slots.

A campaign promotes one catalog item with a bid per click and a daily budget (``Campaign``).
The organic page comes from ``Recommender.recommend`` unchanged; ``Ads.apply`` then runs the
auction for the reserved slots (``AdsConfig.slots``, 1-based positions, default 3 and 8) and
splices the winners in: organic items shift down and the page keeps ``k`` items.

The auction (``auction``), slot by slot in page order, over the campaigns still eligible:

- the bid covers the reserve price (``AdsConfig.reserve``, per click);
- budget left for the day: spend so far + the most this impression can cost (bid x pCTR)
  stays within the daily budget, so a campaign never overspends;
- the user's frequency cap for the campaign is not reached (impressions per user, campaign
  and UTC day);
- the promoted item is not on the organic page, not seen by the user, not promoted in an
  earlier slot, and the campaign has not won an earlier slot of this page;
- a campaign with target categories runs only on a page showing one of them (contextual
  targeting: the page's organic categories say what the user is browsing).

Candidates are ordered by eCPM = pCTR x bid (expected revenue of the impression), ties by
``campaign_id`` (deterministic). The winner pays the generalized second price per click:
``max(reserve, eCPM of the runner-up / winner's pCTR)``, never more than its own bid; alone,
it pays the reserve. No candidate -> the slot stays organic. This is per-slot GSP with no
position discount (pCTR is the same at slot 3 and 8): the sequential auction and GSP coincide.
(Edelman, Ostrovsky, Schwarz, "Internet Advertising and the Generalized Second-Price Auction",
AER 2007.)

Spend is charged per impression at the expected cost, price x pCTR, rather than per click:
serving sees impressions, not clicks (those land a day later in the events), and a counter
charged per impression stops a campaign on the same day its budget runs out. The expectation
equals the per-click bill when pCTR is calibrated.

pCTR (``recommender_pctr``): the served ranker's probability, sigmoid of its logit for the
(user, promoted item) pair, when a model serves: on impression logs the DCN-v2 is trained on
exactly "engaged given shown" (``training.examples``), so its sigmoid is the user's own click
probability, and the auction ranks ads with the model that ranks the page. Without a ranker
(popularity policy, no item features loaded) the prior is the item's smoothed 7-day CTR from
the online item features (``item_features.ctr_7d``, Beta-smoothed towards the global CTR, so a
new item does not read as 0 or 1). An item the catalog does not hold is never advertised.

State (``AdState``): spend per campaign and day, impressions per (user, campaign) and day.
``InProcessAdState`` keeps them in this process behind a lock (one replica; it forgets them
on restart). Several replicas each counting alone would each spend the whole budget and each
show the capped number of impressions: they need one shared store. ``RedisAdState`` is that
store, the Redis the online features already use, with the check and the charge made atomic
by one Lua script. ``Ads.from_env`` picks Redis when ``RECASSETS_REDIS_URL`` is set.

Campaigns and their files: ``recassets.funnel.campaigns`` (re-exported here). No file
(MovieLens) -> no campaigns -> the page is all organic.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recassets.funnel.campaigns import (
    BUNDLE_FILE,
    REJECTED_FILE,
    Campaign,
    CampaignFileError,
    CampaignLoad,
    RowError,
    bundle_campaigns,
    campaigns_path,
    load_campaigns,
    parse_campaigns,
)

ENABLED_ENV = "RECASSETS_ADS"  # "0", "false", "off", "no": no ads on any page
STATE_ENV = "RECASSETS_ADS_STATE"  # auto (default), process or redis
CAMPAIGNS_ENV = "RECASSETS_ADS_CAMPAIGNS"  # a campaigns file to serve instead of the bundle's
AUCTION_STAGE = "auction"
_OFF = ("0", "false", "off", "no")
_ON = ("1", "true", "on", "yes")
# The most an impression's cost may exceed the budget by, against float rounding only.
_EPS = 1e-9

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AdsConfig:
    slots: tuple[int, ...] = (3, 8)  # 1-based page positions reserved for ads
    reserve: float = 0.05  # price floor per click; a bid below it never enters
    frequency_cap: int = 3  # impressions per user, campaign and UTC day
    enabled: bool = True
    # the eligible campaigns that enter a request's auction at most, highest bids first: the
    # ads' retrieval stage (every one costs a pCTR row; 100,000 campaigns took 710 ms a page)
    candidates: int = 200

    def __post_init__(self) -> None:
        if any(s < 1 for s in self.slots):
            raise ValueError(f"ad slots are 1-based page positions, got {self.slots}")
        if not (math.isfinite(self.reserve) and self.reserve >= 0):
            raise ValueError(f"the reserve price must be a non-negative number: {self.reserve}")
        if self.frequency_cap < 1:
            raise ValueError(f"the frequency cap must be at least 1: {self.frequency_cap}")
        if self.candidates < 1:
            raise ValueError(f"the auction needs at least 1 candidate: {self.candidates}")

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> AdsConfig:
        """``RECASSETS_ADS`` (off: ``0``/``false``/``off``/``no``), ``RECASSETS_ADS_SLOTS``
        (``3,8``), ``RECASSETS_ADS_RESERVE`` and ``RECASSETS_ADS_FREQUENCY_CAP``."""
        slots = env.get("RECASSETS_ADS_SLOTS")
        enabled = env.get(ENABLED_ENV, "1").strip().lower()
        if enabled not in (*_OFF, *_ON):  # "maybe" left ads on in silence
            raise ValueError(
                f"{ENABLED_ENV}={enabled[:40]!r}: expected one of {', '.join((*_ON, *_OFF))}"
            )

        def number(name: str, text: str, kind: type, ok: Callable[[Any], bool], want: str) -> Any:
            try:
                value = kind(text)
            except ValueError:
                raise ValueError(f"{name}={text[:40]!r}: expected {kind.__name__}") from None
            if not ok(value):  # named here: the dataclass's own check cannot say which variable
                raise ValueError(f"{name}={text[:40]!r}: expected {want}")
            return value

        parsed = cls.slots
        if slots is not None:
            parsed = tuple(
                number("RECASSETS_ADS_SLOTS", s, int, lambda v: v >= 1, "1-based positions")
                for s in slots.split(",")
                if s.strip()
            )
            if not parsed:  # "" or "," read as no slot: ads off without a word
                raise ValueError(
                    f"RECASSETS_ADS_SLOTS={slots[:40]!r}: no slot (to serve no ads, set "
                    f"{ENABLED_ENV}=off)"
                )
        return cls(
            slots=parsed,
            reserve=number(
                "RECASSETS_ADS_RESERVE", env.get("RECASSETS_ADS_RESERVE", str(cls.reserve)),
                float, lambda v: math.isfinite(v) and v >= 0, "a non-negative number",
            ),
            frequency_cap=number(
                "RECASSETS_ADS_FREQUENCY_CAP",
                env.get("RECASSETS_ADS_FREQUENCY_CAP", str(cls.frequency_cap)),
                int, lambda v: v >= 1, "at least 1",
            ),
            candidates=number(
                "RECASSETS_ADS_CANDIDATES",
                env.get("RECASSETS_ADS_CANDIDATES", str(cls.candidates)),
                int, lambda v: v >= 1, "at least 1",
            ),
            enabled=enabled not in _OFF,
        )  # fmt: skip


@dataclass(frozen=True)
class Placement:
    """An auction's winner of one slot: ``price`` per click, ``cost`` charged for the impression."""

    slot: int
    campaign: Campaign
    pctr: float
    ecpm: float
    price: float
    cost: float


# --- the auction ---------------------------------------------------------------------------


def auction(
    campaigns: Sequence[Campaign],
    pctr: Mapping[str, float],
    *,
    slots: Iterable[int],
    k: int,
    reserve: float,
    spend: Mapping[str, float],
    impressions: Mapping[str, int],
    frequency_cap: int,
    page_items: Iterable[int] = (),
    seen: Iterable[int] = (),
    page_categories: Iterable[str] = (),
    charge: Callable[[Placement], bool] | None = None,
) -> list[Placement]:
    """The winners of the reserved ``slots`` (1-based, those within ``k``) of one page, in slot
    order; a slot without an eligible campaign is absent (it stays organic).

    ``pctr`` maps campaign ids to the user's click probability on the promoted item (a campaign
    missing from it, or not finite and positive, does not enter); ``spend`` is each campaign's
    spend today, ``impressions`` this user's impressions today by campaign. ``charge`` (the
    state's atomic check-and-charge) is asked for each winner: when it refuses (another replica
    spent the budget meanwhile) the campaign leaves and the slot is auctioned again."""
    taken_items = {int(i) for i in page_items} | {int(i) for i in seen}
    categories = set(page_categories)
    live: list[tuple[float, str, Campaign, float]] = []
    for c in campaigns:
        p = float(pctr.get(c.campaign_id, math.nan))
        if not (math.isfinite(p) and 0.0 < p <= 1.0) or c.bid < reserve:
            continue
        if spend.get(c.campaign_id, 0.0) + c.bid * p > c.daily_budget + _EPS:
            continue  # the most this impression may cost would overspend the day
        if impressions.get(c.campaign_id, 0) >= frequency_cap or c.item_id in taken_items:
            continue
        if c.categories is not None and not (c.categories & categories):
            continue
        live.append((-p * c.bid, c.campaign_id, c, p))
    live.sort(key=lambda t: (t[0], t[1]))  # eCPM descending, then campaign id
    out: list[Placement] = []
    for slot in sorted({s for s in slots if 1 <= s <= k}):
        while live:
            _, _, winner, p = live[0]
            runner_up = live[1][0] * -1.0 if len(live) > 1 else 0.0
            price = min(winner.bid, max(reserve, runner_up / p))
            placed = Placement(slot, winner, p, p * winner.bid, price, price * p)
            del live[0]
            if charge is None or charge(placed):
                out.append(placed)
                # one slot per campaign and per promoted item on a page
                live = [t for t in live if t[2].item_id != winner.item_id]
                break
    return out


def splice(organic: Sequence[dict[str, Any]], ads: Sequence[dict[str, Any]], k: int) -> list:
    """The page: each ad entry at its ``slot`` (1-based; past the organic items: at the end),
    the organic items shifted down, ``k`` items at most."""
    page = [dict(item) for item in organic]
    for ad in sorted(ads, key=lambda a: a["slot"]):
        page.insert(min(ad["slot"] - 1, len(page)), ad)
    return page[:k]


# --- state -----------------------------------------------------------------------------------


class AdState(ABC):
    """Spend per campaign per day and impressions per (user, campaign) per day, shared by the
    requests of a process (thread-safe) or, in Redis, by every replica."""

    kind = "abstract"

    @abstractmethod
    def read(self, day: dt.date, user_id: int) -> tuple[dict[str, float], dict[str, int]]:
        """(spend by campaign, this user's impressions by campaign) of ``day``."""

    @abstractmethod
    def charge(
        self, day: dt.date, user_id: int, campaign: Campaign, cost: float, frequency_cap: int
    ) -> bool:
        """Atomically: when ``cost`` fits the campaign's budget left on ``day`` and the user is
        under ``frequency_cap``, add ``cost`` to its spend and one impression; else False."""


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

    def _day(self, day: dt.date) -> tuple[dict[str, float], dict[int, dict[str, int]]]:
        if day not in self._spend:
            self._spend[day], self._seen[day] = {}, {}
            for old in sorted(self._spend)[:-2]:
                del self._spend[old], self._seen[old]
        return self._spend[day], self._seen[day]

    def read(self, day: dt.date, user_id: int) -> tuple[dict[str, float], dict[str, int]]:
        with self._lock:
            spend, seen = self._day(day)
            return dict(spend), dict(seen.get(user_id, {}))

    def charge(
        self, day: dt.date, user_id: int, campaign: Campaign, cost: float, frequency_cap: int
    ) -> bool:
        with self._lock:
            spend, seen = self._day(day)
            cid = campaign.campaign_id
            if spend.get(cid, 0.0) + cost > campaign.daily_budget + _EPS:
                return False
            mine = seen.setdefault(user_id, {})
            if mine.get(cid, 0) >= frequency_cap:
                return False
            spend[cid] = spend.get(cid, 0.0) + cost
            mine[cid] = mine.get(cid, 0) + 1
            return True


# KEYS: spend hash, user hash; ARGV: campaign id, cost, budget, cap, eps, ttl seconds
_CHARGE_LUA = """
local spent = tonumber(redis.call('HGET', KEYS[1], ARGV[1]) or '0')
local shown = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0')
if spent + tonumber(ARGV[2]) > tonumber(ARGV[3]) + tonumber(ARGV[5]) then return 0 end
if shown >= tonumber(ARGV[4]) then return 0 end
redis.call('HINCRBYFLOAT', KEYS[1], ARGV[1], ARGV[2])
redis.call('HINCRBY', KEYS[2], ARGV[1], 1)
redis.call('EXPIRE', KEYS[1], ARGV[6])
redis.call('EXPIRE', KEYS[2], ARGV[6])
return 1
"""


class RedisAdState(AdState):
    """The counters in Redis, shared by every replica: ``<prefix>:<day>:spend`` (a hash of
    campaign -> spend) and ``<prefix>:<day>:user:<id>`` (campaign -> impressions), expiring
    two days after their last write. A request reads both hashes (one round trip) and each
    won slot runs one script that checks and charges atomically."""

    kind = "redis"

    def __init__(self, client: Any, prefix: str = "recassets:ads", ttl_s: int = 2 * 86_400):
        self.client, self.prefix, self.ttl_s = client, prefix, ttl_s
        self._script = client.register_script(_CHARGE_LUA)

    def _keys(self, day: dt.date, user_id: int) -> tuple[str, str]:
        base = f"{self.prefix}:{day.isoformat()}"
        return f"{base}:spend", f"{base}:user:{int(user_id)}"

    def read(self, day: dt.date, user_id: int) -> tuple[dict[str, float], dict[str, int]]:
        spend_key, user_key = self._keys(day, user_id)
        pipe = self.client.pipeline(transaction=False)
        pipe.hgetall(spend_key)
        pipe.hgetall(user_key)
        spend, seen = pipe.execute()
        return (
            {_text(c): float(v) for c, v in spend.items()},
            {_text(c): int(v) for c, v in seen.items()},
        )

    def charge(
        self, day: dt.date, user_id: int, campaign: Campaign, cost: float, frequency_cap: int
    ) -> bool:
        args = [campaign.campaign_id, repr(float(cost)), repr(float(campaign.daily_budget)),
                int(frequency_cap), repr(_EPS), int(self.ttl_s)]  # fmt: skip
        return bool(self._script(keys=list(self._keys(day, user_id)), args=args))


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# --- pCTR and the hook -----------------------------------------------------------------------

PctrSource = Callable[[Any, int, Mapping[str, Any], np.ndarray], tuple[np.ndarray, str]]


def recommender_pctr(
    recommender: Any, user_id: int, values: Mapping[str, Any], item_ids: np.ndarray
) -> tuple[np.ndarray, str]:
    """(N,) click probabilities of ``item_ids`` for the user and where they came from:
    ``ranking`` (sigmoid of the served ranker's logits) or ``ctr_prior`` (the items' smoothed
    7-day CTR); NaN for an item the catalog does not hold."""
    from recassets.funnel.items import ITEM_DENSE_SOURCE

    block = recommender.catalog.block()
    pos, found = block.positions(item_ids)
    out = np.full(len(item_ids), np.nan)
    if not found.any():
        return out, "ctr_prior"
    if recommender.model and block.prepared is not None:
        logits, _ = recommender.rank(user_id, values, item_ids[found])
        out[found] = 1.0 / (1.0 + np.exp(-np.asarray(logits, dtype=np.float64)))
        return out, "ranking"
    out[found] = block.dense[pos[found], ITEM_DENSE_SOURCE.index("ctr_7d")]
    return out, "ctr_prior"


@dataclass
class Ads:
    """The campaigns a service serves, their state and the auction settings."""

    campaigns: tuple[Campaign, ...] = ()
    state: AdState = field(default_factory=InProcessAdState)
    config: AdsConfig = field(default_factory=AdsConfig)
    rejected: tuple[RowError, ...] = ()
    pctr: PctrSource = recommender_pctr
    today: Callable[[], dt.date] = field(default=lambda: dt.datetime.now(dt.UTC).date())

    @functools.cached_property
    def by_bid(self) -> tuple[Campaign, ...]:
        """The campaigns by bid, highest first (ties: file order), sorted once: the auction
        orders by eCPM and then ``campaign_id``, so this order only decides which enter."""
        return tuple(sorted(self.campaigns, key=lambda c: -c.bid))

    @classmethod
    def from_env(cls, campaigns_file: Path | None, env: Mapping[str, str]) -> Ads:
        """The service's ads: the campaigns of ``RECASSETS_ADS_CAMPAIGNS`` or else
        ``campaigns_file`` (the bundle's; None: no campaigns), the settings of
        ``AdsConfig.from_mapping``, and the state ``RECASSETS_ADS_STATE`` names: ``process``,
        ``redis`` (at ``RECASSETS_REDIS_URL``) or ``auto`` (the default: Redis when that URL
        is set, as it is where replicas share an online store)."""
        config = AdsConfig.from_mapping(env)
        path = env.get(CAMPAIGNS_ENV) or campaigns_file
        loaded = load_campaigns(path) if path else CampaignLoad(())
        kind = env.get(STATE_ENV, "auto")
        url = env.get("RECASSETS_REDIS_URL")
        if kind not in ("auto", "process", "redis"):
            raise ValueError(f"{STATE_ENV}={kind!r}: auto, process or redis")
        if kind == "redis" and not url:
            raise ValueError(f"{STATE_ENV}=redis needs RECASSETS_REDIS_URL")
        state: AdState = InProcessAdState()
        if url and kind != "process":
            import redis

            client = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
            state = RedisAdState(client)
        return cls(loaded.campaigns, state, config, loaded.rejected)

    def info(self) -> dict[str, Any]:
        return {
            "enabled": self.config.enabled,
            "campaigns": len(self.campaigns),
            "rejected": len(self.rejected),
            "state": self.state.kind,
            "slots": list(self.config.slots),
            "reserve": self.config.reserve,
            "frequency_cap": self.config.frequency_cap,
            "candidates": self.config.candidates,
        }

    def place(
        self,
        user_id: int,
        k: int,
        organic: Sequence[dict[str, Any]],
        seen: set[int],
        pctr: Callable[[np.ndarray], tuple[np.ndarray, str]],
        category_of: Callable[[np.ndarray], np.ndarray],
        day: dt.date | None = None,
    ) -> list[dict[str, Any]]:
        """The page with the auction's winners spliced into ``organic``: state read, pCTR of
        the campaigns that may still run, the auction, each winner charged."""
        cfg = self.config
        day = day or self.today()
        spend, shown = self.state.read(day, user_id)
        page_ids = np.asarray([int(i["item_id"]) for i in organic], dtype=np.int64)
        taken = set(page_ids.tolist()) | seen
        runnable: list[Campaign] = []
        for c in self.by_bid:  # highest bids first: the first `candidates` eligible enter
            if c.bid < cfg.reserve:
                break  # and so is every later one
            if (c.item_id not in taken and spend.get(c.campaign_id, 0.0) < c.daily_budget
                    and shown.get(c.campaign_id, 0) < cfg.frequency_cap):  # fmt: skip
                runnable.append(c)
                if len(runnable) >= cfg.candidates:
                    break
        if not runnable or not any(1 <= s <= k for s in cfg.slots):
            return list(organic)
        ids = np.asarray([c.item_id for c in runnable], dtype=np.int64)
        probs, source = pctr(ids)
        page_categories = {c for c in category_of(page_ids).tolist() if c is not None}
        placed = auction(
            runnable,
            {c.campaign_id: float(p) for c, p in zip(runnable, probs.tolist(), strict=True)},
            slots=cfg.slots, k=k, reserve=cfg.reserve, spend=spend, impressions=shown,
            frequency_cap=cfg.frequency_cap, page_items=page_ids.tolist(), seen=seen,
            page_categories=page_categories,
            charge=lambda p: self.state.charge(day, user_id, p.campaign, p.cost, cfg.frequency_cap),
        )  # fmt: skip
        if not placed:
            return list(organic)
        ad_categories = category_of(np.asarray([p.campaign.item_id for p in placed], np.int64))
        entries = [
            {
                "item_id": p.campaign.item_id,
                "score": p.ecpm,  # the auction's order: pCTR x bid
                "stages": ["campaigns", AUCTION_STAGE],
                "ad": True,
                "campaign_id": p.campaign.campaign_id,
                "advertiser": p.campaign.advertiser,
                "price": round(p.price, 6),
                "pctr": round(p.pctr, 6),
                "pctr_source": source,
                "slot": p.slot,
                **({"category": cat} if cat is not None else {}),
            }
            for p, cat in zip(placed, ad_categories.tolist(), strict=True)
        ]
        return splice(organic, entries, k)

    def apply(self, recommender: Any, rec: Any, k: int, enabled: bool = True) -> Any:
        """``rec`` (a ``Recommendation``) with ads in its reserved slots; ``rec`` itself when
        ads are off (the request's ``ads: false``, ``RECASSETS_ADS=off``), there are no
        campaigns, the answer was degraded (the online store is down, so the user's seen items
        are unknown) or anything in the auction fails (no ad is better than no answer: ads
        fail closed, never the page)."""
        if not (enabled and self.config.enabled and self.campaigns) or rec.degraded:
            return rec
        try:
            from recassets.funnel.users import seen_items

            # the row the page was built from (a stand-in answer without one: read it)
            values = getattr(rec, "user_values", None) or recommender.user_row(rec.user_id)
            seen = seen_items(values) if values is not None else set()
            block = recommender.catalog.block()
            items = self.place(
                rec.user_id,
                k,
                rec.items,
                seen,
                lambda ids: self.pctr(recommender, rec.user_id, values or {}, ids),
                block.category_of,
            )
        except Exception:  # noqa: BLE001 - the organic page is served whatever the ads do
            log.exception("ads: auction skipped, page served organic")
            return rec
        return dataclasses.replace(rec, items=items)


__all__ = [
    "BUNDLE_FILE",
    "REJECTED_FILE",
    "Ads",
    "AdState",
    "AdsConfig",
    "Campaign",
    "CampaignFileError",
    "CampaignLoad",
    "InProcessAdState",
    "Placement",
    "RedisAdState",
    "RowError",
    "auction",
    "bundle_campaigns",
    "campaigns_path",
    "load_campaigns",
    "parse_campaigns",
    "recommender_pctr",
    "splice",
]
