"""Model inputs: one container for the sparse (KJT) and dense parts of a batch.

Shapes: B batch, F sparse features, L ids per bag (jagged), Du / Di / Dc dense widths.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor


@dataclass
class ModelInputs:
    """What the towers and the ranker read.

    ``sparse``: KJT ``[F x B x L]`` of embedding-row ids (already mapped by the vocabulary);
    it may hold only the keys one side needs (the user features of one request, say).
    ``user_dense`` ``(B, Du)``, ``item_dense`` ``(B, Di)``, ``cross_dense`` ``(B, Dc)``: raw
    counters, scaled inside the models (``signed_log1p``), so serving passes the same values.
    """

    sparse: KeyedJaggedTensor
    user_dense: torch.Tensor | None = None
    item_dense: torch.Tensor | None = None
    cross_dense: torch.Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.sparse.stride()

    def to(self, device: torch.device | str, non_blocking: bool = False) -> ModelInputs:
        move = lambda t: None if t is None else t.to(device, non_blocking=non_blocking)  # noqa: E731
        return replace(
            self,
            sparse=self.sparse.to(torch.device(device), non_blocking=non_blocking),
            user_dense=move(self.user_dense),
            item_dense=move(self.item_dense),
            cross_dense=move(self.cross_dense),
        )


def signed_log1p(x: torch.Tensor) -> torch.Tensor:
    """``sign(x) * log1p(|x|)``: counters span 0..1e6 (engagements, item age in days) and a
    few features can be negative (trend ratios); this keeps order and sign and tames the scale."""
    return torch.sign(x) * torch.log1p(torch.abs(x))
