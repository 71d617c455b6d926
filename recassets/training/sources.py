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
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    try:
        ds = DeltaTable(path).to_pyarrow_dataset()
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
    sources none). ``item_ids`` (any order), ``engagements_7d``, ``ease``, ``fresh`` and
    ``cohort`` are aligned over the catalog. An item the two-tower did not retrieve takes the
    lowest retrieved dot product (it is not in the user's top by that score). Returns (ids,
    scores, sources), best first (ties: the lower id)."""
    ids = np.asarray(item_ids, dtype=np.int64)
    ok = ~np.isin(ids, np.fromiter(exclude, np.int64, len(exclude))) if exclude else None
    quota = {"two_tower": candidates, "similarity": candidates, "trending": candidates,
             "fresh": 0, "cohort": 0, **(quotas or {})}  # fmt: skip
    unknown = set(quota) - set(SOURCES)
    if unknown:
        raise ValueError(f"no candidate source {sorted(unknown)} (have {list(SOURCES)})")

    def best(score: np.ndarray, positive: bool, n_max: int) -> np.ndarray:
        s = np.asarray(score, dtype=np.float64).copy()
        if ok is not None:
            s[~ok] = -np.inf
        if positive:
            s[s <= 0] = -np.inf
        n = min(n_max, int(np.isfinite(s).sum()))
        if n <= 0:
            return np.zeros(0, dtype=np.int64)
        return np.argpartition(-s, n - 1)[:n] if n < len(s) else np.flatnonzero(np.isfinite(s))

    tt_ids = np.asarray(tt_ids, dtype=np.int64)
    tt_scores = np.asarray(tt_scores, dtype=np.float64)
    if exclude:
        keep = ~np.isin(tt_ids, np.fromiter(exclude, np.int64, len(exclude)))
        tt_ids, tt_scores = tt_ids[keep], tt_scores[keep]
    tt_ids, tt_scores = tt_ids[: quota["two_tower"]], tt_scores[: quota["two_tower"]]
    sorter = np.argsort(ids, kind="stable")
    at = np.minimum(np.searchsorted(ids, tt_ids, sorter=sorter), max(len(ids) - 1, 0))
    pos = sorter[at] if len(ids) else np.zeros(0, np.int64)
    known = ids[pos] == tt_ids if len(ids) else np.zeros(len(tt_ids), bool)
    # which source proposed which catalog position, one column per SOURCES (array work only:
    # this runs per request over about 3 N positions)
    member = np.zeros((len(ids), len(SOURCES)), dtype=bool)
    member[pos[known], 0] = True
    member[best(ease, True, quota["similarity"]), 1] = True
    member[best(engagements_7d, True, quota["trending"]), 2] = True
    if fresh is not None and quota["fresh"] > 0:
        newest = np.where(np.asarray(fresh, bool), np.asarray(engagements_7d, np.float64), -np.inf)
        member[best(newest, False, quota["fresh"]), 3] = True
    if cohort is not None and quota["cohort"] > 0:
        member[best(np.asarray(cohort, np.float64), True, quota["cohort"]), 4] = True
    cand = np.flatnonzero(member.any(axis=1))
    if not len(cand):
        return np.zeros(0, np.int64), np.zeros(0), Sources(member[:0])
    tt = np.full(len(ids), float(tt_scores.min()) if len(tt_scores) else 0.0)
    tt[pos[known]] = tt_scores[known]
    score = blend(
        np.asarray(ease)[cand], np.asarray(engagements_7d)[cand],
        tt[cand] if len(tt_scores) else None, beta=beta, gamma=gamma,
    )  # fmt: skip
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
