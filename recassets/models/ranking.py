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

Serving goes one step further with ``prepare_items`` / ``score_prepared``: an item's features
change once a day, so everything in x0 and the first cross layer that reads only the item is
computed once per catalog refresh (``PreparedItems``), and a request pays for the user half
once, a gather of N rows, and the layers that mix both halves. Equal to ``forward`` up to
float rounding (the sums are associated differently).

Sequence-aware (``RankingConfig.sequence`` > 0): a target attention over the user's newest
``sequence`` engagements against the candidate (``recassets.models.sequence``, DIN with BST's
recency embeddings) appends one more block to x0, [user part | item part | attended history
(E)], so the cross network crosses the history the candidate selects with every other
feature. Serving keeps the split: the candidate side of the attention is prepared with the
catalog, the history side once per request (``sequence_state``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import torch
from torch import nn
from torchrec.modules.crossnet import LowRankCrossNet
from torchrec.modules.mlp import MLP, Perceptron

from recassets.models.embeddings import DEFAULT_EMBEDDING_OPTIMIZER, EmbeddingTables, TableSpec
from recassets.models.inputs import ModelInputs, signed_log1p
from recassets.models.sequence import PreparedCandidates, SequenceState, TargetAttention

SEQUENCE_FEATURE = "history_item_ids"  # the user's engagements, oldest first
CANDIDATE_FEATURE = "item_id"


@dataclass(frozen=True)
class Kernels:
    """The interaction network's weights as plain tensors: per cross layer (V^T (X, r),
    W^T (r, X), bias (X,)), per deep layer (weight, bias) (every layer ReLU, as the deep
    ``MLP`` is built), and the head's (weight, bias). ``DCNv2.kernels()`` gives live views
    (training); ``frozen=True`` gives detached contiguous copies for serving, where one
    snapshot per catalog refresh saves the module and parameter-list look-ups of every call."""

    cross: tuple[tuple[torch.Tensor, torch.Tensor, torch.Tensor], ...]
    deep: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    head: tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class PreparedItems:
    """The item-only work of x0 for a whole catalog (M items), done once per refresh.

    - ``embeddings`` (M, Ei): the pooled item feature embeddings, ``item_features`` order;
    - ``dense_pre`` (M, P): the item dense projection before its ReLU, item counters only
      (the cross counters are per request: the user's cohort picks them);
    - ``first_low_rank`` (M, r): the first cross layer's V kernel applied to the item
      embedding columns of x0;
    - ``kernels``: the model's weights frozen with them (the model does not train while it
      serves), and the item dense projection's cross-counter columns, transposed.
    """

    embeddings: torch.Tensor
    dense_pre: torch.Tensor
    first_low_rank: torch.Tensor
    kernels: Kernels
    cross_dense_t: torch.Tensor  # (num_cross_dense, P)
    sequence: PreparedCandidates | None = None  # the attention's candidate side (sequence > 0)


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
    # newest engagements the target attention reads (0: no attention, the plain DCN-v2)
    sequence: int = 0
    attention_hidden: int = 32  # H of the attention unit

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
            "sequence": self.sequence,
            "attention_hidden": self.attention_hidden,
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
            # checkpoints written before the sequence-aware ranker have neither
            sequence=int(d.get("sequence", 0)),
            attention_hidden=int(d.get("attention_hidden", 32)),
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
        self.sequence: TargetAttention | None = None
        if config.sequence:
            table = next(t for t in config.tables if CANDIDATE_FEATURE in t.features)
            self.sequence = TargetAttention(
                table.num_embeddings, table.embedding_dim, config.sequence,
                config.attention_hidden, device=device,
            )  # fmt: skip
            width += table.embedding_dim
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
        """(B, X) -> cross net -> deep MLP -> (B,) logits. The cross layers are
        ``LowRankCrossNet``'s parameters and math, in fused kernels (see ``_finish``)."""
        kernels = self.kernels()
        return self._finish(x0, x0 @ kernels.cross[0][0] if kernels.cross else None, kernels)

    def kernels(self, *, frozen: bool = False) -> Kernels:
        """The interaction network's weights (``Kernels``): live views, or ``frozen`` copies."""

        def t(x: torch.Tensor) -> torch.Tensor:
            return x.detach().contiguous() if frozen else x

        c = self.cross
        cross = tuple(
            (t(v.T), t(w.T), t(b)) for v, w, b in zip(c.V_kernels, c.W_kernels, c.bias, strict=True)
        )
        deep: tuple[tuple[torch.Tensor, torch.Tensor], ...] = ()
        if isinstance(self.deep, MLP):
            layers = cast(Iterable[Perceptron], self.deep._mlp)  # an nn.Sequential of them
            deep = tuple((t(p._linear.weight), t(p._linear.bias)) for p in layers)
        return Kernels(cross, deep, (t(self.head.weight), t(self.head.bias)))

    # -- entry points --

    def forward(self, features: ModelInputs) -> torch.Tensor:
        """(B,) logits, one lookup for both halves."""
        pooled = self.embeddings(features.sparse)
        assert features.user_dense is not None and features.item_dense is not None
        parts = [
            self._user_part(pooled, features.user_dense),
            self._item_part(pooled, features.item_dense, features.cross_dense),
        ]
        if self.sequence is not None:
            jts = features.sparse.to_dict()
            parts.append(self.sequence(jts[SEQUENCE_FEATURE], _one_id(jts[CANDIDATE_FEATURE])))
        return self.interact(torch.cat(parts, dim=1))  # x0 (B, X)

    def user_part(self, user: ModelInputs) -> torch.Tensor:
        """(B, Xu): the request side of x0, cacheable per request."""
        assert user.user_dense is not None
        return self._user_part(self.embeddings(user.sparse), user.user_dense)

    def item_part(self, items: ModelInputs) -> torch.Tensor:
        """(N, Xi): the candidate side of x0."""
        assert items.item_dense is not None
        return self._item_part(self.embeddings(items.sparse), items.item_dense, items.cross_dense)

    # -- serving form over a prepared catalog --

    @staticmethod
    def _dense_linear(arch: nn.Module) -> nn.Linear:
        """The one Linear of a dense projection (``MLP(n, [P])``: Linear, then ReLU)."""
        (perceptron,) = cast(Iterable[Perceptron], arch._mlp)
        return perceptron._linear

    def prepare_items(
        self,
        pooled: Mapping[str, torch.Tensor],
        item_dense: torch.Tensor,
        item_rows: torch.Tensor | None = None,
    ) -> PreparedItems:
        """``PreparedItems`` of M items from their pooled embeddings {item feature: (M, E)}
        and item counters (M, num_item_dense), without the cross counters; ``item_rows`` (M,)
        their ``item_id`` vocabulary rows (the attention's candidate side: sequence-aware
        rankers only)."""
        lin = self._dense_linear(self.item_dense_arch)
        di, p = self.config.num_item_dense, self.config.dense_dim
        emb = torch.cat([pooled[f] for f in self.config.item_features], dim=1).contiguous()
        dense_pre = nn.functional.linear(signed_log1p(item_dense), lin.weight[:, :di], lin.bias)
        start = self.user_width + p  # x0 = [user part | item dense projection | item embeddings]
        v = self.cross.V_kernels
        end = start + emb.shape[1]
        first = emb @ v[0][:, start:end].T if len(v) else emb.new_zeros(emb.shape[0], 0)
        seq = None
        if self.sequence is not None:
            if item_rows is None:
                raise ValueError(
                    "a sequence-aware ranker prepares items from their vocabulary rows"
                )
            seq = self.sequence.prepare(item_rows)
        return PreparedItems(
            emb,
            dense_pre.contiguous(),
            first.contiguous(),
            self.kernels(frozen=True),
            lin.weight[:, di:].T.detach().contiguous(),
            seq,
        )

    def sequence_state(self, history_rows: torch.Tensor) -> SequenceState | None:
        """One user's history (``item_id`` vocabulary rows (n,), oldest first) encoded once
        per request for ``score_prepared``; None for a ranker without attention."""
        return None if self.sequence is None else self.sequence.state(history_rows)

    def attended(
        self, state: SequenceState | None, items: PreparedItems, index: torch.Tensor
    ) -> torch.Tensor | None:
        """(N, E): the attended history of each candidate row ``index`` (None without
        attention)."""
        if self.sequence is None:
            return None
        if state is None or items.sequence is None:
            raise ValueError("a sequence-aware ranker needs the user's history and prepared items")
        c = items.sequence
        picked = PreparedCandidates(c.c.index_select(0, index), c.cc.index_select(0, index))
        return self.sequence.attend(state, picked)

    @property
    def user_width(self) -> int:
        """Xu: the width of the user part of x0."""
        dims = self.config.feature_dims()
        return self.config.dense_dim + sum(dims[f] for f in self.config.user_features)

    def score_prepared(
        self,
        user: torch.Tensor,
        items: PreparedItems,
        index: torch.Tensor,
        cross_dense: torch.Tensor | None = None,
        sequence: SequenceState | None = None,
    ) -> torch.Tensor:
        """(N,) logits of the catalog rows ``index`` (N,) for one user's part of x0 ``user``
        (1, Xu) (``_user_part``); ``cross_dense`` (N, num_cross_dense) their user x item
        counters; ``sequence`` the user's history (``sequence_state``; sequence-aware rankers).
        Equals ``interact`` on the full x0, up to rounding."""
        xu, p = user.shape[1], self.config.dense_dim
        n = index.shape[0]
        kernels = items.kernels
        dense = items.dense_pre.index_select(0, index)
        if self.config.num_cross_dense:
            assert cross_dense is not None, "this ranker reads cross (user x item) counters"
            dense = torch.addmm(dense, signed_log1p(cross_dense), items.cross_dense_t)
        dense = dense.relu_()
        parts = [user.expand(n, -1), dense, items.embeddings.index_select(0, index)]
        seq = self.attended(sequence, items, index)
        if seq is not None:
            parts.append(seq)
        x0 = torch.cat(parts, dim=1)
        if not kernels.cross:  # no cross layers: x0 goes straight to the deep MLP
            return self._finish(x0, None, kernels)
        # first cross layer: x0 V0^T = u V0[user]^T (once) + d V0[dense]^T + e V0[emb]^T
        # (prepared per item) + a V0[attended]^T (per request and item)
        v0t = kernels.cross[0][0]  # (X, r)
        low = torch.addmm(items.first_low_rank.index_select(0, index), dense, v0t[xu : xu + p])
        low += user @ v0t[:xu]
        if seq is not None:
            low.addmm_(seq, v0t[x0.shape[1] - seq.shape[1] :])
        return self._finish(x0, low, kernels)

    @staticmethod
    def _finish(x0: torch.Tensor, low: torch.Tensor | None, kernels: Kernels) -> torch.Tensor:
        """The cross layers from the first layer's low-rank product ``low`` = x0 V0^T on
        (None: the model has no cross layers), each as two fused kernels (addmm: W v + b;
        addcmul: x_l + x0 * that; the math of ``LowRankCrossNet``, which takes five per layer),
        then the deep MLP and the head."""
        x = x0
        for i, (vt, wt, b) in enumerate(kernels.cross):
            # low is given whenever there are cross layers
            x = torch.addcmul(
                x, x0, torch.addmm(b, cast(torch.Tensor, low) if i == 0 else x @ vt, wt)
            )
        for w, b in kernels.deep:
            x = torch.nn.functional.linear(x, w, b).relu_()
        w, b = kernels.head
        return torch.nn.functional.linear(x, w, b).squeeze(1)

    def score_candidates(self, user: ModelInputs, items: ModelInputs) -> torch.Tensor:
        """Serving form: ``user`` holds one row (user keys only is enough), ``items`` N rows
        (item keys only is enough). The user part is computed once and broadcast. Returns (N,)
        logits, equal to ``forward`` on N rows that repeat the user."""
        u = self.user_part(user)  # (1, Xu)
        if u.shape[0] != 1:
            raise ValueError(f"score_candidates takes one user, got {u.shape[0]}")
        v = self.item_part(items)  # (N, Xi)
        seq = None
        if self.sequence is not None:
            history = user.sparse.to_dict()[SEQUENCE_FEATURE].values()  # one user: all of it
            state = self.sequence.state(history)
            cands = _one_id(items.sparse.to_dict()[CANDIDATE_FEATURE])
            seq = self.sequence.attend(state, self.sequence.prepare(cands))
        return self.score_parts(u, v, seq)

    def score_parts(
        self, user: torch.Tensor, items: torch.Tensor, attended: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(N,) logits from one user's part of x0 (1, Xu), the candidates' item parts
        (N, Xi) and, for a sequence-aware ranker, their attended histories (N, E)."""
        parts = [user.expand(items.shape[0], -1), items]
        if self.sequence is not None:
            if attended is None:
                raise ValueError("a sequence-aware ranker needs the attended history")
            parts.append(attended)
        return self.interact(torch.cat(parts, dim=1))  # x0 (N, X)


def _one_id(jt: Any) -> torch.Tensor:
    """(B,): the one id of each row of a single-id feature (the candidate's item row)."""
    values, lengths = jt.values(), jt.lengths()
    if values.shape[0] != lengths.shape[0] or bool((lengths != 1).any()):
        raise ValueError("the candidate feature must hold exactly one id per row")
    return values
