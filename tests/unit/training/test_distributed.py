"""Sharded training (``recassets.training.distributed``): 2 CPU processes with gloo on the
planted tiny data, against the single-process loop on the same data.

The multi-process tests are marked ``integration``: each launch starts 2 interpreters that
import torchrec and rendezvous (15-40 s on the 2 shared cores here)."""

from __future__ import annotations

import json
import math
import os
import socket
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
from torch.multiprocessing.spawn import spawn

from recassets.training import distributed as DT
from recassets.training import sharding as S
from recassets.training.checkpoint import Checkpoint
from recassets.training.inference import item_embeddings, user_embeddings
from recassets.training.loop import RankingTrainConfig, train_ranking, train_two_tower
from recassets.training.schema import ITEM_DENSE
from support import planted

from .tiny import DAYS, N_CATEGORIES, TINY, VOCAB
from .torch_threads import one_torch_thread  # noqa: F401

EPOCHS = 3
# Tolerance of the loss comparison, relative, on the last pass's mean loss after 3 passes.
# Why not tighter: 2 ranks take half the steps per pass (batch_size is per rank, the global
# batch doubles at the same learning rates), the summed-vs-averaged gradients of the tables and
# the dropped remainder rows change the path; measured gap on this data: 3 % (4.24 vs 4.37).
# Why it still means "trained": a run that does not learn (lr 0) stays near its first loss
# (~5.2, about 19 % above): test_a_run_that_does_not_learn_fails_the_comparison.
LOSS_RTOL = 0.10
TABLES = ("user_id", "item_id", "country", "device", "age_bucket", "category", "creator")


# --- no processes -------------------------------------------------------------------------------


def test_constraints_split_the_named_tables_by_rows_and_place_the_others_whole():
    got = S.constraints(TABLES, ("item_id",))
    assert {t: c.sharding_types for t, c in got.items()} == {
        t: ["row_wise" if t == "item_id" else "table_wise"] for t in TABLES
    }
    assert {k for c in got.values() for k in c.compute_kernels or []} == {"fused"}
    with pytest.raises(KeyError, match="bogus"):
        S.constraints(TABLES, ("bogus",))


def test_the_switch_reads_the_environment():
    assert DT.processes_from_env({}) == 1  # default: today's in-process loop
    assert DT.processes_from_env({DT.ENV_PROCESSES: "2"}) == 2
    with pytest.raises(ValueError, match=DT.ENV_PROCESSES):
        DT.processes_from_env({DT.ENV_PROCESSES: "0"})
    assert DT.row_wise_from_env({}) == ("item_id",)
    assert DT.row_wise_from_env({DT.ENV_ROW_WISE: "item_id, user_id"}) == ("item_id", "user_id")


def test_the_config_travels_to_the_ranks_unchanged():
    config = replace(TINY, device="cpu", epochs=2)
    assert DT.config_from_dict(DT.config_to_dict(config)) == config


def test_more_local_ranks_than_gpus_are_refused_up_front(monkeypatch):
    # rank 1 of 2 on a one-GPU pod took cuda:1 (an invalid ordinal); NCCL refuses 2 ranks on 1
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(DT, "_run_group", lambda *a: pytest.fail("ranks started"))
    with pytest.raises(ValueError, match=rf"{DT.ENV_PROCESSES}=2 local ranks on CUDA, but 1 GPU"):
        DT.train_distributed("two_tower", "/nowhere", DAYS[:1], TINY, processes=2)
    DT.check_gpus(TINY, 1)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    DT.check_gpus(TINY, 2)  # one GPU each
    with pytest.raises(ValueError, match="device cuda:0 for every rank"):
        DT.check_gpus(replace(TINY, device="cuda:0"), 2)
    DT.check_gpus(replace(TINY, device="cpu"), 8)  # gloo: any number of ranks


