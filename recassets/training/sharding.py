"""TorchRec ``DistributedModelParallel`` plumbing for the sharded trainer: the plan, the model,
and moving state between the sharded module and the unsharded checkpoint format.

``recassets.training.distributed`` runs the loop; this module knows how the tables are split.
The planner (``EmbeddingShardingPlanner``) gets one constraint per table: the tables named in
``row_wise`` are split by rows across all ranks (``ShardingType.ROW_WISE``), every other table
is placed whole on one rank (``TABLE_WISE``), each with fbgemm's fused kernel
(``EmbeddingComputeKernel.FUSED``, the optimizer applied inside the backward pass, as in the
single-process loop). Dense layers are replicated: DMP wraps them in DDP.

Row-wise on the CPU: TorchRec's stock ``EmbeddingBagCollectionSharder`` offers row-wise
sharding on CUDA only (its pooled output is combined by a reduce-scatter); gloo runs that
reduce-scatter here (torch 2.14, torchrec 1.9), so ``_Sharder`` adds ``ROW_WISE`` to the CPU's
list. Measured only on 2 CPU processes on one host.

State moves through the sharded state dict, whose ``ShardedTensor`` local shards are views of
fbgemm's weights and optimizer buffers (``_local_views`` checks the write-through once per run):
loading the full tensors writes each rank's rows into its shards; saving sends every shard to
rank 0 (``gather_state``). The full, unsharded state is therefore materialized on each
rank at the start and on rank 0 at the end: fine while a table fits one host's memory, which
is all the checkpoint format (one ``torch.save`` file) allows anyway; tables beyond that need
``torch.distributed.checkpoint`` and a sharded checkpoint format.

Shapes: R rows of a table, E its embedding dim.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed._shard.sharded_tensor.api import ShardedTensor
from torchrec.distributed.embedding_types import EmbeddingComputeKernel
from torchrec.distributed.embeddingbag import EmbeddingBagCollectionSharder
from torchrec.distributed.model_parallel import DistributedModelParallel
from torchrec.distributed.planner import EmbeddingShardingPlanner, ParameterConstraints, Topology
from torchrec.distributed.types import ShardingPlan, ShardingType

# the tables split by rows by default (item_id): defined where the settings are read
from recassets.training.settings import DEFAULT_ROW_WISE as DEFAULT_ROW_WISE

# Where a table's weight sits in the module, sharded or not (EmbeddingTables.ebc).
_WEIGHT = "embeddings.ebc.embedding_bags.{}.weight"
_EBC_PATH = "embeddings.ebc"


class _Sharder(EmbeddingBagCollectionSharder):
    """The stock sharder, plus row-wise sharding on the CPU (see the module docstring)."""

    def sharding_types(self, compute_device_type: str) -> list[str]:
        types = list(super().sharding_types(compute_device_type))
        if ShardingType.ROW_WISE.value not in types:
            types.append(ShardingType.ROW_WISE.value)
        return types


def sharder(embedding_lr: float, eps: float = 1e-8) -> EmbeddingBagCollectionSharder:
    """fbgemm's exact row-wise Adagrad fused into the sharded tables' backward, with the
    single-process loop's learning rate and epsilon (``recassets.models.embeddings``)."""
    from fbgemm_gpu.split_embedding_configs import EmbOptimType

    return _Sharder(
        fused_params={
            "optimizer": EmbOptimType.EXACT_ROWWISE_ADAGRAD,
            "learning_rate": embedding_lr,
            "eps": eps,
        }
    )


def constraints(tables: Iterable[str], row_wise: Sequence[str]) -> dict[str, ParameterConstraints]:
    """One constraint per table: row-wise for ``row_wise``, table-wise for the others."""
    names = list(tables)
    unknown = set(row_wise) - set(names)
    if unknown:
        raise KeyError(
            f"row_wise (RECASSETS_TRAIN_ROW_WISE) names unknown tables {sorted(unknown)} (have {names})"
        )
    return {
        name: ParameterConstraints(
            sharding_types=[
                (ShardingType.ROW_WISE if name in row_wise else ShardingType.TABLE_WISE).value
            ],
            compute_kernels=[EmbeddingComputeKernel.FUSED.value],
        )
        for name in names
    }


def shard(
    model: nn.Module,
    table_names: Iterable[str],
    *,
    row_wise: Sequence[str],
    embedding_lr: float,
    device: torch.device,
) -> tuple[DistributedModelParallel, ShardingPlan]:
    """``model`` (built with ``embedding_optimizer="none"``: a plain ``EmbeddingBagCollection``,
    best on the meta device) sharded by the planner over the default process group."""
    world = dist.get_world_size()
    sh = sharder(embedding_lr)
    planner = EmbeddingShardingPlanner(
        topology=Topology(world_size=world, compute_device=device.type),
        constraints=constraints(table_names, row_wise),
    )
    # planned on rank 0 and broadcast: every rank shards by the same plan
    sharders: list[Any] = [sh]  # ModuleSharder is invariant in its module type
    plan = planner.collective_plan(model, sharders, dist.GroupMember.WORLD)
    dmp = DistributedModelParallel(model, device=device, plan=plan, sharders=sharders)
    return dmp, plan


