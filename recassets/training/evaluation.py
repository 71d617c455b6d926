"""Offline evaluation of a candidate model pair on a held-out window, beside its baselines.

Retrieval (two-tower): for every user with a positive in the eval days, exact search (dot
product of unit-norm embeddings, numpy) over ALL catalog items, minus the items the user
already engaged with in training; ground truth = the user's eval-day positives that are not
already seen (a seen item can never be retrieved, so counting it would only lower every
policy alike). Metrics, averaged over users (binary relevance):

- ``recall@K``  = |top-K ∩ truth| / |truth|
- ``ndcg@K``    = sum over hits of 1/log2(rank+1), divided by the ideal DCG of
  min(|truth|, K) hits (Järvelin & Kekäläinen, 2002)
- ``hit_rate@K`` = 1 when at least one truth item is in the top K

Baselines are scored on the same users, truth and exclusions in the same call: all-time
popularity and trailing-7-day popularity (positive counts of ``training_examples`` up to the
last training day), and the current (previously promoted) two-tower when given. Ranking: AUC
and log loss of the ranker on all the eval days' examples (``inference.evaluate_ranking``).

The catalog and the user rows are read from ``training_examples`` with deltalake: each item's
(user's) latest row carries its features as of the day before that row, as serving sees them.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recassets import atomic
from recassets.training import data as D
from recassets.training import inference
from recassets.training.checkpoint import as_checkpoint
from recassets.training.examples import PathsOrTable, available_days, table_path
from recassets.training.schema import COHORT_DENSE, ITEM_DENSE, USER_DENSE

TRAILING_DAYS = 7
ITEM_COLUMNS = ("item_id", "category", "creator", *ITEM_DENSE, *COHORT_DENSE)
USER_COLUMNS = ("user_id", "history_item_ids", "country", "device", "age_bucket", *USER_DENSE)

CANDIDATE = "candidate"
CURRENT = "current"
POPULARITY_ALL_TIME = "popularity_all_time"
POPULARITY_TRAILING_7D = "popularity_trailing_7d"


# --- reading training_examples ------------------------------------------------------------------


def read_days(paths: PathsOrTable, days: Sequence[str], columns: Sequence[str]) -> pa.Table:
    """The given columns of the rows of ``days`` (empty table when ``days`` is empty)."""
    from deltalake import DeltaTable

    ds = DeltaTable(table_path(paths)).to_pyarrow_dataset()
    cols = list(dict.fromkeys([*columns, "dt"]))
    if not days:
        return ds.schema.empty_table().select(cols)
    values = pa.array([D.as_day(d) for d in days], pa.date32())
    return ds.to_table(columns=cols, filter=pc.field("dt").isin(values))


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
    out: dict[int, set[int]] = {}
    for u, i in zip(pos["user_id"].to_numpy(), pos["item_id"].to_numpy(), strict=True):
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


def trailing_days(last_day: str, n: int = TRAILING_DAYS) -> list[str]:
    end = D.as_day(last_day)
    return [(end - dt.timedelta(days=i)).isoformat() for i in range(n - 1, -1, -1)]


# --- metrics ------------------------------------------------------------------------------------


def retrieval_metrics(
    ranked: Mapping[int, Sequence[int]], truth: Mapping[int, set[int]], k: int
) -> dict[str, float]:
    """Mean Recall@K, NDCG@K and HitRate@K over the users of ``truth`` with a non-empty truth
    (a user missing from ``ranked`` retrieved nothing)."""
    recalls, ndcgs, hits = [], [], []
    for user, relevant in truth.items():
        if not relevant:
            continue
        top = list(ranked.get(user, ()))[:k]
        hit_ranks = [r for r, item in enumerate(top) if item in relevant]
        recalls.append(len(hit_ranks) / len(relevant))
        dcg = sum(1.0 / np.log2(r + 2) for r in hit_ranks)
        idcg = sum(1.0 / np.log2(r + 2) for r in range(min(len(relevant), k)))
        ndcgs.append(dcg / idcg)
        hits.append(1.0 if hit_ranks else 0.0)
    n = len(recalls)
    if n == 0:
        nan = float("nan")
        return {f"recall@{k}": nan, f"ndcg@{k}": nan, f"hit_rate@{k}": nan, "users": 0}
    return {
        f"recall@{k}": float(np.mean(recalls)),
        f"ndcg@{k}": float(np.mean(ndcgs)),
        f"hit_rate@{k}": float(np.mean(hits)),
        "users": n,
    }


def top_k_excluding(
    scores: np.ndarray, item_ids: np.ndarray, exclude: set[int] | None, k: int
) -> list[int]:
    """Ids of the ``k`` best-scored items (ties: lower id first), minus ``exclude``."""
    s = np.asarray(scores, dtype=np.float64).copy()
    if exclude:
        s[np.isin(item_ids, np.fromiter(exclude, dtype=np.int64, count=len(exclude)))] = -np.inf
    n = min(k, int(np.isfinite(s).sum()))
    if n <= 0:
        return []
    # exact: full sort is fine at catalog sizes evaluated offline; argpartition first when big
    cand = np.argpartition(-s, n - 1)[:n] if n < len(s) else np.arange(len(s))
    order = cand[np.lexsort((item_ids[cand], -s[cand]))]
    return [int(i) for i in item_ids[order]]


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


# --- the report ---------------------------------------------------------------------------------


@dataclass
class EvaluationReport:
    """Metrics per policy on one held-out window."""

    k: int
    train_days: list[str]
    eval_days: list[str]
    retrieval: dict[str, dict[str, float]]  # policy -> recall@K, ndcg@K, hit_rate@K, users
    ranking: dict[str, dict[str, float]] = field(default_factory=dict)  # policy -> auc, logloss
    catalog_size: int = 0
    checkpoints: dict[str, str | None] = field(default_factory=dict)  # candidate/current paths

    @property
    def recall_key(self) -> str:
        return f"recall@{self.k}"

    def baselines(self) -> dict[str, dict[str, float]]:
        return {p: m for p, m in self.retrieval.items() if p.startswith("popularity_")}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> EvaluationReport:
        return cls(**dict(d))

    def save(self, path: str | os.PathLike[str]) -> str:
        return write_json_atomic(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> EvaluationReport:
        return cls.from_dict(json.loads(Path(path).read_text()))

    def to_markdown(self) -> str:
        k = self.k
        lines = [
            f"| policy | Recall@{k} | NDCG@{k} | HitRate@{k} | AUC | log loss |",
            "|---|---|---|---|---|---|",
        ]
        for policy, m in self.retrieval.items():
            r = self.ranking.get(policy, {})
            lines.append(
                f"| {policy} | {_fmt(m.get(f'recall@{k}'))} | {_fmt(m.get(f'ndcg@{k}'))} | "
                f"{_fmt(m.get(f'hit_rate@{k}'))} | {_fmt(r.get('auc'))} | {_fmt(r.get('logloss'))} |"
            )
        users = next(iter(self.retrieval.values()), {}).get("users", 0)
        lines.append("")
        lines.append(
            f"eval days {', '.join(self.eval_days)}; {users} users; catalog {self.catalog_size} items"
        )
        return "\n".join(lines)


def _fmt(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.4f}"


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> str:
    """Write JSON via a temporary file in the same folder and ``os.replace``."""
    target = atomic.write_json(path, obj, default=_json_default)
    return str(target)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serializable: {type(o)}")


# --- evaluate -----------------------------------------------------------------------------------


def default_eval_days(checkpoint: Any) -> list[str]:
    """The day after the last partition the checkpoint consumed."""
    last = as_checkpoint(checkpoint).partitions[-1]
    return [(D.as_day(last) + dt.timedelta(days=1)).isoformat()]


def evaluate(
    paths: PathsOrTable,
    checkpoint_two_tower: Any,
    checkpoint_ranking: Any | None = None,
    eval_days: Sequence[str] | None = None,
    k: int = 50,
    *,
    current_two_tower: Any | None = None,
    current_ranking: Any | None = None,
    device: Any = "cpu",
) -> EvaluationReport:
    """Evaluate the candidate pair (and the current one, when given) against popularity.

    ``paths``: a ``Paths`` or the ``training_examples`` table path. ``eval_days``: default the
    day after the candidate two-tower's last consumed partition. Training days = the partitions
    the candidate consumed; the seen items, the popularity counts and the catalog come from them
    (the catalog also takes the items first appearing in the eval days: they are servable).
    """
    cand = as_checkpoint(checkpoint_two_tower)
    train_days = cand.partitions
    eval_days = D.normalize_partitions(eval_days or default_eval_days(cand))
    present = set(available_days(paths))
    missing = [d for d in eval_days if d not in present]
    if missing:
        raise ValueError(f"eval days {missing} are not in {table_path(paths)}")
    overlap = sorted(set(eval_days) & set(train_days))
    if overlap:
        raise ValueError(f"eval days {overlap} were trained on")

    train_rows = read_days(paths, train_days, ("user_id", "item_id", "label"))
    eval_rows = read_days(paths, eval_days, (*USER_COLUMNS, "item_id", "label", "ts"))
    # each user's first row in the window: features of the day before, history up to then
    # (the serving view at the window's start, for users who first show up on a later day too)
    user_rows = latest_rows(eval_rows, "user_id", earliest=True)
    # seen: training positives and the history the user carries into the window
    seen = add_history(engaged_items(train_rows), user_rows)
    truth = {u: items - seen.get(u, set()) for u, items in engaged_items(eval_rows).items()}
    truth = {u: t for u, t in truth.items() if t}
    users = sorted(truth)
    user_rows = user_rows.filter(pc.is_in(user_rows["user_id"], pa.array(users, pa.int64())))
    items = catalog(paths, sorted({*train_days, *eval_days}))

    retrieval: dict[str, dict[str, float]] = {}
    retrieval[CANDIDATE] = retrieval_metrics(
        two_tower_ranking(cand, user_rows, items, seen, k, device=device), truth, k
    )
    if current_two_tower is not None:
        retrieval[CURRENT] = retrieval_metrics(
            two_tower_ranking(current_two_tower, user_rows, items, seen, k, device=device),
            truth,
            k,
        )
    all_ids, _ = popularity(train_rows)
    retrieval[POPULARITY_ALL_TIME] = retrieval_metrics(
        popularity_ranking(all_ids, users, seen, k), truth, k
    )
    recent = set(trailing_days(train_days[-1]))
    recent_rows = train_rows.filter(
        pc.is_in(train_rows["dt"], pa.array([D.as_day(d) for d in recent], pa.date32()))
    )
    recent_ids, _ = popularity(recent_rows)
    retrieval[POPULARITY_TRAILING_7D] = retrieval_metrics(
        popularity_ranking(recent_ids, users, seen, k), truth, k
    )

    ranking: dict[str, dict[str, float]] = {}
    table = table_path(paths)
    if checkpoint_ranking is not None:
        ranking[CANDIDATE] = inference.evaluate_ranking(
            checkpoint_ranking, table, eval_days, device=device
        )
    if current_ranking is not None:
        ranking[CURRENT] = inference.evaluate_ranking(
            current_ranking, table, eval_days, device=device
        )

    def _path(c: Any) -> str | None:
        return (
            None
            if c is None
            else (as_checkpoint(c).path if not isinstance(c, str | os.PathLike) else os.fspath(c))
        )

    return EvaluationReport(
        k=k,
        train_days=list(train_days),
        eval_days=list(eval_days),
        retrieval=retrieval,
        ranking=ranking,
        catalog_size=items.num_rows,
        checkpoints={
            "candidate_two_tower": _path(checkpoint_two_tower),
            "candidate_ranking": _path(checkpoint_ranking),
            "current_two_tower": _path(current_two_tower),
            "current_ranking": _path(current_ranking),
        },
    )


__all__ = [
    "CANDIDATE",
    "CURRENT",
    "POPULARITY_ALL_TIME",
    "POPULARITY_TRAILING_7D",
    "EvaluationReport",
    "available_days",
    "catalog",
    "default_eval_days",
    "engaged_items",
    "evaluate",
    "latest_rows",
    "popularity",
    "retrieval_metrics",
    "top_k_excluding",
    "write_json_atomic",
]