@pytest.mark.parametrize(
    "key",
    ["aws_access_key_id", "AWS_SECRET_ACCESS_KEY", "aws_session_token", "password", "token", "key",
     "client_secret", "azure_storage_account_key"],
)  # fmt: skip
def test_credentials_never_go_into_the_spec(tmp_path, monkeypatch, key):
    spec = tmp_path / "spec.json"
    fine = {"aws_region": "eu-west-1", "aws_endpoint": "http://minio:9000", "allow_http": "true"}
    with pytest.raises(ValueError, match="recassets-object-store Secret") as err:
        DT.write_spec(spec, "two_tower", "/t", DAYS[:1], TINY, output=tmp_path / "o.pt",
                      storage_options={**fine, key: "AKIA-or-whatever"})  # fmt: skip
    assert key in str(err.value) and "AKIA" not in str(err.value) and not spec.exists()
    monkeypatch.setattr(DT, "_run_group", lambda *a: pytest.fail("ranks started"))
    with pytest.raises(ValueError, match=key):
        DT.train_distributed("two_tower", "/t", DAYS[:1], TINY, storage_options={key: "x"})
    DT.write_spec(spec, "two_tower", "/t", DAYS[:1], TINY, output="o", storage_options=fine)
    assert json.loads(spec.read_text())["storage_options"] == fine


# --- 2 processes --------------------------------------------------------------------------------


