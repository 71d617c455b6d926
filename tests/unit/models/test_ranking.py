from __future__ import annotations

import pytest
import torch
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recassets.models import DCNv2, Features, RankingConfig

from .helpers import ITEM, TABLES, USER, features, one_torch_thread  # noqa: F401


def config() -> RankingConfig:
    return RankingConfig(
        TABLES, USER, ITEM, num_user_dense=3, num_item_dense=2, num_cross_dense=1,
        dense_dim=4, cross_layers=2, low_rank=3, deep=(16, 8),
    )  # fmt: skip


def test_forward_gives_one_logit_per_row():
    torch.manual_seed(0)
    model = DCNv2(config())
    logits = model(features(batch=7, cross=1))
    assert logits.shape == (7,)
    logits.sum().backward()  # differentiable end to end (fused embedding update included)


def test_broadcast_scoring_equals_replicated_scoring():
    torch.manual_seed(0)
    model = DCNv2(config()).eval()
    n = 6
    f = features(batch=n, cross=1, seed=3)
    jts = f.sparse.to_dict()
    # one user: row 0's user side, replicated over the n candidates
    user_jts = {k: KeyedJaggedTensor.from_jt_dict({k: jts[k]}).to_dict()[k] for k in USER}
    one_user = KeyedJaggedTensor.from_lengths_sync(
        list(USER),
        torch.cat([user_jts[k].values()[: int(user_jts[k].lengths()[0])] for k in USER]),
        torch.cat([user_jts[k].lengths()[:1] for k in USER]),
    )
    rep_lengths = [user_jts[k].lengths()[:1].repeat(n) for k in USER]
    rep_values = [user_jts[k].values()[: int(user_jts[k].lengths()[0])].repeat(n) for k in USER]
    items_only = KeyedJaggedTensor.from_jt_dict({k: jts[k] for k in ITEM})
    replicated = KeyedJaggedTensor.from_lengths_sync(
        list(USER) + list(ITEM),
        torch.cat(rep_values + [jts[k].values() for k in ITEM]),
        torch.cat(rep_lengths + [jts[k].lengths() for k in ITEM]),
    )
    user_dense = f.user_dense[:1]
    with torch.no_grad():
        expected = model(
            Features(replicated, user_dense.expand(n, -1), f.item_dense, f.cross_dense)
        )
        got = model.score_candidates(
            Features(one_user, user_dense=user_dense),
            Features(items_only, item_dense=f.item_dense, cross_dense=f.cross_dense),
        )
    assert got.shape == (n,)
    torch.testing.assert_close(got, expected)


def test_score_candidates_takes_exactly_one_user():
    model = DCNv2(config()).eval()
    f = features(batch=2, cross=1)
    with pytest.raises(ValueError, match="one user"):
        model.score_candidates(f, f)


def test_config_round_trips_through_plain_values():
    assert RankingConfig.from_dict(config().to_dict()) == config()
