"""Heavy ranker: DCN-v2.

Wang et al. 2021, "DCN V2: Improved Deep & Cross Network and Practical Lessons for Web-scale
Learning to Rank Systems" (WWW '21). The input x0 concatenates every sparse feature's pooled
embedding with projections of the dense features; a cross network builds explicit feature
crosses, x_{l+1} = x0 * (W_l x_l + b_l) + x_l, with the low-rank W = U V^T the paper recommends
for serving cost (``torchrec.modules.crossnet.LowRankCrossNet``); a deep MLP on top of it
("stacked" structure) ends in one logit. Loss: ``recassets.models.losses.PointwiseBCELoss``.

Shapes: B batch, N candidates of one request, E embedding dim, P dense projection width,
X = width of x0 = sum of feature embedding dims + 2P.

x0 is laid out as [user part | item part]: the user part (user sparse features, projected user
counters) depends on the request only, the item part (item sparse features, projected item and
user x item counters such as the cohort CTR) on the candidate. Serving scores N candidates of
one user with ``score_candidates``: the user part is computed once and broadcast over N rows
(one embedding lookup instead of N), and equals scoring N replicated rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torchrec.modules.crossnet import LowRankCrossNet
from torchrec.modules.mlp import MLP

from recassets.models.embeddings import DEFAULT_EMBEDDING_OPTIMIZER, EmbeddingTables, TableSpec
from recassets.models.features import Features, signed_log1p


@dataclass(frozen=True)
class RankingConfig:
    """Everything needed to rebuild the module (plain values: saved in checkpoints)."""

    tables: tuple[TableSpec, ...]
    user_features: tuple[str, ...]
    item_features: tuple[str, ...]
    num_user_dense: int
    num_item_dense: int
    num_cross_dense: int = 0  # user x item counters (cohort CTR), on the item side
    dense_dim: int = 16  # P
    cross_layers: int = 3
    low_rank: int = 16
    deep: tuple[int, ...] = (128, 64)

    def feature_dims(self) -> dict[str, int]:
        return {f: t.embedding_dim for t in self.tables for f in t.features}

    def to_dict(self) -> dict[str, Any]:
        return {
            "tables": [t.to_dict() for t in self.tables],
            "user_features": list(self.user_features),
            "item_features": list(self.item_features),
            "num_user_dense": self.num_user_dense,
            "num_item_dense": self.num_item_dense,
            "num_cross_dense": self.num_cross_dense,
            "dense_dim": self.dense_dim,
            "cross_layers": self.cross_layers,
            "low_rank": self.low_rank,
            "deep": list(self.deep),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> RankingConfig:
        return cls(
            tables=tuple(TableSpec.from_dict(t) for t in d["tables"]),
            user_features=tuple(d["user_features"]),
            item_features=tuple(d["item_features"]),
            num_user_dense=int(d["num_user_dense"]),
            num_item_dense=int(d["num_item_dense"]),
            num_cross_dense=int(d["num_cross_dense"]),
            dense_dim=int(d["dense_dim"]),
            cross_layers=int(d["cross_layers"]),
            low_rank=int(d["low_rank"]),
            deep=tuple(int(x) for x in d["deep"]),
        )


class DCNv2(nn.Module):
    """DCN-v2 over ``EmbeddingTables`` + dense features. ``forward`` -> (B,) logits."""

    def __init__(
        self,
        config: RankingConfig,
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
        p = config.dense_dim
        self.user_dense_arch = MLP(config.num_user_dense, [p], device=device)
        self.item_dense_arch = MLP(
            config.num_item_dense + config.num_cross_dense, [p], device=device
        )
        width = sum(dims[f] for f in config.user_features + config.item_features) + 2 * p  # X
        self.cross = LowRankCrossNet(width, config.cross_layers, config.low_rank)
        self.deep = MLP(width, list(config.deep), device=device) if config.deep else nn.Identity()
        self.head = nn.Linear(config.deep[-1] if config.deep else width, 1, device=device)
        if device is not None:
            self.cross.to(device)

    # -- the two halves of x0 --

    def _user_part(
        self, pooled: Mapping[str, torch.Tensor], user_dense: torch.Tensor
    ) -> torch.Tensor:
        """(B, Xu) = [P(user dense) | user feature embeddings]."""
        parts = [self.user_dense_arch(signed_log1p(user_dense))]
        parts += [pooled[f] for f in self.config.user_features]
        return torch.cat(parts, dim=1)

    def _item_part(
        self,
        pooled: Mapping[str, torch.Tensor],
        item_dense: torch.Tensor,
        cross_dense: torch.Tensor | None,
    ) -> torch.Tensor:
        """(N, Xi) = [P(item dense, cross dense) | item feature embeddings]."""
        dense = item_dense
        if self.config.num_cross_dense:
            assert cross_dense is not None, "this ranker reads cross (user x item) counters"
            dense = torch.cat([item_dense, cross_dense], dim=1)
        parts = [self.item_dense_arch(signed_log1p(dense))]
        parts += [pooled[f] for f in self.config.item_features]
        return torch.cat(parts, dim=1)

    def interact(self, x0: torch.Tensor) -> torch.Tensor:
        """(B, X) -> cross net -> deep MLP -> (B,) logits."""
        return self.head(self.deep(self.cross(x0))).squeeze(1)

    # -- entry points --

    def forward(self, features: Features) -> torch.Tensor:
        """(B,) logits, one lookup for both halves."""
        pooled = self.embeddings(features.sparse)
        assert features.user_dense is not None and features.item_dense is not None
        x0 = torch.cat(
            [
                self._user_part(pooled, features.user_dense),
                self._item_part(pooled, features.item_dense, features.cross_dense),
            ],
            dim=1,
        )  # (B, X)
        return self.interact(x0)

    def user_part(self, user: Features) -> torch.Tensor:
        """(B, Xu): the request side of x0, cacheable per request."""
        assert user.user_dense is not None
        return self._user_part(self.embeddings(user.sparse), user.user_dense)

    def item_part(self, items: Features) -> torch.Tensor:
        """(N, Xi): the candidate side of x0."""
        assert items.item_dense is not None
        return self._item_part(self.embeddings(items.sparse), items.item_dense, items.cross_dense)

    def score_candidates(self, user: Features, items: Features) -> torch.Tensor:
        """Serving form: ``user`` holds one row (user keys only is enough), ``items`` N rows
        (item keys only is enough). The user part is computed once and broadcast. Returns (N,)
        logits, equal to ``forward`` on N rows that repeat the user."""
        u = self.user_part(user)  # (1, Xu)
        if u.shape[0] != 1:
            raise ValueError(f"score_candidates takes one user, got {u.shape[0]}")
        v = self.item_part(items)  # (N, Xi)
        x0 = torch.cat([u.expand(v.shape[0], -1), v], dim=1)  # (N, X)
        return self.interact(x0)