def _collectives_rank(rank: int, port: int, out: str) -> None:
    """One of 2 gloo ranks: the end of run's sums and gathers as ``fit_sharded`` makes them,
    with ``Tensor.to`` a copy (as a move to CUDA is) and the device said to be CUDA."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    try:
        torch.Tensor.to = lambda self, *a, **k: self.clone()  # as a move to CUDA: a copy
        # [last_loss_sum, last_examples, examples, first_loss, last_positives] of this rank
        sums = DT._sum_over_ranks(
            [10.0 * (rank + 1), 100, 300, 5.2, 7 * rank], torch.device("cuda")
        )
        gloo = S.gather_to_rank0({"rank": rank})  # over the default group
        dist.get_backend = lambda *a: "nccl"  # as under NCCL: over a gloo group of its own
        own = S.gather_to_rank0({"rank": rank})
        if rank == 0:
            Path(out).write_text(json.dumps({"sums": sums, "gloo": gloo, "own": own}))
        else:
            assert gloo is None and own is None
    finally:
        dist.destroy_process_group()


@pytest.mark.integration
def test_the_run_totals_are_summed_over_ranks_where_the_collective_ran_on_a_copy(tmp_path):
    # On CUDA the totals went to the GPU for NCCL as a copy, and the CPU tensor read afterwards
    # still held rank 0's own numbers: examples 1/N, first_loss / N, train_positives rank 0's
    # (0 here: train_next took the run for a one-class one and saved no version).
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    spawn(_collectives_rank, args=(port, str(tmp_path / "out.json")), nprocs=2)
    got = json.loads((tmp_path / "out.json").read_text())
    assert got["sums"] == pytest.approx([30.0, 200, 600, 10.4, 7])
    assert got["gloo"] == got["own"] == [{"rank": 0}, {"rank": 1}]


def test_objects_are_gathered_over_gloo_when_the_run_is_on_nccl(monkeypatch):
    calls: list[tuple[str, object]] = []
    monkeypatch.setattr(S.dist, "get_rank", lambda *a: 0)
    monkeypatch.setattr(S.dist, "get_world_size", lambda *a: 2)
    monkeypatch.setattr(
        S.dist, "new_group", lambda **k: calls.append(("new_group", k)) or "gloo-group"
    )

    def gather_object(obj, out, dst, group=None):
        calls.append(("gather", group))
        out[:] = [obj, obj]

    monkeypatch.setattr(S.dist, "gather_object", gather_object)
    for backend, group in (("gloo", None), ("nccl", "gloo-group")):
        monkeypatch.setattr(S.dist, "get_backend", lambda *a, b=backend: b)
        calls.clear()
        assert S.gather_to_rank0("x") == ["x", "x"]
        made = [("new_group", {"backend": "gloo"})] if backend == "nccl" else []
        assert calls == [*made, ("gather", group)], backend


def _hit_rate(ckpt: Checkpoint) -> float:
    """Top-10 retrieval on the held-out planted day: the share of items of the user's planted
    category (random: 1 / N_CATEGORIES)."""
    day = planted.make_day(3, n_categories=N_CATEGORIES)
    item_ids, item_vecs = item_embeddings(
        ckpt, day.select(["item_id", "category", "creator", *ITEM_DENSE])
    )
    user_ids, user_vecs = user_embeddings(ckpt, day)
    _, fi = np.unique(item_ids, return_index=True)
    _, fu = np.unique(user_ids, return_index=True)
    item_ids, item_vecs, user_ids, user_vecs = (
        item_ids[fi],
        item_vecs[fi],
        user_ids[fu],
        user_vecs[fu],
    )
    top = np.argsort(-(user_vecs @ item_vecs.T), axis=1)[:, :10]
    return float((item_ids[top] % N_CATEGORIES == (user_ids % N_CATEGORIES)[:, None]).mean())


@pytest.fixture(scope="module")
def one_and_two(table, tmp_path_factory) -> tuple[Checkpoint, Checkpoint]:
    config = replace(TINY, epochs=EPOCHS)
    out = tmp_path_factory.mktemp("models")
    one = train_two_tower(table, DAYS[:3], config, output=out / "one.pt")
    two = DT.train_distributed(
        "two_tower", table, DAYS[:3], config, processes=2, output=out / "two.pt", timeout_s=600
    )
    return one, two


def _rel_gap(a: float, b: float) -> float:
    return abs(a - b) / abs(b)


@pytest.mark.integration
def test_two_processes_reach_the_loss_of_one(one_and_two):
    one, two = one_and_two
    l1, l2 = one.metrics["loss"], two.metrics["loss"]
    assert math.isfinite(l2) and _rel_gap(l2, l1) <= LOSS_RTOL, (l1, l2)
    assert two.metrics["processes"] == 2 and one.metrics["examples"] > 0
    # the same examples, but for at most one leftover row per day and pass
    assert 0 <= one.metrics["examples"] - two.metrics["examples"] <= EPOCHS * 3
    assert two.metrics["loss"] < two.metrics["first_loss"]  # it learned during the run


@pytest.mark.integration
def test_a_run_that_does_not_learn_fails_the_comparison(table, one_and_two):
    one, _ = one_and_two
    frozen = DT.train_distributed(
        "two_tower", table, DAYS[:3], replace(TINY, epochs=EPOCHS, lr=0.0, embedding_lr=0.0),
        processes=2, timeout_s=600,
    )  # fmt: skip
    assert _rel_gap(frozen.metrics["loss"], one.metrics["loss"]) > LOSS_RTOL


@pytest.mark.integration
def test_the_plan_holds_both_table_wise_and_row_wise(one_and_two):
    _, two = one_and_two
    plan = two.runs[-1]["sharding"]
    assert {t: p["sharding"] for t, p in plan.items()} == {
        t: "row_wise" if t == "item_id" else "table_wise" for t in TABLES
    }
    item_rows = two.config["model"]["tables"][1]["num_embeddings"]  # 164
    assert plan["item_id"]["ranks"] == [0, 1]
    assert plan["item_id"]["rows"] == [[0, item_rows // 2], [item_rows // 2, item_rows // 2]]
    whole = [p["ranks"] for t, p in plan.items() if t != "item_id"]
    assert all(len(r) == 1 for r in whole) and {r[0] for r in whole} == {
        0,
        1,
    }  # both ranks hold some


@pytest.mark.integration
def test_sharded_checkpoint_has_the_loops_format_and_serves_like_it(one_and_two):
    one, two = one_and_two
    raw = torch.load(two.path, weights_only=True)  # plain data, as the loop writes
    assert {k: v.shape for k, v in raw["state_dict"].items()} == {
        k: v.shape for k, v in one.state_dict.items()
    }
    emb, emb1 = raw["optimizer"]["embedding"], one.optimizer["embedding"]
    assert emb["kind"] == emb1["kind"] == "fused_rowwise_adagrad" and emb["gathered_from"] == 2
    assert {k: {n: v.shape for n, v in e.items()} for k, e in emb["state"].items()} == {
        k: {n: v.shape for n, v in e.items()} for k, e in emb1["state"].items()
    }
    assert emb["state"]["item_id.weight"]["item_id.weight.momentum_1"].abs().sum() > 0
    assert raw["optimizer"]["dense"]["state"]  # Adam's moments came back too
    assert two.config["model"] == one.config["model"] and two.partitions == one.partitions
    hr1, hr2 = _hit_rate(one), _hit_rate(two)
    assert hr2 > 0.6 and abs(hr2 - hr1) <= 0.1, (hr1, hr2)  # random: 0.25


@pytest.mark.integration
@pytest.mark.parametrize("sequence", [0, 4], ids=["dcn_v2", "sequence_aware"])
def test_a_sharded_warm_start_continues_from_an_unsharded_checkpoint(table, tmp_path, sequence):
    # The ranker (per-row BCE, so a frozen model's mean loss does not depend on how rows are
    # batched): trained unsharded on days 0-1, warm-started sharded on day 2 with every learning
    # rate 0. Its loss on day 2 must be the unsharded model's (a single-process warm start with
    # the same frozen rates), not a fresh model's. The sequence-aware ranker's attention (a
    # dense module beside the sharded tables) travels the same way.
    config = replace(
        TINY, batch_size=128, same_day_history=False,
        ranking=RankingTrainConfig(sequence=sequence),
    )  # fmt: skip
    first = train_ranking(table, DAYS[:2], replace(config, epochs=3), output=tmp_path / "r.pt")
    frozen = replace(config, lr=0.0, embedding_lr=0.0)
    warm = DT.train_distributed(
        "ranking", table, DAYS[:3], frozen, processes=2, checkpoint=first.path, timeout_s=600
    )
    # the single-process warm start, frozen alike: the same vocabulary update, the same rows
    expected = train_ranking(table, DAYS[:3], frozen, checkpoint=first).metrics["loss"]
    fresh = train_ranking(table, DAYS[2:3], replace(frozen, epochs=1)).metrics["loss"]
    assert warm.runs[-1]["warm_start"] and warm.runs[-1]["partitions"] == [DAYS[2]]
    assert warm.metrics["loss"] == pytest.approx(expected, rel=1e-4)
    assert abs(warm.metrics["loss"] - fresh) > 0.05, (warm.metrics["loss"], fresh)
    # scattered into the shards and gathered back: every tensor is the checkpoint's
    for key, value in first.state_dict.items():
        assert torch.equal(warm.state_dict[key], value), key
    assert len(warm.runs) == 2 and warm.partitions == DAYS[:3]
    assert any(k.startswith("sequence.") for k in warm.state_dict) == bool(sequence)


@pytest.mark.integration
def test_a_failing_rank_stops_the_group_and_says_why(table):
    with pytest.raises(DT.DistributedTrainingError, match="unknown tables"):
        DT.train_distributed(
            "two_tower", table, DAYS[:1], TINY, processes=2, row_wise=("bogus",), timeout_s=300
        )


# --- the training asset's path: policy.train_next -----------------------------------------------


@pytest.fixture
def store(tmp_path):
    from recassets.paths import Paths

    paths = Paths.at(tmp_path / "home")
    planted.write_days(paths.table("training_examples"), range(4), n_categories=N_CATEGORIES)
    return paths


def test_train_next_stays_in_process_by_default(store, monkeypatch):
    from recassets.training import policy as P

    monkeypatch.delenv(DT.ENV_PROCESSES, raising=False)
    launched: list[int] = []
    monkeypatch.setattr(DT, "train_distributed", lambda *a, **k: launched.append(1))
    result = P.train_next(store, "two_tower", TINY)
    assert launched == [] and "processes" not in result.checkpoint.metrics
    assert result.new_version and result.path.endswith("two_tower/0001.pt")


@pytest.mark.integration
def test_the_switch_makes_train_next_train_sharded(store, monkeypatch):
    from recassets.training import policy as P
    from recassets.training.inference import load_two_tower

    monkeypatch.setenv(DT.ENV_PROCESSES, "2")
    result = P.train_next(store, "two_tower", TINY)
    assert result.new_version and result.path.endswith("two_tower/0001.pt")
    assert result.checkpoint.metrics["processes"] == 2
    assert result.checkpoint.partitions == DAYS[:3]  # the last day held out, as in-process
    model, _ = load_two_tower(result.path)  # the store's file serves as any other
    assert model.config.dim == 16


@pytest.mark.integration
def test_one_sharded_rank_is_the_loop(table, one_and_two):
    # 1 rank: the same batches in the same order from the same initial weights, the same
    # fused row-wise Adagrad (now TorchRec's sharded module) and Adam: the loop's run, up to
    # float rounding. What 2 ranks change is then only the split.
    one, _ = one_and_two
    dmp1 = DT.train_distributed(
        "two_tower", table, DAYS[:3], replace(TINY, epochs=EPOCHS), processes=1, timeout_s=600
    )
    assert dmp1.metrics["examples"] == one.metrics["examples"]
    assert dmp1.metrics["loss"] == pytest.approx(one.metrics["loss"], rel=1e-4)
    for key, value in one.state_dict.items():
        torch.testing.assert_close(dmp1.state_dict[key], value, rtol=1e-3, atol=1e-4)


@pytest.mark.integration
def test_recycled_rows_are_reinitialized_in_their_shards(tmp_path):
    # test_loop's recycling world: 8 user rows, ttl 0, day 1 brings 8 new users who take over
    # the expired users' rows. Sharded with user_id row-wise (so the rows sit in 2 shards) and
    # every learning rate 0, the only change to the weights is that re-initialization: the
    # sharded checkpoint must equal the loop's, tensor for tensor (same fresh draws).
    path = str(tmp_path / "training_examples")
    planted.write_day(path, planted.make_day(0, n_users=8, impressions_per_user=12))
    planted.write_day(
        path, planted.make_day(1, n_users=8, impressions_per_user=12, user_offset=100)
    )
    ids = {"key_type": "int64", "num_oov_buckets": 2, "min_count": 1, "ttl": 0}
    config = replace(TINY, vocab={**VOCAB, "user_id": {**ids, "capacity": 8}})
    first = train_two_tower(path, DAYS[:1], config, output=tmp_path / "first.pt")
    frozen = replace(config, lr=0.0, embedding_lr=0.0)
    loop = train_two_tower(path, DAYS[:2], frozen, checkpoint=first)
    sharded = DT.train_distributed(
        "two_tower", path, DAYS[:2], frozen, processes=2, checkpoint=first.path,
        row_wise=("user_id",), timeout_s=600,
    )  # fmt: skip
    assert sharded.runs[-1]["sharding"]["user_id"]["sharding"] == "row_wise"
    assert sharded.metrics["recycled_rows"] == loop.metrics["recycled_rows"] == 8
    key = "embeddings.ebc.embedding_bags.user_id.weight"
    rows = list(range(2, 10))  # after the 2 OOV buckets: one half in each shard
    assert not torch.equal(sharded.state_dict[key][rows], first.state_dict[key][rows])
    for k, value in loop.state_dict.items():
        assert torch.equal(sharded.state_dict[k], value), k


def _our_workers() -> set[int]:
    """Live worker processes started by this test process."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, ppid = stat.read_text().rsplit(")", 1)[1].split()[:2]
            cmd = (stat.parent / "cmdline").read_bytes()
        except (OSError, ValueError):
            continue
        if int(ppid) == os.getpid() and state != "Z" and b"recassets.training.distributed" in cmd:
            found.add(int(stat.parent.name))
    return found


@pytest.mark.integration
def test_a_run_past_its_time_is_stopped_with_all_its_ranks(table):
    with pytest.raises(DT.DistributedTrainingError, match="ran past"):
        DT.train_distributed("two_tower", table, DAYS[:3], TINY, processes=2, timeout_s=3)
    assert _our_workers() == set()
