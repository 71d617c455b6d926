from __future__ import annotations

import torch
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recassets.models import EmbeddingTables, TableSpec
from recassets.models.embeddings import complete_kjt, dense_parameters, resolve_embedding_optimizer

from .helpers import one_torch_thread  # noqa: F401

TABLES = (TableSpec("item", 10, 4, ("item_id", "history")), TableSpec("user", 6, 4, ("user_id",)))


def batch() -> KeyedJaggedTensor:
    # item_id: rows 1, 2; history: [3, 4], []; user_id: 0, 5
    return KeyedJaggedTensor.from_lengths_sync(
        ["item_id", "history", "user_id"],
        torch.tensor([1, 2, 3, 4, 0, 5]),
        torch.tensor([1, 1, 2, 0, 1, 1]),
    )


def test_fused_rowwise_adagrad_updates_only_the_rows_a_batch_touched():
    torch.manual_seed(0)
    tables = EmbeddingTables(TABLES, lr=0.1)
    assert tables.fused and tables.optimizer_kind == "fused_rowwise_adagrad"
    before = tables.weight("item").detach().clone()
    pooled = tables(batch())
    assert pooled["history"].shape == (2, 4)
    torch.testing.assert_close(pooled["history"][1], torch.zeros(4))  # empty bag
    (pooled["item_id"].sum() + pooled["history"].sum()).backward()  # update happens here
    changed = (tables.weight("item") != before).any(dim=1).nonzero().flatten().tolist()
    assert changed == [1, 2, 3, 4]
    momentum = tables.optimizer_state_dict()["state"]["item.weight"]["item.weight.momentum_1"]
    assert (momentum[[1, 2, 3, 4]] > 0).all() and (momentum[[0, 5, 6, 7, 8, 9]] == 0).all()


def test_reinit_rows_resets_weights_and_row_optimizer_state():
    torch.manual_seed(0)
    tables = EmbeddingTables(TABLES, lr=0.1)
    (tables(batch())["item_id"].sum()).backward()
    w_before = tables.weight("item").detach().clone()
    tables.reinit_rows("item", [1], generator=torch.Generator().manual_seed(1))
    w = tables.weight("item").detach()
    assert not torch.equal(w[1], w_before[1])
    assert w[1].abs().max() <= (1 / 10) ** 0.5
    torch.testing.assert_close(w[2], w_before[2])
    momentum = tables.optimizer_state_dict()["state"]["item.weight"]["item.weight.momentum_1"]
    assert momentum[1] == 0 and momentum[2] > 0


def test_optimizer_state_round_trips_and_other_modes_start_fresh():
    torch.manual_seed(0)
    a = EmbeddingTables(TABLES, lr=0.1)
    a(batch())["item_id"].sum().backward()
    b = EmbeddingTables(TABLES, lr=0.1)
    assert b.load_optimizer_state_dict(a.optimizer_state_dict())
    torch.testing.assert_close(b.optimizer_state_dict()["state"], a.optimizer_state_dict()["state"])
    plain = EmbeddingTables(TABLES, optimizer="adam", lr=0.1)
    assert not plain.load_optimizer_state_dict(a.optimizer_state_dict())


def test_unfused_modes_step_through_their_own_optimizer():
    for mode in ("rowwise_adagrad", "adam", "sparse_adam"):
        torch.manual_seed(0)
        tables = EmbeddingTables(TABLES, optimizer=mode, lr=0.1)
        before = tables.weight("user").detach().clone()
        tables.zero_grad()
        tables(batch())["user_id"].sum().backward()
        tables.step()
        changed = (tables.weight("user") != before).any(dim=1).nonzero().flatten().tolist()
        assert changed == [0, 5], mode


def test_missing_features_become_empty_bags():
    kjt = KeyedJaggedTensor.from_lengths_sync(
        ["user_id"], torch.tensor([3, 4]), torch.tensor([1, 1])
    )
    full = complete_kjt(kjt, ["item_id", "user_id"])
    assert full.keys() == ["item_id", "user_id"]
    assert full.lengths().tolist() == [0, 0, 1, 1]
    assert full.values().tolist() == [3, 4]


def test_cpu_always_resolves_to_the_fused_kernels_and_dense_params_exclude_tables():
    assert (
        resolve_embedding_optimizer("fused_rowwise_adagrad", torch.device("cpu"))
        == "fused_rowwise_adagrad"
    )
    module = torch.nn.Module()
    module.tables = EmbeddingTables(TABLES)
    module.head = torch.nn.Linear(4, 1)
    assert [p.shape for p in dense_parameters(module)] == [torch.Size([1, 4]), torch.Size([1])]


def test_the_dense_optimizer_is_fused_and_resumes_an_unfused_state():
    """A checkpoint's Adam state saved by the per-tensor loop resumes in the fused kernel, with
    the run's lr, and its next step equals the loop's within float32 rounding."""
    import copy

    from recassets.models.embeddings import dense_optimizer

    torch.manual_seed(0)
    init, grads = torch.randn(50, 4), [torch.randn(50, 4) for _ in range(4)]

    def stepped(opt, p, gs):
        for g in gs:
            p.grad = g.clone()
            opt.step()
        return p.detach().clone()

    loop_p = torch.nn.Parameter(init.clone())
    loop = torch.optim.Adam([loop_p], lr=0.01, foreach=False)
    stepped(loop, loop_p, grads[:3])
    saved = copy.deepcopy(loop.state_dict())  # as from a checkpoint: not the loop's own tensors

    fused_p = torch.nn.Parameter(loop_p.detach().clone())
    fused = dense_optimizer([fused_p], 0.01, saved)
    assert fused.param_groups[0]["fused"] is True and fused.param_groups[0]["lr"] == 0.01
    assert torch.equal(fused.state[fused_p]["exp_avg"], loop.state[loop_p]["exp_avg"])
    torch.testing.assert_close(stepped(fused, fused_p, grads[3:]), stepped(loop, loop_p, grads[3:]))
    # a fresh one has no moments: its first step differs from the resumed run's
    fresh_p = torch.nn.Parameter(fused_p.detach().clone())
    fresh = dense_optimizer([fresh_p], 0.5)
    assert fresh.param_groups[0]["lr"] == 0.5 and not fresh.state
