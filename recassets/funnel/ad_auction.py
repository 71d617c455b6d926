"""The ad auction of one page, pure: per-slot generalized second price over the campaigns that
can run, one campaign per advertiser in each slot's competition, and the splice of the winners
into the organic page. The rules and their reasons: ``recassets.funnel.ads`` and docs/ads.md;
the state it charges and the hook that calls it live there too.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from recassets.funnel.ad_state import EPS
from recassets.funnel.campaigns import Campaign


@dataclass(frozen=True)
class Placement:
    """An auction's winner of one slot: ``price`` per click, ``cost`` charged for the impression."""

    slot: int
    campaign: Campaign
    pctr: float
    ecpm: float
    price: float
    cost: float


class ChargeInterrupted(Exception):
    """A charge raised (a Redis timeout, a lost connection): ``charged`` were charged before it
    (in slot order); the outcome of ``unknown``'s charge is not known (the script may have
    run)."""

    def __init__(self, charged: list[Placement], unknown: Placement) -> None:
        super().__init__(f"charging campaign {unknown.campaign.campaign_id} failed")
        self.charged, self.unknown = charged, unknown


# --- the auction ---------------------------------------------------------------------------

# (-eCPM, campaign_id, campaign, pCTR): the auction's order, sorted ascending
_Entrant = tuple[float, str, Campaign, float]


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
    state's atomic check-and-charge): the winners of every slot are chosen first, then charged
    in slot order; when one is refused (another replica spent the budget meanwhile) the
    campaign leaves and its slot and the later ones are auctioned again among the rest (the
    earlier winners keep theirs, charged). A charge that raises stops the charging with
    ``ChargeInterrupted`` (the placements charged so far and the one of unknown outcome)."""
    taken_items = {int(i) for i in page_items} | {int(i) for i in seen}
    categories = set(page_categories)
    live: list[_Entrant] = []
    for c in campaigns:
        p = float(pctr.get(c.campaign_id, math.nan))
        if not runs(c, p, spend.get(c.campaign_id, 0.0)) or c.bid < reserve:
            continue  # no usable pCTR, or the most this impression may cost would overspend
        if impressions.get(c.campaign_id, 0) >= frequency_cap or c.item_id in taken_items:
            continue
        if c.categories is not None and not (c.categories & categories):
            continue
        live.append((-p * c.bid, c.campaign_id, c, p))
    live.sort(key=lambda t: (t[0], t[1]))  # eCPM descending, then campaign id
    wanted = sorted({s for s in slots if 1 <= s <= k})
    if charge is None:
        return _choose(live, wanted, reserve)
    out: list[Placement] = []
    while wanted:
        refused = None
        for placed in _choose(live, wanted, reserve):
            try:
                ok = charge(placed)
            except Exception as exc:
                raise ChargeInterrupted(out, placed) from exc
            if not ok:
                refused = placed
                break
            out.append(placed)
        if refused is None:
            break
        won = {p.campaign.item_id for p in out}
        live = [t for t in live if t[1] != refused.campaign.campaign_id and t[2].item_id not in won]
        wanted = [s for s in wanted if s >= refused.slot]
    return out


def runs(c: Campaign, p: float, spent: float) -> bool:
    """Whether ``c`` can run at pCTR ``p``: a probability, and the most the impression may cost
    (bid x pCTR) fits the budget left, so a campaign never overspends."""
    return math.isfinite(p) and 0.0 < p <= 1.0 and spent + c.bid * p <= c.daily_budget + EPS


def _choose(live: list[_Entrant], slots: list[int], reserve: float) -> list[Placement]:
    """Slot by slot, the best of ``live`` (sorted) and its second price; the winner's item (so
    the winner too) leaves the later slots' competitions."""
    out: list[Placement] = []
    for slot in slots:
        if not live:
            break
        _, _, winner, p = live[0]
        # the runner-up: the best campaign of another advertiser (one campaign per advertiser
        # competes; the winner's own other campaigns never set its price)
        runner_up = next((-t[0] for t in live[1:] if t[2].advertiser != winner.advertiser), 0.0)
        price = min(winner.bid, max(reserve, runner_up / p))
        out.append(Placement(slot, winner, p, p * winner.bid, price, price * p))
        live = [t for t in live if t[2].item_id != winner.item_id]  # one slot per item
    return out


def splice(organic: Sequence[dict[str, Any]], ads: Sequence[dict[str, Any]], k: int) -> list:
    """The page: each ad entry at its ``slot`` (1-based; past the organic items: at the end),
    the organic items shifted down, ``k`` items at most. An ad's ``slot`` is rewritten to the
    position it took (on a short page, slot 8's ad may stand 4th). An ad never falls off: a
    slot is at most ``k`` and a later ad is inserted after an earlier one."""
    page = [dict(item) for item in organic]
    for ad in sorted(ads, key=lambda a: a["slot"]):
        at = min(ad["slot"] - 1, len(page))
        page.insert(at, {**ad, "slot": at + 1})
    return page[:k]


__all__ = ["ChargeInterrupted", "Placement", "auction", "runs", "splice"]
