"""The funnel's settings (``FunnelConfig``): what a deployment may override through its
environment, checked once at start-up so that a bad value stops the service with the name of
the variable instead of serving a wrong page.

The list-wise rules (``rules.select``'s per-creator cap, ``diversity``'s MMR and freshness
boost) are off by default: each trades some of the ranker's accuracy for spread or novelty,
and the gate's NDCG@10 is measured on the ranker's order without them (so a rule turned on
serves a page no evaluation scored). The per-category cap stays on, as it was before them,
and grows with the page (``category_cap``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from recassets.training.light import WEIGHT as LIGHT_WEIGHT

# The environment variable of each field a deployment may set (``from_mapping``).
ENV = {
    "candidates": "RECASSETS_SERVE_CANDIDATES",
    "light_keep": "RECASSETS_SERVE_LIGHT_KEEP",
    "light_weight": "RECASSETS_SERVE_LIGHT_WEIGHT",
    "max_k": "RECASSETS_SERVE_MAX_K",
    "max_per_category": "RECASSETS_SERVE_MAX_PER_CATEGORY",
    "category_share": "RECASSETS_SERVE_CATEGORY_SHARE",
    "embeddings": "RECASSETS_SERVE_EMBEDDINGS",
    "embedding_cache_rows": "RECASSETS_SERVE_EMBEDDING_CACHE_ROWS",
    "max_per_creator": "RECASSETS_SERVE_MAX_PER_CREATOR",
    "mmr_lambda": "RECASSETS_SERVE_MMR_LAMBDA",
    "fresh_boost": "RECASSETS_SERVE_FRESH_BOOST",
    "fresh_days": "RECASSETS_SERVE_FRESH_DAYS",
    "similarity_quota": "RECASSETS_SERVE_SIMILARITY_QUOTA",
    "trending_quota": "RECASSETS_SERVE_TRENDING_QUOTA",
    "fresh_quota": "RECASSETS_SERVE_FRESH_QUOTA",
    "cohort_quota": "RECASSETS_SERVE_COHORT_QUOTA",
}


EMBEDDING_STORES = ("process", "redis")  # where the models' embedding rows live


@dataclass
class FunnelConfig:
    candidates: int = 500  # N retrieved and ranked
    # of the N, what the light ranker keeps for the DCN-v2 (when the bundle carries one:
    # training.light); the DCN-v2's work a request is fixed by it, not by N
    light_keep: int = 200
    # the light ranker's weight in the cascade's final order (``light.fuse``: both stages'
    # standardised scores summed; 0: the DCN-v2's order alone)
    light_weight: float = LIGHT_WEIGHT
    max_k: int = 200  # the largest k a request may ask for
    max_per_category: int = 5  # 0: no cap; the cap on pages of up to 20 items
    # ...and a share of larger pages: the cap on a page of k is max(max_per_category,
    # ceil(category_share x k)) (``category_cap``). A fixed 5 held back most of a 50-item
    # page (ML-1M, 18 genres: 0.78x the blend's Recall@50 at k = 50, 0.94x at k = 20); a
    # quarter of the page keeps 0.99x at k = 50 and is the same 5 up to k = 20. 0: a fixed cap.
    category_share: float = 0.25
    refresh_interval_s: float = 1.0  # how often a request checks for a newer feature day
    fresh_share: float = 0.25  # of a cold-start list, reserved for items first seen that day
    # where the models' embedding rows live: "process" (in the model) or "redis" (the online
    # store's Redis, through an LRU of embedding_cache_rows rows: funnel.embedding_store)
    embeddings: str = "process"
    embedding_cache_rows: int = 100_000
    # -- list-wise rules (docs/retrieval-and-serving.md#list-wise-rules); all off by default
    max_per_creator: int = 0  # items per creator on a page (0: no cap); unmeasured, so off
    # MMR's relevance weight (Carbonell & Goldstein 1998): 1 is the ranker's order (off).
    # Diversity costs accuracy, and no held-out measure of it here says how much is worth it.
    mmr_lambda: float = 1.0
    # added to the score of items first seen within fresh_days (in the path's score unit:
    # ranker logit, blend score, trending score, engagements); 0 off: it spends accuracy on
    # novelty, and the cold-start list already reserves fresh slots (fresh_share)
    fresh_boost: float = 0.0
    fresh_days: float = 1.0  # item_features.age_days at most this: first seen that day
    # -- the blend's candidate sources (sources.union_blend): what each may propose; the
    # two-tower's is ``candidates``. 0 for similarity or trending: ``candidates`` as well.
    # The fresh source (items first seen within the feature day, the most engaged first)
    # proposes fresh_quota (0: off): without it no item of the day could reach a page
    # before its first engagements lift it into the trending source.
    similarity_quota: int = 0
    trending_quota: int = 0
    fresh_quota: int = 50
    # The cohort source (the week's most engaged items re-weighted by the taste of the user's
    # cohort, country x age bucket: its share of the week's engagements per category against
    # everyone's, ``sources.cohort_trending``) proposes cohort_quota (0: off).
    cohort_quota: int = 100

    def __post_init__(self) -> None:
        """Refuse values no page could be built from, naming the variable (or the field)."""
        # "Redis" or "redis " mean redis (a build compared exactly, and published nothing);
        # anything else is refused here, before a worker starts (was: only once a model loaded)
        self.embeddings = str(self.embeddings).strip().lower()
        if self.embeddings not in EMBEDDING_STORES:
            raise ValueError(
                f"{_name('embeddings')} must be process or redis, got {self.embeddings!r}"
            )
        checks: list[tuple[str, Callable[[float], bool], str]] = [
            ("candidates", lambda v: v >= 1, "at least 1"),
            ("light_keep", lambda v: v >= 1, "at least 1"),
            ("light_weight", lambda v: v >= 0, "0 (the heavy ranker alone) or more"),
            ("max_k", lambda v: v >= 1, "at least 1"),
            ("max_per_category", lambda v: v >= 0, "0 (no cap) or more"),
            ("category_share", lambda v: 0 <= v <= 1, "between 0 (a fixed cap) and 1"),
            ("max_per_creator", lambda v: v >= 0, "0 (no cap) or more"),
            ("embedding_cache_rows", lambda v: v >= 1, "at least 1"),
            ("refresh_interval_s", lambda v: v >= 0, "0 or more"),
            ("fresh_share", lambda v: 0 <= v <= 1, "between 0 and 1"),
            ("mmr_lambda", lambda v: 0 <= v <= 1, "between 0 and 1 (1: off)"),
            ("fresh_boost", lambda v: v >= 0, "0 (off) or more"),
            ("fresh_days", lambda v: v >= 0, "0 or more"),
            ("similarity_quota", lambda v: v >= 0, "0 (as many as candidates) or more"),
            ("trending_quota", lambda v: v >= 0, "0 (as many as candidates) or more"),
            ("fresh_quota", lambda v: v >= 0, "0 (off) or more"),
            ("cohort_quota", lambda v: v >= 0, "0 (off) or more"),
        ]
        for name, ok, want in checks:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"{_name(name)} must be a number, got {value!r}")
            if not math.isfinite(value) or not ok(value):
                raise ValueError(f"{_name(name)} must be {want}, got {value!r}")

    def category_cap(self, k: int) -> int:
        """Items of one category a page of ``k`` may hold before the cap is relaxed (0: no
        cap): ``max_per_category``, or ``category_share`` of a larger page, rounded up."""
        if not self.max_per_category:
            return 0
        return max(self.max_per_category, math.ceil(self.category_share * k))

    @property
    def list_rules(self) -> bool:
        """Whether a rule that reads the items' creators, ages or embeddings is on."""
        return self.max_per_creator > 0 or self.mmr_lambda < 1 or self.fresh_boost > 0

    def quotas(self, n: int | None = None) -> dict[str, int]:
        """Each blend source's quota for ``n`` retrieved candidates (default ``candidates``)."""
        n = self.candidates if n is None else n
        return {
            "two_tower": n,
            "similarity": self.similarity_quota or n,
            "trending": self.trending_quota or n,
            "fresh": self.fresh_quota,
            "cohort": self.cohort_quota,
        }

    @classmethod
    def from_mapping(cls, env: Mapping[str, str]) -> FunnelConfig:
        """The settings a deployment may override, read from ``env`` (the service passes its
        environment): the variables of ``ENV`` (``RECASSETS_SERVE_CANDIDATES``, ``..._MAX_K``,
        ``..._MAX_PER_CATEGORY``, ``..._CATEGORY_SHARE``, ``..._LIGHT_KEEP``,
        ``..._LIGHT_WEIGHT``, ``..._EMBEDDINGS`` (``process`` or ``redis``),
        ``..._EMBEDDING_CACHE_ROWS``, ``..._MAX_PER_CREATOR``, ``..._MMR_LAMBDA``,
        ``..._FRESH_BOOST``, ``..._FRESH_DAYS``, ``..._SIMILARITY_QUOTA``, ``..._TRENDING_QUOTA``,
        ``..._FRESH_QUOTA``, ``..._COHORT_QUOTA``); the rest keep their defaults. A value that
        does not parse, or is out of range, raises ``ValueError`` naming its variable."""
        types = {f.name: f.type for f in fields(cls)}
        got: dict[str, Any] = {}
        for name, var in ENV.items():
            raw = env.get(var)
            if raw is None or not raw.strip():  # blank: the default, as every other setting
                continue
            kind = types[name]  # "int", "float" or "str" (postponed annotations)
            try:
                got[name] = int(raw) if kind == "int" else float(raw) if kind == "float" else raw
            except ValueError:
                want = "an integer" if kind == "int" else "a number"
                raise ValueError(f"{var} must be {want}, got {raw!r}") from None
        return cls(**got)


def _name(field: str) -> str:
    var = ENV.get(field)
    return f"{var} ({field})" if var else field


__all__ = ["ENV", "FunnelConfig"]
