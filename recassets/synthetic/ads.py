"""The synthetic world's advertisers: campaigns promoting items of its catalog, landed as one
JSON file at ``<landing>/ads/campaigns.json`` (the contract ``recassets.funnel.campaigns``
validates and serves; MovieLens has no such file, so its pages stay organic).

Each campaign promotes a distinct item of the initial catalog (published from day 0, so it
is servable on every day of the horizon). Bids per click are lognormal around 0.40 (a few
fall under the serving default reserve of 0.05 and never run); daily budgets lognormal around
10, so at a 7 % CTR and a price near the bid a campaign buys a few hundred impressions a day
and the busier ones run out before the day ends. Two in five campaigns target categories:
the promoted item's own, and one more for half of those. Advertisers own one to a few
campaigns each. Deterministic in the world's seed (its own random stream), the same bytes for
the same config.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from recassets import atomic
from recassets.funnel.campaigns import campaigns_path
from recassets.paths import Paths
from recassets.synthetic.world import SyntheticConfig, World, _rng

_STREAM_ADS = 5
BID_MEDIAN, BID_SIGMA = 0.40, 0.6
BUDGET_MEDIAN, BUDGET_SIGMA = 10.0, 0.7
TARGETED_SHARE = 0.4


def campaign_rows(world: World, n: int) -> list[dict[str, Any]]:
    """``n`` campaigns (at most one per item of the initial catalog) as contract rows."""
    c = world.config
    n = min(n, c.initial_items)
    if n <= 0:
        return []
    rng = _rng(c.seed, _STREAM_ADS)
    items = np.sort(rng.choice(c.initial_items, size=n, replace=False)) + 1
    bids = np.maximum(0.01, rng.lognormal(np.log(BID_MEDIAN), BID_SIGMA, n)).round(2)
    budgets = np.maximum(1.0, rng.lognormal(np.log(BUDGET_MEDIAN), BUDGET_SIGMA, n)).round(2)
    advertisers = rng.integers(0, max(1, n // 3), size=n) + 1
    targeted = rng.random(n) < TARGETED_SHARE
    second = rng.random(n) < 0.5
    extra = rng.integers(0, len(world.categories), size=n)
    rows = []
    for j in range(n):
        item = int(items[j])
        categories = None
        if targeted[j]:
            own = world.categories[int(world.item_category[item - 1])]
            more = world.categories[int(extra[j])]
            categories = [own] + ([more] if second[j] and more != own else [])
        rows.append(
            {
                "campaign_id": f"cmp{j + 1:04d}",
                "advertiser": f"adv{int(advertisers[j]):03d}",
                "item_id": item,
                "bid": float(bids[j]),
                "daily_budget": float(budgets[j]),
                "categories": categories,
            }
        )
    return rows


def campaigns_bytes(world: World, config: SyntheticConfig) -> bytes | None:
    """The campaigns file ``config`` lands, byte for byte; None when it asks for none."""
    rows = campaign_rows(world, config.campaigns)
    if not rows:
        return None
    return (json.dumps({"campaigns": rows}, indent=1, sort_keys=True) + "\n").encode("utf-8")


def write_campaigns(paths: Paths, world: World, config: SyntheticConfig) -> Path | None:
    """Land ``config.campaigns`` campaigns as ``<landing>/ads/campaigns.json`` (atomically);
    None and no file when the config asks for none."""
    data = campaigns_bytes(world, config)
    if data is None:
        return None
    target = campaigns_path(paths.landing)
    target.parent.mkdir(parents=True, exist_ok=True)
    return atomic.write_bytes_if_changed(target, data)  # the same: untouched


__all__ = ["campaign_rows", "campaigns_bytes", "write_campaigns"]
