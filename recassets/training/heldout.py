"""Reading ``training_examples`` for the evaluation and batch recommendations: the rows of
given days, one row per key, the catalog as of a day, what each user engaged with and has
seen (``SEEN_SOURCES``), popularity counts, and the two simple rankings the models are judged
against (popularity; the two-tower's exact search). ``evaluation`` re-exports these names.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recassets.training import data as D
from recassets.training import inference
from recassets.training.examples import PathsOrTable, table_path
from recassets.training.schema import COHORT_DENSE, ITEM_DENSE, USER_DENSE

if TYPE_CHECKING:
    import pyarrow.dataset as pads

TRAILING_DAYS = 7
ITEM_COLUMNS = ("item_id", "category", "creator", *ITEM_DENSE, *COHORT_DENSE)
USER_COLUMNS = ("user_id", "history_item_ids", "country", "device", "age_bucket", *USER_DENSE)


# What "seen" means, by the source of a training_examples row: every positive (an engagement,
# or a rating at or above the threshold) is seen, and so is every row of these sources whatever
# its label. "rating": a movie rated 2 was watched, never recommend it again. Add "impression"
# to also exclude what was shown and ignored. The user's history_item_ids (every engagement
# type of the feature pipeline, ratings of any value included) count too.
SEEN_SOURCES: tuple[str, ...] = ("rating",)


# --- reading training_examples ------------------------------------------------------------------


def read_days(
    paths: PathsOrTable,
    days: Sequence[str],
    columns: Sequence[str],
    *,
    dataset: pads.Dataset | None = None,
) -> pa.Table:
    """The given columns of the rows of ``days`` (empty table when ``days`` is empty).
    ``dataset``: the table's dataset already opened (``open_days``), for a caller that reads
    day by day: each open reads the Delta log again."""
    ds = dataset if dataset is not None else open_days(paths)
    cols = list(dict.fromkeys([*columns, "dt"]))
    cols = [c for c in cols if c in ds.schema.names]
    if not days:
        return ds.schema.empty_table().select(cols)
    values = pa.array([D.as_day(d) for d in days], pa.date32())
    return ds.to_table(columns=cols, filter=pc.field("dt").isin(values))


def open_days(paths: PathsOrTable) -> pads.Dataset:
    """The ``training_examples`` table as a pyarrow dataset, partitioned by ``dt``."""
    from recassets.lake import open_delta

    return open_delta(table_path(paths)).to_pyarrow_dataset()


def latest_rows(rows: pa.Table, key: str, *, earliest: bool = False) -> pa.Table:
    """One row per ``key``: its latest (by ``dt``, then ``ts`` when present; the earliest with
    ``earliest``), sorted by key."""
    if rows.num_rows == 0:
        return rows
    direction = "ascending" if earliest else "descending"
    order = [(key, "ascending"), ("dt", direction)]
    if "ts" in rows.column_names:
        order.append(("ts", direction))
    rows = rows.sort_by(order)
    _, first = np.unique(rows[key].to_numpy(), return_index=True)
    return rows.take(pa.array(first))


def catalog(paths: PathsOrTable, days: Sequence[str]) -> pa.Table:
    """All items seen in ``days``, one (latest) row each with the item columns, by item id."""
    return latest_rows(read_days(paths, days, (*ITEM_COLUMNS, "ts")), "item_id")


def engaged_items(rows: pa.Table) -> dict[int, set[int]]:
    """user -> items with a positive among ``rows`` (columns user_id, item_id, label)."""
    pos = rows.filter(pc.equal(rows["label"], 1))
    return _by_user(pos)


def seen_items(rows: pa.Table, sources: Sequence[str] = SEEN_SOURCES) -> dict[int, set[int]]:
    """user -> items the user interacted with among ``rows``: every positive, and every row
    whose ``source`` is in ``sources`` (any label: a rating of 1 is an interaction). Rows
    without a ``source`` column count by their label only."""
    mask = pc.equal(rows["label"], 1)
    if sources and "source" in rows.column_names:
        mask = pc.or_(mask, pc.is_in(rows["source"], pa.array(list(sources), pa.string())))
    return _by_user(rows.filter(mask))


def _by_user(rows: pa.Table) -> dict[int, set[int]]:
    out: dict[int, set[int]] = {}
    for u, i in zip(rows["user_id"].to_numpy(), rows["item_id"].to_numpy(), strict=True):
        out.setdefault(int(u), set()).add(int(i))
    return out


def add_history(seen: dict[int, set[int]], user_rows: pa.Table) -> dict[int, set[int]]:
    """``seen`` plus each user's ``history_item_ids`` (engagements as of the row's d-1, which
    may predate the training window), in place; returned for chaining."""
    if "history_item_ids" not in user_rows.column_names:
        return seen
    users = user_rows["user_id"].to_pylist()
    for u, hist in zip(users, user_rows["history_item_ids"].to_pylist(), strict=True):
        if hist:
            seen.setdefault(int(u), set()).update(int(i) for i in hist)
    return seen


def popularity(rows: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """``(item_ids, counts)`` of positives among ``rows``, most popular first (ties: lower id)."""
    pos = rows.filter(pc.equal(rows["label"], 1))
    ids, counts = np.unique(pos["item_id"].to_numpy().astype(np.int64), return_counts=True)
    order = np.lexsort((ids, -counts))
    return ids[order], counts[order]


def nothing_learned(
    paths: PathsOrTable,
    kind: str,
    module: str,
    metrics: Mapping[str, Any],
    days: Sequence[str],
    held: Sequence[str],
) -> str:
    """Why a first training of ``kind`` (``module``: two_tower or a ranker) saved no version,
    in one line: no positive among its days' rows (counted once, not once per pass: it said
    8,031 of a day's 2,677 rows at 3 passes), or no row at all; and where the held-out days
    hold the positives the training days lack, that they do."""
    what = f"{days[0]}..{days[-1]}" if len(days) > 1 else days[0]
    rows = int(metrics.get("examples") or 0) // max(int(metrics.get("epochs") or 1), 1)
    if rows or module == "two_tower":  # rows and no positive (the two-tower reads positives)
        among = f"among the {rows} training examples " if rows else ""
        said = f"{kind}: no positive {among}in {what} (it learns from positives: engagements, or ratings at or above the threshold)"  # fmt: skip
    else:
        said = f"{kind}: no training examples in {what}"
    positives = pc.sum(pc.equal(read_days(paths, held, ("label",))["label"], 1)).as_py() or 0
    if positives:
        span = f"{held[0]}..{held[-1]}" if len(held) > 1 else held[0]
        said += (
            f"; the held-out day(s) {span} hold {positives} positive(s), kept for the evaluation"
        )
    return f"{said}: nothing trained, no version saved"


def trailing_days(last_day: str, n: int = TRAILING_DAYS) -> list[str]:
    end = D.as_day(last_day)
    return [(end - dt.timedelta(days=i)).isoformat() for i in range(n - 1, -1, -1)]


def top_k_excluding(
    scores: np.ndarray, item_ids: np.ndarray, exclude: set[int] | None, k: int
) -> list[int]:
    """Ids of the ``k`` best-scored items (ties: lower id first, at the cut too), minus
    ``exclude``. Scores that are not finite are a ``ValueError`` counting them: a NaN item was
    dropped and a +inf one kept while a finite one fell off the list, and an all-NaN model
    scored Recall 0 with reasons that never said NaN. The ties at the cut were picked by
    ``argpartition`` at random: popularity broke them by id, the models did not."""
    s = np.asarray(scores, dtype=np.float64)
    ids = np.asarray(item_ids)
    if bad := int((~np.isfinite(s)).sum()):
        raise ValueError(f"{bad} of {len(s)} scores are not finite (NaN or inf): the model's "
                         "output cannot be ranked (did its training diverge?)")  # fmt: skip
    if exclude:
        keep = ~np.isin(ids, np.fromiter(exclude, dtype=np.int64, count=len(exclude)))
        s, ids = s[keep], ids[keep]
    n = min(k, len(s))
    if n <= 0:
        return []
    cand = np.arange(len(s))
    if n < len(s):  # every item scored at least the n-th best: the ties at the cut included
        cand = np.flatnonzero(s >= -np.partition(-s, n - 1)[n - 1])
    order = cand[np.lexsort((ids[cand], -s[cand]))][:n]
    return [int(i) for i in ids[order]]


def filled(order: np.ndarray, catalog: np.ndarray) -> np.ndarray:
    """``order``, then the ``catalog``'s other items in the catalog's order: a baseline that
    lists only items with positives listed fewer than K where the model listed every unseen
    item, and a user whose unseen catalog fits in K gave any model Recall 1 against it (a
    random-scored model passed the gate on a 60-item catalog)."""
    order = np.asarray(order, dtype=np.int64)
    catalog = np.asarray(catalog, dtype=np.int64)
    return np.concatenate([order, catalog[~np.isin(catalog, order)]])


def padded(top: list[int], order: np.ndarray, exclude: set[int] | None, k: int) -> list[int]:
    """``top`` and then ``order``'s items not in it nor in ``exclude``, up to ``k``."""
    if len(top) >= k:
        return top
    have = set(top) | (exclude or set())
    return top + [int(i) for i in order if int(i) not in have][: k - len(top)]


