"""The blend's candidate sources and their union (``union_blend``), as serving runs it, batch
recommendations repeat it and ``model_evaluation`` scores it, and the funnel's recall stage by
stage (``stage_recall``).

Five sources, each up to its quota (``funnel.config.FunnelConfig.quotas``): the two-tower's
ANN top N; the user's best EASE scores (``similarity.ItemSimilarity``); the week's most engaged
items; the items first seen in the last days; and what trends in the user's cohort (country x
age bucket, ``cohort_trending``: the week's engagements weighed by the cohort's taste per
category, read from ``cohort_features`` offline and from the online store in serving). The
union is de-duplicated (an item lists every source that proposed it) and scored once per
candidate by ``similarity.blend``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recassets.training.similarity import BETA, GAMMA, blend

SOURCES = ("two_tower", "similarity", "trending", "fresh", "cohort")


CohortRates = dict[tuple[str, str], dict[str, float]]


def cohort_trending(
    engagements_7d: np.ndarray, cohort: np.ndarray | None, category_code: np.ndarray
) -> np.ndarray | None:
    """Trending for a cohort (country, age bucket), aligned over the catalog: each item's 7-day
    engagements times its category's share of the cohort's 7-day engagements (``cohort`` (C,),
    per category) over that category's share of everyone's (the items' ``engagements_7d``
    summed by ``category_code``). The cohort's favourite categories rise, the rest sink, within
    a category the week's volume still decides. None when the cohort engaged with nothing in
    the week (the source would repeat global trending).

    Per category, not per item: the lake keeps cohort counters by category
    (``cohort_features``), and a per-item table for each cohort would be the item count times
    the cohorts for one source."""
    c = np.maximum(np.asarray(cohort if cohort is not None else [], dtype=np.float64), 0.0)
    e = np.maximum(np.asarray(engagements_7d, dtype=np.float64), 0.0)
    if not len(c) or c.sum() <= 0 or e.sum() <= 0:
        return None
    codes = np.asarray(category_code, dtype=np.int64)
    everyone = np.bincount(codes, weights=e, minlength=len(c))[: len(c)]
    share = everyone / everyone.sum()
    lift = np.divide(c / c.sum(), share, out=np.zeros_like(c), where=share > 0)
    return e * lift[codes]


def cohort_rates(path: str, day: str | dt.date | None = None) -> CohortRates:
    """Each cohort's (country, age bucket) 7-day engagements per category from the
    ``cohort_features`` table at ``path``, as of ``day`` (default: its latest partition): what
    serving reads from the online store for the cohort source. Empty when the table or the day
    is absent."""
    from deltalake.exceptions import TableNotFoundError

    from recassets.lake import open_delta

    try:
        ds = open_delta(path).to_pyarrow_dataset()
    except (TableNotFoundError, FileNotFoundError, OSError):
        return {}
    cols = ["country", "age_bucket", "category", "engagements_7d", "dt"]
    if day is None:
        days = ds.to_table(columns=["dt"])["dt"]
        if not len(days):
            return {}
        day = pc.max(days).as_py()
    when = dt.date.fromisoformat(day) if isinstance(day, str) else day
    rows = ds.to_table(columns=cols, filter=pc.field("dt") == pa.scalar(when, pa.date32()))
    out: CohortRates = {}
    for c, a, cat, n in zip(
        *(rows[f].to_pylist() for f in ("country", "age_bucket", "category", "engagements_7d")),
        strict=True,
    ):
        if n is not None:
            out.setdefault((c, a), {})[cat] = float(n)
    return out


def cohort_vector(
    rates: CohortRates, country: str | None, age_bucket: str | None, categories: Sequence[str]
) -> np.ndarray:
    """(C,) the cohort's value for each of ``categories`` (0 where it has none), nulls read as
    'unknown' as the lake writes them; the offline twin of ``items.Catalog.cohort_engagements``."""
    from recassets.funnel.rules import UNKNOWN

    got = rates.get((country or UNKNOWN, age_bucket or UNKNOWN), {})
    return np.asarray([got.get(c, 0.0) for c in categories], dtype=np.float64)


def category_codes(category: Sequence[str | None]) -> tuple[list[str], np.ndarray]:
    """The distinct categories (nulls as 'unknown', sorted) and each item's index into them."""
    from recassets.funnel.rules import UNKNOWN

    names = sorted({c or UNKNOWN for c in category} | {UNKNOWN})
    code = {c: i for i, c in enumerate(names)}
    return names, np.asarray([code[c or UNKNOWN] for c in category], dtype=np.int64)


