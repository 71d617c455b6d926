"""The serving funnel, in-process: retrieve, rank, apply rules.

``Recommender`` is what the BentoML service (``serving/service.py``) wraps and what the
benchmarks call directly. It composes the funnel's parts, one module each:

- ``items``: the item side in memory (``Catalog``: the item block, rebuilt when a new feature
  day is materialized; the cohort CTRs by category);
- ``users``: the user side (the online row, the towers' inputs);
- ``stages``: the candidate stages (ANN retrieval, trending, fresh items, popularity);
- ``ranking``: the DCN-v2 ranker over the candidates, in broadcast form;
- ``rules``, ``diversity``: plain NumPy functions (seen items, top-k, caps, fresh slots,
  freshness boost, MMR); ``config``: ``FunnelConfig``, the settings read from the environment.

Per ``/recommend`` request, over one item block:

1. user features: one point read of the Feast online store (``OnlineFeatureReader.user``);
   an unknown user (a feature-store miss) takes the cold-start path: trending items of the
   user's cohort when the request names it (country, age bucket), else global trending,
   with ``fresh_share`` of the list reserved for items first seen on the feature day.
2. retrieval: the two-tower's user tower on those features (one row), then the FAISS index
   for the top ``candidates`` (default 500, capped at the index size; ``-1`` slots dropped).
3. ranking: when the bundle carries a light ranker (``training.light``), it scores every
   candidate on its dot product and the item's counters and keeps the best ``light_keep``
   (200); then the DCN-v2 ranker over those, the user half of its input computed once
   and broadcast, the item half prepared per catalog at each refresh (``ranking.py``).
   Candidate item features come from memory (the reader keeps the item view as arrays,
   refreshed when a new day is materialized).
4. rules: drop items the user already engaged with (``exclude_seen``); when on, a freshness
   boost and MMR diversity (``diversity.arrange``); drop duplicates, cap items per category
   and per creator (``max_per_category``, ``max_per_creator``; each relaxed, in score order,
   only when the capped list would be shorter than k), and backfill from trending when fewer
   than k candidates survive. Every returned item lists the stages it passed.

Faults: when the online store fails (``OnlineStoreUnavailable``: Redis down, the SQLite file
missing or locked) the request is still answered, from the cold-start path (``/rank``: on
default user features), with a note saying so and ``Recommendation.degraded`` set; the next
request reads the store again, so serving recovers by itself when the store is back. When the
models' embedding rows in Redis cannot be read (``ROWS_DOWN``), the page is the week's
popularity minus seen items and ``/rank`` the popularity order, degraded and noted too.
Client mistakes raise ``RequestError`` naming the field (a k out of range, an id beyond int64).

Policy: the bundle's ``policy.json`` says whether a promoted model pair serves or, while no
model ever passed the gate, popularity (the bundle's positives of the last 7 days or of all
time, ``bento.popularity``: the gate's order) minus seen items.

Threads: ``pin_threads`` (called by the service at start-up) sets torch's and FAISS's OpenMP
pools to one thread per worker: about 0.35 ms a request pinned against 8 ms unpinned.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from recassets.featurestore.online import OnlineFeatureReader, OnlineStoreUnavailable
from recassets.funnel import diversity as Dv
from recassets.funnel import rules as R
from recassets.funnel import stages as S
from recassets.funnel.bundle import Bundle
from recassets.funnel.config import FunnelConfig
from recassets.funnel.items import Catalog, ItemBlock
from recassets.funnel.notes import (
    NO_ITEMS,
    RANK_COLD_USER,
    RANK_UNKNOWN_ITEMS,
    ROWS_DOWN,
    STORE_DOWN,
    RequestError,
    short_page,
)
from recassets.funnel.public import public
from recassets.funnel.ranking import Ranking
from recassets.funnel.rules import Entry, trending_score
from recassets.funnel.users import UserInputs, seen_items, user_row, user_table
from recassets.paths import Paths
from recassets.retrieval.index import ItemIndex
from recassets.training import inference as T
from recassets.training.light import LightRanker, fuse

MODEL, POPULARITY = "model", "popularity"
COLD_START = "cold_start"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def pin_threads(n: int = 1) -> None:
    """One intra-op thread for torch and FAISS in this process (a serving worker)."""
    torch.set_num_threads(n)
    try:
        import faiss

        faiss.omp_set_num_threads(n)
    except ImportError:  # pragma: no cover
        pass


@dataclass
class Recommendation:
    user_id: int
    policy: str
    items: list[dict[str, Any]]
    features_day: str | None
    notes: list[str] = field(default_factory=list)
    degraded: bool = False  # answered without the online store (it failed)
    # the user's online row the answer was built from (None: unknown user), for what runs
    # after the funnel (the ad auction) without a second read; not part of the answer
    user_values: Mapping[str, Any] | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        return {
            "user_id": self.user_id,
            "policy": self.policy,
            "features_day": self.features_day,
            "items": self.items,
            "notes": self.notes,
        }


class Recommender:
    """The funnel over one bundle and the live online store of ``paths``."""

    def __init__(
        self,
        bundle: Bundle,
        paths: Paths,
        config: FunnelConfig | None = None,
        *,
        redis_url: str | None = None,
        device: str | torch.device | None = None,
        on_embedding_lookup: Callable[[int, int], None] | None = None,
        embeddings_url: str | None = None,
    ) -> None:
        """``redis_url``: the online store (default SQLite under the home); the embedding rows
        (``config.embeddings == "redis"``) are read from ``embeddings_url``, by default the same
        Redis; ``on_embedding_lookup(hits, misses)`` hears of each cache lookup."""
        self.bundle = bundle
        self.paths = paths
        self.config = config or FunnelConfig()
        self.device = T.resolve_device(device)
        self.policy = bundle.policy
        catalog = bundle.folder / "feast" / "catalog.json"  # what the bundle was built with
        self.reader = OnlineFeatureReader(paths, redis_url=redis_url, catalog=catalog,
                                          check_interval_s=self.config.refresh_interval_s)  # fmt: skip
        self.model = self.policy.get("policy") == MODEL
        # the gate's order (evaluation.choose_order): "blend" (EASE and towers) or "dcn_v2"
        self.order = self.policy.get("order", "dcn_v2") if self.model else None
        self.similarity = None
        self.light: LightRanker | None = None
        # the light ranker's item rows for the current block (``LightRanker.prepare``)
        self._light_rows: tuple[np.ndarray, np.ndarray] | None = None
        # the blend's standing orders of the current block (``sources.CatalogOrders``)
        self._blend_orders: Any = None
        self.two_tower = self.tt_vocab = self.ranker = self.rk_vocab = None
        self.index: ItemIndex | None = None
        self._users = UserInputs(self.device)
        self._retrieval: S.Retrieval | None = None
        self._ranking: Ranking | None = None
        # items the ranker scores with every ranked page (``prescore``), sorted
        self._prescore = np.zeros(0, np.int64)
        if self.model:
            self.two_tower, self.tt_vocab = T.load_two_tower(
                str(bundle.path("two_tower")), device=self.device
            )
            self.ranker, self.rk_vocab = T.load_ranking(
                str(bundle.path("ranking")), device=self.device
            )
            self.index = ItemIndex.load(bundle.path("index"))  # type: ignore[arg-type]
            if bundle.path("light_ranker") is not None:
                self.light = LightRanker.load(bundle.path("light_ranker"))  # type: ignore[arg-type]
            if self.order == "blend":
                from recassets.training.similarity import ItemSimilarity

                self.similarity = ItemSimilarity.load(bundle.path("item_similarity"))  # type: ignore[arg-type]
            if self.config.embeddings == "redis":
                self._externalize(embeddings_url or redis_url, on_embedding_lookup)
            elif self.config.embeddings != "process":
                raise ValueError(
                    f"RECASSETS_SERVE_EMBEDDINGS={self.config.embeddings!r}: process or redis"
                )
            self._retrieval = S.Retrieval(
                self.two_tower, self.tt_vocab, self.index, self._users, self.config.candidates
            )
            self._ranking = Ranking(self.ranker, self.rk_vocab, self._users, self.device)
            self._tt_weights = self._retrieval.weights
        self.catalog = Catalog(
            self.reader, self.ranker, self.rk_vocab, self.device, bundle.path("popularity")
        )

    def _externalize(
        self, redis_url: str | None, on_lookup: Callable[[int, int], None] | None
    ) -> None:
        """The models' embedding rows from Redis through a bounded cache (``embedding_store``),
        published there when the bento was built; the in-process tables are dropped."""
        from recassets.funnel import embedding_store as E

        if not redis_url:
            raise ValueError("RECASSETS_SERVE_EMBEDDINGS=redis needs RECASSETS_REDIS_URL")
        import redis

        client = redis.Redis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        self.embedding_stores = {}
        for kind, model in (("two_tower", self.two_tower), ("ranking", self.ranker)):
            sha = self.bundle.manifest["lineage"][kind]["sha256"]
            store = E.RowStore(client, sha, self.config.embedding_cache_rows, on_lookup)
            E.externalize(model, store, self.device)  # type: ignore[arg-type]
            self.embedding_stores[kind] = store

    # -- the stages one at a time (the benchmarks and the equality tests call these) ----

    def user_row(self, user_id: int) -> dict[str, Any] | None:
        """The user's online features, or None on a feature-store miss."""
        return user_row(self.reader, user_id)

    def cohort_ctr(self, country: str | None, age_bucket: str | None) -> np.ndarray:
        """(C,) the cohort's 28-day CTR per category of the current item block."""
        return self.catalog.cohort_ctr(self.catalog.block(), country, age_bucket)

    def retrieve(
        self, user_id: int, values: Mapping[str, Any], n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores) of the top ``n`` of the index for this user (``-1`` slots dropped)."""
        assert self._retrieval is not None
        return self._retrieval(user_id, values, n)

    def rank(
        self, user_id: int, values: Mapping[str, Any] | None, item_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ranker logits (N,) of ``item_ids`` for the user (broadcast form) and which items
        had online features (``found``; the others are scored on default features)."""
        assert self._ranking is not None
        block, values = self.catalog.block(), values or {}
        return self._ranking(block, user_id, values, item_ids, self._cohort_of(block, values))

    def prescore(self, item_ids: Sequence[int] | np.ndarray) -> None:
        """Items to score with every page the ranker orders, beside its candidates (the
        campaigns' items, whose pCTR the auction asks for right after the page is made): one
        ranker call a request instead of two; ``rank`` then answers them from that call. The
        page is the same either way (each row's logit is its own). Empty: none."""
        self._prescore = np.unique(np.asarray(item_ids, dtype=np.int64))

    def rank_replicated(
        self, user_id: int, values: Mapping[str, Any] | None, item_ids: np.ndarray
    ) -> np.ndarray:
        """The ranker on N rows that each repeat the user's features (no broadcast): what
        scoring costs when serving reuses the training path. Same logits as ``rank``."""
        assert self._ranking is not None
        block, values = self.catalog.block(), values or {}
        cohort = self._cohort_of(block, values)
        return self._ranking.replicated(block, user_id, values, item_ids, cohort)

    def trending(
        self, k: int, exclude: set[int], country: str | None = None, age_bucket: str | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cold-start list (``stages.trending``), by the cohort when it is known."""
        block = self.catalog.block()
        return S.trending(block, k, exclude, self._cohort(block, country, age_bucket))

    def popularity(self, k: int, exclude: set[int]) -> tuple[np.ndarray, np.ndarray]:
        variant = self.policy.get("variant", "trailing_7d")
        return S.popularity(self.catalog.block(), variant, k, exclude)

    def _cohort(
        self, block: ItemBlock, country: str | None, age_bucket: str | None, notes: Any = None
    ) -> np.ndarray | None:
        """The cohort's CTR by category (None: the request names none); one without figures (a
        typo, a new country) is said in ``notes``: the list is everyone's, not the cohort's."""
        if not (country or age_bucket):
            return None
        ctr = self.catalog.cohort_ctr(block, country, age_bucket)
        unknown = not ctr.any() and len(block.categories) > 0
        if unknown and notes is not None and STORE_DOWN not in notes:
            both = "" if country and age_bucket else " (a cohort is a country and an age bucket)"
            notes.append(f"cohort (country {country!r}, age_bucket {age_bucket!r}) has no "
                         f"figures in the online store{both}: trending of everyone")  # fmt: skip
        return ctr

    def _cohort_of(self, block: ItemBlock, values: Mapping[str, Any]) -> np.ndarray:
        return self.catalog.cohort_ctr(block, values.get("country"), values.get("age_bucket"))

    def _is_fresh(self, item_id: int) -> bool:
        return bool(self.catalog.last.is_fresh(np.asarray([item_id], np.int64))[0])

    def _user_inputs(
        self, user_id: int, values: Mapping[str, Any], vocab: Any, weights: Any
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        return self._users(user_id, values, vocab, weights)

    _user_table = staticmethod(user_table)

    # -- requests -----------------------------------------------------------------------

    def check_id(self, name: str, value: Any) -> int:
        """An integer id within int64 (the stores' and the index's key type)."""
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise RequestError(name, f"must be an integer, got {type(value).__name__}")
        if not INT64_MIN <= int(value) <= INT64_MAX:
            raise RequestError(name, f"must fit in a signed 64-bit integer, got {value}")
        return int(value)

    def _user_row_or_note(self, user_id: int, notes: list[str]) -> tuple[dict | None, bool]:
        """The user's row, or (None, True) with a note when the store fails."""
        try:
            return self.user_row(user_id), False
        except OnlineStoreUnavailable:
            notes.append(STORE_DOWN)
            return None, True

    def check_k(self, k: Any) -> int:
        if isinstance(k, bool) or not isinstance(k, int):
            raise RequestError("k", f"must be an integer, got {type(k).__name__}")
        if k < 1 or k > self.config.max_k:
            raise RequestError("k", f"must be between 1 and {self.config.max_k}, got {k}")
        return k

    def recommend(
        self,
        user_id: int,
        k: int = 20,
        exclude_seen: bool = True,
        *,
        country: str | None = None,
        age_bucket: str | None = None,
    ) -> Recommendation:
        k = self.check_k(k)
        user_id = self.check_id("user_id", user_id)
        block = self.catalog.block()  # one block for the whole request
        notes: list[str] = []
        values, degraded = self._user_row_or_note(user_id, notes)
        seen = seen_items(values) if values is not None and exclude_seen else set()
        if values is None:
            policy = COLD_START
            if not degraded:
                notes.append("user not in the online store: cold start (trending)")
            ctr = self._cohort(block, country, age_bucket, notes)
            picked = self._cold_start(block, k, ctr, notes)
        elif not self.model:
            policy = POPULARITY
            ids, scores = self.popularity(4 * k, seen)
            picked = self._rules(block, ids, scores, None, k, ["popularity"], notes)
        else:
            policy = MODEL
            try:
                picked = self._retrieve_and_rank(block, user_id, values, seen, k, notes)
            except OnlineStoreUnavailable:  # the models' embedding rows (Redis) failed
                policy, degraded = POPULARITY, True
                notes.append(ROWS_DOWN)
                ids, scores = self.popularity(4 * k, seen)
                picked = self._rules(block, ids, scores, None, k, ["popularity"], notes)
        if len(picked) < k:  # fewer than k survived: backfill from trending
            have = {p["item_id"] for p in picked} | seen
            ctr = self._cohort(block, country, age_bucket)
            ids, scores = S.trending(block, k - len(picked), have, ctr)
            if len(ids):
                notes.append(f"backfilled {len(ids)} item(s) from trending")
            for i, s in zip(ids.tolist(), scores.tolist(), strict=True):
                picked.append({"item_id": int(i), "score": float(s), "stages": ["backfill"]})
            short_page(notes, len(picked), k, len(block.ids))  # short of k: why
        return Recommendation(user_id, policy, picked[:k], block.day, notes, degraded, values)

    def _cold_start(
        self, block: ItemBlock, k: int, ctr: np.ndarray | None, notes: list[str]
    ) -> list[Entry]:
        """Trending through the rules, then ``fresh_share`` of the list (at least one slot)
        reserved for items first seen on the feature day, best trending first."""
        ids, scores = S.trending(block, 4 * k, set(), ctr)
        picked = self._rules(block, ids, scores, None, k, ["trending"], notes)
        want = R.fresh_slots(k, self.config.fresh_share)
        if want == 0 or not block.fresh.any():
            return picked
        fresh = block.is_fresh(np.asarray([p["item_id"] for p in picked], np.int64))
        ids, scores = S.fresh(block, want - int(fresh.sum()), {p["item_id"] for p in picked})
        return R.insert_fresh(picked, fresh.tolist(), k, ids, scores)

    def _retrieve_and_rank(
        self,
        block: ItemBlock,
        user_id: int,
        values: Mapping[str, Any],
        seen: set[int],
        k: int,
        notes: list[str],
    ) -> list[Entry]:
        assert self._retrieval is not None and self._ranking is not None
        if block.prepared is None:  # no item features loaded yet (the store failed at start)
            notes.append(NO_ITEMS)
            return []
        size = self._retrieval.index.size
        n = min(self.config.candidates, size)
        # ask for extra so that dropping seen items still leaves n (seen <= 100 ids)
        ids, retrieval = self._retrieval(user_id, values, min(size, n + len(seen)))
        ids, retrieval = R.exclude_seen(ids, retrieval, seen)
        ids, retrieval = ids[:n], retrieval[:n]
        if self.similarity is not None:
            return self._blend(
                block, ids, retrieval, seen_items(values), seen, k, n, notes,
                self.catalog.cohort_engagements(
                    block, values.get("country"), values.get("age_bucket")
                ),
            )  # fmt: skip
        if len(ids) == 0:
            return []
        stages, light = ["retrieval", "ranking"], None
        if self.light is not None:
            ids, retrieval, light = self.light_cut(block, ids, retrieval)
            stages = ["retrieval", "light", "ranking"]
        cohort = self._cohort_of(block, values)
        extra = None
        if len(self._prescore):  # the catalog's, not already candidates (a missing item would
            # send the whole call down the default-features path)
            extra = self._prescore[~np.isin(self._prescore, ids)]
            extra = extra[block.positions(extra)[1]]
        if extra is not None and len(extra):  # the page's candidates first, then the extra
            logits, found = self._ranking(
                block, user_id, values, np.concatenate([ids, extra]), cohort
            )
            logits, found = logits[: len(ids)], found[: len(ids)]
        else:
            logits, found = self._ranking(block, user_id, values, ids, cohort)
        if not found.all():
            notes.append(
                f"{int((~found).sum())} candidate(s) missing from the online store: default features"
            )
        # the cascade orders by both stages (``light.fuse``), the ranker alone by its logits
        score = logits if light is None else fuse(logits, light, self.config.light_weight)
        order = np.lexsort((ids, -score))
        return self._rules(block, ids[order], score[order], retrieval[order], k, stages, notes)

    def light_cut(
        self, block: ItemBlock, ids: np.ndarray, retrieval: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The light ranker's best ``light_keep`` of the candidates (retrieval's order kept),
        on their dot products and the block's counters (zeros for an item it lacks, as the
        ranker's defaults), with its logits of the kept."""
        assert self.light is not None
        if not len(block.ids):
            n = self.config.light_keep
            return ids[:n], retrieval[:n], np.zeros(len(ids[:n]), np.float32)
        cached = self._light_rows
        if cached is None or cached[0] is not block.ids:  # a new catalog: prepare it once
            zero = np.zeros((1, block.dense.shape[1]), np.float32)
            cached = (block.ids, self.light.prepare(np.vstack([block.dense, zero])))
            self._light_rows = cached
        pos, found = block.positions(ids)
        rows = cached[1][np.where(found, pos, len(block.ids))]  # the last row: zero counters
        kept, light = self.light.keep(ids, retrieval, None, self.config.light_keep, prepared=rows)
        return ids[kept], retrieval[kept], light

    def _blend(
        self,
        block: ItemBlock,
        ids: np.ndarray,
        retrieval: np.ndarray,
        history: set[int],
        seen: set[int],
        k: int,
        n: int,
        notes: list[str],
        cohort: np.ndarray | None = None,
    ) -> list[Entry]:
        """The blend order (``sources.union_blend``): the ANN's candidates, the user's
        EASE neighbours (of ``history``), the week's most engaged items, the day's new items
        and what trends in the user's cohort (``cohort``: its week's engagements per
        category, ``Catalog.cohort_engagements``), each up to
        its quota (``FunnelConfig.quotas``), merged and scored together; ``seen`` items
        dropped."""
        from recassets.training.sources import CatalogOrders, cohort_trending, union_blend

        assert self.similarity is not None
        # the popularity counter of the days the fit chose (``ItemSimilarity.popularity_days``)
        pop = (
            block.engagements_28d if self.similarity.popularity_days == 28 else block.engagements_7d
        )
        orders = self._blend_orders
        if orders is None or not orders.fits(block.ids, pop, block.fresh):
            orders = CatalogOrders.of(block.ids, pop, block.fresh)
            self._blend_orders = orders  # a new catalog: made once for its requests
        ease = self.similarity.scores_for(history, block.ids)
        quotas = self.config.quotas(n)
        trend = cohort_trending(pop, cohort, block.category_code) if quotas["cohort"] > 0 else None
        out, scores, sources = union_blend(
            block.ids, pop, ease, ids, retrieval, seen, n,
            fresh=block.fresh, quotas=quotas, cohort=trend, beta=self.similarity.beta,
            gamma=self.similarity.gamma, orders=orders,
        )  # fmt: skip
        return self._rules(block, out, scores, None, k, ["retrieval", "blend"], notes, sources)

    def _rules(
        self,
        block: ItemBlock,
        ids: np.ndarray,
        scores: np.ndarray,
        retrieval: np.ndarray | None,
        k: int,
        stages: list[str],
        notes: list[str],
        sources: Sequence[Sequence[str]] | None = None,
    ) -> list[Entry]:
        """``rules.select`` with the categories of ``block``; when a list-wise rule is on
        (``FunnelConfig.list_rules``), first ``diversity.arrange`` (freshness boost, MMR) over
        the creators, ages and content embeddings the reader holds of ``ids``."""
        c = self.config
        got: dict[str, Any] = {}
        if c.list_rules:
            got = self.reader.items(ids)  # array work over the N: a gather per item column
        embedding = got.get("embedding")
        return Dv.page(  # categories asked only of the positions the walk reaches
            ids, scores, retrieval, block.category_of, k, c, stages=stages, notes=notes,
            sources=sources,
            creator=got.get("creator") if c.max_per_creator else None,
            age_days=got.get("age_days"),
            embedding=embedding if embedding is not None and embedding.ndim == 2 else None,
        )  # fmt: skip

    def rank_request(
        self, user_id: int, item_ids: Sequence[int], notes: list[str] | None = None
    ) -> list[dict[str, Any]]:
        """``/rank``: the given candidates in ranker order (the popularity policy's order
        without a model or without items in memory; duplicates dropped). ``notes`` (when given) says where defaults were used: the store
        failed, or the user is unknown to it (``RANK_COLD_USER``), or some items are
        (``RANK_UNKNOWN_ITEMS``: marked ``missing_features`` and placed after every known item,
        whatever their score: a default-feature score says nothing about the item, and must
        not outrank one the ranker knows)."""
        user_id = self.check_id("user_id", user_id)
        checked = [self.check_id(f"item_ids[{j}]", i) for j, i in enumerate(item_ids)]
        ids = np.asarray(list(dict.fromkeys(checked)), dtype=np.int64)
        if len(ids) == 0:
            return []
        notes = notes if notes is not None else []
        block = self.catalog.block()  # one block for the whole request
        values, degraded = self._user_row_or_note(user_id, notes)
        got = None  # the ranker's (scores, found)
        if self.model and block.prepared is None:
            notes.append(NO_ITEMS)
        elif self.model:
            if values is None and not degraded:
                notes.append(RANK_COLD_USER)
            assert self._ranking is not None
            values = values or {}
            cohort = self._cohort_of(block, values)
            try:
                got = self._ranking(block, user_id, values, ids, cohort)
            except OnlineStoreUnavailable:  # the models' embedding rows (Redis) failed
                notes.append(ROWS_DOWN)
        stage = "ranking" if got is not None else "popularity"
        scores, found = got or block.popularity_of(ids, self.policy.get("variant", "trailing_7d"))
        if not found.all():
            notes.append(RANK_UNKNOWN_ITEMS.format(n=int((~found).sum())))
        order = np.lexsort((ids, -scores, ~found))  # known items first, then by score, then id
        return [
            {
                "item_id": int(ids[j]),
                "score": float(scores[j]),
                "stages": [stage] + ([] if found[j] else ["missing_features"]),
            }
            for j in order
        ]

    def info(self) -> dict[str, Any]:
        """What is served; no absolute path of any machine (see ``public``)."""
        block = self.catalog.block()
        health = self.reader.health
        return public(
            {
                "policy": self.policy.get("policy"),
                "features_day": block.day,
                "items_in_memory": int(len(block.ids)),
                "index": None
                if self.index is None
                else {"size": self.index.size, **self.index.info.__dict__},
                "candidates": self.config.candidates,
                "light_keep": self.config.light_keep if self.light is not None else None,
                "online_store": {
                    "kind": self.reader.settings.kind,
                    "available": not health.degraded,
                    "error": health.error,
                },
            }
        )


def load(bundle_dir: str | Path, home: str | None = None, **kwargs: Any) -> Recommender:
    """A ``Recommender`` over the bundle in ``bundle_dir`` and the online store of ``home``
    (default: ``RECASSETS_HOME``)."""
    return Recommender(Bundle.load(bundle_dir), Paths.from_env(home), **kwargs)


__all__ = [
    "Bundle",
    "FunnelConfig",
    "Recommendation",
    "Recommender",
    "load",
    "pin_threads",
    "public",
    "trending_score",
]