def popularity_ranking(
    pop_ids: np.ndarray, users: Sequence[int], seen: Mapping[int, set[int]], k: int
) -> dict[int, list[int]]:
    """Per user: the most popular items minus the user's seen ones."""
    out = {}
    for u in users:
        excl = seen.get(u, set())
        top: list[int] = []
        for i in pop_ids:
            if int(i) not in excl:
                top.append(int(i))
                if len(top) == k:
                    break
        out[u] = top
    return out


def two_tower_ranking(
    checkpoint: Any,
    users: pa.Table,
    items: pa.Table,
    seen: Mapping[int, set[int]],
    k: int,
    *,
    device: Any = "cpu",
) -> dict[int, list[int]]:
    """Per user row of ``users``: exact top-K of the dot product over all ``items``."""
    item_ids, item_vecs = inference.item_embeddings(checkpoint, items, device=device)
    user_ids, user_vecs = inference.user_embeddings(checkpoint, users, device=device)
    scores = user_vecs @ item_vecs.T  # (U, N)
    return {
        int(u): top_k_excluding(scores[r], item_ids, seen.get(int(u)), k)
        for r, u in enumerate(user_ids)
    }


def latest_per_day(item_rows: pa.Table) -> pa.Table:
    """One row per (item, day): the day's first (its counters are as of the day before)."""
    if item_rows.num_rows == 0:
        return item_rows
    rows = item_rows.sort_by([("item_id", "ascending"), ("dt", "ascending"), ("ts", "ascending")])
    key = np.stack([rows["item_id"].to_numpy(),
                    rows["dt"].cast(pa.int32()).to_numpy()], axis=1)  # fmt: skip
    _, first = np.unique(key, axis=0, return_index=True)
    return rows.take(pa.array(np.sort(first)))


def items_as_of(item_rows: pa.Table, day: str) -> pa.Table:
    """The catalog on ``day``: each item's row of the latest day <= ``day`` (by item id)."""
    upto = item_rows.filter(pc.less_equal(item_rows["dt"], pa.scalar(D.as_day(day), pa.date32())))
    return latest_rows(upto.drop_columns(["ts"]) if "ts" in upto.column_names else upto, "item_id")
