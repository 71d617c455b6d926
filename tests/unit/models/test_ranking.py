from __future__ import annotations

import pytest
import torch
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recassets.models import DCNv2, ModelInputs, RankingConfig

from .helpers import ITEM, TABLES, USER, features, one_torch_thread  # noqa: F401


def config(
    cross_layers: int = 2, deep: tuple[int, ...] = (16, 8), sequence: int = 0
) -> RankingConfig:
    return RankingConfig(
        TABLES, USER, ITEM, num_user_dense=3, num_item_dense=2, num_cross_dense=1,
        dense_dim=4, cross_layers=cross_layers, low_rank=3, deep=deep, sequence=sequence,
        attention_hidden=5,
    )  # fmt: skip


def test_forward_gives_one_logit_per_row():
    torch.manual_seed(0)
    model = DCNv2(config())
    logits = model(features(batch=7, cross=1))
    assert logits.shape == (7,)
    logits.sum().backward()  # differentiable end to end (fused embedding update included)


# (2, (16, 8)): the default shape; no cross layers or no deep MLP are ablations the fused and
# prepared forms must also get right; sequence 2: the sequence-aware ranker (attention over the
# newest 2 engagements, fewer than the histories' 3: the cut is exercised)
@pytest.mark.parametrize(
    ("cross_layers", "deep", "sequence"),
    [(2, (16, 8), 0), (0, (16, 8), 0), (1, (), 0), (2, (16, 8), 2), (0, (16, 8), 2)],
)
def test_broadcast_scoring_equals_replicated_scoring(cross_layers, deep, sequence):
    torch.manual_seed(0)
    model = DCNv2(config(cross_layers, deep, sequence)).eval()
    n = 6
    f = features(batch=n, cross=1, seed=7)  # user 0 has 3 engagements
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
        rows = jts["item_id"].values()
        items = model.prepare_items(model.embeddings(items_only), f.item_dense, rows)
        user = model.user_part(ModelInputs(one_user, user_dense=user_dense))
        history = one_user.to_dict()["history_item_ids"].values()
        state = model.sequence_state(history)
        index = torch.tensor([4, 1, 1, 0, 5])
        prepared = model.score_prepared(user, items, index, f.cross_dense[index], state)
        # the cross counters are per request, not prepared: other counters, other scores
        other = model.score_prepared(user, items, index, f.cross_dense[index] + 1.0, state)
    torch.testing.assert_close(prepared, expected[index], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(other, prepared)
    if sequence:
        # the history is read, newest first: another history, other scores
        assert len(history) >= 2, "the fixture's user 0 must have a history to attend"
        with torch.no_grad():
            flipped = model.score_prepared(
                user, items, index, f.cross_dense[index], model.sequence_state(history.flip(0))
            )
        assert not torch.allclose(flipped, prepared)
        with pytest.raises(ValueError, match="history"):
            model.score_prepared(user, items, index, f.cross_dense[index])


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


def test_sequence_aware_rows_attend_their_own_history():
    """Training rows each carry their own history (empty ones included: the attention gives
    zeros there, not NaN): ``forward`` on the batch equals scoring each row alone, and
    padding never leaks: a row's score does not change with its batch neighbours."""
    torch.manual_seed(0)
    model = DCNv2(config(sequence=2)).eval()
    f = features(batch=6, cross=1, seed=3)  # histories of 0, 1, 1, 3, 2, 3 engagements
    with torch.no_grad():
        batch = model(f)
        assert torch.isfinite(batch).all()
        for r in range(6):
            alone = model(_rows(f, [r]))
            torch.testing.assert_close(alone, batch[r : r + 1], rtol=1e-5, atol=1e-6)
        # the attention reads the newest two engagements only: changing the oldest of a row
        # with three does not move its attended history, changing its newest does (the
        # pooled history of the plain DCN-v2 part reads all of them)
        jts = f.sparse.to_dict()
        jt, cand = jts["history_item_ids"], jts["item_id"].values()
        lengths, values = jt.lengths(), jt.values()
        start = int(lengths[:3].sum())  # row 3: its three ids at start, start+1, start+2
        oldest, newest = values.clone(), values.clone()
        oldest[start] = (oldest[start] + 1) % 30
        newest[start + 2] = (newest[start + 2] + 1) % 30
        attention = model.sequence
        assert attention is not None
        base = attention(jt, cand)
        same = attention(type(jt)(values=oldest, lengths=lengths), cand)
        moved = attention(type(jt)(values=newest, lengths=lengths), cand)
        assert torch.equal(base[0], torch.zeros_like(base[0]))  # the empty history
    torch.testing.assert_close(same, base)
    assert not torch.allclose(moved[3], base[3])
    torch.testing.assert_close(moved[torch.arange(6) != 3], base[torch.arange(6) != 3])


def _rows(f: ModelInputs, rows: list[int]) -> ModelInputs:
    jts = f.sparse.to_dict()
    keys = list(jts)
    values, lengths = [], []
    for k in keys:
        off = torch.cumsum(jts[k].lengths(), 0) - jts[k].lengths()
        for r in rows:
            n = int(jts[k].lengths()[r])
            values.append(jts[k].values()[int(off[r]) : int(off[r]) + n])
        lengths.append(jts[k].lengths()[rows])
    kjt = KeyedJaggedTensor.from_lengths_sync(keys, torch.cat(values), torch.cat(lengths))
    pick = torch.tensor(rows)
    return ModelInputs(kjt, f.user_dense[pick], f.item_dense[pick], f.cross_dense[pick])


def test_sequence_config_round_trips_and_old_checkpoints_read_as_plain_dcn():
    cfg = config(sequence=4)
    assert RankingConfig.from_dict(cfg.to_dict()) == cfg
    old = config().to_dict()
    del old["sequence"], old["attention_hidden"]  # a checkpoint from before the attention
    assert RankingConfig.from_dict(old).sequence == 0
    assert DCNv2(RankingConfig.from_dict(old)).sequence is None
    assert DCNv2(cfg).sequence is not None
