"""The funnel's settings: the service reads its environment and hands it over; a value no
page could be built from stops it, naming the variable."""

from __future__ import annotations

import pytest

from recassets.funnel.recommender import FunnelConfig


def test_config_from_a_mapping_takes_the_serve_variables():
    config = FunnelConfig.from_mapping(
        {
            "RECASSETS_SERVE_CANDIDATES": "50",
            "RECASSETS_SERVE_MAX_K": "10",
            "RECASSETS_SERVE_MAX_PER_CATEGORY": "0",
            "RECASSETS_SERVE_CATEGORY_SHARE": "0.5",
        }
    )
    assert config == FunnelConfig(candidates=50, max_k=10, max_per_category=0, category_share=0.5)


def test_config_reads_only_the_mapping_it_is_given(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("RECASSETS_SERVE_CANDIDATES", "7")
    config = FunnelConfig.from_mapping({"RECASSETS_SERVE_MAX_K": "30"})
    assert config == FunnelConfig(candidates=500, max_k=30, max_per_category=5)


def test_config_reads_the_list_wise_rules_and_they_are_off_by_default():
    default = FunnelConfig.from_mapping({})
    assert (default.max_per_creator, default.mmr_lambda, default.fresh_boost) == (0, 1.0, 0.0)
    assert not default.list_rules
    config = FunnelConfig.from_mapping(
        {
            "RECASSETS_SERVE_MAX_PER_CREATOR": "2",
            "RECASSETS_SERVE_MMR_LAMBDA": "0.7",
            "RECASSETS_SERVE_FRESH_BOOST": "0.25",
            "RECASSETS_SERVE_FRESH_DAYS": "3",
        }
    )
    assert config == FunnelConfig(max_per_creator=2, mmr_lambda=0.7, fresh_boost=0.25, fresh_days=3.0)  # fmt: skip
    assert config.list_rules
    assert FunnelConfig(mmr_lambda=0.0).list_rules and FunnelConfig(fresh_boost=1.0).list_rules


def test_config_reads_each_sources_quota():
    default = FunnelConfig.from_mapping({})
    assert default.quotas() == {
        "two_tower": 500, "similarity": 500, "trending": 500, "fresh": 50, "cohort": 100
    }  # fmt: skip
    config = FunnelConfig.from_mapping(
        {
            "RECASSETS_SERVE_CANDIDATES": "300",
            "RECASSETS_SERVE_SIMILARITY_QUOTA": "1000",
            "RECASSETS_SERVE_TRENDING_QUOTA": "100",
            "RECASSETS_SERVE_FRESH_QUOTA": "0",
            "RECASSETS_SERVE_COHORT_QUOTA": "20",
        }
    )
    assert config.quotas() == {
        "two_tower": 300, "similarity": 1000, "trending": 100, "fresh": 0, "cohort": 20
    }  # fmt: skip
    assert config.quotas(40)["two_tower"] == 40


def test_config_takes_the_bounds_of_lambda():
    assert FunnelConfig.from_mapping({"RECASSETS_SERVE_MMR_LAMBDA": "0"}).mmr_lambda == 0.0
    assert FunnelConfig.from_mapping({"RECASSETS_SERVE_MMR_LAMBDA": "1"}).mmr_lambda == 1.0


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("RECASSETS_SERVE_MMR_LAMBDA", "1.5", "between 0 and 1"),
        ("RECASSETS_SERVE_MMR_LAMBDA", "-0.1", "between 0 and 1"),
        ("RECASSETS_SERVE_MMR_LAMBDA", "nan", "between 0 and 1"),
        ("RECASSETS_SERVE_MAX_PER_CREATOR", "-1", "0 (no cap) or more"),
        ("RECASSETS_SERVE_MAX_PER_CATEGORY", "-2", "0 (no cap) or more"),
        ("RECASSETS_SERVE_CATEGORY_SHARE", "1.5", "between 0 (a fixed cap) and 1"),
        ("RECASSETS_SERVE_CATEGORY_SHARE", "-0.1", "between 0 (a fixed cap) and 1"),
        ("RECASSETS_SERVE_CATEGORY_SHARE", "a quarter", "must be a number"),
        ("RECASSETS_SERVE_FRESH_BOOST", "-0.5", "0 (off) or more"),
        ("RECASSETS_SERVE_FRESH_BOOST", "inf", "0 (off) or more"),
        ("RECASSETS_SERVE_FRESH_DAYS", "-1", "0 or more"),
        ("RECASSETS_SERVE_CANDIDATES", "0", "at least 1"),
        ("RECASSETS_SERVE_MAX_PER_CREATOR", "two", "must be an integer, got 'two'"),
        ("RECASSETS_SERVE_MAX_PER_CREATOR", "1.5", "must be an integer, got '1.5'"),
        ("RECASSETS_SERVE_MMR_LAMBDA", "high", "must be a number, got 'high'"),
        ("RECASSETS_SERVE_FRESH_QUOTA", "-1", "0 (off) or more"),
        ("RECASSETS_SERVE_COHORT_QUOTA", "-3", "0 (off) or more"),
        ("RECASSETS_SERVE_LIGHT_WEIGHT", "-1", "0 (the heavy ranker alone) or more"),
        ("RECASSETS_SERVE_LIGHT_WEIGHT", "nan", "0 (the heavy ranker alone) or more"),
        ("RECASSETS_SERVE_SIMILARITY_QUOTA", "-5", "0 (as many as candidates) or more"),
        ("RECASSETS_SERVE_TRENDING_QUOTA", "many", "must be an integer, got 'many'"),
    ],
)
def test_config_refuses_a_bad_value_naming_its_variable(variable: str, value: str, message: str):
    with pytest.raises(ValueError, match=variable) as caught:
        FunnelConfig.from_mapping({variable: value})
    assert message in str(caught.value)


def test_config_built_in_code_is_checked_too():
    with pytest.raises(ValueError, match=r"RECASSETS_SERVE_MMR_LAMBDA \(mmr_lambda\) must be"):
        FunnelConfig(mmr_lambda=2.0)
    with pytest.raises(ValueError, match=r"^fresh_share must be between 0 and 1, got 1.5$"):
        FunnelConfig(fresh_share=1.5)


def test_config_reads_the_light_stages_weight():
    from recassets.training.light import WEIGHT

    assert FunnelConfig.from_mapping({}).light_weight == WEIGHT
    got = FunnelConfig.from_mapping({"RECASSETS_SERVE_LIGHT_WEIGHT": "0"})
    assert got.light_weight == 0.0
