from __future__ import annotations

import pytest
import torch
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recassets.models import DCNv2, ModelInputs, RankingConfig

from .helpers import ITEM, TABLES, USER, features, one_torch_thread  # noqa: F401


def config(cross_layers: int = 2, deep: tuple[int, ...] = (16, 8)) -> RankingConfig:
    return RankingConfig(
        TABLES, USER, ITEM, num_user_dense=3, num_item_dense=2, num_cross_dense=1,
        dense_dim=4, cross_layers=cross_layers, low_rank=3, deep=deep,
    )  # fmt: skip


def test_forward_gives_one_logit_per_row():
    torch.manual_seed(0)
    model = DCNv2(config())
    logits = model(features(batch=7, cross=1))
    assert logits.shape == (7,)
    logits.sum().backward()  # differentiable end to end (fused embedding update included)


# (2, (16, 8)): the default shape; no cross layers or no deep MLP are ablations the fused and
# prepared forms must also get right
@pytest.mark.parametrize(("cross_layers", "deep"), [(2, (16, 8)), (0, (16, 8)), (1, ())])
def test_broadcast_scoring_equals_replicated_scoring(cross_layers, deep):
    torch.manual_seed(0)
    model = DCNv2(config(cross_layers, deep)).eval()
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
            ModelInputs(replicated, user_dense.expand(n, -1), f.item_dense, f.cross_dense)
        )
        got = model.score_candidates(
            ModelInputs(one_user, user_dense=user_dense),
            ModelInputs(items_only, item_dense=f.item_dense, cross_dense=f.cross_dense),
        )
    assert got.shape == (n,)
    torch.testing.assert_close(got, expected)

    # the prepared catalog form: item-only work once, then any rows of it (repeats included)
    with torch.no_grad():
        items = model.prepare_items(model.embeddings(items_only), f.item_dense)
        user = model.user_part(ModelInputs(one_user, user_dense=user_dense))
        index = torch.tensor([4, 1, 1, 0, 5])
        prepared = model.score_prepared(user, items, index, f.cross_dense[index])
        # the cross counters are per request, not prepared: other counters, other scores
        other = model.score_prepared(user, items, index, f.cross_dense[index] + 1.0)
    torch.testing.assert_close(prepared, expected[index], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(other, prepared)


def test_score_candidates_takes_exactly_one_user():
    model = DCNv2(config()).eval()
    f = features(batch=2, cross=1)
    with pytest.raises(ValueError, match="one user"):
        model.score_candidates(f, f)


def test_config_round_trips_through_plain_values():
    assert RankingConfig.from_dict(config().to_dict()) == config()


def test_fused_interaction_equals_the_torchrec_modules():
    """``interact`` runs LowRankCrossNet's math in fused kernels, and the deep MLP and head
    from their weights: the same logits as the TorchRec modules. Frozen kernels (serving)
    are a snapshot: weights that move afterwards move ``interact``, not them."""
    torch.manual_seed(0)
    model = DCNv2(config()).eval()
    x0 = torch.randn(9, model.cross.V_kernels[0].shape[1])
    with torch.no_grad():
        expected = model.head(model.deep(model.cross(x0))).squeeze(1)
        torch.testing.assert_close(model.interact(x0), expected)
        for ablation in (config(0), config(3, ())):  # no cross layers; no deep MLP
            other = DCNv2(ablation).eval()
            torch.testing.assert_close(
                other.interact(x0), other.head(other.deep(other.cross(x0))).squeeze(1)
            )
        frozen = model.kernels(frozen=True)
        model.cross.W_kernels[1].add_(0.5)
        assert not torch.allclose(model.interact(x0), expected)
        torch.testing.assert_close(model._finish(x0, x0 @ frozen.cross[0][0], frozen), expected)
