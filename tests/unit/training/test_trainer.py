from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from recassets.models.embeddings import EmbeddingTables
from recassets.training import trainer as T
from recassets.training.schema import ITEM_DENSE
from support import planted

from .torch_threads import one_torch_thread  # noqa: F401

N_CATEGORIES = 4
DAYS = [planted.day(i) for i in range(4)]  # days 0-2 train, day 3 held out
# Small tables: every id gets a row (min_count 1) with room to spare.
VOCAB = {
    "user_id": {
        "key_type": "int64",
        "capacity": 64,
        "num_oov_buckets": 4,
        "min_count": 1,
        "ttl": 30,
    },
    "item_id": {
        "key_type": "int64",
        "capacity": 160,
        "num_oov_buckets": 4,
        "min_count": 1,
        "ttl": 30,
    },
}
TINY = dict(
    batch_size=64, dim=16, hidden=(32,), vocab=VOCAB, lr=3e-3, embedding_lr=0.1, temperature=0.1
)


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("lake") / "training_examples")
    planted.write_days(path, range(4), n_categories=N_CATEGORIES)
    return path


@pytest.fixture(scope="module")
def two_tower(table, tmp_path_factory) -> T.Checkpoint:
    out = tmp_path_factory.mktemp("models") / "two_tower.pt"
    return T.train_two_tower(table, DAYS[:3], epochs=3, output=out, **TINY)


def test_checkpoint_is_plain_data_saved_atomically(two_tower):
    folder = os.path.dirname(two_tower.path)
    assert os.listdir(folder) == ["two_tower.pt"]  # no temporary file left behind
    raw = torch.load(two_tower.path, weights_only=True)  # no code unpickled
    assert raw["kind"] == "two_tower" and raw["format"] == 1
    assert set(raw) >= {"config", "state_dict", "optimizer", "vocab", "source", "runs", "metrics"}
    assert sorted(raw["source"]["partitions"]) == DAYS[:3]
    assert {p["version"] for p in raw["source"]["partitions"].values()} == {3}  # 4 appends: v0-v3
    emb = raw["optimizer"]["embedding"]
    assert emb["kind"] == "fused_rowwise_adagrad"
    assert emb["state"]["item_id.weight"]["item_id.weight.momentum_1"].shape == (164,)
    assert raw["metrics"]["examples"] > 0 and np.isfinite(raw["metrics"]["loss"])
    assert raw["metrics"]["vocab"]["user_id"]["oov_rate"] == 0.0  # every user owns a row
    loaded = T.Checkpoint.load(two_tower.path)
    assert loaded.partitions == DAYS[:3] and loaded.runs == two_tower.runs


def test_two_tower_learns_the_planted_category_preference(two_tower):
    held_out = planted.make_day(3, n_categories=N_CATEGORIES)
    items = held_out.select(["item_id", "category", "creator", *ITEM_DENSE])
    item_ids, item_vecs = T.item_embeddings(two_tower, items)
    user_ids, user_vecs = T.user_embeddings(two_tower, held_out)
    assert item_vecs.shape == (held_out.num_rows, 16) and item_vecs.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(item_vecs, axis=1), 1.0, rtol=1e-5)
    _, first_item = np.unique(item_ids, return_index=True)
    _, first_user = np.unique(user_ids, return_index=True)
    item_ids, item_vecs = item_ids[first_item], item_vecs[first_item]
    user_ids, user_vecs = user_ids[first_user], user_vecs[first_user]
    top10 = np.argsort(-(user_vecs @ item_vecs.T), axis=1)[:, :10]
    hit_rate = (item_ids[top10] % N_CATEGORIES == (user_ids % N_CATEGORIES)[:, None]).mean()
    assert hit_rate > 0.6  # random retrieval: 1 / N_CATEGORIES = 0.25


def test_load_two_tower_rebuilds_the_trained_module(two_tower):
    model, voc = T.load_two_tower(two_tower.path)
    assert not model.training
    assert model.embeddings.optimizer_kind == "none"
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, two_tower.state_dict[key])
    assert (
        voc["item_id"].keys().tolist()
        == T.Vocabulary.from_state_dict(two_tower.vocab)["item_id"].keys().tolist()
    )


def test_cpu_training_is_deterministic(table):
    runs = [T.train_two_tower(table, DAYS[:1], epochs=1, device="cpu", **TINY) for _ in range(2)]
    a, b = (r.state_dict for r in runs)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ea, eb = (r.optimizer["embedding"]["state"] for r in runs)
    for key in ea:
        for k in ea[key]:
            assert torch.equal(ea[key][k], eb[key][k])
    other_seed = T.train_two_tower(table, DAYS[:1], epochs=1, device="cpu", seed=1, **TINY)
    assert not torch.equal(
        other_seed.state_dict["user_tower.out.weight"], a["user_tower.out.weight"]
    )


