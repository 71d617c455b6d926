from __future__ import annotations

import torch
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recassets.models import ModelInputs, TwoTower, TwoTowerConfig

from .helpers import ITEM, TABLES, USER, features, one_torch_thread  # noqa: F401


def config(dim: int = 6) -> TwoTowerConfig:
    return TwoTowerConfig(
        TABLES, USER, ITEM, num_user_dense=3, num_item_dense=2, dim=dim, hidden=(16,)
    )


def test_towers_output_unit_vectors_of_dim_d():
    torch.manual_seed(0)
    model = TwoTower(config(dim=6))
    user, item = model(features(batch=5))
    assert user.shape == (5, 6) and item.shape == (5, 6)
    torch.testing.assert_close(user.norm(dim=1), torch.ones(5))
    torch.testing.assert_close(item.norm(dim=1), torch.ones(5))
    assert TwoTower.score(user, item).shape == (5, 5)


def test_each_tower_runs_on_its_own_features_alone():
    torch.manual_seed(0)
    model = TwoTower(config()).eval()
    f = features(batch=4)
    user, item = model(f)
    jts = f.sparse.to_dict()

    def only(keys):
        return KeyedJaggedTensor.from_jt_dict({k: jts[k] for k in keys})

    with torch.no_grad():
        u = model.user_embeddings(ModelInputs(only(USER), user_dense=f.user_dense))
        v = model.item_embeddings(ModelInputs(only(ITEM), item_dense=f.item_dense))
    torch.testing.assert_close(u, user.detach())
    torch.testing.assert_close(v, item.detach())


def test_config_round_trips_through_plain_values():
    cfg = config()
    d = cfg.to_dict()
    assert TwoTowerConfig.from_dict(d) == cfg
    assert all(isinstance(v, (int, list)) for v in d.values())


def test_state_dict_keys_are_the_same_for_every_embedding_optimizer():
    keys = {
        opt: sorted(TwoTower(config(), embedding_optimizer=opt).state_dict())
        for opt in ("fused_rowwise_adagrad", "rowwise_adagrad", "adam", "sparse_adam", "none")
    }
    assert len({tuple(k) for k in keys.values()}) == 1
    assert "embeddings.ebc.embedding_bags.item_id.weight" in keys["none"]
