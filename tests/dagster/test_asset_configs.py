"""Every asset's run config refuses, naming the field, what would otherwise run as nonsense: a
negative holdout read as a slice (training on the evaluation's day), k = 0 (a division by zero
a minute into the evaluation), NaN weights and recall targets, and gate baselines that are
misspelled or empty (the gate had nothing to beat, and passed)."""

import math

import pytest
from pydantic import ValidationError

from assets.models import (
    ItemSimilarityConfig,
    LightRankerConfig,
    ModelEvaluationConfig,
    ModelTrainConfig,
    SequenceRankingConfig,
)
from assets.retrieval import ItemIndexConfig

REFUSED = [
    (ModelTrainConfig, "holdout_days", -1),
    (ModelTrainConfig, "epochs_from_scratch", 0),
    (ModelTrainConfig, "batch_size", 0),
    (ModelTrainConfig, "processes", 0),
    (ModelTrainConfig, "num_threads", -2),
    (SequenceRankingConfig, "history", 0),
    (ItemSimilarityConfig, "window_days", 0),
    (ItemSimilarityConfig, "holdout_days", -3),
    (ItemSimilarityConfig, "l2", math.nan),
    (ItemSimilarityConfig, "l2", 0.0),
    (ItemSimilarityConfig, "beta", -0.1),
    (ItemSimilarityConfig, "beta", math.inf),
    (LightRankerConfig, "epochs", 0),
    (ModelEvaluationConfig, "k", 0),
    (ModelEvaluationConfig, "bootstrap", -1),
    (ModelEvaluationConfig, "light_keep", 0),
    (ModelEvaluationConfig, "gate_baselines", ["popularity_al_time"]),
    (ModelEvaluationConfig, "gate_baselines", []),
    (ItemIndexConfig, "target_recall", math.nan),
    (ItemIndexConfig, "target_recall", 1.5),
    (ItemIndexConfig, "k", 0),
]


@pytest.mark.parametrize(("config", "field", "value"), REFUSED)
def test_a_value_out_of_bounds_is_refused_naming_the_field(config, field, value):
    with pytest.raises(ValidationError) as raised:
        config(**{field: value})
    assert [e["loc"] for e in raised.value.errors()] == [(field,)]


@pytest.mark.parametrize(
    ("config", "field", "value"),
    [
        (ModelTrainConfig, "holdout_days", 0),
        (ItemSimilarityConfig, "beta", 0.0),
        (ItemSimilarityConfig, "l2", 300.0),
        (ModelEvaluationConfig, "gate_baselines", ["cooccurrence"]),
        (ModelEvaluationConfig, "gate_baselines", None),
        (ItemIndexConfig, "target_recall", 1.0),
        (ItemIndexConfig, "target_recall", 0.0),  # no tuning: a deliberately coarse index
    ],
)
def test_a_value_within_bounds_is_kept(config, field, value):
    assert getattr(config(**{field: value}), field) == value


def test_the_defaults_are_within_the_bounds():
    for config in {c for c, _, _ in REFUSED}:
        config()


def test_every_run_config_field_is_described_in_the_launchpad():
    """The Launchpad showed the fields of the configurable assets bare: what holdout_days or
    target_recall mean, and what unset does, was only in the source."""
    from definitions import defs

    seen, bare = set(), []
    for asset in defs.resolve_asset_graph().assets_defs:
        schema = asset.node_def.config_schema if asset.is_executable else None
        fields = getattr(schema.config_type, "fields", {}) if schema is not None else {}
        seen |= {f"{asset.node_def.name}.{n}" for n in fields}
        bare += [f"{asset.node_def.name}.{n}" for n, f in fields.items() if not f.description]
    assert {"models__two_tower_model.holdout_days", "retrieval__item_index.target_recall"} <= seen
    assert bare == []
