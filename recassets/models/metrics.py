"""Offline metrics for the models (exact, numpy)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties). NaN when only
    one class is present."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1).astype(bool)
    n_pos = int(labels.sum())
    n_neg = len(labels) - n_pos
    if n_pos == 0 or n_neg == 0 or np.isnan(scores).any():  # NaN sorted as a top score: 0.625
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(len(scores), dtype=np.float64)
    # average rank (1-based) over runs of equal scores
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    avg = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(avg, counts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def log_loss(probs: np.ndarray, labels: np.ndarray, eps: float = 1e-7) -> float:
    p = np.clip(np.asarray(probs, dtype=np.float64), eps, 1 - eps)
    y = np.asarray(labels, dtype=np.float64)
    return float(-(y * np.log(p) + (1 - y) * np.log(1 - p)).mean()) if len(y) else float("nan")


def unit_metrics(top: Sequence[int], relevant: set[int], k: int) -> tuple[float, float, float]:
    """(recall@k, ndcg@k, hit@k) of one ranked list against a non-empty truth."""
    hit_ranks = [r for r, item in enumerate(list(top)[:k]) if item in relevant]
    dcg = sum(1.0 / np.log2(r + 2) for r in hit_ranks)
    idcg = sum(1.0 / np.log2(r + 2) for r in range(min(len(relevant), k)))
    return len(hit_ranks) / len(relevant), dcg / idcg, 1.0 if hit_ranks else 0.0


def retrieval_metrics(
    ranked: Mapping[int, Sequence[int]], truth: Mapping[int, set[int]], k: int
) -> dict[str, float]:
    """Mean Recall@K, NDCG@K and HitRate@K over the users of ``truth`` with a non-empty truth
    (a user missing from ``ranked`` retrieved nothing)."""
    per = [unit_metrics(ranked.get(u, ()), t, k) for u, t in truth.items() if t]
    n = len(per)
    if n == 0:
        nan = float("nan")
        return {f"recall@{k}": nan, f"ndcg@{k}": nan, f"hit_rate@{k}": nan, "users": 0}
    m = np.asarray(per).mean(axis=0)
    return {f"recall@{k}": float(m[0]), f"ndcg@{k}": float(m[1]), f"hit_rate@{k}": float(m[2]),
            "users": n}  # fmt: skip


def bootstrap_interval(
    values: np.ndarray, groups: np.ndarray, n: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile interval of the mean of ``values`` (one per unit), resampling whole
    ``groups`` (users) with replacement ``n`` times (a cluster bootstrap: a user's days are not
    independent draws)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) == 0 or n <= 0:
        return float("nan"), float("nan")
    _, g = np.unique(groups, return_inverse=True)
    sums = np.bincount(g, weights=values)
    counts = np.bincount(g).astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(sums), size=(n, len(sums)))
    means = sums[draws].sum(axis=1) / counts[draws].sum(axis=1)
    alpha = (1 - level) / 2
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))
