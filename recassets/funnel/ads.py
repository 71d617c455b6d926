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
  targeting: the page's organic categories say what the user is browsing), judged on the
  organic items the page keeps whatever the auction places (each ad pushes the last organic
  item off a full page, so the first ``k - len(slots)``).

Candidates are ordered by eCPM = pCTR x bid (expected revenue of the impression), ties by
``campaign_id`` (deterministic). In each slot's competition only the best campaign of each
advertiser counts: the winner pays the generalized second price per click,
``max(reserve, eCPM of the best campaign of another advertiser / winner's pCTR)``, never more
than its own bid; alone (or alone with its own campaigns), it pays the reserve. An advertiser
never sets its own price: its second campaign on the same item made it pay its own second bid.
No candidate -> the slot stays organic. This is per-slot GSP with no position discount (pCTR
is the same at slot 3 and 8): the sequential auction and GSP coincide. (Edelman, Ostrovsky,
Schwarz, "Internet Advertising and the Generalized Second-Price Auction", AER 2007.)

The ``candidates`` that enter (the ads' retrieval stage, ``AdsConfig.candidates``) are the
highest bids among the campaigns that can run: in the catalog (a finite pCTR), on target, under
the cap, with the budget left for bid x pCTR. A campaign that cannot run never takes a place
(two campaigns whose items left the catalog kept every page's slots organic at
``candidates=2``): when some drop out, the next bids are read, twice as many each round.

Charged means shown. The winners of every slot are chosen first, with everything that can fail
(pCTR, categories, the state's read) done before; then each is charged in slot order. A refused
charge (another replica spent the budget meanwhile) takes the campaign out and its slot and the
later ones are auctioned again. A charge that raises (a Redis timeout: the script may or may not
have run) stops the charging: the page carries exactly the ads charged before it, and the one
whose outcome is unknown is logged with day, user, campaign and cost so billing can reconcile.
Anything that fails after a charge refunds the page's charges (a compensating write) and the
page is served organic.

Spend is charged per impression at the expected cost, price x pCTR, rather than per click:
serving sees impressions, not clicks (those land a day later in the events), and a counter
charged per impression stops a campaign on the same day its budget runs out. The expectation
equals the per-click bill when pCTR is calibrated.

Users the online store does not know (the funnel's cold-start answer: ``policy`` cold_start,
no row) may cost each campaign at most ``AdsConfig.cold_share`` of its daily budget
(``RECASSETS_ADS_COLD_SHARE``, default 0.1; 0: no paid ad to them). A made-up user id cannot
be told from a new user, and every fresh id has a fresh frequency cap: 7,680 made-up ids in
7.7 s spent 58 % of a demo's daily budgets. Past the share such a user's page gets no ad of
that campaign (a note says so); known users are unaffected. The share is checked and charged
in the state's atomic step (``cold_budget``). The real fix is charging on a viewability or
click beacon, not on serve; this platform charges on serve (docs/ads.md).

pCTR (``recommender_pctr``): the served ranker's probability, sigmoid of its logit for the
(user, promoted item) pair, when a model serves: on impression logs the DCN-v2 is trained on
exactly "engaged given shown" (``training.examples``), so its sigmoid is the user's own click
probability, and the auction ranks ads with the model that ranks the page. Without a ranker
(popularity policy, no item features loaded) the prior is the item's smoothed 7-day CTR from
the online item features (``item_features.ctr_7d``, Beta-smoothed towards the global CTR, so a
new item does not read as 0 or 1). An item the catalog does not hold is never advertised.

State (``recassets.funnel.ad_state``, re-exported here): spend per campaign and day,
impressions per (user, campaign) and day, in process (one replica, one worker) or in Redis
(shared). ``Ads.from_env`` picks Redis when ``RECASSETS_REDIS_URL`` is set, and refuses several
serving workers with counters in process (each would spend every budget again).

Ads are exempt from the page's category cap (``FunnelConfig.max_per_category``): the cap is the
organic list's diversity rule (relaxed by the funnel itself when candidates run short), ads are
a separate, labelled lane of at most one item per reserved slot, and contextual targeting
places an ad in the category the page shows, which the cap would refuse first. The ads add at
most len(slots) items of one category to the organic list's (docs/ads.md).

Campaigns and their files: ``recassets.funnel.campaigns`` (re-exported here). No file
(MovieLens) -> no campaigns -> the page is all organic.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import itertools
import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recassets.funnel.ad_auction import ChargeInterrupted, Placement, auction, runs, splice
from recassets.funnel.ad_state import (
    STATE_ENV,
    AdState,
    InProcessAdState,
    RedisAdState,
    check_workers,
    state_kind,
)
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
CAMPAIGNS_ENV = "RECASSETS_ADS_CAMPAIGNS"  # a campaigns file to serve instead of the bundle's
AUCTION_STAGE = "auction"
COLD_START = "cold_start"  # recommender.COLD_START, not imported from there (it loads torch)
COLD_SHARE_ENV = "RECASSETS_ADS_COLD_SHARE"
# the answer's note when the cold share kept a campaign off an unknown user's page
COLD_SHARE_NOTE = (
    "ads: user not in the online store: campaign(s) past their share of the daily budget for "
    f"unknown users ({COLD_SHARE_ENV}) left out"
)
_OFF = ("0", "false", "off", "no")
_ON = ("1", "true", "on", "yes")

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
    # of each campaign's daily budget, the most spent on users the online store does not know
    cold_share: float = 0.1

    def __post_init__(self) -> None:
        if any(s < 1 for s in self.slots):
            raise ValueError(f"ad slots are 1-based page positions, got {self.slots}")
        if not (math.isfinite(self.reserve) and self.reserve >= 0):
            raise ValueError(f"the reserve price must be a non-negative number: {self.reserve}")
        if self.frequency_cap < 1:
            raise ValueError(f"the frequency cap must be at least 1: {self.frequency_cap}")
        if self.candidates < 1:
            raise ValueError(f"the auction needs at least 1 candidate: {self.candidates}")
        if not 0.0 <= self.cold_share <= 1.0:  # NaN too
            raise ValueError(f"the cold share is a share of the budget, 0..1: {self.cold_share}")

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> AdsConfig:
        """``RECASSETS_ADS`` (off: ``0``/``false``/``off``/``no``), ``RECASSETS_ADS_SLOTS``
        (``3,8``), ``RECASSETS_ADS_RESERVE``, ``RECASSETS_ADS_FREQUENCY_CAP``,
        ``RECASSETS_ADS_CANDIDATES`` and ``RECASSETS_ADS_COLD_SHARE`` (0..1)."""
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
            cold_share=number(
                COLD_SHARE_ENV, env.get(COLD_SHARE_ENV, str(cls.cold_share)),
                float, lambda v: 0.0 <= v <= 1.0, "a share between 0 and 1",
            ),
            enabled=enabled not in _OFF,
        )  # fmt: skip


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
        ``AdsConfig.from_mapping``, and the state ``RECASSETS_ADS_STATE`` names (``state_kind``:
        ``process``, ``redis`` at ``RECASSETS_REDIS_URL``, or ``auto``, the default: Redis when
        that URL is set). Several workers (``RECASSETS_SERVE_WORKERS``) with campaigns and the
        counters in process are refused (``check_workers``), as preflight refuses them."""
        config = AdsConfig.from_mapping(env)
        path = env.get(CAMPAIGNS_ENV) or campaigns_file
        loaded = load_campaigns(path) if path else CampaignLoad(())
        kind = state_kind(env)
        check_workers(env, len(loaded.campaigns) if config.enabled else 0)
        state: AdState = InProcessAdState()
        if kind == "redis":
            import redis
            from redis.backoff import NoBackoff
            from redis.retry import Retry

            # No retry, whatever the client library's default: a charge's script re-sent after
            # a timeout may have run already, and would charge the impression twice.
            client = redis.Redis.from_url(
                env["RECASSETS_REDIS_URL"], socket_timeout=2, socket_connect_timeout=2,
                retry_on_timeout=False, retry=Retry(NoBackoff(), 0),
            )  # fmt: skip
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
        *,
        unknown: bool = False,
        notes: list[str] | None = None,
    ) -> list[dict[str, Any]]:
        """The page with the auction's winners spliced into ``organic``. Everything that can
        fail comes before the first charge: the categories of the organic items the page
        keeps, the candidates (their spend and pCTR), their categories. Then the auction
        charges its winners; a charge that raises leaves exactly the ads charged before it
        (the unknown one logged for billing), and a failure after a charge refunds them.
        ``unknown``: a user the online store does not know, held to ``cold_share`` of each
        budget (``COLD_SHARE_NOTE`` in ``notes`` when that kept a campaign out)."""
        cfg = self.config
        day = day or self.today()
        slots = sorted({s for s in cfg.slots if 1 <= s <= k})
        if not slots:
            return list(organic)
        if unknown and cfg.cold_share <= 0.0:  # no paid ad to unknown users: nothing to read
            if notes is not None:
                notes.append(COLD_SHARE_NOTE)
            return list(organic)
        page_ids = [int(i["item_id"]) for i in organic]
        # Each ad pushes the last organic item off a full page: whatever the auction places,
        # the first k - len(slots) organic items stay, and targeting is judged on those (an
        # item the splice drops let a campaign run on a page that no longer showed it).
        kept = page_ids[: max(0, min(len(page_ids), k - len(slots)))]
        page_categories: set[str] = set()
        if kept:
            found = category_of(np.asarray(kept, dtype=np.int64)).tolist()
            page_categories = {c for c in found if c is not None}
        held: list[str] = []  # campaigns the cold share kept out
        runnable, probs, spend, shown, source = self._candidates(
            day, user_id, set(page_ids) | set(seen), page_categories, pctr, unknown, held
        )
        if held and notes is not None:
            notes.append(COLD_SHARE_NOTE)
        if not runnable:
            return list(organic)
        found = category_of(np.asarray([c.item_id for c in runnable], dtype=np.int64)).tolist()
        category = {c.campaign_id: cat for c, cat in zip(runnable, found, strict=True)}
        try:
            placed = auction(
                runnable, probs, slots=slots, k=k, reserve=cfg.reserve, spend=spend,
                impressions=shown, frequency_cap=cfg.frequency_cap, page_items=page_ids,
                seen=seen, page_categories=page_categories,
                charge=lambda p: self.state.charge(
                    day, user_id, p.campaign, p.cost, cfg.frequency_cap,
                    cfg.cold_share * p.campaign.daily_budget if unknown else None,
                ),
            )  # fmt: skip
        except ChargeInterrupted as stop:
            # Not shown, and maybe charged (a timeout: the script may have run after the client
            # gave up): logged for billing to reconcile. A refund could take back a charge that
            # never happened. The ads charged before it are served: charged means shown.
            p = stop.unknown
            log.error(
                "ads: charge outcome unknown, ad not shown; to reconcile: day=%s user=%s "
                "campaign=%s advertiser=%s slot=%d cost=%r (%s: %s)",
                day.isoformat(), user_id, p.campaign.campaign_id, p.campaign.advertiser,
                p.slot, p.cost, type(stop.__cause__).__name__, stop.__cause__,
            )  # fmt: skip
            placed = stop.charged
        if not placed:
            return list(organic)
        try:
            page = splice(organic, [_entry(p, source, category[p.campaign.campaign_id])
                                    for p in placed], k)  # fmt: skip
            on_page = {i.get("campaign_id") for i in page if i.get("ad")}
            if any(p.campaign.campaign_id not in on_page for p in placed):
                raise RuntimeError("a charged ad is not on the page")  # splice never drops one
        except Exception:
            self._refund(day, user_id, placed, unknown)
            raise
        return page

    def _candidates(
        self,
        day: dt.date,
        user_id: int,
        taken: set[int],
        page_categories: set[str],
        pctr: Callable[[np.ndarray], tuple[np.ndarray, str]],
        unknown: bool = False,
        held: list[str] | None = None,
    ) -> tuple[list[Campaign], dict[str, float], dict[str, float], dict[str, int], str]:
        """The auction's entrants: the ``candidates`` highest bids among the campaigns that can
        run (over the reserve, item neither on the page nor seen, on target, under the user's
        cap, in the catalog, the budget left for bid x pCTR), with their pCTRs, the spend read
        of them, the user's impressions and the pCTR's source.

        The state is read for a round's campaigns only (Redis: HMGET of their spend and the
        user's hash, one round trip), then pCTR for those left. When some cannot run, the next
        bids are read, twice as many each round: a day of spent budgets costs a few rounds,
        not one per ``candidates``; usually one round reads exactly the first ``candidates``.

        ``unknown``: the spend the auction sees is what leaves the campaign its cold share's
        headroom, ``max(spend, budget - share x budget + cold spend)``, so ``runs`` and the
        auction need no rule of their own; a campaign only that keeps out is added to
        ``held``. (One more read, the cold spend, for such users only.)"""
        cfg = self.config
        pool = (
            c for c in itertools.takewhile(lambda c: c.bid >= cfg.reserve, self.by_bid)
            if c.item_id not in taken
            and (c.categories is None or not c.categories.isdisjoint(page_categories))
        )  # fmt: skip
        runnable: list[Campaign] = []
        probs: dict[str, float] = {}
        spend: dict[str, float] = {}
        shown: dict[str, int] = {}
        source, size = "none", cfg.candidates
        while len(runnable) < cfg.candidates:
            chunk = list(itertools.islice(pool, size))
            if not chunk:
                break
            size *= 2
            read, shown = self.state.read(day, user_id, [c.campaign_id for c in chunk])
            real = dict(read)  # the spend itself (``spend`` the auction's, below)
            if unknown:
                cold = self.state.cold_spend(day, [c.campaign_id for c in chunk])
                for c in chunk:
                    floor = c.daily_budget * (1 - cfg.cold_share) + cold.get(c.campaign_id, 0.0)
                    read[c.campaign_id] = max(read.get(c.campaign_id, 0.0), floor)
            spend.update(read)
            chunk = [c for c in chunk if shown.get(c.campaign_id, 0) < cfg.frequency_cap
                     and real.get(c.campaign_id, 0.0) < c.daily_budget]  # fmt: skip
            if unknown and held is not None:  # the cold share spent: no pCTR to compute
                held += [c.campaign_id for c in chunk if spend[c.campaign_id] >= c.daily_budget]
                chunk = [c for c in chunk if spend[c.campaign_id] < c.daily_budget]
            if not chunk:
                continue
            values, source = pctr(np.asarray([c.item_id for c in chunk], dtype=np.int64))
            for c, p in zip(chunk, np.asarray(values, dtype=np.float64).tolist(), strict=True):
                if runs(c, p, spend.get(c.campaign_id, 0.0)) and len(runnable) < cfg.candidates:
                    runnable.append(c)
                    probs[c.campaign_id] = p
                elif held is not None and unknown and runs(c, p, real.get(c.campaign_id, 0.0)):
                    held.append(c.campaign_id)
        return runnable, probs, spend, shown, source

    def _refund(
        self, day: dt.date, user_id: int, placed: Sequence[Placement], unknown: bool = False
    ) -> None:
        """Take back the charges of a page that is not served; one that fails is logged for
        billing to reconcile (charged, not shown)."""
        for p in placed:
            try:
                self.state.refund(day, user_id, p.campaign, p.cost, unknown)
            except Exception:  # noqa: BLE001 - the others are still taken back
                log.exception(
                    "ads: refund failed, charged and not shown; to reconcile: day=%s user=%s "
                    "campaign=%s advertiser=%s slot=%d cost=%r",
                    day.isoformat(), user_id, p.campaign.campaign_id, p.campaign.advertiser,
                    p.slot, p.cost,
                )  # fmt: skip

    def apply(self, recommender: Any, rec: Any, k: int, enabled: bool = True) -> Any:
        """``rec`` (a ``Recommendation``) with ads in its reserved slots; ``rec`` itself when
        ads are off (the request's ``ads: false``, ``RECASSETS_ADS=off``), there are no
        campaigns, the answer was degraded (the online store is down, so the user's seen items
        are unknown) or anything in the auction fails (no ad is better than no answer: ads
        fail closed, never the page; ``place`` leaves no charge for an ad not served).

        A user the online store does not know is the funnel's cold-start answer (not degraded:
        the store answered, without a row), held to ``cold_share``; its row is not read again."""
        if not (enabled and self.config.enabled and self.campaigns) or rec.degraded:
            return rec
        notes = list(rec.notes)
        try:
            from recassets.funnel.users import seen_items

            # the row the page was built from (a stand-in answer without one: read it)
            values = getattr(rec, "user_values", None)
            if values is None and rec.policy != COLD_START:
                values = recommender.user_row(rec.user_id)
            seen = seen_items(values) if values is not None else set()
            block = recommender.catalog.block()
            items = self.place(
                rec.user_id,
                k,
                rec.items,
                seen,
                lambda ids: self.pctr(recommender, rec.user_id, values or {}, ids),
                block.category_of,
                unknown=values is None,
                notes=notes,
            )
        except Exception:  # noqa: BLE001 - the organic page is served whatever the ads do
            log.exception("ads: auction skipped, page served organic")
            return rec
        return dataclasses.replace(rec, items=items, notes=notes)


def _entry(p: Placement, source: str, category: Any) -> dict[str, Any]:
    """A won slot as a page item: the auction's fields, and ``cost``, the amount charged to
    the counters for this impression (exactly; the decision log's bill of it)."""
    return {
        "item_id": p.campaign.item_id,
        "score": p.ecpm,  # the auction's order: pCTR x bid
        "stages": ["campaigns", AUCTION_STAGE],
        "ad": True,
        "campaign_id": p.campaign.campaign_id,
        "advertiser": p.campaign.advertiser,
        "price": round(p.price, 6),
        "pctr": round(p.pctr, 6),
        "pctr_source": source,
        "slot": p.slot,  # the reserved slot; splice writes the position it took
        "cost": p.cost,
        **({"category": category} if category is not None else {}),
    }


__all__ = [
    "BUNDLE_FILE",
    "COLD_SHARE_ENV",
    "COLD_SHARE_NOTE",
    "REJECTED_FILE",
    "STATE_ENV",
    "Ads",
    "AdState",
    "AdsConfig",
    "Campaign",
    "CampaignFileError",
    "CampaignLoad",
    "ChargeInterrupted",
    "InProcessAdState",
    "Placement",
    "RedisAdState",
    "RowError",
    "auction",
    "bundle_campaigns",
    "campaigns_path",
    "check_workers",
    "load_campaigns",
    "parse_campaigns",
    "recommender_pctr",
    "splice",
    "state_kind",
]
