"""The service's ad hook over a stand-in funnel (no bundle, no server): ads spliced into the
answer's reserved slots with their fields, ``ads: false`` per request and in a batch, and the
decision log's record of an ad. The auction itself: tests/unit/funnel/test_ads.py."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from recassets.funnel import ads as A
from recassets.funnel.recommender import Recommendation

service = pytest.importorskip("serving.service")
from tests.unit.serving.test_service import _batch, _call, _ctx, _logged, _make  # noqa: E402


class _Funnel:
    """Ten organic items 100..109 for any user; user 99's answer is degraded."""

    policy = {"policy": "model"}

    def __init__(self) -> None:
        block = SimpleNamespace(category_of=lambda ids: np.full(len(ids), None, dtype=object))
        self.catalog = SimpleNamespace(block=lambda: block)

    def recommend(self, user_id, k=20, exclude_seen=True, *, country=None, age_bucket=None):
        items = [{"item_id": 100 + j, "score": 1.0, "stages": ["ranking"]} for j in range(k)]
        return Recommendation(user_id, "model", items, "2026-01-04", [], user_id == 99)

    def user_row(self, user_id):
        return {"seen_item_ids": [12]}


def _pctr(_funnel, _user, _values, ids):
    return np.full(len(ids), 0.2), "ranking"


@pytest.fixture
def svc(tmp_path):
    svc, _ = _make(tmp_path)
    svc.recommender = _Funnel()
    campaigns = (
        A.Campaign("a", "adv1", 11, 1.0, 100.0),
        A.Campaign("b", "adv2", 12, 2.0, 100.0),  # the user has seen item 12
        A.Campaign("c", "adv2", 13, 0.5, 100.0),
    )
    svc.ads = A.Ads(campaigns, pctr=_pctr)
    return svc


def test_ads_take_the_reserved_slots_of_the_answer(svc):
    body = _call(svc.recommend(3, 10, ctx=_ctx())).model_dump()
    ids = [i["item_id"] for i in body["items"]]
    assert ids == [100, 101, 11, 102, 103, 104, 105, 13, 106, 107]
    ad = body["items"][2]
    assert (
        ad["ad"] is True and ad["campaign_id"] == "a" and ad["stages"] == ["campaigns", "auction"]
    )
    assert ad["price"] == pytest.approx(0.5) and ad["pctr"] == pytest.approx(0.2)
    assert body["items"][7]["campaign_id"] == "c" and body["items"][7]["price"] == 0.05
    assert not any(i.get("ad") for j, i in enumerate(body["items"]) if j not in (2, 7))


def test_ads_false_and_a_degraded_answer_keep_the_page_organic(svc):
    organic = list(range(100, 110))
    answer = _call(svc.recommend(3, 10, ads=False, ctx=_ctx()))
    assert [i.item_id for i in answer.items] == organic
    answer = _call(svc.recommend(99, 10, ctx=_ctx()))
    assert [i.item_id for i in answer.items] == organic
    svc.ads = None  # a service without the hook (as the other handler tests build it)
    assert [i.item_id for i in _call(svc.recommend(3, 10, ctx=_ctx())).items] == organic


def test_a_batch_honours_each_requests_ads_switch(svc):
    answer = _batch(svc, {"user_id": 1, "k": 4}, {"user_id": 2, "k": 4, "ads": False})
    assert [i["item_id"] for i in answer[0]["items"]] == [100, 101, 11, 102]
    assert [i["item_id"] for i in answer[1]["items"]] == [100, 101, 102, 103]


def test_the_decision_log_records_the_ad_by_its_source(svc, tmp_path):
    _call(svc.recommend(3, 4, ctx=_ctx("req-ads")))
    svc.decisions.close()
    (record,) = _logged(tmp_path)
    assert [(i["item_id"], i["source"]) for i in record["items"]][2] == (11, "campaigns")
    assert record["items"][2]["stages"] == ["campaigns", "auction"]


def test_info_names_the_ads_served(svc):
    info = svc.ads.info()
    assert info == {"enabled": True, "campaigns": 3, "rejected": 0, "state": "process",
                    "slots": [3, 8], "reserve": 0.05, "frequency_cap": 3, "candidates": 200}  # fmt: skip
