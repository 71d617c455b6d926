"""What a page's ads cost and where they sit: a charge is never left on the books for an ad
nobody is shown (a failing charge, a failure after the charges), the candidates the auction
prices are campaigns that can run, the state reads only their spend, and each ad reports its
real position, targeted on the organic items the page keeps."""

from __future__ import annotations

import datetime as dt
import logging
from types import SimpleNamespace

import numpy as np
import pytest

from recassets.funnel import ads as A
from tests.unit.funnel.test_ads import DAY, _ad_ids, _c, _fixed_pctr, _Funnel, _organic, _rec


class _Flaky(A.InProcessAdState):
    """Counters whose ``fail_at``-th charge raises, as a Redis client that timed out does."""

    def __init__(self, fail_at: int) -> None:
        super().__init__()
        self.calls, self.fail_at = 0, fail_at

    def charge(self, *args, **kwargs):
        self.calls += 1
        if self.calls == self.fail_at:
            raise ConnectionError("Timeout reading from socket")
        return super().charge(*args, **kwargs)


def _two(state):
    # a wins slot 3 (priced by b: 0.5 a click, 0.1 the impression), b slot 8 (the reserve:
    # 0.05 a click, 0.01 the impression)
    return A.Ads((_c("a", 11, 1.0), _c("b", 12, 0.5)), state, pctr=_fixed_pctr, today=lambda: DAY)


# -- charged means shown -----------------------------------------------------------------------


def test_a_charge_that_fails_leaves_exactly_the_charged_ads_on_the_page(caplog):
    """Slot 3 charged, slot 8's charge raised: before, the whole page went organic with slot
    3's charge kept (charged, not shown). Now the page carries exactly the ads charged, and
    the charge whose outcome is unknown is logged with campaign and amount for billing."""
    state = _Flaky(fail_at=2)
    with caplog.at_level(logging.ERROR, logger=A.__name__):
        page = _two(state).apply(_Funnel(), _rec(), 10).items
    assert _ad_ids(page) == ["a"] and [i["item_id"] for i in page][2] == 11
    spend, shown = state.read(DAY, 1)
    assert spend == {"a": pytest.approx(0.1)} and shown == {"a": 1}
    (record,) = [r for r in caplog.records if "outcome unknown" in r.getMessage()]
    said = record.getMessage()
    assert "campaign=b" in said and "advertiser=adv-b" in said and f"cost={0.05 * 0.2!r}" in said
    assert f"day={DAY.isoformat()}" in said and "user=1" in said


def test_a_first_charge_that_fails_serves_the_organic_page_charging_nothing(caplog):
    state = _Flaky(fail_at=1)
    rec = _rec()
    with caplog.at_level(logging.ERROR, logger=A.__name__):
        assert _two(state).apply(_Funnel(), rec, 10).items == rec.items
    assert state.read(DAY, 1) == ({}, {})
    assert any("campaign=a" in r.getMessage() for r in caplog.records)


def test_a_failure_after_the_charges_refunds_them(monkeypatch):
    """The page is built after the charges; if that fails, the organic page is served and
    every charge of it is taken back (spend and impression), nothing left on the books."""
    state = A.InProcessAdState()

    def broken(*_args):
        raise RuntimeError("splice exploded")

    monkeypatch.setattr(A, "splice", broken)
    rec = _rec()
    assert _two(state).apply(_Funnel(), rec, 10) is rec
    spend, shown = state.read(DAY, 1)
    assert spend.get("a", 0.0) == pytest.approx(0.0) and spend.get("b", 0.0) == pytest.approx(0.0)
    assert shown == {}
    monkeypatch.undo()
    assert _ad_ids(_two(state).apply(_Funnel(), rec, 10).items) == ["a", "b"]  # caps intact


def test_what_can_fail_runs_before_any_charge():
    """The categories of the ads were looked up after the charges: a lookup that failed there
    left them charged. Now every lookup comes first; a failing one charges nothing."""
    calls = []

    def category_of(ids):
        calls.append(len(ids))
        if len(calls) == 2:
            raise KeyError("catalog reloaded")
        return np.full(len(ids), None, dtype=object)

    funnel = _Funnel()
    funnel.catalog = SimpleNamespace(block=lambda: SimpleNamespace(category_of=category_of))
    state = A.InProcessAdState()
    rec = _rec()
    assert _two(state).apply(funnel, rec, 10) is rec
    assert state.read(DAY, 1) == ({}, {})


def test_the_state_refunds_a_charge():
    state = A.InProcessAdState()
    a = _c("a", 11, 1.0, budget=1.0)
    assert state.charge(DAY, 1, a, 0.4, 1) and not state.charge(DAY, 1, a, 0.4, 1)  # capped
    state.refund(DAY, 1, a, 0.4)
    assert state.read(DAY, 1) == ({"a": pytest.approx(0.0)}, {})
    assert state.charge(DAY, 1, a, 0.4, 1)  # the impression given back: under the cap again
    state.refund(DAY - dt.timedelta(days=9), 1, a, 0.4)  # a day long gone: nothing to take back
    assert state.read(DAY, 1)[0] == {"a": pytest.approx(0.4)}


# -- the candidates ----------------------------------------------------------------------------


def _place(ads, organic=None, categories=None, pctr=None, k=10, user=1):
    organic = _organic() if organic is None else organic
    categories = categories or {}
    pctr = pctr or (lambda ids: (np.full(len(ids), 0.2), "test"))
    return ads.place(
        user, k, organic, set(), pctr,
        lambda ids: np.array([categories.get(int(i)) for i in ids.tolist()], dtype=object), DAY,
    )  # fmt: skip


