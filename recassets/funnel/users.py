"""The funnel's user side: one user's online row, read per request, as the models take it.

``UserInputs`` turns the row into a tower's inputs (pooled embeddings and dense counters)
by indexing the embedding weights directly; ``user_table`` is the same row as the one-row
table the training path (``data.user_features``) reads, which the replicated ranking and the
equality tests go through.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pyarrow as pa
import torch

from recassets.featurestore.online import OnlineFeatureReader
from recassets.training import data as D
from recassets.training.schema import USER_DENSE

# user_features names of the training columns (u_ctr_7d <- ctr_7d, ...)
USER_DENSE_SOURCE = tuple(c[2:] for c in USER_DENSE)
_MEMO_LIMIT = 100_000  # memoized vocabulary rows of user string features, per vocabulary


def user_row(reader: OnlineFeatureReader, user_id: int) -> dict[str, Any] | None:
    """The user's online features, or None on a feature-store miss."""
    values = reader.user(int(user_id))
    if all(values.get(f) is None for f in reader.user_features):
        return None
    return values


def seen_items(values: Mapping[str, Any]) -> set[int]:
    """The items the user engaged with, as the online row lists them: ``seen_item_ids`` (every
    engaged item, the newest 500), the history and the last engagements (a store loaded
    before ``seen_item_ids`` existed has only those two)."""
    seen = {int(i) for i in (values.get("seen_item_ids") or [])}
    seen |= {int(i) for i in (values.get("history_item_ids") or [])}
    return seen | {int(i) for i in (values.get("last_engagement_item_ids") or [])}


def user_table(user_id: int, values: Mapping[str, Any]) -> pa.Table:
    """The user's row as a one-row table of ``user_features`` columns (missing counters: 0)."""
    cols: dict[str, pa.Array] = {
        "user_id": pa.array([int(user_id)], pa.int64()),
        "history_item_ids": pa.array(
            [[int(i) for i in (values.get("history_item_ids") or [])]], pa.list_(pa.int64())
        ),
    }
    for c in ("country", "device", "age_bucket"):
        cols[c] = pa.array([values.get(c)], pa.string())
    for c in USER_DENSE_SOURCE:
        v = values.get(c)
        cols[c] = pa.array([0.0 if v is None else float(v)], pa.float64())
    return pa.table(cols)


def embedding_weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Feature -> the (rows, E) weight of the table it reads."""
    return {
        f: model.embeddings.weight(t.name)  # type: ignore[union-attr,operator]
        for t in model.config.tables  # type: ignore[union-attr]
        for f in t.features
    }


class UserInputs:
    """One user's pooled embeddings {feature: (1, E)} and dense counters (1, Du), straight
    from the online row: the vocabulary rows ``data.user_features`` would give for a
    one-row table, mean-pooled as the tables pool (an empty bag is zeros), by indexing
    the weights. For one row this skips TorchRec's KJT bookkeeping, which costs more
    than the lookups themselves (equality with the module path is tested). A one-value
    bag is a view of its weight row (the mean of one row is the row); the rows of string
    values (country, device, age bucket: a handful each) are memoized per vocabulary,
    which the bundle fixes for the life of the process."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._string_rows: dict[int, dict[tuple[str, str], int]] = {}

    def __call__(
        self,
        user_id: int,
        values: Mapping[str, Any],
        vocab: Any,
        weights: Mapping[str, torch.Tensor],
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        pooled: dict[str, torch.Tensor] = {}
        memo = self._string_rows.setdefault(id(vocab), {})
        for feature in D.USER_FEATURES:
            name = D.FEATURE_VOCAB[feature]
            w = weights[feature]
            if feature in D.LIST_FEATURES:
                ids = [int(i) for i in (values.get(feature) or []) if i is not None]
                if ids:
                    rows = vocab[name].lookup(np.asarray(ids, np.int64), record=False)
                    pooled[feature] = w.index_select(0, torch.from_numpy(rows)).mean(
                        dim=0, keepdim=True
                    )
                else:
                    pooled[feature] = w.new_zeros((1, w.shape[1]))
                continue
            if feature == "user_id":
                row = int(vocab[name].lookup(np.asarray([int(user_id)], np.int64), record=False)[0])
            elif (x := values.get(feature)) is None:
                pooled[feature] = w.new_zeros((1, w.shape[1]))
                continue
            elif (row := memo.get((name, x), -1)) < 0:
                row = int(vocab[name].lookup(pa.array([x], pa.string()), record=False)[0])
                if len(memo) < _MEMO_LIMIT:
                    memo[(name, x)] = row
            pooled[feature] = w[row : row + 1]
        dense = torch.tensor(
            [[0.0 if (x := values.get(c)) is None else float(x) for c in USER_DENSE_SOURCE]],
            dtype=torch.float32,
            device=self.device,
        )
        return pooled, dense


__all__ = ["UserInputs", "embedding_weights", "seen_items", "user_row", "user_table"]