def plan_summary(plan: ShardingPlan) -> dict[str, dict[str, Any]]:
    """``{table: {"sharding": "row_wise" | "table_wise", "ranks": [...], "rows": [...]}}``
    from the plan itself (what the tests assert on and the checkpoint records)."""
    module_plan: Any = plan.plan[_EBC_PATH]
    out: dict[str, dict[str, Any]] = {}
    for table, ps in module_plan.items():
        shards = ps.sharding_spec.shards if ps.sharding_spec is not None else []
        out[table] = {
            "sharding": ps.sharding_type,
            "ranks": list(ps.ranks or []),
            "rows": [[int(s.shard_offsets[0]), int(s.shard_sizes[0])] for s in shards],
        }
    return out


# --- state in and out ---------------------------------------------------------------------------


def _copy_into(dst: torch.Tensor | ShardedTensor, full: torch.Tensor) -> None:
    """Write ``full`` into ``dst``: a plain tensor whole, a sharded one shard by shard."""
    if isinstance(dst, ShardedTensor):
        for s in dst.local_shards():
            idx = tuple(
                slice(o, o + n)
                for o, n in zip(s.metadata.shard_offsets, s.metadata.shard_sizes, strict=True)
            )
            s.tensor.copy_(full[idx].to(s.tensor.device, s.tensor.dtype))
    else:
        dst.copy_(full.to(dst.device, dst.dtype))


def _local_pieces(t: torch.Tensor | ShardedTensor) -> list[tuple[list[int], torch.Tensor]]:
    """This rank's pieces of ``t`` as (offsets, CPU copy): its shards, or all of a plain one."""
    if isinstance(t, ShardedTensor):
        return [
            (list(s.metadata.shard_offsets), s.tensor.detach().to("cpu", copy=True))
            for s in t.local_shards()
        ]
    return [([0] * t.dim(), t.detach().to("cpu", copy=True))]


def _assemble(
    per_rank: Sequence[Mapping[str, tuple[list[int], list[tuple[list[int], torch.Tensor]]]]],
) -> dict[str, torch.Tensor]:
    """Full tensors from every rank's pieces (``{key: (size, [(offsets, piece)])}``)."""
    out: dict[str, torch.Tensor] = {}
    for pieces in per_rank:
        for key, (size, parts) in pieces.items():
            for offsets, piece in parts:
                if key not in out:
                    out[key] = torch.zeros(size, dtype=piece.dtype)
                idx = tuple(slice(o, o + n) for o, n in zip(offsets, piece.shape, strict=True))
                out[key][idx] = piece
    return out


def _fused_state(dmp: DistributedModelParallel) -> dict[str, dict[str, Any]]:
    # {"embeddings.ebc.embedding_bags.<t>.weight": {"<t>.momentum1": ShardedTensor (R,)}}
    return dmp.fused_optimizer.state_dict()["state"]


def _table(key: str) -> str:
    return key.removeprefix("embeddings.ebc.embedding_bags.").removesuffix(".weight")


def load_state(
    dmp: DistributedModelParallel,
    state_dict: Mapping[str, torch.Tensor],
    embedding_optimizer: Mapping[str, Any] | None,
) -> bool:
    """Load an unsharded checkpoint's tensors into ``dmp`` (each rank keeps its rows), and the
    embedding optimizer's row-wise Adagrad accumulators when ``embedding_optimizer`` holds the
    same kind (the single-process format: ``{"kind", "state": {"<t>.weight":
    {"<t>.weight.momentum_1": (R,)}}}``). Returns whether the optimizer state was loaded."""
    live = dmp.state_dict()
    missing = set(live) - set(state_dict)
    if missing:
        raise KeyError(f"state dict lacks {sorted(missing)}")
    with torch.no_grad():
        for key, dst in live.items():
            _copy_into(dst, state_dict[key])
        if not embedding_optimizer or embedding_optimizer.get("kind") != "fused_rowwise_adagrad":
            return False
        saved = embedding_optimizer["state"]
        for key, entry in _fused_state(dmp).items():
            t = _table(key)
            for name, dst in entry.items():
                _copy_into(dst, saved[f"{t}.weight"][f"{t}.weight.{_single_name(name, t)}"])
    return True


