from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from recassets.training import data as D
from recassets.training.checkpoint import Checkpoint
from recassets.training.inference import (
    evaluate_ranking,
    item_embeddings,
    load_ranking,
    load_two_tower,
    score_candidates,
    user_embeddings,
)
from recassets.training.loop import train_ranking
from recassets.training.schema import ITEM_DENSE
from recassets.training.vocab import Vocabulary
from support import planted

from .tiny import DAYS, N_CATEGORIES, TINY
from .torch_threads import one_torch_thread  # noqa: F401

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def ranking(table, tmp_path_factory) -> Checkpoint:
    out = tmp_path_factory.mktemp("models") / "ranking.pt"
    return train_ranking(table, DAYS[:3], replace(TINY, epochs=3, batch_size=128), output=out)


def test_serving_side_modules_do_not_import_the_training_loop():
    # One interpreter, imports in serving's order; after each, is the loop loaded? The last
    # line is the failing case: importing the loop itself shows the probe can see it.
    modules = [
        "recassets.training.checkpoint",
        "recassets.training.inference",
        "recassets.training.evaluation",
        "recassets.training.policy",
        "recassets.training.recommend",
        "recassets.funnel.recommender",
        "recassets.bento.bundle",
        "recassets.training.loop",
    ]
    probe = "import importlib, sys\n" + "".join(
        f"importlib.import_module({m!r}); print({m!r}, 'recassets.training.loop' in sys.modules)\n"
        for m in modules
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    loaded = dict(line.split() for line in out.stdout.splitlines())
    assert loaded == {m: str(m == "recassets.training.loop") for m in modules}


def test_load_two_tower_rebuilds_the_trained_module(two_tower):
    model, voc = load_two_tower(two_tower.path)
    assert not model.training
    assert model.embeddings.optimizer_kind == "none"
    assert not any(p.requires_grad for p in model.parameters())
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, two_tower.state_dict[key])
    assert (
        voc["item_id"].keys().tolist()
        == Vocabulary.from_state_dict(two_tower.vocab)["item_id"].keys().tolist()
    )


def test_load_checks_the_kind(two_tower, ranking):
    with pytest.raises(ValueError, match="two_tower model, not ranking"):
        load_ranking(two_tower)
    with pytest.raises(ValueError, match="ranking model, not two_tower"):
        load_two_tower(ranking.to_dict())


def test_two_tower_learns_the_planted_category_preference(two_tower):
    held_out = planted.make_day(3, n_categories=N_CATEGORIES)
    items = held_out.select(["item_id", "category", "creator", *ITEM_DENSE])
    item_ids, item_vecs = item_embeddings(two_tower, items)
    user_ids, user_vecs = user_embeddings(two_tower, held_out)
    assert item_vecs.shape == (held_out.num_rows, 16) and item_vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(item_vecs, axis=1), 1.0, rtol=1e-5)
    _, first_item = np.unique(item_ids, return_index=True)
    _, first_user = np.unique(user_ids, return_index=True)
    item_ids, item_vecs = item_ids[first_item], item_vecs[first_item]
    user_ids, user_vecs = user_ids[first_user], user_vecs[first_user]
    top10 = np.argsort(-(user_vecs @ item_vecs.T), axis=1)[:, :10]
    hit_rate = (item_ids[top10] % N_CATEGORIES == (user_ids % N_CATEGORIES)[:, None]).mean()
    assert hit_rate > 0.6  # random retrieval: 1 / N_CATEGORIES = 0.25


def test_embeddings_of_no_rows_are_empty_with_the_models_dim(two_tower):
    items = planted.make_day(3).select(["item_id", "category", "creator", *ITEM_DENSE])
    ids, vecs = item_embeddings(two_tower, items.slice(0, 0))
    assert ids.shape == (0,) and ids.dtype == np.int64
    assert vecs.shape == (0, 16) and vecs.dtype == np.float32


def test_ranking_beats_chance_on_a_held_out_day(ranking, table):
    held_out = evaluate_ranking(ranking.path, table, [DAYS[3]])
    assert held_out["examples"] == planted.make_day(3).num_rows
    assert held_out["auc"] > 0.7
    model, voc = load_ranking(ranking.path)
    day3 = planted.make_day(3, n_categories=N_CATEGORIES)
    user_row = day3.slice(0, 1)
    candidates = day3.slice(0, 16)
    scores = score_candidates(model, voc, user_row, candidates)
    assert scores.shape == (16,)
    # row 0 is the user's own first impression, so its broadcast score is its plain score
    batch = D.to_batch(day3.slice(0, 1), voc, record=False)
    with torch.no_grad():
        assert scores[0] == pytest.approx(float(model(batch.features)[0]), rel=1e-5)
    with pytest.raises(ValueError, match="one user row"):
        score_candidates(model, voc, day3.slice(0, 2), candidates)