@dataclass(frozen=True)
class CatalogOrders:
    """What ``union_blend`` reads of a catalog that no request changes, made once per catalog
    (serving: once per feature day's item block, ``Recommender``) instead of once per request:
    the ids' sort (None when they ascend, as an item block's do), the week's most engaged items
    (positions with an engagement, most engaged first, ties the lower id) and the fresh items
    (most engaged first, ties the lower id). It holds the arrays it was made from:
    ``union_blend`` uses it only for those very arrays and makes its own for any others."""

    given: Any  # the catalog's ids as given (``fits``); ``ids``: as int64
    ids: np.ndarray
    engagements_7d: Any
    fresh_mask: Any
    sorter: np.ndarray | None
    trending: np.ndarray
    fresh: np.ndarray | None

    @classmethod
    def of(
        cls, ids: np.ndarray, engagements_7d: np.ndarray, fresh: np.ndarray | None = None
    ) -> CatalogOrders:
        given = ids
        ids = np.asarray(ids, dtype=np.int64)
        e = np.asarray(engagements_7d, dtype=np.float64)
        ascending = bool(len(ids) < 2 or (ids[1:] > ids[:-1]).all())
        sorter = None if ascending else np.argsort(ids, kind="stable")
        hot = np.flatnonzero(e > 0)
        by_volume = hot[np.lexsort((ids[hot], -e[hot]))]
        new = None
        if fresh is not None:
            f = np.flatnonzero(np.asarray(fresh, dtype=bool))
            new = f[np.lexsort((ids[f], -e[f]))]
        return cls(given, ids, engagements_7d, fresh, sorter, by_volume, new)

    def fits(self, ids: Any, engagements_7d: Any, fresh: Any) -> bool:
        """Made from these very arrays (identity, not equality: checking costs nothing)."""
        return (
            self.given is ids and self.engagements_7d is engagements_7d and self.fresh_mask is fresh
        )

    def positions(self, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Catalog positions of ``item_ids`` and whether each is there (position 0 where not)."""
        ids = self.ids
        if not len(ids):
            return np.zeros(len(item_ids), np.int64), np.zeros(len(item_ids), bool)
        at = np.minimum(np.searchsorted(ids, item_ids, sorter=self.sorter), len(ids) - 1)
        pos = at if self.sorter is None else self.sorter[at]
        return pos, ids[pos] == item_ids


def union_blend(
    item_ids: np.ndarray,
    engagements_7d: np.ndarray,
    ease: np.ndarray,
    tt_ids: np.ndarray,
    tt_scores: np.ndarray,
    exclude: set[int],
    candidates: int,
    *,
    beta: float = BETA,
    gamma: float = GAMMA,
    fresh: np.ndarray | None = None,
    quotas: Mapping[str, int] | None = None,
    cohort: np.ndarray | None = None,
    orders: CatalogOrders | None = None,
) -> tuple[np.ndarray, np.ndarray, Sources]:
    """The blend order over the union of the candidate sources, as serving runs it and the
    evaluation scores it: the two-tower's candidates (``tt_ids`` with their dot products,
    already retrieved), the best EASE scores above zero, the most engaged items of the last 7
    days (with at least one engagement) and, given a ``fresh`` mask, the items first seen in the
    last days (the most engaged of them first) and, given ``cohort`` scores
    (``cohort_trending``), the best of those above zero: what trends in the user's cohort;
    ``exclude``d ids dropped, duplicates merged (an item lists every source that proposed it).
    Each source proposes at most its quota (``quotas``: ``two_tower``, ``similarity``,
    ``trending``, ``fresh``, ``cohort``; default ``candidates`` each, the fresh and cohort
    sources none); the trending and fresh sources break ties by the lower id. ``item_ids`` (any
    order), ``engagements_7d``, ``ease``, ``fresh`` and ``cohort`` are aligned over the catalog;
    ``orders`` (``CatalogOrders.of`` those very arrays) saves making them again. An item the
    two-tower did not retrieve takes the lowest retrieved dot product (it is not in the user's
    top by that score). Returns (ids, scores, sources), best first (ties: the lower id)."""
    quota = {"two_tower": candidates, "similarity": candidates, "trending": candidates,
             "fresh": 0, "cohort": 0, **(quotas or {})}  # fmt: skip
    unknown = set(quota) - set(SOURCES)
    if unknown:
        raise ValueError(f"no candidate source {sorted(unknown)} (have {list(SOURCES)})")
    if orders is None or not orders.fits(item_ids, engagements_7d, fresh):
        orders = CatalogOrders.of(item_ids, engagements_7d, fresh)
    ids = orders.ids
    # array work only: this runs per request, over the catalog where a source must look at
    # every item (EASE, the cohort) and over the sources' few hundred candidates elsewhere
    ok = None  # catalog positions not excluded
    gone = np.fromiter(exclude, np.int64, len(exclude)) if exclude else None
    if gone is not None:
        at, there = orders.positions(gone)
        ok = np.ones(len(ids), dtype=bool)
        ok[at[there]] = False

    def best(score: np.ndarray, n_max: int) -> np.ndarray:
        """Positions of the ``n_max`` best scores above zero, excluded items left out."""
        s = np.asarray(score, dtype=np.float64)
        allowed = np.flatnonzero(s > 0 if ok is None else (s > 0) & ok)
        if len(allowed) <= n_max:
            return allowed
        return (
            allowed[np.argpartition(-s[allowed], n_max - 1)[:n_max]] if n_max > 0 else allowed[:0]
        )

    def first(order: np.ndarray, n_max: int) -> np.ndarray:
        """The first ``n_max`` positions of a standing order, excluded items left out."""
        head = order[: n_max + (len(gone) if gone is not None else 0)]
        return (head if ok is None else head[ok[head]])[: max(n_max, 0)]

    tt_ids = np.asarray(tt_ids, dtype=np.int64)
    tt_scores = np.asarray(tt_scores, dtype=np.float64)
    pos, known = orders.positions(tt_ids)
    if gone is not None and len(tt_ids):
        # an id the catalog holds is judged by its position; one it does not (it never joins
        # the union) still takes its place in the quota unless excluded
        drop = ~ok[pos] & known  # type: ignore[index]
        if not known.all():
            drop |= ~known & np.isin(tt_ids, gone)
        pos, known, tt_scores = pos[~drop], known[~drop], tt_scores[~drop]
    q = max(quota["two_tower"], 0)
    pos, known, tt_scores = pos[:q], known[:q], tt_scores[:q]
    member = np.zeros((len(ids), len(SOURCES)), dtype=bool)
    proposed = [
        pos[known],
        best(ease, quota["similarity"]),
        first(orders.trending, quota["trending"]),
        first(orders.fresh, quota["fresh"]) if orders.fresh is not None else None,
        best(cohort, quota["cohort"]) if cohort is not None else None,
    ]
    union = np.zeros(len(ids), dtype=bool)  # a scatter a source: cheaper than any(axis=1)
    for j, at in enumerate(proposed):
        if at is not None and len(at):
            member[at, j] = True
            union[at] = True
    cand = np.flatnonzero(union)
    if not len(cand):
        return np.zeros(0, np.int64), np.zeros(0), Sources(member[:0])
    tt = None
    if len(tt_scores):
        tt = np.full(len(ids), float(tt_scores.min()))
        tt[pos[known]] = tt_scores[known]
        tt = tt[cand]
    score = blend(
        np.asarray(ease)[cand], np.asarray(engagements_7d)[cand], tt, beta=beta, gamma=gamma
    )
    # cand ascends by position: by id too when the ids ascend, so a stable sort on the score
    # alone breaks ties by the lower id
    if orders.sorter is None:
        order = np.argsort(-score, kind="stable")
    else:
        order = np.lexsort((ids[cand], -score))
    return ids[cand[order]], score[order], Sources(member[cand[order]])


def stage_recall(
    truth: Sequence[set[int]], unions: Sequence[tuple[np.ndarray, np.ndarray] | None], k: int
) -> dict[str, float]:
    """The blend's funnel stage by stage: per unit (its new items ``truth``; ``unions``: the
    blend's whole ranked union and its (N, len(SOURCES)) source membership, None where not scored), the
    share of the new items that each source proposed, that the union holds and that the top
    ``k`` keeps; averaged over units (``units``), with the mean union size (``union_size``)."""
    names = [*SOURCES, "union", f"blend@{k}"]
    got: dict[str, list[float]] = {name: [] for name in names}
    sizes = []
    for t, u in zip(truth, unions, strict=True):
        if u is None or not t:
            continue
        ids, member = u
        hit = np.isin(ids, np.fromiter(t, np.int64, len(t)))
        for j, name in enumerate(SOURCES):
            got[name].append(hit[member[:, j]].sum() / len(t))
        got["union"].append(hit.sum() / len(t))
        got[f"blend@{k}"].append(hit[:k].sum() / len(t))
        sizes.append(len(ids))
    out = {name: float(np.mean(v)) if v else float("nan") for name, v in got.items()}
    return {**out, "union_size": float(np.mean(sizes)) if sizes else 0.0, "units": len(sizes)}


class Sources(Sequence[tuple[str, ...]]):
    """Per returned item, the sources that proposed it (``SOURCES`` order), made on access:
    the rules read only the items they walk (about k of the union)."""

    def __init__(self, member: np.ndarray) -> None:
        self.member = member

    def __len__(self) -> int:
        return len(self.member)

    def __getitem__(self, j: Any) -> Any:
        if isinstance(j, slice):
            return [self[i] for i in range(*j.indices(len(self)))]
        return tuple(name for name, on in zip(SOURCES, self.member[j], strict=True) if on)
