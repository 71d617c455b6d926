"""The funnel's rules, on plain arrays: what a candidate list goes through before it is served.

No model, no store and no torch here: each function takes NumPy arrays (item ids, scores,
per-item categories or flags) and returns arrays or the served entries, so each is tested
on its own with exact expected values (``tests/unit/funnel/test_rules.py``). The funnel
(``funnel.Recommender``) gathers those arrays from the item block and the stages.

- ``trending_score``: the cold-start order of the catalog;
- ``cohort_lift``: that order re-weighted by a cohort's taste for each category;
- ``exclude_seen``: drop the items the user already engaged with;
- ``top_k``: the k best of a scored catalog, ties by item id, some items left out;
- ``select``: dedupe, cap items per category and per creator (each relaxed only to reach
  k), stop at k; it walks the order ``diversity.arrange`` made when a freshness boost or
  MMR is on;
- ``fresh_slots`` and ``insert_fresh``: the exploration slots of a cold-start list.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

UNKNOWN = "unknown"  # the lake's stand-in for a missing country / age bucket / category
CATEGORY_CAP, CREATOR_CAP = "category", "creator"  # the caps of ``select``, as notes name them

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


# How many positions of a candidate list ``select`` turns into Python values at a time.
WALK_CHUNK = 256


class _Walked:
    """The Python values of an (N,) array (or of ``convert`` applied to its slices), made a
    chunk at a time as the walk reaches them: the walk stops at the k-th item taken, usually
    within a few dozen of N, and making all N at once (``tolist``, the categories' gather)
    cost more than the walk itself at N = 20,000 (2.6 ms of a request)."""

    __slots__ = ("convert", "n", "values")

    def __init__(self, n: int, convert: Callable[[int, int], list[Any]]) -> None:
        self.n, self.convert, self.values = n, convert, []

    @classmethod
    def of(cls, a: np.ndarray) -> _Walked:
        return cls(len(a), lambda lo, hi: a[lo:hi].tolist())

    def __getitem__(self, j: int) -> Any:
        values = self.values
        while j >= len(values):
            lo = len(values)
            values.extend(self.convert(lo, min(self.n, max(j + 1, lo + WALK_CHUNK))))
        return values[j]


def select(
    ids: np.ndarray,
    scores: np.ndarray,
    retrieval: np.ndarray | None,
    category: np.ndarray | Callable[[np.ndarray], np.ndarray],
    *,
    k: int,
    cap: int,
    stages: list[str],
    notes: list[str],
    sources: Sequence[Sequence[str]] | None = None,
    creator: np.ndarray | None = None,
    creator_cap: int = 0,
    order: np.ndarray | None = None,
    marks: Mapping[str, np.ndarray] | None = None,
) -> list[Entry]:
    """The first ``k`` distinct items of ``ids`` (in score order), at most ``cap`` per
    category (0: no cap) and at most ``creator_cap`` per creator (0: no cap; ``creator`` (N,)
    holds each item's creator, None: not capped); a cap is relaxed, in score order, only when
    the capped list would be shorter than k, and a note names it. ``category`` (N,) holds
    each item's category (None reads as 'unknown'), or is a function of ids giving theirs
    (``ItemBlock.category_of``: asked only of the positions the walk reaches);
    ``retrieval`` (N,) its retrieval score,
    if any. Each entry's stages are ``stages``, then the names of the ``marks`` (N,) bool
    arrays true at its position (``diversity.arrange``: ``rules:fresh_boost``, ``rules:mmr``),
    then ``rules`` or the caps it was let past (``rules:category_cap_relaxed``,
    ``rules:creator_cap_relaxed``); with ``sources`` (N,), each entry also lists the candidate
    sources that proposed it. ``order`` (positions into the arrays) is the walk's order when
    a rule rearranged the list; a duplicate id keeps its first position of that walk (its
    sources are already merged by the union that made the list).

    A walk in score order that stops at the k-th item taken (usually within a few dozen
    of the N), over plain values made a chunk at a time (``_Walked``): at this size that
    beats array code, whose per-call overhead would be paid on all N."""
    ids_, scores_ = _Walked.of(ids), _Walked.of(scores)
    if callable(category):
        category_ = _Walked(len(ids), lambda lo, hi: category(ids[lo:hi]).tolist())
    else:
        category_ = _Walked.of(category)
    retrieval_ = _Walked.of(retrieval) if retrieval is not None else None
    creator_ = _Walked.of(creator) if creator is not None and creator_cap else None
    marks_ = [(name, _Walked.of(mask)) for name, mask in (marks or {}).items()]
    walk = _Walked.of(order) if order is not None else None
    taken: list[Entry] = []
    overflow: list[tuple[Entry, list[str]]] = []
    per_cat: dict[Any, int] = {}
    per_creator: dict[Any, int] = {}
    done: set[int] = set()
    for t in range(len(order) if order is not None else len(ids)):
        j = walk[t] if walk is not None else t
        item = ids_[j]
        if item in done:
            continue
        done.add(item)
        entry = {"item_id": item, "score": scores_[j]}
        if retrieval_ is not None:
            entry["retrieval_score"] = retrieval_[j]
        if sources is not None:
            entry["sources"] = list(sources[j])
        passed = [*stages, *(name for name, mask in marks_ if mask[j])]
        cat = category_[j] or UNKNOWN
        who = creator_[j] if creator_ is not None else None
        over = []
        if cap and per_cat.get(cat, 0) >= cap:
            over.append(CATEGORY_CAP)
        if who is not None and per_creator.get(who, 0) >= creator_cap:
            over.append(CREATOR_CAP)
        if over:
            entry["stages"] = passed + [f"rules:{name}_cap_relaxed" for name in over]
            overflow.append((entry, over))
            continue
        per_cat[cat] = per_cat.get(cat, 0) + 1
        if who is not None:
            per_creator[who] = per_creator.get(who, 0) + 1
        entry["stages"] = [*passed, "rules"]
        entry["category"] = cat
        taken.append(entry)
        if len(taken) == k:
            break
    if len(taken) < k and overflow:
        extra = overflow[: k - len(taken)]
        for name, limit in ((CATEGORY_CAP, cap), (CREATOR_CAP, creator_cap)):
            n = sum(name in over for _, over in extra)
            if n:
                notes.append(f"{name} cap {limit} relaxed for {n} item(s)")
        taken.extend(entry for entry, _ in extra)
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
    "CATEGORY_CAP",
    "CREATOR_CAP",
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
