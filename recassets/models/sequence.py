"""Target attention over the user's engagement sequence: what makes the ranker sequence-aware.

DIN (Zhou et al. 2018, "Deep Interest Network for Click-Through Rate Prediction", KDD '18)
weighs each of the user's past engagements by its relevance to the candidate being scored,
instead of pooling the history into one average that is the same for every candidate; BST
(Chen et al. 2019, "Behavior Sequence Transformer") adds an embedding of each engagement's
position in the sequence. This module is DIN's activation unit with BST's positions:

    h_j = S[item_j] + R[j]        the j-th newest engagement (j = 0 newest, at most L of them)
    c   = S[candidate]
    s_j = w . relu(A h_j + C c + M (h_j * c) + b) + b_w
    a   = softmax(s) over the real positions (padding masked)
    out = sum_j a_j h_j           (E,), zeros for an empty history

S is the module's own item table (rows = the ranker's ``item_id`` vocabulary), R the recency
embedding. DIN feeds [h, c, h * c, h - c] to its unit's first layer; ``h - c`` is a linear
combination of the first two, so the layer splits exactly into the three terms above, and
the candidate's term ``C c + b`` is per item only: serving computes it once per catalog
(``prepare``), the history's ``A h`` once per request (``state``), and pays per candidate only
for the ``M (h * c)`` product, the unit's second layer and the weighted sum.

Two decisions differ from DIN's paper:

- **softmax weights**: DIN leaves the weights unnormalized so that a long history weighs
  more; here the output enters the DCN-v2's cross network, which multiplies features, and
  history lengths run from 0 to ``HISTORY_LIMIT``: a bounded, length-free output trains
  stably (the user's engagement counters already carry how active a user is);
- **its own item table**, trained by the dense optimizer (Adam) with the rest of the ranker:
  the ranker's pooled tables update in fbgemm's fused backward, which never exposes the
  per-id gradients an attention over single ids needs. The table is the vocabulary's size
  (100k rows x 16 by default: 6.4 MB); rows the vocabulary recycles are re-initialized with
  the pooled tables' (``reinit_rows``).

Shapes: B rows, N candidates, L the newest engagements attended, E the table's width,
H the unit's hidden width.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn
from torchrec.sparse.jagged_tensor import JaggedTensor


@dataclass(frozen=True)
class SequenceState:
    """One user's history, encoded once per request: ``h`` (1, L, E) with recency added,
    ``mask`` (1, L) true at real positions, ``ah`` (1, L, H) = A h."""

    h: torch.Tensor
    mask: torch.Tensor
    ah: torch.Tensor


@dataclass(frozen=True)
class PreparedCandidates:
    """The candidate side for a whole catalog (M items), done once per refresh: ``c`` (M, E)
    the items' rows of the table, ``cc`` (M, H) = C c + b."""

    c: torch.Tensor
    cc: torch.Tensor


