"""The synthetic world's campaigns: landed beside the days, valid against the contract,
promoting distinct items of the initial catalog, byte-identical for the same config, none
when asked for none."""

from __future__ import annotations

from pathlib import Path

from recassets.funnel.campaigns import campaigns_path, load_campaigns
from recassets.paths import Paths
from recassets.synthetic import SyntheticConfig, build_world, generate
from recassets.synthetic.ads import campaign_rows

TINY = SyntheticConfig(
    days=1, events_per_day=200, initial_users=30, initial_items=40, n_categories=5,
    n_creators=10, campaigns=12,
)  # fmt: skip


def _paths(root: Path) -> Paths:
    return Paths(
        *(str(root / name) for name in ("", "landing", "lake", "artifacts", "lineage", "dagster"))
    )


def test_generate_lands_a_valid_campaigns_file(tmp_path):
    summary = generate(_paths(tmp_path), TINY)
    assert summary.campaigns == campaigns_path(tmp_path / "landing")
    assert summary.campaigns not in summary.files  # the day files only
    loaded = load_campaigns(summary.campaigns)
    assert loaded.rejected == () and len(loaded.campaigns) == 12
    items = [c.item_id for c in loaded.campaigns]
    assert len(set(items)) == 12 and all(1 <= i <= TINY.initial_items for i in items)
    world = build_world(TINY)
    for c in loaded.campaigns:
        if c.categories is not None:  # targeting starts from the promoted item's category
            assert world.categories[world.item_category[c.item_id - 1]] in c.categories
    assert any(c.categories is None for c in loaded.campaigns)
    assert any(c.categories is not None for c in loaded.campaigns)
    assert len({c.bid for c in loaded.campaigns}) > 1


def test_the_same_config_lands_the_same_bytes_and_none_lands_nothing(tmp_path):
    a = generate(_paths(tmp_path / "a"), TINY).campaigns
    b = generate(_paths(tmp_path / "b"), TINY).campaigns
    assert a is not None and b is not None and a.read_bytes() == b.read_bytes()
    none = SyntheticConfig(**{**TINY.__dict__, "campaigns": 0})
    assert generate(_paths(tmp_path / "c"), none).campaigns is None
    assert not campaigns_path(tmp_path / "c" / "landing").exists()


def test_no_more_campaigns_than_items():
    world = build_world(TINY)
    assert len(campaign_rows(world, 500)) == TINY.initial_items
