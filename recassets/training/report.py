"""The evaluation report: the policies' names, their metrics on one held-out window, and the
report's JSON and Markdown forms (``evaluation`` computes it; the gate and the CLI read it)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from recassets import atomic

CANDIDATE = "candidate"
SERVED = "candidate_served"
BLEND = "candidate_blend"  # EASE + popularity + two-tower over the union of sources
# with a light ranker (L1) in front of the DCN-v2: SERVED is the cascade (L1 keeps the best
# ``light_keep`` of the two-tower's ``light_pool``, the DCN-v2 orders them); beside it, the
# DCN-v2 over every one of the pool and the light ranker's own order
RANKER_ALL = "candidate_ranker_all"
LIGHT = "candidate_light"
# with a sequence-aware ranker evaluated too: each L2 served the same way (the same candidates,
# the same light cut); SERVED is then the better of the two (``choose_ranker``)
SERVED_DCN = "candidate_served_dcn_v2"
SERVED_SEQUENCE = "candidate_served_sequence"
SEQUENCE_RANKER = "candidate_sequence"  # the sequence-aware ranker's AUC on every eval row
CURRENT = "current"
POPULARITY_ALL_TIME = "popularity_all_time"
POPULARITY_TRAILING_7D = "popularity_trailing_7d"
COOCCURRENCE = "cooccurrence"
BASELINES = (POPULARITY_ALL_TIME, POPULARITY_TRAILING_7D, COOCCURRENCE)
# co-occurrence as it would serve (its file frozen at the window's start, the blend's union):
# not a baseline the gate must beat, the simple method served when nothing learned passes
COOCCURRENCE_SERVED = "cooccurrence_served"


def check_baselines(names: Sequence[str]) -> list[str]:
    """``names`` when they are a non-empty list of ``BASELINES`` (the gate's
    ``gate_baselines``); else ``ValueError`` naming what is wrong: an empty or misspelled list
    would leave the gate nothing to beat."""
    names = list(names)
    unknown = [n for n in names if n not in BASELINES]
    if unknown or not names:
        what = f"unknown {', '.join(map(repr, unknown))}" if unknown else "an empty list"
        raise ValueError(f"gate_baselines: {what}; choose one or more of {', '.join(BASELINES)}")
    return names


CANDIDATES = 200  # two-tower candidates the ranker re-ranks in evaluation
NDCG_AT = 10


@dataclass
class EvaluationReport:
    """Metrics per policy on one held-out window."""

    k: int
    train_days: list[str]
    eval_days: list[str]
    retrieval: dict[str, dict[str, float]]  # policy -> recall@K, ndcg@K, ..., users, user_days
    ranking: dict[str, dict[str, float]] = field(default_factory=dict)  # policy -> auc, logloss
    catalog_size: int = 0
    checkpoints: dict[str, str | None] = field(default_factory=dict)  # candidate/current paths
    reranking: dict[str, dict[str, float]] = field(default_factory=dict)  # order -> auc, ndcg@10
    ndcg_at: int = NDCG_AT
    candidates: int = CANDIDATES
    # the baselines the gate must beat (default every one of ``BASELINES`` in ``retrieval``)
    gate_baselines: list[str] | None = None
    # the order that would serve: "blend" (BLEND), "dcn_v2" (SERVED) or "two_tower" (CANDIDATE),
    # and why (``evaluation.choose_order``)
    order: str | None = None
    order_reason: str = ""
    # the blend's funnel stage by stage (``sources.stage_recall``): each source, the union,
    # the blend's top K: the mean share of a unit's new items still held
    stages: dict[str, float] = field(default_factory=dict)
    # the light ranker's cut: candidates it scored and kept (0: no light ranker evaluated)
    light_pool: int = 0
    light_keep: int = 0
    # the light stage's weight in the cascade's order (``light.fuse``; 0: the DCN-v2 alone)
    light_weight: float = 0.0
    # quotas of the other sources added to the cascade's pool (``evaluate(pool_quotas=...)``,
    # a measurement: serving's pool is the ANN's alone); empty: the ANN's light_pool only
    pool_sources: dict[str, int] = field(default_factory=dict)
    # the L2 ranker that would serve: "dcn_v2" or "sequence" (the sequence-aware DCN-v2), and
    # why (``choose_ranker``); None when no sequence-aware ranker was evaluated
    ranker: str | None = None
    ranker_reason: str = ""
    # NDCG@n of the sequence-aware ranker's cascade minus the DCN-v2's, paired over the same
    # units: mean, lo, hi (``units.paired_difference``)
    ranker_difference: dict[str, float] = field(default_factory=dict)
    # the policy of ``served_key`` minus each baseline, unit by unit: baseline -> metric ->
    # mean, lo, hi, users (``units.paired_gains``); what the gate decides on when the point
    # estimates disagree; empty in reports from before it
    paired: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    # co-occurrence as it would serve (COOCCURRENCE_SERVED) minus each popularity, the same way:
    # what ``policy.cooccurrence_serves`` decides on when the point estimates disagree
    paired_fallback: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)

    @property
    def recall_key(self) -> str:
        return f"recall@{self.k}"

    @property
    def ndcg_key(self) -> str:
        return f"ndcg@{self.ndcg_at}"

    @property
    def catalog_within_k(self) -> bool:
        """Whether the catalog fits in the top K: any full ranking's Recall@K is 1 there,
        while popularity lists only the items with positives (no evidence either way)."""
        return 0 < self.catalog_size <= self.k

    @property
    def decisive(self) -> tuple[str, ...]:
        """The metrics the gate's decisions compare: Recall@K and NDCG@10, or NDCG@10 alone
        where the catalog fits in the top K (a 40-item history promoted a model on Recall@50)."""
        return (self.ndcg_key,) if self.catalog_within_k else (self.recall_key, self.ndcg_key)

    @property
    def served_key(self) -> str:
        """The policy that would serve if promoted: the blend when ``order`` says so, else
        the pair when a ranker was evaluated, else the two-tower alone."""
        if self.order == "blend" and BLEND in self.retrieval:
            return BLEND
        return SERVED if SERVED in self.retrieval else CANDIDATE

    def baselines(self) -> dict[str, dict[str, float]]:
        """The simple baselines scored (the gate's, when ``gate_baselines`` names them).

        Never an empty or shrunken set in silence (the gate would have less, or nothing, to
        beat, and would pass): each name in ``gate_baselines`` must be known and scored, and
        without it at least one baseline must be (reports from before co-occurrence have the
        two popularities only); else ``ValueError``."""
        if self.gate_baselines is None:
            found = {p: self.retrieval[p] for p in BASELINES if p in self.retrieval}
            if not found:
                raise ValueError(f"no baseline scored in this report (expected {BASELINES})")
            return found
        names = check_baselines(self.gate_baselines)
        missing = [p for p in names if p not in self.retrieval]
        if missing:
            raise ValueError(f"gate_baselines not scored in this report: {', '.join(missing)}")
        return {p: self.retrieval[p] for p in names}

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
        k, n = self.k, self.ndcg_at
        keys = [f"recall@{k}", f"ndcg@{n}", f"ndcg@{k}", f"hit_rate@{k}"]
        lines = [
            f"| policy | Recall@{k} | NDCG@{n} | NDCG@{k} | HitRate@{k} | users | user-days |",
            "|---|---|---|---|---|---|---|",
        ]
        for policy, m in self.retrieval.items():
            cells = [_fmt_ci(m, key) for key in keys]
            lines.append(f"| {policy} | {' | '.join(cells)} | {int(m.get('users', 0))} | "
                         f"{int(m.get('user_days', m.get('users', 0)))} |")  # fmt: skip
        if self.light_keep:
            how = (f"the DCN-v2's and the light ranker's standardised scores, the light one "
                   f"weighted {self.light_weight:g}, order them" if self.light_weight
                   else "the DCN-v2 orders them")  # fmt: skip
            lines += ["", f"{SERVED}: the cascade (the light ranker keeps {self.light_keep} of "
                      f"the two-tower's {self.light_pool}, {how}); {RANKER_ALL}: "
                      f"the DCN-v2 over all {self.light_pool}; {LIGHT}: the light ranker's order"]  # fmt: skip
            if self.pool_sources:
                lines += [f"the pool also holds each source's items up to {self.pool_sources}"]
        if self.ranker:
            lines += ["", f"L2 ranker that serves: {self.ranker} ({self.ranker_reason})"]
        if self.ranking:
            lines += [
                "",
                "| ranker on all eval rows | AUC | log loss | examples |",
                "|---|---|---|---|",
            ]
            for policy, r in self.ranking.items():
                lines.append(f"| {policy} | {_fmt(r.get('auc'))} | {_fmt(r.get('logloss'))} | "
                             f"{int(r.get('examples', 0))} |")  # fmt: skip
        if self.reranking:
            lines += [
                "",
                f"| re-ranking the two-tower's top {self.light_pool or self.candidates} | AUC | "
                f"NDCG@{n} | user-days |",
                "|---|---|---|---|",
            ]
            for order, r in self.reranking.items():
                lines.append(f"| {order} | {_fmt_ci(r, 'auc')} | {_fmt_ci(r, f'ndcg@{n}')} | "
                             f"{int(r.get('user_days', 0))} |")  # fmt: skip
        if self.stages:
            st = self.stages
            lines += ["", f"| blend stage (mean union {st.get('union_size', 0):.0f} items) | "
                      "recall |", "|---|---|"]  # fmt: skip
            names = sorted((s for s in st if s not in STAGE_FACTS),
                           key=lambda s: (s.startswith("blend@"), s == "union", s))  # fmt: skip
            lines += [f"| {s} | {_fmt(st[s])} |" for s in names]  # the sources, union, top K
        days = self.eval_days
        span = f"{days[0]}..{days[-1]} ({len(days)} days)" if days else "none"
        lines += ["", f"eval days {span}; catalog {self.catalog_size} items; 95 % intervals: "
                  "bootstrap over users"]  # fmt: skip
        return "\n".join(lines)


STAGE_FACTS = ("union_size", "units")


def choose_order(
    retrieval: Mapping[str, Mapping[str, float]], ndcg: str, recall: str
) -> tuple[str, str]:
    """Which order would serve: the blend (``BLEND``) when it was scored and is at least as
    good as the DCN-v2 pair (or the two-tower alone without a ranker) on NDCG, then Recall;
    else the pair. Returns (order, the reason in words)."""
    other = SERVED if SERVED in retrieval else CANDIDATE
    if BLEND not in retrieval:
        return ("dcn_v2" if other == SERVED else "two_tower"), "no item similarity evaluated"
    b, o = retrieval[BLEND], retrieval[other]
    pick = (b[ndcg], b[recall]) >= (o[ndcg], o[recall])
    name = "dcn_v2" if other == SERVED else "two_tower"
    return ("blend" if pick else name), (
        f"blend {ndcg} {b[ndcg]:.4f}, {recall} {b[recall]:.4f} "
        f"{'>=' if pick else '<'} {other} {o[ndcg]:.4f}, {o[recall]:.4f}"
    )


def choose_ranker(
    retrieval: Mapping[str, Mapping[str, float]],
    ndcg: str,
    recall: str,
    difference: Mapping[str, float] | None = None,
) -> tuple[str, str]:
    """Which L2 ranker serves: the sequence-aware one (``SERVED_SEQUENCE``) only when it is
    reliably better than the DCN-v2 (``SERVED_DCN``); otherwise the DCN-v2, the cheaper model
    with less to go wrong. With a paired ``difference`` of their NDCG (``mean``, ``lo``, ``hi``
    of a bootstrap over users): when its whole interval lies above zero. Without an interval
    (no bootstrap): when it beats the DCN-v2 on NDCG, then Recall (a tie keeps the DCN-v2).
    Returns (``"sequence"`` | ``"dcn_v2"``, the reason in words)."""
    s, d = retrieval[SERVED_SEQUENCE], retrieval[SERVED_DCN]
    side_by_side = (
        f"sequence {ndcg} {_fmt_ci(s, ndcg)}, {recall} {_fmt_ci(s, recall)}; dcn_v2 "
        f"{_fmt_ci(d, ndcg)}, {_fmt_ci(d, recall)}"
    )
    lo = None if difference is None else difference.get("lo")
    if lo is not None and lo == lo:  # a paired interval: the decision is on it
        pick = lo > 0
        assert difference is not None
        verdict = (
            f"paired {ndcg} difference {difference['mean']:+.4f} "
            f"[{difference['lo']:+.4f}, {difference['hi']:+.4f}] "
            + (
                "lies above zero"
                if pick
                else "does not lie above zero: the DCN-v2 serves (the simpler ranker)"
            )
        )
    else:
        pick = (s[ndcg], s[recall]) > (d[ndcg], d[recall])
        verdict = f"no interval: point estimates, sequence {'>' if pick else '<='} dcn_v2"
    return ("sequence" if pick else "dcn_v2"), f"{verdict} ({side_by_side})"


def _fmt(v: Any) -> str:
    return "-" if v is None or (isinstance(v, float) and np.isnan(v)) else f"{v:.4f}"


def _fmt_ci(m: Mapping[str, Any], key: str) -> str:
    v, lo, hi = m.get(key), m.get(f"{key}_lo"), m.get(f"{key}_hi")
    if lo is None or hi is None or _fmt(lo) == "-":
        return _fmt(v)
    return f"{_fmt(v)} [{lo:.3f}, {hi:.3f}]"


def write_json_atomic(path: str | os.PathLike[str], obj: Any) -> str:
    """Write JSON via a temporary file in the same folder and ``os.replace``."""
    target = atomic.write_json(path, obj, default=_json_default)
    return str(target)


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    raise TypeError(f"not JSON serializable: {type(o)}")
