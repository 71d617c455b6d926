"""The funnel's rules, on plain arrays: what a candidate list goes through before it is served.

No model, no store and no torch here: each function takes NumPy arrays (item ids, scores,
per-item categories or flags) and returns arrays or the served entries, so each is tested
on its own with exact expected values (``tests/unit/funnel/test_rules.py``). The funnel
(``funnel.Recommender``) gathers those arrays from the item block and the stages.

- ``trending_score``: the cold-start order of the catalog;
- ``cohort_lift``: that order re-weighted by a cohort's taste for each category;
- ``exclude_seen``: drop the items the user already engaged with;
- ``top_k``: the k best of a scored catalog, ties by item id, some items left out;
- ``select``: dedupe, cap items per category (relaxed only to reach k), stop at k;
- ``fresh_slots`` and ``insert_fresh``: the exploration slots of a cold-start list.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

UNKNOWN = "unknown"  # the lake's stand-in for a missing country / age bucket / category

# One served item: item_id, score, stages (what it passed), and after ``select`` its
# category; ``retrieval_score`` too when it came through retrieval.
Entry = dict[str, Any]


def trending_score(trending: np.ndarray, engagements_7d: np.ndarray) -> np.ndarray:
    """Cold-start order: the item's trend ratio (1-day rate over its 7-day daily mean) times
    log(1 + engagements in 7 days). The ratio alone crowns items with one engagement
    yesterday and none before; the volume term keeps the list to items people actually use."""
    t = np.nan_to_num(trending.astype(np.float64), nan=0.0)
    e = np.nan_to_num(engagements_7d.astype(np.float64), nan=0.0)
    return np.maximum(t, 0.0) * np.log1p(np.maximum(e, 0.0)) + 1e-6 * e


def cohort_lift(score: np.ndarray, ctr: np.ndarray, category_code: np.ndarray) -> np.ndarray:
    """``score`` (M,) times the cohort's CTR of each item's category (``ctr`` (C,) indexed by
    ``category_code`` (M,)) relative to the cohort's mean over the categories it has a rate
    for: its favourite categories rise, the rest sink, and within a category the score
    still decides. Unchanged when the cohort has no rate at all."""
    if not ctr.any():
        return score
    lift = ctr / max(float(ctr[ctr > 0].mean()), 1e-9)
    return score * lift[category_code]


def exclude_seen(
    ids: np.ndarray, scores: np.ndarray, seen: set[int]
) -> tuple[np.ndarray, np.ndarray]:
    """``ids`` and their ``scores`` without the items in ``seen``, in the same order."""
    if not seen:
        return ids, scores
    keep = ~np.isin(ids, np.fromiter(seen, np.int64, len(seen)))
    return ids[keep], scores[keep]


def top_k(
    ids: np.ndarray, score: np.ndarray, k: int, exclude: set[int]
) -> tuple[np.ndarray, np.ndarray]:
    """(ids, scores) of the ``k`` best of ``ids`` by ``score``, best first, ties broken by the
    smaller id. Items in ``exclude`` and items scored -inf (ineligible) are never returned,
    so fewer than k may come back."""
    if len(ids) == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    s = score.astype(np.float64).copy()
    if exclude:
        ex = np.fromiter(exclude, dtype=np.int64, count=len(exclude))
        s[np.isin(ids, ex)] = -np.inf
    n = min(k, int(np.isfinite(s).sum()))
    if n <= 0:
        return np.zeros(0, np.int64), np.zeros(0)
    cand = np.argpartition(-s, n - 1)[:n] if n < len(s) else np.arange(len(s))
    order = cand[np.lexsort((ids[cand], -s[cand]))]
    return ids[order], s[order]


def select(
    ids: np.ndarray,
    scores: np.ndarray,
    retrieval: np.ndarray | None,
    category: np.ndarray,
    *,
    k: int,
    cap: int,
    stages: list[str],
    notes: list[str],
    sources: Sequence[Sequence[str]] | None = None,
) -> list[Entry]:
    """The first ``k`` distinct items of ``ids`` (in score order), at most ``cap`` per
    category (0: no cap); the cap is relaxed, in score order, only when the capped list would
    be shorter than k, and a note says so. ``category`` (N,) holds each item's category
    (None reads as 'unknown'); ``retrieval`` (N,) its retrieval score, if any. Each entry's
    stages are ``stages`` then ``rules`` (or ``rules:category_cap_relaxed``); with
    ``sources`` (N,), each entry also lists the candidate sources that proposed it.

    A walk in score order that stops at the k-th item taken (usually within a few dozen
    of the N), over plain lists: at this size that beats array code, whose per-call
    overhead would be paid on all N."""
    scores_, category_ = scores.tolist(), category.tolist()
    retrieval_ = retrieval.tolist() if retrieval is not None else None
    taken: list[Entry] = []
    overflow: list[Entry] = []
    per_cat: dict[Any, int] = {}
    done: set[int] = set()
    for j, item in enumerate(ids.tolist()):
        if item in done:
            continue
        done.add(item)
        entry = {"item_id": item, "score": scores_[j]}
        if retrieval_ is not None:
            entry["retrieval_score"] = retrieval_[j]
        if sources is not None:
            entry["sources"] = list(sources[j])
        cat = category_[j] or UNKNOWN
        if cap and per_cat.get(cat, 0) >= cap:
            entry["stages"] = [*stages, "rules:category_cap_relaxed"]
            overflow.append(entry)
            continue
        per_cat[cat] = per_cat.get(cat, 0) + 1
        entry["stages"] = [*stages, "rules"]
        entry["category"] = cat
        taken.append(entry)
        if len(taken) == k:
            break
    if len(taken) < k and overflow:
        extra = overflow[: k - len(taken)]
        notes.append(f"category cap {cap} relaxed for {len(extra)} item(s)")
        taken.extend(extra)
    return taken


def fresh_slots(k: int, share: float) -> int:
    """How many of a k-item cold-start list are reserved for fresh items: ``share`` of k,
    rounded up, at least one; none when ``share`` is 0."""
    return max(1, math.ceil(k * share)) if share > 0 else 0


def insert_fresh(
    picked: list[Entry],
    picked_fresh: Sequence[bool],
    k: int,
    fresh_ids: np.ndarray,
    fresh_scores: np.ndarray,
) -> list[Entry]:
    """``picked`` (a list in rank order, ``picked_fresh`` saying which of its items are
    fresh) with the fresh items ``fresh_ids`` appended, then cut back to ``k`` by dropping
    its weakest non-fresh entries. Items fresh on their own merit get a "fresh" stage too.

    Trending ranks by volume, so a day-old item can never reach a new user on its own;
    without these slots new items would wait for a week of history."""
    for p, fresh in zip(picked, picked_fresh, strict=True):
        if fresh:
            p["stages"] = [p["stages"][0], "fresh", *p["stages"][1:]]
    if len(fresh_ids) == 0:
        return picked
    out = picked + [
        {"item_id": int(i), "score": float(s), "stages": ["trending", "fresh", "rules"]}
        for i, s in zip(fresh_ids.tolist(), fresh_scores.tolist(), strict=True)
    ]
    for j in range(len(picked) - 1, -1, -1):  # from the weakest up
        if len(out) <= k:
            break
        if not picked_fresh[j]:
            del out[j]
    return out


__all__ = [
    "UNKNOWN",
    "Entry",
    "cohort_lift",
    "exclude_seen",
    "fresh_slots",
    "insert_fresh",
    "select",
    "top_k",
    "trending_score",
]
