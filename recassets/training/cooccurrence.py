"""The item-to-item co-occurrence baseline the promotion gate must beat (``evaluation``), and
the same order as a policy that serves when nothing learned beats it (``train_next``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

import recassets
from recassets.paths import Paths
from recassets.training import npz_store


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


# --- co-occurrence as a policy that serves -----------------------------------------------------
#
# The gate promotes only what beats the best simple method. When nothing learned does, the
# platform serves the best simple method it can: popularity, or co-occurrence when co-occurrence
# as served beats popularity on the same window (``policy.promote``). Co-occurrence serves
# through the blend's machinery: its kept cosine neighbours in the item-similarity file format
# (``similarity.ItemSimilarity``, ``meta["method"] = "cosine"``), blended with a popularity weight
# that only breaks ties (``TIE_BETA``, as the baseline's 1e-6) and the towers' weight 0, so the
# order is the baseline's: the sum of the user's items' cosines, popularity for a user without
# history. The union of sources still holds the two-tower's ANN candidates (scored by their
# cosine and popularity only), so the file is served and scored exactly as the blend is.

KIND = "cooccurrence"
TIE_BETA = 1e-6
METHOD = "cosine"


def fit_cosine(
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    *,
    neighbors: int,
    max_items: int,
    meta: Mapping[str, Any] | None = None,
) -> Any:
    """The baseline's cosine over (user, item) positives, each item's ``neighbors`` largest
    kept, over the ``max_items`` most engaged items (ties: the lower id), as an
    ``ItemSimilarity`` that blends as co-occurrence orders (``TIE_BETA``, ``gamma`` 0)."""
    from recassets.training.similarity import ItemSimilarity

    users = np.asarray(user_ids, dtype=np.int64)
    items = np.asarray(item_ids, dtype=np.int64)
    if len(users) != len(items):
        raise ValueError(f"{len(users)} user ids for {len(items)} item ids")
    ids, counts = np.unique(items, return_counts=True)
    if len(ids) > max_items:
        keep = np.sort(np.lexsort((ids, -counts))[:max_items])
        inside = np.isin(items, ids[keep])
        users, items = users[inside], items[inside]
    model = Cooccurrence(users, items)
    kept = top_per_row(model.sim, neighbors)
    facts = {
        "method": METHOD,
        "beta": TIE_BETA,
        "gamma": 0.0,
        "neighbors": neighbors,
        "max_items": max_items,
        "items": len(model.items),
        "users": len(np.unique(users)),
        **dict(meta or {}),
    }
    return ItemSimilarity(
        model.items, kept.indptr.astype(np.int64), kept.indices.astype(np.int64),
        kept.data.astype(np.float32), facts,
    )  # fmt: skip


def top_per_row(sim: Any, n: int) -> Any:
    """The ``n`` largest positive entries of each row of the sparse ``sim`` (ties: the lower
    column), as CSR with sorted columns."""
    from scipy import sparse

    sim = sparse.csr_matrix(sim)
    sim.sort_indices()
    m = sim.shape[0]
    rows, cols, vals = [], [], []
    for r in range(m):
        lo, hi = sim.indptr[r], sim.indptr[r + 1]
        c, v = sim.indices[lo:hi], sim.data[lo:hi]
        good = v > 0
        c, v = c[good], v[good]
        if len(v) > n:
            # by value, then by the lower column (lexsort: the last key is the primary one)
            pick = np.lexsort((c, -v))[:n]
            c, v = c[pick], v[pick]
        rows.append(np.full(len(c), r, dtype=np.int64))
        cols.append(c)
        vals.append(v)
    r_all = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    return sparse.csr_matrix(
        (np.concatenate(vals).astype(np.float32) if vals else np.zeros(0, np.float32),
         (r_all, np.concatenate(cols) if cols else np.zeros(0, np.int64))),
        shape=(m, m),
    )  # fmt: skip


def versions(paths: Paths) -> list[Path]:
    """Saved co-occurrence files under ``<artifacts>/models/cooccurrence/``, oldest first."""
    return npz_store.versions(paths, KIND)


def fit_of(paths: Paths, ease_path: str | None) -> str | None:
    """The newest co-occurrence file fitted on the same days as the EASE file ``ease_path``
    (what ``train_next`` saves beside it), or None: an older fit is not what the candidate's
    window would serve."""
    from recassets.training.similarity import ItemSimilarity

    if ease_path is None or not (saved := versions(paths)):
        return None
    days = ItemSimilarity.load(ease_path).meta.get("partitions")
    return str(saved[-1]) if ItemSimilarity.load(saved[-1]).meta.get("partitions") == days else None


def train_next(paths: Paths, ease: Any) -> tuple[Any, str, bool]:
    """Fit co-occurrence on the positives of the same days as the EASE fit ``ease`` (so the
    two are judged on the same window) and save the next version; a fit of those days and
    settings is not repeated. Returns (fit, path, new version?)."""
    from recassets.lake import open_delta
    from recassets.training.evaluation import read_days
    from recassets.training.examples import table_path
    from recassets.training.similarity import ItemSimilarity

    window = list(ease.meta.get("partitions") or [])
    if not window:
        raise ValueError(f"{ease.path}: the item similarity names no training days")
    settings = {"neighbors": int(ease.meta.get("neighbors", 100)),
                "max_items": int(ease.meta.get("max_items", 10_000)),
                "popularity_days": ease.popularity_days}  # fmt: skip
    if (done := npz_store.last_if(paths, KIND, ItemSimilarity.load,
                                  {"partitions": window, **settings})) is not None:  # fmt: skip
        return *done, False
    version = open_delta(table_path(paths)).version()
    rows = read_days(paths, window, ("user_id", "item_id", "label"))
    pos = rows.filter(pc.equal(rows["label"], 1))
    if not pos.num_rows:
        raise ValueError(f"co-occurrence: no positive in {window[0]}..{window[-1]}")
    sim = fit_cosine(
        pos["user_id"].to_numpy(), pos["item_id"].to_numpy(),
        neighbors=settings["neighbors"], max_items=settings["max_items"],
        meta={"partitions": window, "table": str(table_path(paths)), "table_version": version,
              "positives": pos.num_rows, "popularity_days": settings["popularity_days"],
              "format": 1, "code_version": recassets.__version__,
              "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")},
    )  # fmt: skip
    return sim, npz_store.save_next(paths, KIND, lambda p: sim.save(p, exclusive=True)), True
