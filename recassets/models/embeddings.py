"""Embedding tables behind both models, and how their rows are optimized.

The default is TorchRec's ``FusedEmbeddingBagCollection``: fbgemm's table-batched embedding
kernel (``SplitTableBatchedEmbeddingBagsCodegen``) with the optimizer fused into the backward
pass, so no gradient for a table is ever materialized: the kernel updates only the rows a batch
touched, in place. Fused Adam is GPU-only in fbgemm; on the CPU its fused optimizers are the
Adagrad family, and row-wise Adagrad (one accumulator per row, ``EXACT_ROWWISE_ADAGRAD``) is the
standard choice for embeddings (also the DLRM default). ``benchmarks/train.py`` times the
two-tower step against the same model and the same row-wise Adagrad written in plain PyTorch
(``nn.EmbeddingBag(sparse=True)``), on the trainer's own batches: about 1.3x on the 2-core
machine (docs/benchmarks.md).

Other modes keep the same module and state-dict keys (``ebc.embedding_bags.<table>.weight``),
so weights move between them; they exist as baselines and as the fallback where fused kernels
are missing (CUDA with the CPU-only ``fbgemm-gpu-cpu`` wheel: unsharded ``EmbeddingBagCollection``
still runs there, through ``nn.EmbeddingBag``):

- ``fused_rowwise_adagrad``: the default (above).
- ``rowwise_adagrad``: plain ``EmbeddingBagCollection`` + ``torchrec.optim.RowWiseAdagrad``
  (pure PyTorch, dense gradients): the same update rule, without fbgemm kernels.
- ``adam``: plain collection, dense gradients, ``torch.optim.Adam``.
- ``sparse_adam``: plain collection with sparse gradients, ``torch.optim.SparseAdam``.
- ``none``: plain collection, no optimizer (inference: loading a checkpoint to serve).

Only long-standing TorchRec APIs are used (FusedEmbeddingBagCollection, RowWiseAdagrad, the
fused optimizer's state_dict), so that TorchRec 1.6 on the GPU machines runs the same code;
so far it has been run on 1.9 (CPU) only.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, cast

import torch
from torch import nn
from torchrec.modules.embedding_configs import EmbeddingBagConfig, PoolingType
from torchrec.modules.embedding_modules import EmbeddingBagCollection
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

if TYPE_CHECKING:
    from torchrec.modules.fused_embedding_modules import FusedEmbeddingBagCollection

EMBEDDING_OPTIMIZERS = ("fused_rowwise_adagrad", "rowwise_adagrad", "adam", "sparse_adam", "none")
DEFAULT_EMBEDDING_OPTIMIZER = "fused_rowwise_adagrad"


@dataclass(frozen=True)
class TableSpec:
    """One embedding table: ``num_embeddings`` rows of ``embedding_dim``, read by ``features``
    (several features may share a table: item ids and the history of item ids)."""

    name: str
    num_embeddings: int
    embedding_dim: int
    features: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["features"] = list(self.features)
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TableSpec:
        return cls(
            d["name"], int(d["num_embeddings"]), int(d["embedding_dim"]), tuple(d["features"])
        )


def _bag_configs(tables: Sequence[TableSpec]) -> list[EmbeddingBagConfig]:
    # MEAN pooling everywhere: single-id features are unaffected, ID lists (history) become an
    # average that does not grow with the list's length, and one pooling mode keeps all tables
    # in one fused kernel (fbgemm groups tables by pooling and dtype).
    return [
        EmbeddingBagConfig(
            name=t.name,
            embedding_dim=t.embedding_dim,
            num_embeddings=t.num_embeddings,
            feature_names=list(t.features),
            pooling=PoolingType.MEAN,
        )
        for t in tables
    ]


@functools.cache
def fused_kernels_available(device_type: str) -> bool:
    """Whether fbgemm's fused table-batched kernels run on ``device_type`` here: always on the
    CPU; on CUDA only with the CUDA ``fbgemm-gpu`` wheel (probed with one tiny step)."""
    if device_type == "cpu":
        return True
    try:
        from torchrec.modules.fused_embedding_modules import FusedEmbeddingBagCollection
        from torchrec.optim import RowWiseAdagrad

        device = torch.device(device_type)
        ebc = FusedEmbeddingBagCollection(
            tables=_bag_configs([TableSpec("probe", 4, 4, ("f",))]),
            optimizer_type=RowWiseAdagrad,
            optimizer_kwargs={"lr": 0.0},
            device=device,
        )
        kjt = KeyedJaggedTensor.from_lengths_sync(
            keys=["f"],
            values=torch.tensor([1], device=device),
            lengths=torch.tensor([1], device=device),
        )
        ebc(kjt).values().sum().backward()
        return True
    except Exception:  # noqa: BLE001 - any failure means: use the unfused path
        return False


def resolve_embedding_optimizer(requested: str, device: torch.device) -> str:
    """``requested``, or the unfused row-wise Adagrad where fused kernels are missing."""
    if requested not in EMBEDDING_OPTIMIZERS:
        raise ValueError(f"embedding optimizer {requested!r} not in {EMBEDDING_OPTIMIZERS}")
    if requested == "fused_rowwise_adagrad" and not fused_kernels_available(device.type):
        return "rowwise_adagrad"
    return requested


class EmbeddingTables(nn.Module):
    """Pooled lookups of all sparse features, and the optimizer of the embedding rows.

    ``forward(kjt)``: KJT ``[F' x B x L]`` (any subset of the features) -> ``{feature: (B, E)}``
    for every feature (absent features pool an empty bag: zeros).
    """

    def __init__(
        self,
        tables: Sequence[TableSpec],
        *,
        optimizer: str = DEFAULT_EMBEDDING_OPTIMIZER,
        lr: float = 0.05,
        eps: float = 1e-8,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        device = device or torch.device("cpu")
        self.tables = tuple(tables)
        self.optimizer_kind = resolve_embedding_optimizer(optimizer, device)
        self.lr = lr
        self.feature_names: list[str] = [f for t in self.tables for f in t.features]
        configs = _bag_configs(self.tables)
        self._optimizer: torch.optim.Optimizer | None = None
        if self.optimizer_kind == "fused_rowwise_adagrad":
            from torchrec.modules.fused_embedding_modules import FusedEmbeddingBagCollection
            from torchrec.optim import RowWiseAdagrad

            # optimizer_type picks fbgemm's EmbOptimType.EXACT_ROWWISE_ADAGRAD; location defaults
            # to HOST on the CPU and DEVICE on CUDA.
            self.ebc: nn.Module = FusedEmbeddingBagCollection(
                tables=configs,
                optimizer_type=RowWiseAdagrad,
                optimizer_kwargs={"lr": lr, "eps": eps},
                device=device,
            )
        else:
            self.ebc = EmbeddingBagCollection(tables=configs, device=device)
            if self.optimizer_kind == "sparse_adam":
                for bag in self.ebc.embedding_bags.values():
                    # nn.EmbeddingBag reads this flag on every forward
                    cast(nn.EmbeddingBag, bag).sparse = True
            params = list(self.ebc.parameters())
            if self.optimizer_kind == "none":
                pass
            elif self.optimizer_kind == "rowwise_adagrad":
                from torchrec.optim import RowWiseAdagrad

                self._optimizer = RowWiseAdagrad(params, lr=lr, eps=eps)
            elif self.optimizer_kind == "adam":
                self._optimizer = torch.optim.Adam(params, lr=lr)
            else:
                self._optimizer = torch.optim.SparseAdam(params, lr=lr)

    @property
    def fused(self) -> bool:
        return self.optimizer_kind == "fused_rowwise_adagrad"

    def forward(self, sparse: KeyedJaggedTensor) -> dict[str, torch.Tensor]:
        keys = sparse.keys()
        if len(keys) != len(self.feature_names) or set(keys) != set(self.feature_names):
            # only when keys are missing: both collections look features up by name, so a KJT
            # holding every feature in another order (the batches' tower order) goes as is
            sparse = complete_kjt(sparse, self.feature_names)
        return self.ebc(sparse).to_dict()

    def weight(self, table: str) -> torch.Tensor:
        """The live ``(rows, E)`` weight of ``table`` (for the fused module: a view into
        fbgemm's buffer, so writes reach the kernel)."""
        # both collections keep one module per table in embedding_bags, its rows in .weight
        bags = cast(nn.ModuleDict, self.ebc.embedding_bags)
        return cast(torch.Tensor, bags[table].weight)

    # -- optimizer --

    def zero_grad(self, set_to_none: bool = True) -> None:
        if self._optimizer is not None:
            self._optimizer.zero_grad(set_to_none=set_to_none)

    def step(self) -> None:
        """Apply the unfused optimizer; the fused one already ran inside ``backward``."""
        if self._optimizer is not None:
            self._optimizer.step()

    def _fused_state(self) -> dict[str, dict[str, torch.Tensor]]:
        # {"<table>.weight": {"<table>.weight.momentum_1": (rows,) live tensor}}
        fused = cast("FusedEmbeddingBagCollection", self.ebc)
        return fused.fused_optimizer().state_dict()["state"]

    def optimizer_state_dict(self) -> dict[str, Any]:
        """Optimizer state as tensors and primitives (copied off the live buffers)."""
        if self.fused:
            state = {
                key: {k: v.detach().to("cpu", copy=True) for k, v in entry.items()}
                for key, entry in self._fused_state().items()
            }
            return {"kind": self.optimizer_kind, "state": state}
        if self._optimizer is None:
            return {"kind": self.optimizer_kind}
        return {"kind": self.optimizer_kind, "torch": _to_cpu(self._optimizer.state_dict())}

    def load_optimizer_state_dict(self, state: Mapping[str, Any]) -> bool:
        """Restore a state saved by the same mode; returns False (fresh state) otherwise."""
        if state.get("kind") != self.optimizer_kind:
            return False
        if self.fused:
            live = self._fused_state()
            with torch.no_grad():
                for key, entry in state["state"].items():
                    for k, v in entry.items():
                        live[key][k].copy_(v)
            return True
        if self._optimizer is not None:
            self._optimizer.load_state_dict(state["torch"])
        return True

    # -- row recycling --

    def reinit_rows(
        self, table: str, rows: Any, *, generator: torch.Generator | None = None
    ) -> None:
        """Give ``rows`` of ``table`` a fresh start: new initial weights (the table's initial
        distribution, uniform +-sqrt(1/rows)) and zeroed per-row optimizer state. Called when the
        vocabulary recycles an expired id's row for a new id."""
        rows_t = torch.as_tensor(rows, dtype=torch.long).reshape(-1)
        if rows_t.numel() == 0:
            return
        weight = self.weight(table)
        num_rows, dim = weight.shape
        bound = math.sqrt(1.0 / num_rows)
        fresh = torch.empty(rows_t.numel(), dim).uniform_(-bound, bound, generator=generator)
        idx = rows_t.to(weight.device)
        with torch.no_grad():
            weight[idx] = fresh.to(weight.device, weight.dtype)
            for state in self._row_states(table, weight):
                if state.dim() >= 1 and state.shape[0] == num_rows:
                    state[idx.to(state.device)] = 0
                # Adam's bias-correction step counter is per table, not per row: left as is.

    def _row_states(self, table: str, weight: torch.Tensor) -> list[torch.Tensor]:
        if self.fused:
            return list(self._fused_state().get(f"{table}.weight", {}).values())
        if self._optimizer is None:
            return []
        return [
            v for v in self._optimizer.state.get(weight, {}).values() if isinstance(v, torch.Tensor)
        ]


def complete_kjt(kjt: KeyedJaggedTensor, keys: Sequence[str]) -> KeyedJaggedTensor:
    """``kjt`` with every key of ``keys``, in that order; missing keys become empty bags.

    Lets one side of a model run alone (one user's features, N candidates' features) through a
    collection that declares all features.
    """
    if list(kjt.keys()) == list(keys):
        return kjt
    have = set(kjt.keys())
    unknown = have - set(keys)
    if unknown:
        raise KeyError(f"features {sorted(unknown)} have no table")
    batch = kjt.stride()
    jts = kjt.to_dict()
    values = kjt.values()
    lengths_dtype = kjt.lengths().dtype
    parts_v, parts_l = [], []
    for key in keys:
        if key in have:
            parts_v.append(jts[key].values())
            parts_l.append(jts[key].lengths().to(lengths_dtype))
        else:
            parts_l.append(torch.zeros(batch, dtype=lengths_dtype, device=values.device))
    new_values = torch.cat(parts_v) if parts_v else values.new_zeros(0)
    return KeyedJaggedTensor.from_lengths_sync(
        keys=list(keys), values=new_values, lengths=torch.cat(parts_l)
    )


def dense_parameters(module: nn.Module) -> list[nn.Parameter]:
    """Parameters outside the embedding tables (for the dense optimizer, Adam)."""
    skip = {
        id(p)
        for m in module.modules()
        if isinstance(m, EmbeddingTables)
        for p in m.ebc.parameters()
    }
    return [p for p in module.parameters() if id(p) not in skip and p.requires_grad]


def dense_optimizer(
    params: Sequence[nn.Parameter], lr: float, state: Mapping[str, Any] | None = None
) -> torch.optim.Adam:
    """Adam over the dense parameters (``dense_parameters``), fused: one kernel over all of
    them per step. On the CPU the per-tensor loop cost the sequence-aware ranker 8.3 ms a step
    (its attention's item table is dense: 100k rows, every row's moments updated each step)
    against 0.8 ms fused; the arithmetic is Adam's, equal to the loop's within a float32 ulp.
    ``state``: a saved state dict to resume from; the run's ``lr`` and the fused kernel replace
    what it recorded (a checkpoint saved by an unfused optimizer resumes fused)."""
    opt = torch.optim.Adam(params, lr=lr, fused=True)
    if state is not None:
        opt.load_state_dict(dict(state))
        for group in opt.param_groups:
            group.update(lr=lr, fused=True, foreach=None)
    return opt


def _to_cpu(obj: Any) -> Any:
    if isinstance(obj, torch.Tensor):
        return obj.detach().to("cpu", copy=True)
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_to_cpu(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_to_cpu(v) for v in obj)
    return obj
