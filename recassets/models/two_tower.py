"""Two-tower retrieval model.

Yi et al. 2019, "Sampling-Bias-Corrected Neural Modeling for Large Corpus Item
Recommendations" (RecSys '19): a user (query) tower and an item (candidate) tower map their
features to one space, the score is their dot product, and retrieval is a nearest-neighbour
search over precomputed item embeddings. Layout after ``meta-pytorch/torchrec :
examples/retrieval/modules/two_tower.py``: one ``EmbeddingBagCollection`` for both towers (one
fused kernel call per step), a projection MLP per tower. The loss lives in
``recassets.models.losses.SampledSoftmaxLoss``.

Shapes: B batch, D output dim, E embedding dim of a table, F_u / F_i sparse features per tower,
Du / Di dense features per tower.

User tower: user id, the pooled history of item ids (sharing the item-id table, so history and
candidates live in one space), country, device, age bucket, and the user's counters. Item tower:
item id, category, creator, and the item's counters: recency (``i_age_days``) and trailing
popularity (``i_engagements_7d`` / ``_28d``) matter here, since on real data "most engaged in
the last 7 days" is a hard baseline to beat, and the tower can only learn it if it sees them.
Both outputs are L2-normalized (cosine scores; the temperature sits in the loss).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torchrec.modules.mlp import MLP

from recassets.models.embeddings import DEFAULT_EMBEDDING_OPTIMIZER, EmbeddingTables, TableSpec
from recassets.models.inputs import ModelInputs, signed_log1p


@dataclass(frozen=True)
class TwoTowerConfig:
    """Everything needed to rebuild the module (plain values: saved in checkpoints)."""

    tables: tuple[TableSpec, ...]
    user_features: tuple[str, ...]  # sparse features of the user tower
    item_features: tuple[str, ...]  # sparse features of the item tower
    num_user_dense: int
    num_item_dense: int
    dim: int = 64  # D
    hidden: tuple[int, ...] = (128,)

    def feature_dims(self) -> dict[str, int]:
        return {f: t.embedding_dim for t in self.tables for f in t.features}

    def to_dict(self) -> dict[str, Any]:
        return {
            "tables": [t.to_dict() for t in self.tables],
            "user_features": list(self.user_features),
            "item_features": list(self.item_features),
            "num_user_dense": self.num_user_dense,
            "num_item_dense": self.num_item_dense,
            "dim": self.dim,
            "hidden": list(self.hidden),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TwoTowerConfig:
        return cls(
            tables=tuple(TableSpec.from_dict(t) for t in d["tables"]),
            user_features=tuple(d["user_features"]),
            item_features=tuple(d["item_features"]),
            num_user_dense=int(d["num_user_dense"]),
            num_item_dense=int(d["num_item_dense"]),
            dim=int(d["dim"]),
            hidden=tuple(int(h) for h in d["hidden"]),
        )


class Tower(nn.Module):
    """Pooled embeddings of its features + scaled dense features -> MLP -> (B, D), unit norm."""

    def __init__(
        self,
        features: Sequence[str],
        feature_dims: Mapping[str, int],
        num_dense: int,
        hidden: Sequence[int],
        dim: int,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        self.features = tuple(features)
        in_size = sum(feature_dims[f] for f in self.features) + num_dense
        self.mlp = MLP(in_size, list(hidden), device=device) if hidden else nn.Identity()
        self.out = nn.Linear(hidden[-1] if hidden else in_size, dim, device=device)

    def forward(
        self, pooled: Mapping[str, torch.Tensor], dense: torch.Tensor | None
    ) -> torch.Tensor:
        """``pooled``: {feature: (B, E)}; ``dense``: (B, Dd) raw counters. Returns (B, D)."""
        parts = [pooled[f] for f in self.features]
        if dense is not None and dense.shape[1]:
            parts.append(signed_log1p(dense))
        x = torch.cat(parts, dim=1)  # (B, sum E + Dd)
        return F.normalize(self.out(self.mlp(x)), dim=1)


class TwoTower(nn.Module):
    """User and item towers over one shared ``EmbeddingTables``.

    ``embedding_optimizer`` / ``embedding_lr`` choose how the embedding rows learn (fused
    row-wise Adagrad by default, see ``recassets.models.embeddings``); the dense layers are the
    trainer's (Adam).
    """

    def __init__(
        self,
        config: TwoTowerConfig,
        *,
        embedding_optimizer: str = DEFAULT_EMBEDDING_OPTIMIZER,
        embedding_lr: float = 0.05,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        dims = config.feature_dims()
        self.embeddings = EmbeddingTables(
            config.tables, optimizer=embedding_optimizer, lr=embedding_lr, device=device
        )
        self.user_tower = Tower(
            config.user_features, dims, config.num_user_dense, config.hidden, config.dim, device
        )
        self.item_tower = Tower(
            config.item_features, dims, config.num_item_dense, config.hidden, config.dim, device
        )

    def forward(self, features: ModelInputs) -> tuple[torch.Tensor, torch.Tensor]:
        """One lookup for both towers. Returns (user (B, D), item (B, D))."""
        pooled = self.embeddings(features.sparse)
        return (
            self.user_tower(pooled, features.user_dense),
            self.item_tower(pooled, features.item_dense),
        )

    def user_embeddings(self, features: ModelInputs) -> torch.Tensor:
        """(B, D) from user features alone (item keys may be absent)."""
        return self.user_tower(self.embeddings(features.sparse), features.user_dense)

    def item_embeddings(self, features: ModelInputs) -> torch.Tensor:
        """(B, D) from item features alone (user keys may be absent): the index's vectors."""
        return self.item_tower(self.embeddings(features.sparse), features.item_dense)

    @staticmethod
    def score(user: torch.Tensor, item: torch.Tensor) -> torch.Tensor:
        """(B, D) x (N, D) -> (B, N) cosine scores."""
        return user @ item.T
