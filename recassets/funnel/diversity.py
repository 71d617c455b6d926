"""List-wise rules that move items on the page before ``rules.select`` cuts it: a freshness
boost and MMR diversity. Plain NumPy, no model or store, like ``rules``.

- ``fresh_boost``: items first seen within ``fresh_days`` get ``+boost`` on their score,
  so a new item can pass a slightly better old one (not a much better one). This is not the
  cold-start list's fresh slots (``rules.insert_fresh``), which reserve places whatever the
  score: the boost works on every path, in that path's score unit.
- ``mmr``: Maximal Marginal Relevance (Carbonell & Goldstein, SIGIR 1998). Greedily take
  argmax over the candidates left of  lambda * score_norm - (1 - lambda) * max cosine
  similarity to the items already taken, over the items' content embeddings
  (``item_features.embedding``: a projection of category and creator, so one creator's
  items sit closest), or category equality where the catalog holds no embedding.
- ``arrange``: both, in that order, as the funnel's rule stage runs them; it returns a walk
  order and marks for ``rules.select``, which still dedupes and applies the caps.

Cost: the boost is array work over the N candidates; MMR looks only at the first
P = ``MMR_POOL * k`` distinct candidates: their (P, P) similarities in one product, then k
steps of O(P) array work (about 0.1 ms at k = 20; nothing when off).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from recassets.funnel import rules as R
from recassets.funnel.config import FunnelConfig
from recassets.funnel.rules import UNKNOWN, Entry

# MMR chooses among the first 4k candidates (the multiple popularity and trending fetch):
# diversity swaps a near-duplicate for a slightly weaker item, not for the 300th one, and
# the cost grows with the pool squared.
MMR_POOL = 4
FRESH_BOOST, MMR = "rules:fresh_boost", "rules:mmr"  # the stages an item moved by them shows


def fresh_boost(
    scores: np.ndarray, age_days: np.ndarray, fresh_days: float, boost: float
) -> tuple[np.ndarray, np.ndarray]:
    """(``scores`` + ``boost`` where the item is fresh, the fresh mask): fresh means
    ``age_days`` (N,) at most ``fresh_days`` (NaN, an item the store does not hold, is not)."""
    age = np.asarray(age_days, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        fresh = age <= fresh_days
    return scores.astype(np.float64) + boost * fresh, fresh


def unit_rows(embedding: np.ndarray) -> np.ndarray:
    """(P, D) rows scaled to unit length (NaN, the store's filler, read as 0; a zero row stays
    zero and is similar to nothing)."""
    e = np.nan_to_num(np.asarray(embedding, dtype=np.float64), nan=0.0)
    norm = np.linalg.norm(e, axis=1, keepdims=True)
    return e / np.maximum(norm, 1e-12)


def mmr(
    ids: np.ndarray,
    scores: np.ndarray,
    k: int,
    lam: float,
    *,
    embedding: np.ndarray | None = None,
    category: np.ndarray | None = None,
) -> np.ndarray:
    """Positions of ``ids`` (P,) in the order MMR takes them, ``min(k, P)`` of them. The
    scores are min-max normalised over the pool (so lambda does not depend on the score's
    unit); the similarity is the cosine of ``embedding`` (P, D) rows, else 1 between items of
    one ``category`` (P,; None reads as 'unknown'), else 0. The first item is the best
    scored; exact ties go to the smaller id, so the order is deterministic. ``lam`` = 1 is
    the score order."""
    p = len(ids)
    n = min(k, p)
    if n <= 0:
        return np.zeros(0, np.int64)
    if lam >= 1:  # relevance alone: the score order, ties by id
        return np.lexsort((np.asarray(ids), -np.asarray(scores, dtype=np.float64)))[:n]
    # work in id order, so that argmax (the first of equal maxima) breaks ties by the id
    by_id = np.argsort(np.asarray(ids), kind="stable")
    s = np.asarray(scores, dtype=np.float64)[by_id]
    span = float(s.max() - s.min())
    rel = (s - s.min()) / span if span > 0 else np.zeros(p)
    # (P, P) similarities at once: one small product beats a matrix-vector call per step
    if embedding is not None:
        unit = unit_rows(np.asarray(embedding)[by_id]).astype(np.float32)
        sim = unit @ unit.T
    elif category is not None:
        codes = np.unique([c or UNKNOWN for c in category[by_id].tolist()], return_inverse=True)[1]
        sim = (codes[:, None] == codes[None, :]).astype(np.float32)
    else:
        sim = np.zeros((p, p), np.float32)
    out = np.empty(n, np.int64)
    base, weight = lam * rel, 1.0 - lam
    nearest = np.full(p, -np.inf)  # max similarity to the items taken; +inf once taken
    value = rel.copy()  # the first pick: relevance alone
    for t in range(n):
        j = int(np.argmax(value))
        out[t] = j
        np.maximum(nearest, sim[j], out=nearest)
        nearest[j] = np.inf
        # lambda * rel - (1 - lambda) * nearest (weight > 0): taken items fall to -inf
        np.multiply(nearest, weight, out=value)
        np.subtract(base, value, out=value)
    return by_id[out]


def arrange(
    ids: np.ndarray,
    scores: np.ndarray,
    k: int,
    *,
    mmr_lambda: float = 1.0,
    boost: float = 0.0,
    fresh_days: float = 1.0,
    age_days: np.ndarray | None = None,
    embedding: np.ndarray | None = None,
    category: np.ndarray | None = None,
) -> tuple[np.ndarray | None, np.ndarray, dict[str, np.ndarray]]:
    """The rule stage's rearrangement of a candidate list (``ids`` (N,) best first, its
    ``scores``): (the walk order for ``rules.select``, or None when nothing moved; the
    scores, boosted; the marks, each an (N,) bool array of the positions it concerns).

    First the freshness boost (``boost`` > 0 and ``age_days`` (N,) given): the boosted items
    are marked ``rules:fresh_boost`` and the list re-sorted on the new scores (stable: equal
    scores keep their order). Then MMR (``mmr_lambda`` < 1) over the first ``MMR_POOL * k``
    distinct ids, with ``embedding`` (N, D) or ``category`` (N,) as the similarity: its k
    picks lead the list, the rest follow in score order, and an item MMR placed before its
    score rank is marked ``rules:mmr``."""
    order: np.ndarray | None = None
    marks: dict[str, np.ndarray] = {}
    n = len(ids)
    if boost > 0 and age_days is not None and n:
        scores, fresh = fresh_boost(scores, age_days, fresh_days, boost)
        if fresh.any():
            marks[FRESH_BOOST] = fresh
            order = np.argsort(-scores, kind="stable")
    if mmr_lambda < 1 and k > 0 and n > 1:
        walk = order if order is not None else np.arange(n)
        first = np.unique(ids[walk], return_index=True)[1]  # a duplicate keeps its first place
        pool = walk[np.sort(first)[: MMR_POOL * k]]  # positions into ids, in walk order
        picked = mmr(
            ids[pool],
            scores[pool],
            k,
            mmr_lambda,
            embedding=embedding[pool] if embedding is not None else None,
            category=category[pool] if category is not None else None,
        )
        promoted = np.zeros(n, bool)
        promoted[pool[picked]] = picked > np.arange(len(picked))
        if promoted.any():
            marks[MMR] = promoted
            rest = np.ones(n, bool)
            rest[pool[picked]] = False
            order = np.concatenate([pool[picked], walk[rest[walk]]])
    return order, scores, marks


__all__ = ["FRESH_BOOST", "MMR", "MMR_POOL", "arrange", "fresh_boost", "mmr", "unit_rows"]


def page(
    ids: np.ndarray,
    scores: np.ndarray,
    retrieval: np.ndarray | None,
    category: np.ndarray | Callable[[np.ndarray], np.ndarray],
    k: int,
    config: FunnelConfig,
    *,
    stages: list[str],
    notes: list[str],
    sources: Sequence[Sequence[str]] | None = None,
    creator: np.ndarray | None = None,
    age_days: np.ndarray | None = None,
    embedding: np.ndarray | None = None,
) -> list[Entry]:
    """The page of a ranked candidate list under ``config``'s rules, as serving builds it
    and evaluation scores it: when a list-wise rule is on (``config.list_rules``), first
    ``arrange`` (freshness boost, MMR), then ``rules.select`` (caps, de-duplication, top k).
    ``creator``, ``age_days``, ``embedding``: (N,) / (N, D) of ``ids``, where known;
    ``category``: (N,), or a function of ids giving theirs (asked only for what is read)."""
    order = marks = None
    if config.list_rules:
        if callable(category):  # MMR compares the pool's categories: all of them
            category = category(ids)
        order, scores, marks = arrange(
            ids, scores, k, mmr_lambda=config.mmr_lambda, boost=config.fresh_boost,
            fresh_days=config.fresh_days, age_days=age_days, category=category,
            embedding=embedding,
        )  # fmt: skip
    return R.select(ids, scores, retrieval, category, k=k, cap=config.category_cap(k),
                    stages=stages, notes=notes, sources=sources, creator=creator,
                    creator_cap=config.max_per_creator, order=order, marks=marks)  # fmt: skip
