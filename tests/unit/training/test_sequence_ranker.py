"""The sequence-aware ranker end to end below Dagster: trained into its own store, scored
beside the DCN-v2 on held-out days, the better one chosen and promoted, with the reason.

The world (``planted.make_day(newest_decides=True)``): a user-day's preferred category is the
category of the newest item of its history, the other items of the history being random; only
a model that reads the sequence in order sees it.
"""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from recassets.models.sequence import TargetAttention
from recassets.training import evaluation as E
from recassets.training import inference
from recassets.training import policy as P
from recassets.training.checkpoint import Checkpoint
from recassets.training.loop import RankingTrainConfig
from recassets.training.report import SERVED, SERVED_DCN, SERVED_SEQUENCE, choose_ranker
from support import planted

from .tiny import DAYS, TINY
from .torch_threads import one_torch_thread  # noqa: F401

SMALL = RankingTrainConfig(embedding_dim=8, deep=(32, 16), attention_hidden=16)


@pytest.fixture(scope="module")
def world(make_home):
    """A home whose days 0-2 trained a two-tower, a DCN-v2 and a sequence-aware ranker
    (each through the store), day 3 held out."""
    paths = make_home("sequence")
    planted.write_days(
        paths.table("training_examples"), range(4), newest_decides=True, n_users=192,
        impressions_per_user=32,
    )  # fmt: skip
    ranking = replace(TINY, epochs=4, ranking=SMALL)
    tt = P.train_next(paths, "two_tower", replace(TINY, epochs=3))
    dcn = P.train_next(paths, "ranking", ranking)
    seq = P.train_next(paths, P.SEQUENCE_RANKING, ranking)  # sequence unset: the store's 50
    return paths, tt, dcn, seq


def test_the_store_trains_a_ranking_model_that_attends_to_the_history(world):
    paths, _, dcn, seq = world
    assert seq.path.endswith("sequence_ranking/0001.pt") and dcn.path.endswith("ranking/0001.pt")
    assert seq.checkpoint.kind == dcn.checkpoint.kind == "ranking"  # both load as rankers
    assert seq.checkpoint.config["model"]["sequence"] == 50
    assert dcn.checkpoint.config["model"]["sequence"] == 0
    # up to date: nothing new to train, no new version
    again = P.train_next(paths, P.SEQUENCE_RANKING, replace(TINY, ranking=SMALL))
    assert not again.new_version and again.path == seq.path


def test_the_attention_reads_what_the_pooled_history_cannot(world):
    """On held-out day 3: the sequence-aware ranker separates the positives (AUC about 0.9)
    where the DCN-v2's mean-pooled history barely does (about 0.6)."""
    paths, _, dcn, seq = world
    table = paths.table("training_examples")
    plain = inference.evaluate_ranking(dcn.path, table, [DAYS[3]])["auc"]
    attending = inference.evaluate_ranking(seq.path, table, [DAYS[3]])["auc"]
    assert attending > 0.8 and attending > plain + 0.1, (attending, plain)


def test_evaluation_serves_the_better_ranker_and_says_why(world):
    paths, tt, dcn, seq = world
    report = E.evaluate(paths, tt.path, dcn.path, k=20, bootstrap=200, sequence_ranking=seq.path)
    assert report.ranker == "sequence", report.ranker_reason
    # decided on the paired difference of the two cascades over the same units
    diff = report.ranker_difference
    assert 0 < diff["lo"] <= diff["mean"] <= diff["hi"]
    assert report.ranker_reason.startswith("paired ndcg@10 difference +")
    assert "lies above zero" in report.ranker_reason
    assert report.checkpoints["candidate_ranking"] == seq.path
    assert report.checkpoints["candidate_ranking_dcn_v2"] == dcn.path
    assert report.retrieval[SERVED] == report.retrieval[SERVED_SEQUENCE]
    assert report.retrieval[SERVED_SEQUENCE]["ndcg@10"] > report.retrieval[SERVED_DCN]["ndcg@10"]
    assert report.reranking["sequence"]["auc"] > report.reranking["dcn_v2"]["auc"]
    assert "L2 ranker that serves: sequence" in report.to_markdown()

    # the slots do not decide: the better model given as the "DCN-v2" keeps serving, the
    # worse one offered as the challenger loses
    swapped = E.evaluate(paths, tt.path, seq.path, k=20, bootstrap=200, sequence_ranking=dcn.path)
    assert swapped.ranker == "dcn_v2" and swapped.ranker_difference["hi"] < 0
    assert (
        "does not lie above zero: the DCN-v2 serves (the simpler ranker)" in swapped.ranker_reason
    )
    assert swapped.checkpoints["candidate_ranking"] == seq.path
    assert swapped.retrieval[SERVED] == swapped.retrieval[SERVED_DCN]

    # promoted: the pointer names the ranker that serves, and which kind it is
    floor = {"popularity_all_time": {report.recall_key: 0.0}}  # a baseline it beats
    decision = P.gate(report.retrieval[report.served_key], floor, None)
    assert decision.passed
    P.promote(paths, report, decision)
    pointer = P.current_policy(paths)
    assert pointer["ranking"] == seq.path and pointer["ranker"] == "sequence"
    # and the pointer's ranker loads as any ranker does, attention included
    model, _ = inference.load_ranking(pointer["ranking"])
    assert model.sequence is not None


