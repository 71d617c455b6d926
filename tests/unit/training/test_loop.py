from __future__ import annotations

import os
from dataclasses import replace

import numpy as np
import pytest
import torch

from recassets.models.embeddings import EmbeddingTables
from recassets.training.checkpoint import Checkpoint
from recassets.training.loop import (
    RankingTrainConfig,
    TwoTowerTrainConfig,
    train,
    train_ranking,
    train_two_tower,
)
from recassets.training.vocab import Vocabulary
from support import planted

from .tiny import DAYS, N_CATEGORIES, TINY, VOCAB
from .torch_threads import one_torch_thread  # noqa: F401


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
    loaded = Checkpoint.load(two_tower.path)
    assert loaded.partitions == DAYS[:3] and loaded.runs == two_tower.runs


def test_checkpoint_records_the_run_config(two_tower):
    assert two_tower.config["train"] == {
        "temperature": 0.1,
        "logq_weight": 3.0,
        "user_id": True,
        "batch_size": 64,
        "lr": 3e-3,
        "embedding_lr": 0.1,
        "embedding_optimizer": "fused_rowwise_adagrad",
        "seed": 0,
        "shuffle_rows": 65_536,
        "same_day_history": True,
    }
    model = two_tower.config["model"]
    assert model["dim"] == 16 and model["hidden"] == [32]
    assert {t["name"]: t["embedding_dim"] for t in model["tables"]}["item_id"] == 16  # E = D
    assert two_tower.config["vocab"]["item_id"]["capacity"] == 160


def test_cpu_training_is_deterministic(table):
    config = replace(TINY, device="cpu")
    runs = [train_two_tower(table, DAYS[:1], config) for _ in range(2)]
    a, b = (r.state_dict for r in runs)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    ea, eb = (r.optimizer["embedding"]["state"] for r in runs)
    for key in ea:
        for k in ea[key]:
            assert torch.equal(ea[key][k], eb[key][k])
    other_seed = train_two_tower(table, DAYS[:1], replace(config, seed=1))
    assert not torch.equal(
        other_seed.state_dict["user_tower.out.weight"], a["user_tower.out.weight"]
    )


def test_warm_start_consumes_only_new_partitions(table):
    first = train_two_tower(table, DAYS[:2], replace(TINY, epochs=2))
    assert first.runs[-1]["partitions"] == DAYS[:2] and first.runs[-1]["epochs"] == 2
    warm = train_two_tower(table, DAYS[:3], replace(TINY, epochs=5), checkpoint=first)
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
    again = train_two_tower(table, DAYS[:3], TINY, checkpoint=warm)
    assert again is warm
    # full retrain ignores the checkpoint: from scratch over everything given
    full = train_two_tower(table, DAYS[:3], TINY, checkpoint=warm, full_retrain=True)
    assert (
        len(full.runs) == 1
        and full.runs[0]["partitions"] == DAYS[:3]
        and not full.runs[0]["warm_start"]
    )


def test_warm_start_keeps_the_checkpoints_shape(table, two_tower):
    # a different shape in the config: ignored on a warm start, the checkpoint's module loads
    bigger = replace(TINY, two_tower=TwoTowerTrainConfig(dim=32, hidden=(64,)))
    warm = train_two_tower(table, DAYS, bigger, checkpoint=two_tower.path)
    assert warm.runs[-1]["partitions"] == [DAYS[3]]
    assert warm.config["model"] == two_tower.config["model"]


def test_wrong_kind_and_unknown_kind_are_errors(table, two_tower):
    with pytest.raises(ValueError, match="two_tower"):
        train_ranking(table, DAYS, TINY, checkpoint=two_tower.path)
    with pytest.raises(ValueError, match="unknown model kind"):
        train("bert4rec", table, DAYS, TINY)


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
    config = replace(TINY, vocab=vocab)
    calls: list[tuple[str, list[int]]] = []
    original = EmbeddingTables.reinit_rows

    def spy(self, table, rows, **kwargs):
        calls.append((table, sorted(int(r) for r in rows)))
        return original(self, table, rows, **kwargs)

    monkeypatch.setattr(EmbeddingTables, "reinit_rows", spy)
    first = train_two_tower(path, DAYS[:1], config)
    assert first.metrics["recycled_rows"] == 0
    user_rows = list(range(2, 10))  # after the 2 OOV buckets
    before = first.state_dict["embeddings.ebc.embedding_bags.user_id.weight"][user_rows].clone()
    calls.clear()
    warm = train_two_tower(path, DAYS[:2], config, checkpoint=first)
    assert warm.metrics["recycled_rows"] == 8
    assert ("user_id", user_rows) in calls
    voc = Vocabulary.from_state_dict(warm.vocab)
    assert sorted(voc["user_id"].keys().tolist()) == list(range(100, 108))
    assert voc["user_id"].lookup(np.arange(8), record=False).max() < 2  # old users: OOV now
    after = warm.state_dict["embeddings.ebc.embedding_bags.user_id.weight"][user_rows]
    assert not torch.equal(before, after)


def test_ranking_learns_on_its_training_days(table):
    ck = train_ranking(table, DAYS[:3], replace(TINY, epochs=3, batch_size=128))
    assert ck.kind == "ranking" and ck.config["train"]["batch_size"] == 128
    assert "temperature" not in ck.config["train"]  # the two-tower's knob, not recorded here
    assert ck.metrics["train_auc"] > 0.7


def test_each_model_reads_its_own_section_of_the_config(table):
    shape = RankingTrainConfig(embedding_dim=8, dense_dim=4, cross_layers=1, low_rank=2, deep=(16,))
    ck = train_ranking(table, DAYS[:1], replace(TINY, ranking=shape))
    model = ck.config["model"]
    assert (model["dense_dim"], model["cross_layers"], model["low_rank"], model["deep"]) == (
        4, 1, 2, [16],
    )  # fmt: skip
    assert {t["embedding_dim"] for t in model["tables"]} == {8}
    assert TINY.two_tower.dim == 16 and "dim" not in model  # the two-tower's, unused here


def test_num_threads_applies_to_the_run_only(table):
    torch.set_num_threads(2)
    try:
        ck = train_two_tower(table, DAYS[:1], replace(TINY, num_threads=1))
        assert torch.get_num_threads() == 2
        assert ck.metrics["examples"] > 0
    finally:
        torch.set_num_threads(1)


def test_no_partitions_is_an_error(table):
    with pytest.raises(ValueError, match="no partitions"):
        train_two_tower(table, [], TINY)
