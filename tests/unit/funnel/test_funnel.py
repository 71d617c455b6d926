"""The funnel's settings: the service reads its environment and hands it over."""

from __future__ import annotations

from recassets.funnel.recommender import FunnelConfig


def test_config_from_a_mapping_takes_the_serve_variables():
    config = FunnelConfig.from_mapping(
        {
            "RECASSETS_SERVE_CANDIDATES": "50",
            "RECASSETS_SERVE_MAX_K": "10",
            "RECASSETS_SERVE_MAX_PER_CATEGORY": "0",
        }
    )
    assert config == FunnelConfig(candidates=50, max_k=10, max_per_category=0)


def test_config_reads_only_the_mapping_it_is_given(monkeypatch):
    monkeypatch.setenv("RECASSETS_SERVE_CANDIDATES", "7")
    config = FunnelConfig.from_mapping({"RECASSETS_SERVE_MAX_K": "30"})
    assert config == FunnelConfig(candidates=500, max_k=30, max_per_category=5)