def test_choose_ranker_serves_the_sequence_ranker_only_on_a_reliable_win():
    def r(seq, dcn, difference=None):
        metrics = {SERVED_SEQUENCE: dict(zip(("ndcg@10", "recall@50"), seq, strict=True)),
                   SERVED_DCN: dict(zip(("ndcg@10", "recall@50"), dcn, strict=True))}  # fmt: skip
        return choose_ranker(metrics, "ndcg@10", "recall@50", difference)[0]

    # with a paired interval: its lower bound decides, not the point estimates
    assert r((0.30, 0.5), (0.20, 0.6), {"mean": 0.1, "lo": 0.02, "hi": 0.18}) == "sequence"
    assert r((0.30, 0.5), (0.20, 0.6), {"mean": 0.1, "lo": -0.01, "hi": 0.2}) == "dcn_v2"
    assert r((0.20, 0.5), (0.30, 0.6), {"mean": -0.1, "lo": -0.2, "hi": -0.01}) == "dcn_v2"
    # without one (no bootstrap): NDCG, then recall; a tie keeps the simpler model
    nan = {"mean": 0.1, "lo": float("nan"), "hi": float("nan")}
    assert r((0.30, 0.5), (0.20, 0.6), nan) == "sequence"
    assert r((0.20, 0.6), (0.30, 0.5)) == "dcn_v2"
    assert r((0.30, 0.6), (0.30, 0.5)) == "sequence"
    assert r((0.30, 0.5), (0.30, 0.5)) == "dcn_v2"


def test_recycled_item_rows_start_afresh_in_the_attention_table():
    torch.manual_seed(0)
    att = TargetAttention(num_rows=10, dim=4, length=3, hidden=5)
    opt = torch.optim.Adam(att.parameters(), lr=0.1)
    ids = torch.tensor([1, 2, 3])
    from torchrec.sparse.jagged_tensor import JaggedTensor

    att(JaggedTensor(values=ids, lengths=torch.tensor([3])), torch.tensor([4])).sum().backward()
    opt.step()
    before = att.items.weight.detach().clone()
    moments = opt.state[att.items.weight]["exp_avg"]
    assert moments[2].abs().sum() > 0  # row 2 was trained
    att.reinit_rows([2], generator=torch.Generator().manual_seed(1), optimizer=opt)
    after = att.items.weight.detach()
    assert not torch.equal(after[2], before[2]) and after[2].abs().max() <= (1 / 10) ** 0.5
    assert torch.equal(after[[0, 1, 3, 4]], before[[0, 1, 3, 4]])  # the others untouched
    assert moments[2].abs().sum() == 0 and moments[1].abs().sum() > 0


def test_a_warm_start_keeps_the_attention_it_was_trained_with(world, tmp_path):
    """A new day for the sequence store: one warm pass on top of the attention's weights (its
    shape from the checkpoint, whatever the config now says)."""
    paths, _, _, seq = world
    ckpt = Checkpoint.load(seq.path)
    knobs = replace(TINY, ranking=RankingTrainConfig(sequence=3, embedding_dim=8))
    from recassets.training.loop import train

    warm = train("ranking", paths.table("training_examples"), DAYS, knobs, checkpoint=ckpt)
    assert warm.partitions == DAYS and warm.config["model"]["sequence"] == 50
    # a ranker that trained on the held-out day cannot be judged on it
    leaked = warm.save(tmp_path / "leaked.pt")
    paths_, tt = paths, world[1]
    with pytest.raises(ValueError, match="trained on by the ranker .*leaked.pt"):
        E.evaluate(paths_, tt.path, world[2].path, sequence_ranking=leaked, bootstrap=0)
    with pytest.raises(ValueError, match="trained on by the ranker .*leaked.pt"):
        E.evaluate(paths_, tt.path, leaked, bootstrap=0)