def _single_name(sharded_name: str, table: str) -> str:
    # sharded "<t>.momentum1" <-> single-process "<t>.weight.momentum_1" (FusedEmbeddingBagCollection)
    name = sharded_name.removeprefix(f"{table}.")
    return {"momentum1": "momentum_1", "momentum2": "momentum_2"}.get(name, name)


def object_group() -> Any:
    """The group to gather Python objects over: the default one under gloo; under NCCL a new
    gloo group of the same ranks (a collective: every rank calls it). ``gather_object`` over
    NCCL pickles each rank's object into a CUDA tensor and stages all of them on rank 0's GPU
    (every shard of every table, at the end of a run), where the GPU memory is the scarce one;
    over gloo they pass through host memory, where the checkpoint is assembled anyway."""
    if dist.get_backend() == dist.Backend.GLOO:
        return None
    return dist.new_group(backend="gloo")


def gather_to_rank0(obj: Any) -> list[Any] | None:
    """``obj`` of every rank in rank order on rank 0, None on the others (a collective)."""
    group = object_group()
    rank0 = dist.get_rank() == 0
    out: list[Any] = [None] * dist.get_world_size() if rank0 else []
    dist.gather_object(obj, out if rank0 else None, dst=0, group=group)
    return out if rank0 else None


def gather_state(
    dmp: DistributedModelParallel,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
    """``(state_dict, embedding optimizer state)`` unsharded, in the single-process loop's
    format, on rank 0 (None on the other ranks). A collective: every rank must call it.

    Every rank sends its local pieces to rank 0 (``gather_to_rank0``) rather than calling
    ``ShardedTensor.gather``: the fused optimizer's state dict lists only the tables a rank
    holds, so its sharded tensors are not on every rank for a collective gather."""
    weights = {key: (list(t.size()), _local_pieces(t)) for key, t in dmp.state_dict().items()}
    accumulators = {
        f"{_table(key)}.weight.{_single_name(name, _table(key))}": (
            list(v.size()),
            _local_pieces(v),
        )
        for key, entry in _fused_state(dmp).items()
        for name, v in entry.items()
    }
    gathered = gather_to_rank0((weights, accumulators))
    if gathered is None:
        return None
    state = _assemble([w for w, _ in gathered])
    emb: dict[str, dict[str, torch.Tensor]] = {}
    for name, full in sorted(_assemble([a for _, a in gathered]).items()):
        emb.setdefault(name.split(".weight.")[0] + ".weight", {})[name] = full
    return state, {"kind": "fused_rowwise_adagrad", "state": emb}


def reinit_rows(
    dmp: DistributedModelParallel,
    table: str,
    rows: Any,
    *,
    generator: torch.Generator | None = None,
) -> None:
    """``EmbeddingTables.reinit_rows`` for a sharded table: the same fresh rows (drawn alike on
    every rank from the same generator state, so equal to the single-process draw) written by
    whichever rank holds them, and their Adagrad accumulators zeroed."""
    rows_t = torch.as_tensor(rows, dtype=torch.long).reshape(-1)
    if rows_t.numel() == 0:
        return
    key = _WEIGHT.format(table)
    weight = dmp.state_dict()[key]
    num_rows, dim = weight.size()
    bound = math.sqrt(1.0 / num_rows)
    fresh = torch.empty(rows_t.numel(), dim).uniform_(-bound, bound, generator=generator)
    with torch.no_grad():
        for st, values in [(weight, fresh)] + [
            (v, None) for v in _fused_state(dmp).get(key, {}).values()
        ]:
            for s in st.local_shards():
                r0, n = s.metadata.shard_offsets[0], s.metadata.shard_sizes[0]
                mine = (rows_t >= r0) & (rows_t < r0 + n)
                if not bool(mine.any()):
                    continue
                local = (rows_t[mine] - r0).to(s.tensor.device)
                if values is None:
                    s.tensor[local] = 0
                else:
                    c0, c = s.metadata.shard_offsets[1], s.metadata.shard_sizes[1]
                    s.tensor[local] = values[mine][:, c0 : c0 + c].to(s.tensor.dtype)


def check_views(dmp: DistributedModelParallel) -> None:
    """Fail early unless the sharded state dict's shards are views of the live weights (what
    ``load_state`` and ``reinit_rows`` write through): two calls share storage."""
    pairs = [(dmp.state_dict(), dmp.state_dict())]
    pairs += [
        (a, b) for a, b in zip(_fused_state(dmp).values(), _fused_state(dmp).values(), strict=True)
    ]
    for a, b in pairs:
        for key, t in a.items():
            if isinstance(t, ShardedTensor):
                for sa, sb in zip(t.local_shards(), b[key].local_shards(), strict=True):
                    if sa.tensor.data_ptr() != sb.tensor.data_ptr():
                        raise RuntimeError(f"{key}: the sharded state is a copy, not the live one")
