"""The evaluation's units (user-days) and what is computed over them: a ranking's metrics with
bootstrap intervals over users (``summarize_units``), and the re-ranking comparison of the
two-tower's candidates in three orders (``rerank_orders``). ``evaluation.evaluate`` builds the
units and the rankings."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recassets.models.metrics import bootstrap_interval, roc_auc, unit_metrics


@dataclass
class Units:
    """The evaluation units (user-days), aligned: unit r is user ``users[r]`` on ``days[r]``."""

    users: list[int] = field(default_factory=list)
    days: list[str] = field(default_factory=list)
    truth: list[set[int]] = field(default_factory=list)
    seen: list[set[int]] = field(default_factory=list)
    history: list[set[int]] = field(default_factory=list)  # positives so far (co-occurrence)


def summarize_units(
    ranked: Sequence[Sequence[int]], units: Units, k: int, ndcg_at: int, bootstrap: int, seed: int
) -> dict[str, float]:
    per = np.asarray(
        [
            (*unit_metrics(top, t, k), unit_metrics(top, t, ndcg_at)[1])
            for top, t in zip(ranked, units.truth, strict=True)
        ],
        dtype=np.float64,
    ).reshape(-1, 4)
    names = (f"recall@{k}", f"ndcg@{k}", f"hit_rate@{k}", f"ndcg@{ndcg_at}")
    groups = np.asarray(units.users, dtype=np.int64)
    out: dict[str, float] = {}
    for j, name in enumerate(names):
        out[name] = float(per[:, j].mean()) if len(per) else float("nan")
        lo, hi = bootstrap_interval(per[:, j], groups, bootstrap, seed)
        out[f"{name}_lo"], out[f"{name}_hi"] = lo, hi
    out["users"] = len(set(units.users))
    out["user_days"] = len(units.users)
    return out


def paired_difference(
    a: Sequence[Sequence[int]],
    b: Sequence[Sequence[int]],
    units: Units,
    ndcg_at: int,
    bootstrap: int,
    seed: int,
) -> dict[str, float]:
    """NDCG@n of ranking ``a`` minus ranking ``b`` on the same units: the mean per-unit
    difference and its 95 % bootstrap interval over users (``lo``, ``hi``; NaN without
    ``bootstrap``). Paired: each unit is scored by both, so the interval is far narrower than
    the two rankings' own intervals side by side."""
    return paired_gains(a, b, units, ndcg_at, ndcg_at, bootstrap, seed)[f"ndcg@{ndcg_at}"]


def paired_gains(
    a: Sequence[Sequence[int]],
    b: Sequence[Sequence[int]],
    units: Units,
    k: int,
    ndcg_at: int,
    bootstrap: int,
    seed: int,
) -> dict[str, dict[str, float]]:
    """Recall@k and NDCG@n of ranking ``a`` minus ranking ``b``, unit by unit on the same
    units: per metric the mean difference and its 95 % bootstrap interval over users (``lo``,
    ``hi``; NaN without ``bootstrap``), and ``users``. What the gate decides on when the point
    estimates disagree (``policy.gate``)."""
    per = np.asarray(
        [
            (unit_metrics(x, t, k)[0] - unit_metrics(y, t, k)[0],
             unit_metrics(x, t, ndcg_at)[1] - unit_metrics(y, t, ndcg_at)[1])
            for x, y, t in zip(a, b, units.truth, strict=True)
        ],
        dtype=np.float64,
    ).reshape(-1, 2)  # fmt: skip
    groups = np.asarray(units.users, np.int64)
    out: dict[str, dict[str, float]] = {}
    for j, name in enumerate((f"recall@{k}", f"ndcg@{ndcg_at}")):
        lo, hi = bootstrap_interval(per[:, j], groups, bootstrap, seed)
        mean = float(per[:, j].mean()) if len(per) else float("nan")
        out[name] = {"mean": mean, "lo": lo, "hi": hi, "users": len(set(units.users))}
    return out


def rerank_orders(
    units: Units,
    unit_day: Sequence[int],
    extra: Mapping[str, list[Any]],
    trailing: Mapping[int, Mapping[int, float]],
    ndcg_at: int,
    bootstrap: int,
    seed: int,
) -> dict[str, dict[str, float]]:
    """AUC and NDCG@n of the orders of the same two-tower candidates: the ranker's, the
    sequence-aware ranker's (when it was scored), the two-tower's own, trailing popularity's;
    over the user-days with a positive among them."""
    with_seq = any(s is not None for s in extra.get("rk_seq", ()))
    per: dict[str, list[tuple[float, float]]] = {
        "dcn_v2": [], **({"sequence": []} if with_seq else {}), "two_tower": [], "popularity": []
    }  # fmt: skip
    groups: list[int] = []
    for r, cands in enumerate(extra["cands"]):
        if not cands:
            continue
        labels = np.asarray([i in units.truth[r] for i in cands])
        if labels.all() or not labels.any():
            continue
        ids = np.asarray(cands, dtype=np.int64)
        pop = trailing.get(unit_day[r], {})
        orders = {
            "dcn_v2": np.asarray(extra["rk"][r], dtype=np.float64),
            **({"sequence": np.asarray(extra["rk_seq"][r], dtype=np.float64)} if with_seq else {}),
            "two_tower": np.asarray(extra["tt"][r], dtype=np.float64),
            "popularity": np.asarray([pop.get(int(i), 0) for i in ids], dtype=np.float64),
        }
        for name, s in orders.items():
            top = [int(ids[o]) for o in np.lexsort((ids, -s))]
            per[name].append((roc_auc(s, labels), unit_metrics(top, units.truth[r], ndcg_at)[1]))
        groups.append(units.users[r])
    out: dict[str, dict[str, float]] = {}
    g = np.asarray(groups, dtype=np.int64)
    for name, vals in per.items():
        a = np.asarray(vals, dtype=np.float64).reshape(-1, 2)
        m: dict[str, float] = {"user_days": len(a)}
        for j, key in enumerate(("auc", f"ndcg@{ndcg_at}")):
            m[key] = float(a[:, j].mean()) if len(a) else float("nan")
            m[f"{key}_lo"], m[f"{key}_hi"] = bootstrap_interval(a[:, j], g, bootstrap, seed)
        out[name] = m
    return out