def test_warm_start_consumes_only_new_partitions(table):
    first = T.train_two_tower(table, DAYS[:2], epochs=2, **TINY)
    assert first.runs[-1]["partitions"] == DAYS[:2] and first.runs[-1]["epochs"] == 2
    warm = T.train_two_tower(table, DAYS[:3], checkpoint=first, epochs=5, **TINY)
    assert len(warm.runs) == 2 and warm.runs[-1]["warm_start"]
    assert warm.runs[-1]["partitions"] == [DAYS[2]]
    assert warm.runs[-1]["epochs"] == 1  # one pass over new data, whatever `epochs` says
    day2_positives = int(
        planted.make_day(2, n_categories=N_CATEGORIES).column("label").to_numpy().sum()
    )
    assert warm.runs[-1]["examples"] == day2_positives
    assert warm.partitions == DAYS[:3]
    # weights moved on from the warm start
    assert not torch.equal(
        warm.state_dict["item_tower.out.weight"], first.state_dict["item_tower.out.weight"]
    )
    # nothing new: the same checkpoint back, no extra run
    again = T.train_two_tower(table, DAYS[:3], checkpoint=warm, **TINY)
    assert again is warm
    # full retrain ignores the checkpoint: from scratch over everything given
    full = T.train_two_tower(table, DAYS[:3], checkpoint=warm, full_retrain=True, epochs=1, **TINY)
    assert (
        len(full.runs) == 1
        and full.runs[0]["partitions"] == DAYS[:3]
        and not full.runs[0]["warm_start"]
    )


def test_warm_start_from_a_saved_file_and_wrong_kind(table, two_tower):
    warm = T.train_two_tower(table, DAYS, checkpoint=two_tower.path, **TINY)
    assert warm.runs[-1]["partitions"] == [DAYS[3]]
    with pytest.raises(ValueError, match="two_tower"):
        T.train_ranking(table, DAYS, checkpoint=two_tower.path)


def test_expired_ids_rows_are_recycled_and_reinitialized(tmp_path, monkeypatch):
    # day 0: users 0-7; day 1: users 100-107 only. 8 user rows, ttl 0: on day 1 the day-0
    # users expire and the new users take over their rows, which must be re-initialized.
    path = str(tmp_path / "training_examples")
    planted.write_day(path, planted.make_day(0, n_users=8, impressions_per_user=12))
    planted.write_day(
        path, planted.make_day(1, n_users=8, impressions_per_user=12, user_offset=100)
    )
    vocab = {
        **VOCAB,
        "user_id": {
            "key_type": "int64",
            "capacity": 8,
            "num_oov_buckets": 2,
            "min_count": 1,
            "ttl": 0,
        },
    }
    calls: list[tuple[str, list[int]]] = []
    original = EmbeddingTables.reinit_rows

    def spy(self, table, rows, **kwargs):
        calls.append((table, sorted(int(r) for r in rows)))
        return original(self, table, rows, **kwargs)

    monkeypatch.setattr(EmbeddingTables, "reinit_rows", spy)
    first = T.train_two_tower(path, DAYS[:1], **{**TINY, "vocab": vocab})
    assert first.metrics["recycled_rows"] == 0
    user_rows = list(range(2, 10))  # after the 2 OOV buckets
    before = first.state_dict["embeddings.ebc.embedding_bags.user_id.weight"][user_rows].clone()
    calls.clear()
    warm = T.train_two_tower(path, DAYS[:2], checkpoint=first, **{**TINY, "vocab": vocab})
    assert warm.metrics["recycled_rows"] == 8
    assert ("user_id", user_rows) in calls
    voc = T.Vocabulary.from_state_dict(warm.vocab)
    assert sorted(voc["user_id"].keys().tolist()) == list(range(100, 108))
    assert voc["user_id"].lookup(np.arange(8), record=False).max() < 2  # old users: OOV now
    after = warm.state_dict["embeddings.ebc.embedding_bags.user_id.weight"][user_rows]
    assert not torch.equal(before, after)


def test_ranking_beats_chance_on_a_held_out_day(table, tmp_path):
    ck = T.train_ranking(
        table, DAYS[:3], epochs=3, batch_size=128, vocab=VOCAB, lr=3e-3, embedding_lr=0.1,
        output=tmp_path / "ranking.pt",
    )  # fmt: skip
    assert ck.metrics["train_auc"] > 0.7
    held_out = T.evaluate_ranking(tmp_path / "ranking.pt", table, [DAYS[3]])
    assert held_out["examples"] == planted.make_day(3).num_rows
    assert held_out["auc"] > 0.7
    model, voc = T.load_ranking(tmp_path / "ranking.pt")
    day3 = planted.make_day(3, n_categories=N_CATEGORIES)
    user_row = day3.slice(0, 1)
    candidates = day3.slice(0, 16)
    scores = T.score_candidates(model, voc, user_row, candidates)
    assert scores.shape == (16,)
    # row 0 is the user's own first impression, so its broadcast score is its plain score
    batch = T.D.to_batch(day3.slice(0, 1), voc, record=False)
    with torch.no_grad():
        assert scores[0] == pytest.approx(float(model(batch.features)[0]), rel=1e-5)


def test_num_threads_applies_to_the_run_only(table):
    torch.set_num_threads(2)
    try:
        ck = T.train_two_tower(table, DAYS[:1], num_threads=1, **TINY)
        assert torch.get_num_threads() == 2
        assert ck.metrics["examples"] > 0
    finally:
        torch.set_num_threads(1)


def test_no_partitions_is_an_error(table):
    with pytest.raises(ValueError, match="no partitions"):
        T.train_two_tower(table, [], **TINY)