def test_campaigns_that_cannot_run_never_fill_the_candidates():
    """The cut took the highest bids first, runnable or not: two campaigns whose items left
    the catalog (pCTR NaN) filled candidates=2 and the page stayed organic. Now the cut holds
    campaigns that can run: in the catalog, with the budget left for bid x pCTR, on target."""
    live = _c("live", 11, 1.0)
    gone = [_c("gone1", 901, 5.0), _c("gone2", 902, 4.0)]

    def pctr(ids):
        return np.array([0.2 if i == 11 else np.nan for i in ids.tolist()]), "ranking"

    ads = A.Ads((*gone, live), A.InProcessAdState(), A.AdsConfig(candidates=2, slots=(3,)))
    assert _ad_ids(_place(ads, pctr=pctr)) == ["live"]
    # budget left 0.1 < bid x pCTR = 1.0: spent, it cannot run
    broke = _c("broke", 13, 5.0, budget=1.0)
    ads = A.Ads((broke, live), A.InProcessAdState(), A.AdsConfig(candidates=1, slots=(3,)))
    assert ads.state.charge(DAY, 99, broke, 0.9, 3)
    assert _ad_ids(_place(ads)) == ["live"]
    # targeted at a category the page does not show
    music = _c("music", 14, 5.0, categories={"music"})
    ads = A.Ads((music, live), A.InProcessAdState(), A.AdsConfig(candidates=1, slots=(3,)))
    news = {100 + j: "news" for j in range(10)}
    assert _ad_ids(_place(ads, categories=news)) == ["live"]


def test_the_state_is_read_for_the_candidates_only():
    """The whole day's spend hash was read per request (100,000 campaigns spent today: a
    copy of 100,000 entries in process, an HGETALL of them in Redis); now only the
    candidates' spend is read, the same values for those."""
    asked = []

    class Reading(A.InProcessAdState):
        def read(self, day, user_id, campaign_ids=None):
            asked.append(None if campaign_ids is None else sorted(campaign_ids))
            return super().read(day, user_id, campaign_ids)

    campaigns = [_c(f"c{j:03d}", 1000 + j, bid=1.0 + j / 100) for j in range(50)]
    state = Reading()
    for c in campaigns:
        state.charge(DAY, 2, c, 0.01, 3)
    ads = A.Ads(tuple(campaigns), state, A.AdsConfig(candidates=5))
    page = _place(ads)
    assert _ad_ids(page) == ["c049", "c048"]
    assert asked == [[f"c{j:03d}" for j in range(45, 50)]]
    spend, shown = state.read(DAY, 2, ["c049", "c001", "nope"])
    assert spend == {"c049": pytest.approx(0.01 + page[2]["cost"]), "c001": pytest.approx(0.01)}
    assert shown == {f"c{j:03d}": 1 for j in range(50)}


# -- where an ad sits --------------------------------------------------------------------------


def test_an_ad_reports_its_real_position():
    """A short page: the ad won for slot 8 sits at position 4 (the end); it said slot=8."""
    ads = A.Ads((_c("a", 11, 1.0), _c("b", 12, 0.5)), A.InProcessAdState())
    page = _place(ads, organic=_organic(2))
    assert [i["item_id"] for i in page] == [100, 101, 11, 12]
    assert [(j, i["slot"]) for j, i in enumerate(page, 1) if i.get("ad")] == [(3, 3), (4, 4)]
    full = _place(A.Ads((_c("a", 11, 1.0), _c("b", 12, 0.5)), A.InProcessAdState()))
    assert [(j, i["slot"]) for j, i in enumerate(full, 1) if i.get("ad")] == [(3, 3), (8, 8)]


def test_targeting_is_judged_on_the_organic_items_the_page_keeps():
    """The one music item was 10th of 10: the two ads push it off the page, yet it let the
    music campaign run; a music ad then stood on a page of news."""
    cats = {100 + j: "news" for j in range(10)} | {109: "music", 11: "music", 12: "news"}
    campaigns = (_c("m", 11, 1.0, categories={"music"}), _c("x", 12, 0.5))
    organic = [{**i, "category": cats[i["item_id"]]} for i in _organic()]
    page = _place(A.Ads(campaigns, A.InProcessAdState()), organic=organic, categories=cats)
    assert _ad_ids(page) == ["x"]
    # every targeted ad stands beside an organic item of its categories
    cats[107] = "music"  # the 8th item: kept whatever the auction does
    organic = [{**i, "category": cats[i["item_id"]]} for i in _organic()]
    page = _place(A.Ads(campaigns, A.InProcessAdState()), organic=organic, categories=cats)
    assert _ad_ids(page) == ["m", "x"]
    shown = {i.get("category") for i in page if not i.get("ad")}
    assert "music" in shown


def test_ads_are_exempt_from_the_category_cap():
    """The choice documented in docs/ads.md: the page's category cap is the organic list's
    rule; an ad (at most one per reserved slot) may add its category past it."""
    from recassets.funnel.config import FunnelConfig

    cats = {100 + j: ("news" if j < 5 else f"c{j}") for j in range(10)} | {11: "news", 12: "news"}
    organic = [{**i, "category": cats[i["item_id"]]} for i in _organic()]
    ads = A.Ads((_c("a", 11, 1.0, categories={"news"}), _c("b", 12, 0.5)), A.InProcessAdState())
    page = _place(ads, organic=organic, categories=cats)
    assert _ad_ids(page) == ["a", "b"]
    news = sum(i["category"] == "news" for i in page)
    assert news == 7 and news <= FunnelConfig().category_cap(10) + len(ads.config.slots)
