"""The item-to-item co-occurrence baseline the promotion gate must beat (``evaluation``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class Cooccurrence:
    """Item-kNN on co-engagement: sim(i, j) = |U_i ∩ U_j| / sqrt(|U_i| |U_j|) over the users'
    positives (Sarwar et al. 2001, "Item-based collaborative filtering"); a user's score of j is
    the sum of sim(i, j) over the items i of the user's history. Users without history get
    all-time popularity (a tiny popularity term also breaks ties)."""

    def __init__(self, user_ids: np.ndarray, item_ids: np.ndarray) -> None:
        from scipy import sparse

        self.items, icol = np.unique(np.asarray(item_ids, dtype=np.int64), return_inverse=True)
        _, urow = np.unique(np.asarray(user_ids, dtype=np.int64), return_inverse=True)
        x = sparse.csr_matrix(
            (np.ones(len(icol), dtype=np.float32), (urow, icol)),
            shape=(int(urow.max()) + 1 if len(urow) else 0, len(self.items)),
        )
        x.data[:] = 1.0  # a user's repeated positives of one item count once
        counts = np.asarray(x.sum(axis=0)).ravel()
        norm = sparse.diags(1.0 / np.sqrt(np.maximum(counts, 1.0)))
        sim = (norm @ (x.T @ x) @ norm).tocsr()
        sim.setdiag(0.0)
        sim.eliminate_zeros()
        self.sim = sim
        self.popularity = counts / max(counts.max(initial=0.0), 1.0)

    def scores(self, histories: Sequence[set[int]]) -> np.ndarray:
        """(U, N) scores over ``self.items`` for each history (a set of item ids)."""
        from scipy import sparse

        rows: list[np.ndarray] = []
        cols: list[np.ndarray] = []
        for r, h in enumerate(histories):
            ids = np.fromiter(h, dtype=np.int64, count=len(h))
            pos = np.minimum(np.searchsorted(self.items, ids), max(len(self.items) - 1, 0))
            idx = pos[self.items[pos] == ids] if len(self.items) else pos[:0]
            rows.append(np.full(len(idx), r))
            cols.append(idx)
        r_all = np.concatenate(rows) if rows else np.zeros(0, dtype=np.int64)
        c_all = np.concatenate(cols) if cols else np.zeros(0, dtype=np.int64)
        h = sparse.csr_matrix(
            (np.ones(len(r_all), dtype=np.float32), (r_all, c_all)),
            shape=(len(histories), len(self.items)),
        )
        s = np.asarray((h @ self.sim).todense(), dtype=np.float64)
        return s + 1e-6 * self.popularity[None, :]
