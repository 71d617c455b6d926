"""The decision log's record of an ad: who paid what for which slot (campaign, advertiser,
price, pCTR, slot, the amount charged), carried from the page through ``decision`` into the
landed record and the ``serving_log`` table; organic items carry none of it."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recassets.bento import decisions as D
from recassets.events import SERVING_LOG
from recassets.funnel import ads as A
from tests.unit.funnel.test_ads import DAY, _c, _organic

BILLING = ("campaign_id", "advertiser", "price", "pctr", "slot", "cost")


def _page():
    ads = A.Ads((_c("a", 11, 1.0), _c("b", 12, 0.5)), A.InProcessAdState())
    return ads, ads.place(
        1, 10, _organic(), set(), lambda ids: (np.full(len(ids), 0.2), "ranking"),
        lambda ids: np.full(len(ids), None, dtype=object), DAY,
    )  # fmt: skip


def _record(items):
    return D.decision(
        request_id="req-ad", endpoint="recommend", user_id=1, items=items, policy="model",
        features_day="2026-01-04", models={}, bento=None, ts=f"{DAY}T08:00:00.000001Z",
    )  # fmt: skip


def test_the_record_keeps_each_ads_billing_fields():
    """It kept item_id, score, stages and source: an auditor could not tell which campaign
    was shown, at what price, in which slot, nor what was charged."""
    ads, page = _page()
    logged = _record(page)["items"]
    served = {i["campaign_id"]: i for i in page if i.get("ad")}
    for item in logged:
        if item["source"] != "campaigns":
            assert not set(BILLING) & set(item) and "ad" not in item  # organic: none of them
            continue
        ad = served[item["campaign_id"]]
        assert {f: item[f] for f in BILLING} == {f: ad[f] for f in BILLING}
        assert item["ad"] is True and item["pctr_source"] == "ranking"
    a, b = (i for i in logged if i.get("ad"))
    assert (a["campaign_id"], a["slot"], a["cost"]) == ("a", 3, pytest.approx(0.5 * 0.2))
    assert (b["campaign_id"], b["slot"], b["cost"]) == ("b", 8, pytest.approx(0.05 * 0.2))
    # the cost is what the counters were charged, exactly
    spend, _ = ads.state.read(DAY, 1)
    assert spend == {"a": a["cost"], "b": b["cost"]}


def test_the_contract_names_the_ad_fields_and_accepts_the_record():
    from recassets.lineage.requests import _contract_problem

    (items,) = [f for f in SERVING_LOG.fields if f.name == "items"]
    assert all(name in items.doc for name in BILLING)
    _, page = _page()
    record = json.loads(json.dumps(_record(page), allow_nan=False))  # as landed
    assert _contract_problem(record) is None


def test_the_table_keeps_the_ad_fields(spark, make_home):
    """One decision record with ads landed by the service's writer and ingested by
    ``lake/serving_log``: the table's ``items`` JSON carries the billing fields."""
    from deltalake import DeltaTable

    from recassets.ingest import INGESTED_TABLES, ingest

    paths = make_home("serving_log_ads")
    _, page = _page()
    log = D.DecisionLog(paths.landing, background=False)
    assert log.append(_record(page)) and log.flush() == 1
    result = ingest(spark, paths, D.DATASET, [DAY.isoformat()])
    assert result is not None
    (row,) = DeltaTable(paths.table(INGESTED_TABLES[D.DATASET])).to_pyarrow_table().to_pylist()
    items = json.loads(row["items"])
    ads = [i for i in items if i.get("ad")]
    assert [(i["campaign_id"], i["advertiser"], i["slot"]) for i in ads] == [
        ("a", "adv-a", 3), ("b", "adv-b", 8),
    ]  # fmt: skip
    assert [i["cost"] for i in ads] == [pytest.approx(0.1), pytest.approx(0.01)]
    assert all("campaign_id" not in i for i in items if not i.get("ad"))