def newest(history: JaggedTensor, length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids (B, length), mask (B, length))``: each row's newest ``length`` ids of a jagged
    history stored oldest first, newest in column 0; padding is id 0 with mask False."""
    values, lengths = history.values(), history.lengths()
    offsets = torch.cumsum(lengths, 0) - lengths
    col = torch.arange(length, device=values.device)
    mask = col[None, :] < lengths[:, None]
    idx = offsets[:, None] + lengths[:, None] - 1 - col[None, :]
    idx = torch.where(mask, idx, torch.zeros_like(idx))
    if values.numel() == 0:
        return torch.zeros_like(idx), mask
    return torch.where(mask, values[idx], torch.zeros_like(idx)), mask


class TargetAttention(nn.Module):
    """DIN's activation unit with recency embeddings (module docstring). ``forward`` takes
    jagged histories and one candidate id per row and returns (B, E)."""

    def __init__(
        self,
        num_rows: int,
        dim: int,
        length: int,
        hidden: int = 32,
        *,
        device: torch.device | None = None,
    ) -> None:
        super().__init__()
        if length < 1:
            raise ValueError(f"attended length must be >= 1, got {length}")
        self.length, self.dim = length, dim
        self.items = nn.Embedding(num_rows, dim, device=device)
        self.recency = nn.Embedding(length, dim, device=device)
        bound = math.sqrt(1.0 / num_rows)  # the pooled tables' initial distribution
        nn.init.uniform_(self.items.weight, -bound, bound)
        nn.init.normal_(self.recency.weight, std=0.01)
        self.history_proj = nn.Linear(dim, hidden, bias=False, device=device)  # A
        self.candidate_proj = nn.Linear(dim, hidden, device=device)  # C, b
        self.product_proj = nn.Linear(dim, hidden, bias=False, device=device)  # M
        self.score = nn.Linear(hidden, 1, device=device)  # w, b_w

    # -- the two sides --

    def encode(self, ids: torch.Tensor, mask: torch.Tensor) -> SequenceState:
        """Histories ``ids`` (B, L') newest first, ``mask`` (B, L'), L' <= L."""
        h = self.items(ids) + self.recency.weight[: ids.shape[1]]
        return SequenceState(h, mask, self.history_proj(h))

    def state(self, history_rows: torch.Tensor) -> SequenceState:
        """One user's history as vocabulary rows (n,), oldest first (as the features store
        it): the newest ``length`` of them, encoded."""
        rows = history_rows[-self.length :].flip(0)
        mask = torch.ones(1, rows.shape[0], dtype=torch.bool, device=rows.device)
        return self.encode(rows[None, :], mask)

    def prepare(self, item_rows: torch.Tensor) -> PreparedCandidates:
        """The candidate side of items given by their vocabulary rows (M,)."""
        c = self.items(item_rows)
        return PreparedCandidates(c, self.candidate_proj(c))

    # -- attention --

    def attend(self, state: SequenceState, cands: PreparedCandidates) -> torch.Tensor:
        """(N, E): each candidate's attention-weighted history. ``state`` holds one history
        (broadcast over the N candidates) or N (one per candidate, training)."""
        h, c = state.h, cands.c  # (B, L, E) with B in {1, N}; (N, E)
        pre = state.ah + cands.cc[:, None, :] + self.product_proj(h * c[:, None, :])  # (N, L, H)
        s = self.score(pre.relu()).squeeze(-1)  # (N, L)
        s = s.masked_fill(~state.mask, float("-inf"))
        w = torch.softmax(s, dim=1)
        w = torch.nan_to_num(w, nan=0.0)  # an empty history: every position masked -> zeros
        if h.shape[0] == 1:
            return w @ h[0]  # (N, L) @ (L, E)
        return torch.bmm(w[:, None, :], h).squeeze(1)

    def forward(self, history: JaggedTensor, candidate_rows: torch.Tensor) -> torch.Tensor:
        """(B, E) for B rows: ``history`` the rows' jagged histories (vocabulary rows, oldest
        first), ``candidate_rows`` (B,) each row's candidate."""
        ids, mask = newest(history, self.length)
        return self.attend(self.encode(ids, mask), self.prepare(candidate_rows))

    def reinit_rows(
        self,
        rows: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        optimizer: torch.optim.Optimizer | None = None,
    ) -> None:
        """Fresh initial weights for rows the vocabulary recycled for new ids, and their
        per-element optimizer state (Adam's moments) zeroed."""
        rows = torch.as_tensor(rows, dtype=torch.long).reshape(-1)
        if rows.numel() == 0:
            return
        w = self.items.weight
        bound = math.sqrt(1.0 / w.shape[0])
        fresh = torch.empty(rows.numel(), w.shape[1]).uniform_(-bound, bound, generator=generator)
        idx = rows.to(w.device)
        with torch.no_grad():
            w[idx] = fresh.to(w.device, w.dtype)
            state = optimizer.state.get(w, {}) if optimizer is not None else {}
            for v in state.values():
                if isinstance(v, torch.Tensor) and v.dim() >= 1 and v.shape[0] == w.shape[0]:
                    v[idx] = 0

    def flops_per_candidate(self, history: int | None = None) -> int:
        """Multiply-adds per candidate at serving with ``history`` engagements (default L):
        the product term, the unit's output layer and the weighted sum."""
        length = self.length if history is None else min(history, self.length)
        hidden = self.history_proj.out_features
        return length * (self.dim * hidden + hidden + self.dim)


__all__ = ["PreparedCandidates", "SequenceState", "TargetAttention", "newest"]
