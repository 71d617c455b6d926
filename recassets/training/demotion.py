"""When the gate takes a served model down: the current policy, scored as it serves on the
gate's window (``current``), behind popularity beyond noise. ``policy.promote`` acts on it after
a refused candidate; ``recassets evaluate`` says what it would do.

The rule mirrors the promotion rule (``policy.gate``): a candidate whose points disagree with
a baseline's is promoted only when ahead beyond the 95 % interval on at least one of Recall@K
and NDCG@10 and behind beyond it on none. A served model is taken down only when behind the
popularity variant beyond the interval on at least one of them and ahead beyond it on none.
Before (2026-12-07) both points below popularity's were enough: a day of permuted item ids
took a promoted model down on recall@50 0.0266 < 0.0336 while popularity's interval was
[0.023, 0.046], and popularity served from then on.

The interval: the evaluation pairs units for the candidate against each baseline
(``report.paired``), not for the current model, so here it is popularity's own bootstrap
interval (``<metric>_lo`` / ``_hi``): the current model's point below it is behind beyond it,
above it ahead. It is wider than a paired interval would be: the rule errs toward keeping
what serves. An evaluation without intervals (``bootstrap=0``) is decided on the points, on
both metrics (as the gate promotes on points that agree).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from recassets.training.evaluation import (
    CURRENT,
    POPULARITY_ALL_TIME,
    POPULARITY_TRAILING_7D,
    EvaluationReport,
)

# Fewer evaluation users than this and the gate neither promotes nor takes a model down: on a
# history whose held-out days hold a handful of users (a real one's quiet end, a tiny import),
# every policy's figures are noise, and a lucky one would replace what serves.
MIN_GATE_USERS = 10


def outscored_by_popularity(
    report: EvaluationReport, min_users: int = MIN_GATE_USERS
) -> tuple[str, str] | None:
    """(variant, why) when the current policy (``current``, scored as it serves on the same
    window) is behind a popularity variant beyond noise (the module's rule), on at least
    ``min_users`` users; None when it holds, or was not scored. The variants are tried best
    first on Recall@K (NDCG@10 where the catalog fits in the top K). The gate promotes only
    what beats the simple methods; a model the data has moved past them would otherwise keep
    serving after every refused candidate (a refusal changed nothing). Popularity, the
    simplest method: what replaces the model is decided in ``promote`` (co-occurrence when it
    beats popularity too)."""
    cur = report.retrieval.get(CURRENT)
    decisive = report.decisive
    recall = decisive[0]  # NDCG@10 where the catalog fits in the top K
    pops = {v: report.retrieval.get(n, {}) for v, n in
            (("all_time", POPULARITY_ALL_TIME), ("trailing_7d", POPULARITY_TRAILING_7D))}  # fmt: skip
    users = (cur or {}).get("users", float("nan"))
    if not cur or not users >= min_users or recall not in cur:
        return None
    for variant in sorted(pops, key=lambda v: -float(pops[v].get(recall, float("-inf")))):
        keys = [m for m in decisive if m in cur and m in pops[variant]]
        if recall in keys and (said := _behind(cur, pops[variant], keys)) is not None:
            return variant, f"{said} (popularity_{variant}, {int(users)} users)"
    return None


def _behind(cur: Mapping[str, float], pop: Mapping[str, float], keys: Sequence[str]) -> str | None:
    """The current model's figures against ``pop``'s in words when it is behind beyond noise,
    else None."""
    bounds = [(float(pop.get(f"{m}_lo", "nan")), float(pop.get(f"{m}_hi", "nan"))) for m in keys]
    if any(not (lo == lo and hi == hi) for lo, hi in bounds):  # no intervals: the points
        if not all(float(cur[m]) < float(pop[m]) for m in keys):
            return None
        return ", ".join(f"{m} {float(cur[m]):.4f} < {float(pop[m]):.4f}" for m in keys)
    behind = any(float(cur[m]) < lo for m, (lo, _) in zip(keys, bounds, strict=True))
    ahead = any(float(cur[m]) > hi for m, (_, hi) in zip(keys, bounds, strict=True))
    if not behind or ahead:
        return None
    return ", ".join(
        f"{m} {float(cur[m]):.4f} " + (f"< {float(pop[m]):.4f} [{lo:.4f}, {hi:.4f}] (behind "
        "beyond the interval)" if float(cur[m]) < lo else f"vs {float(pop[m]):.4f} [{lo:.4f}, "
        f"{hi:.4f}] (within the interval)")
        for m, (lo, hi) in zip(keys, bounds, strict=True)
    )  # fmt: skip


def replaced_by(
    report: EvaluationReport, learned: bool, cooccurrence: bool, *, dry: bool = False
) -> str | None:
    """After a refused candidate, what takes a served learned model's place and why, as one
    sentence ("the served model was replaced by popularity (trailing_7d) because ..."); None
    when it keeps serving (``learned`` False: no learned model serves). ``cooccurrence``:
    co-occurrence beats popularity as it would serve (``policy.cooccurrence_serves``).
    ``dry``: "would be replaced" (``recassets evaluate``, which changes nothing)."""
    stale = outscored_by_popularity(report) if learned else None
    if stale is None:
        return None
    by = "co-occurrence" if cooccurrence else f"popularity ({stale[0]})"
    return (
        f"the served model {'would be' if dry else 'was'} replaced by {by} because the current model no longer beats "
        f"popularity: {stale[1]}"
    )


__all__ = ["MIN_GATE_USERS", "outscored_by_popularity", "replaced_by"]
