"""The serving funnel, in-process: retrieve, rank, apply rules.

``Recommender`` is what the BentoML service (``serving/service.py``) wraps and what the
benchmarks call directly. Per ``/recommend`` request:

1. user features: one point read of the Feast online store (``OnlineFeatureReader.user``);
   an unknown user (a feature-store miss) takes the cold-start path: trending items of the
   user's cohort when the request names it (country, age bucket), else global trending.
2. retrieval: the two-tower's user tower on those features (one row), then the FAISS index
   for the top ``candidates`` (default 500, capped at the index size; ``-1`` slots dropped).
3. ranking: the DCN-v2 ranker over all candidates in broadcast form: the user half of its
   input is computed once and expanded across the N candidate rows, instead of N copies of
   the user's features going through the embedding lookups and the user MLP
   (``rank_replicated``, kept for the benchmark and the equality test). The item half is
   prepared per catalog at each refresh (``DCNv2.prepare_items``: pooled item embeddings,
   the item counters' projection, the first cross layer's product with the item columns), so
   a request gathers N prepared rows (``DCNv2.score_prepared``). Candidate item features
   come from memory (the reader keeps the item view as arrays, refreshed when a new day is
   materialized).
4. rules: drop items the user already engaged with (``exclude_seen``), drop duplicates, cap
   items per category (``max_per_category``; relaxed, in score order, only when the capped
   list would be shorter than k), and backfill from trending when fewer than k candidates
   survive. Every returned item lists the stages it passed.

Policy: the bundle's ``policy.json`` says whether a promoted model pair serves or, while no
model ever passed the gate, popularity (trailing 7 days: ``engagements_7d``; all-time:
``engagements_28d``, the longest window the online store holds) minus seen items.

Threads: ``pin_threads`` (called by the service at start-up) sets torch's and FAISS's
OpenMP pools to one thread per worker. The funnel's work is small matrices; with the default
pools every request pays thread wake-ups and contends with the other workers (measured in
the issue: about 0.35 ms pinned against about 8 ms unpinned).
"""

from __future__ import annotations

import json
import math
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recassets.featurestore import wire
from recassets.featurestore.online import FOUND, OnlineFeatureReader
from recassets.featurestore.snapshot import cohort_id
from recassets.models.features import Features
from recassets.models.ranking import PreparedItems
from recassets.paths import Paths
from recassets.serving.index import ItemIndex
from recassets.training import data as D
from recassets.training import trainer as T
from recassets.training.schema import COHORT_DENSE, ITEM_DENSE, USER_DENSE

MODEL, POPULARITY = "model", "popularity"
COLD_START = "cold_start"
# user_features / item_features names of the training columns (u_ctr_7d <- ctr_7d, ...)
USER_DENSE_SOURCE = tuple(c[2:] for c in USER_DENSE)
ITEM_DENSE_SOURCE = tuple("trending" if c == "i_trending" else c[2:] for c in ITEM_DENSE)
UNKNOWN = "unknown"  # the lake's stand-in for a missing country / age bucket / category
FRESH_DAYS = 1.0  # item_features.age_days of an item first seen on the feature day
_MEMO_LIMIT = 100_000  # memoized vocabulary rows of user string features, per vocabulary


class RequestError(ValueError):
    """A request the service must refuse with a 4xx; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def pin_threads(n: int = 1) -> None:
    """One intra-op thread for torch and FAISS in this process (a serving worker)."""
    torch.set_num_threads(n)
    try:
        import faiss

        faiss.omp_set_num_threads(n)
    except ImportError:  # pragma: no cover
        pass


@dataclass
class FunnelConfig:
    candidates: int = 500  # N retrieved and ranked
    max_k: int = 200  # the largest k a request may ask for
    max_per_category: int = 5
    refresh_interval_s: float = 1.0  # how often a request checks for a newer feature day
    fresh_share: float = 0.25  # of a cold-start list, reserved for items first seen that day

    @classmethod
    def from_env(cls) -> FunnelConfig:
        env = os.environ
        return cls(
            candidates=int(env.get("RECASSETS_SERVE_CANDIDATES", cls.candidates)),
            max_k=int(env.get("RECASSETS_SERVE_MAX_K", cls.max_k)),
            max_per_category=int(env.get("RECASSETS_SERVE_MAX_PER_CATEGORY", cls.max_per_category)),
        )


@dataclass
class _ItemBlock:
    """The in-memory item view prepared for the ranker, one row per item the reader holds."""

    ids: np.ndarray  # (M,) sorted int64
    day: str | None
    category: np.ndarray  # (M,) object: str or None
    category_code: np.ndarray  # (M,) int64 index into categories (UNKNOWN for None)
    categories: list[str]
    rows: dict[str, np.ndarray]  # ranker vocabulary row per sparse item feature; -1 = null
    dense: np.ndarray  # (M, Di) float32 in ITEM_DENSE order
    engagements_7d: np.ndarray
    engagements_28d: np.ndarray
    trending: np.ndarray  # (M,) the cold-start score (see trending_score)
    fresh: np.ndarray  # (M,) bool: first seen within the feature day (age_days <= 1)
    found: np.ndarray  # (M,) bool
    # the ranker's item-only work over the block (DCNv2.prepare_items): item features change
    # once a day, so their lookups and projections happen at refresh, not per request
    prepared: PreparedItems | None = None


def trending_score(trending: np.ndarray, engagements_7d: np.ndarray) -> np.ndarray:
    """Cold-start order: the item's trend ratio (1-day rate over its 7-day daily mean) times
    log(1 + engagements in 7 days). The ratio alone crowns items with one engagement
    yesterday and none before; the volume term keeps the list to items people actually use."""
    t = np.nan_to_num(trending.astype(np.float64), nan=0.0)
    e = np.nan_to_num(engagements_7d.astype(np.float64), nan=0.0)
    return np.maximum(t, 0.0) * np.log1p(np.maximum(e, 0.0)) + 1e-6 * e


@dataclass
class Bundle:
    """A serving bundle folder (what ``bundle.write_bundle`` writes and the bento carries)."""

    folder: Path
    manifest: dict[str, Any]

    @classmethod
    def load(cls, folder: str | Path) -> Bundle:
        folder = Path(folder)
        manifest_path = folder / "manifest.json"
        if not manifest_path.exists():
            raise FileNotFoundError(f"no manifest.json in serving bundle {folder}")
        return cls(folder, json.loads(manifest_path.read_text()))

    @property
    def policy(self) -> dict[str, Any]:
        return self.manifest["policy"]

    def path(self, key: str) -> Path | None:
        rel = self.manifest.get("files", {}).get(key)
        return self.folder / rel if rel else None


@dataclass
class Recommendation:
    user_id: int
    policy: str
    items: list[dict[str, Any]]
    features_day: str | None
    notes: list[str] = field(default_factory=list)

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
    ) -> None:
        self.bundle = bundle
        self.paths = paths
        self.config = config or FunnelConfig()
        self.device = T.resolve_device(device)
        self.policy = bundle.policy
        self.reader = OnlineFeatureReader(
            paths, redis_url=redis_url, check_interval_s=self.config.refresh_interval_s
        )
        self.model = self.policy.get("policy") == MODEL
        self.two_tower = self.tt_vocab = self.ranker = self.rk_vocab = None
        self.index: ItemIndex | None = None
        if self.model:
            self.two_tower, self.tt_vocab = T.load_two_tower(
                str(bundle.path("two_tower")), device=self.device
            )
            self.ranker, self.rk_vocab = T.load_ranking(
                str(bundle.path("ranking")), device=self.device
            )
            self.index = ItemIndex.load(bundle.path("index"))  # type: ignore[arg-type]
            self._tt_weights = self._weights(self.two_tower)
            self._rk_weights = self._weights(self.ranker)
        self._lock = threading.Lock()
        self._string_rows: dict[int, dict[tuple[str, str], int]] = {}
        self._cohorts: dict[tuple[Any, ...], np.ndarray] = {}
        self._block = self._build_block()

    # -- item block ---------------------------------------------------------------------

    def _items(self) -> _ItemBlock:
        if self.reader.maybe_refresh() or self._block.ids is not self.reader._items.ids:
            with self._lock:
                if self._block.ids is not self.reader._items.ids:
                    self._block = self._build_block()
                    self._cohorts = {}
        return self._block

    def _build_block(self) -> _ItemBlock:
        state = self.reader._items
        ids = state.ids
        got = self.reader.items(ids) if len(ids) else None
        m = len(ids)

        def col(name: str, fill: float = 0.0) -> np.ndarray:
            if got is None or name not in got:
                return np.full(m, fill, dtype=np.float64)
            return np.nan_to_num(np.asarray(got[name], dtype=np.float64), nan=fill)

        category = (
            np.asarray(got["category"], dtype=object) if got is not None else np.empty(0, object)
        )
        names = sorted({c for c in category if c is not None} | {UNKNOWN})
        code = {c: i for i, c in enumerate(names)}
        category_code = np.asarray([code[c or UNKNOWN] for c in category], dtype=np.int64)
        rows: dict[str, np.ndarray] = {}
        if self.ranker is not None and m:
            table = pa.table(
                {
                    "item_id": pa.array(ids, pa.int64()),
                    "category": pa.array(category.tolist(), pa.string()),
                    "creator": pa.array(list(got["creator"]), pa.string()),  # type: ignore[index]
                }
            )
            for feature in D.ITEM_FEATURES:
                col_ = table[feature].combine_chunks()
                valid = col_.is_valid().to_numpy(zero_copy_only=False)
                r = np.full(m, -1, dtype=np.int64)
                if valid.any():
                    r[valid] = D._lookup(
                        self.rk_vocab[D.FEATURE_VOCAB[feature]],  # type: ignore[index]
                        col_.filter(pa.array(valid)),
                        False,
                    )
                rows[feature] = r
        dense = np.stack([col(c) for c in ITEM_DENSE_SOURCE], axis=1).astype(np.float32)
        e7, e28 = col("engagements_7d"), col("engagements_28d")
        prepared = None
        if self.ranker is not None and m:
            with torch.inference_mode():
                pooled = self.ranker.embeddings(self._item_kjt(rows, np.arange(m)).to(self.device))
                prepared = self.ranker.prepare_items(
                    pooled, torch.from_numpy(dense).to(self.device)
                )
        return _ItemBlock(
            ids=ids,
            day=state.day,
            category=category,
            category_code=category_code,
            categories=names,
            rows=rows,
            dense=dense if m else np.zeros((0, len(ITEM_DENSE)), np.float32),
            engagements_7d=e7,
            engagements_28d=e28,
            trending=trending_score(col("trending"), e7),
            fresh=col("age_days", np.inf) <= FRESH_DAYS,
            found=np.asarray(got[FOUND], dtype=bool) if got is not None else np.zeros(0, bool),
            prepared=prepared,
        )

    @staticmethod
    def _item_kjt(rows: Mapping[str, np.ndarray], pos: np.ndarray) -> KeyedJaggedTensor:
        """KJT of the items at ``pos`` from precomputed vocabulary rows (-1: null, empty bag)."""
        values, lengths = [], []
        for feature in D.ITEM_FEATURES:
            r = rows[feature][pos]
            values.append(r[r >= 0])
            lengths.append((r >= 0).astype(np.int64))
        return KeyedJaggedTensor.from_lengths_sync(
            keys=list(D.ITEM_FEATURES),
            values=torch.from_numpy(np.concatenate(values)),
            lengths=torch.from_numpy(np.concatenate(lengths)),
        )

    def _positions(self, block: _ItemBlock, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of ``item_ids`` in the block and whether each is there."""
        if len(block.ids) == 0:
            return np.zeros(len(item_ids), np.int64), np.zeros(len(item_ids), bool)
        pos = np.minimum(np.searchsorted(block.ids, item_ids), len(block.ids) - 1)
        return pos, block.ids[pos] == item_ids

    def cohort_ctr(self, country: str | None, age_bucket: str | None) -> np.ndarray:
        """(C,) the cohort's 28-day CTR per category of the block (0 where the store has
        none), as ``training_examples.c_ctr_28d`` joins it (nulls read as 'unknown')."""
        block = self._items()
        key = (country or UNKNOWN, age_bucket or UNKNOWN, block.day)
        got = self._cohorts.get(key)
        if got is None:
            backend = self.reader._backend
            got = np.zeros(len(block.categories), dtype=np.float32)
            for i, cat in enumerate(block.categories):
                raw = backend.read_one(
                    "cohort_daily_features",
                    "cohort_id",
                    cohort_id(key[0], key[1], cat),
                    ["ctr_28d"],
                )
                if raw and raw.get("ctr_28d") is not None:
                    value = wire.decode_value(raw["ctr_28d"])
                    got[i] = 0.0 if value is None or value != value else float(value)
            self._cohorts[key] = got
        return got

    # -- features -----------------------------------------------------------------------

    def user_row(self, user_id: int) -> dict[str, Any] | None:
        """The user's online features, or None on a feature-store miss."""
        values = self.reader.user(int(user_id))
        if all(values.get(f) is None for f in self.reader.user_features):
            return None
        return values

    def _user_table(self, user_id: int, values: Mapping[str, Any]) -> pa.Table:
        cols: dict[str, pa.Array] = {
            "user_id": pa.array([int(user_id)], pa.int64()),
            "history_item_ids": pa.array(
                [[int(i) for i in (values.get("history_item_ids") or [])]], pa.list_(pa.int64())
            ),
        }
        for c in ("country", "device", "age_bucket"):
            cols[c] = pa.array([values.get(c)], pa.string())
        for c in USER_DENSE_SOURCE:
            v = values.get(c)
            cols[c] = pa.array([0.0 if v is None else float(v)], pa.float64())
        return pa.table(cols)

    def _candidate_features(
        self,
        block: _ItemBlock,
        pos: np.ndarray,
        cohort: np.ndarray,
        item_ids: np.ndarray,
        found: np.ndarray,
    ) -> Features:
        """The ranker's item-side inputs of the candidates at ``pos``. An item the online store
        does not hold (``found`` False) is read as training reads a row without features: its
        id through the vocabulary (own row or OOV bucket), no category or creator, zero
        counters, and the cohort's rate of the 'unknown' category."""
        rows = {f: block.rows[f][pos] for f in D.ITEM_FEATURES}
        dense = block.dense[pos]
        codes = block.category_code[pos]
        if not found.all():
            miss = ~found
            rows = {f: r.copy() for f, r in rows.items()}
            rows["item_id"][miss] = self.rk_vocab["item_id"].lookup(  # type: ignore[index]
                item_ids[miss].astype(np.int64), record=False
            )
            for f in D.ITEM_FEATURES:
                if f != "item_id":
                    rows[f][miss] = -1
            dense = dense.copy()
            dense[miss] = 0.0
            codes = np.where(miss, block.categories.index(UNKNOWN), codes)
        cross = cohort[codes][:, None] if COHORT_DENSE else None
        return Features(
            sparse=self._item_kjt(rows, np.arange(len(pos))),
            item_dense=torch.from_numpy(dense),
            cross_dense=torch.from_numpy(np.ascontiguousarray(cross, dtype=np.float32))
            if cross is not None
            else None,
        ).to(self.device)

    @staticmethod
    def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """Feature -> the (rows, E) weight of the table it reads."""
        return {
            f: model.embeddings.weight(t.name)  # type: ignore[operator]
            for t in model.config.tables  # type: ignore[union-attr]
            for f in t.features
        }

    def _user_inputs(
        self,
        user_id: int,
        values: Mapping[str, Any],
        vocab: Any,
        weights: Mapping[str, torch.Tensor],
    ) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
        """One user's pooled embeddings {feature: (1, E)} and dense counters (1, Du), straight
        from the online row: the vocabulary rows ``data.user_features`` would give for a
        one-row table, mean-pooled as the tables pool (an empty bag is zeros), by indexing
        the weights. For one row this skips TorchRec's KJT bookkeeping, which costs more
        than the lookups themselves (equality with the module path is tested). A one-value
        bag is a view of its weight row (the mean of one row is the row); the rows of string
        values (country, device, age bucket: a handful each) are memoized per vocabulary,
        which the bundle fixes for the life of the process."""
        pooled: dict[str, torch.Tensor] = {}
        memo = self._string_rows.setdefault(id(vocab), {})
        for feature in D.USER_FEATURES:
            name = D.FEATURE_VOCAB[feature]
            w = weights[feature]
            if feature in D.LIST_FEATURES:
                ids = [int(i) for i in (values.get(feature) or []) if i is not None]
                if ids:
                    rows = vocab[name].lookup(np.asarray(ids, np.int64), record=False)
                    pooled[feature] = w.index_select(0, torch.from_numpy(rows)).mean(
                        dim=0, keepdim=True
                    )
                else:
                    pooled[feature] = w.new_zeros((1, w.shape[1]))
                continue
            if feature == "user_id":
                row = int(vocab[name].lookup(np.asarray([int(user_id)], np.int64), record=False)[0])
            elif (x := values.get(feature)) is None:
                pooled[feature] = w.new_zeros((1, w.shape[1]))
                continue
            elif (row := memo.get((name, x), -1)) < 0:
                row = int(vocab[name].lookup(pa.array([x], pa.string()), record=False)[0])
                if len(memo) < _MEMO_LIMIT:
                    memo[(name, x)] = row
            pooled[feature] = w[row : row + 1]
        dense = torch.tensor(
            [[0.0 if (x := values.get(c)) is None else float(x) for c in USER_DENSE_SOURCE]],
            dtype=torch.float32,
            device=self.device,
        )
        return pooled, dense

    # -- the stages ---------------------------------------------------------------------

    def retrieve(
        self, user_id: int, values: Mapping[str, Any], n: int
    ) -> tuple[np.ndarray, np.ndarray]:
        """(ids, scores) of the top ``n`` of the index for this user (``-1`` slots dropped)."""
        assert self.two_tower is not None and self.index is not None
        with torch.inference_mode():
            pooled, dense = self._user_inputs(user_id, values, self.tt_vocab, self._tt_weights)
            u = self.two_tower.user_tower(pooled, dense)  # (1, D)
        scores, pos = self.index.search(u.float().cpu().numpy(), n)
        keep = pos[0] >= 0
        return self.index.item_ids[pos[0][keep]], scores[0][keep]

    def rank(
        self, user_id: int, values: Mapping[str, Any] | None, item_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Ranker logits (N,) of ``item_ids`` for the user (broadcast form) and which items
        had online features (``found``; the others are scored on default features)."""
        assert self.ranker is not None
        block = self._items()
        pos, found = self._positions(block, item_ids)
        values = values or {}
        cohort = self.cohort_ctr(values.get("country"), values.get("age_bucket"))
        with torch.inference_mode():
            pooled, dense_u = self._user_inputs(user_id, values, self.rk_vocab, self._rk_weights)
            u = self.ranker._user_part(pooled, dense_u)  # (1, Xu), once per request
            if found.all() and block.prepared is not None:  # every candidate prepared
                cross = None
                if COHORT_DENSE:
                    c = cohort[block.category_code[pos]][:, None].astype(np.float32)
                    cross = torch.from_numpy(c).to(self.device)
                index = torch.from_numpy(pos).to(self.device)
                logits = self.ranker.score_prepared(u, block.prepared, index, cross)
            else:  # a feature-store miss: OOV id row, zero counters, the full item half
                items = self._candidate_features(block, pos, cohort, item_ids, found)
                v = self.ranker.item_part(items)
                logits = self.ranker.interact(torch.cat([u.expand(v.shape[0], -1), v], dim=1))
            return logits.float().cpu().numpy(), found

    def rank_replicated(
        self, user_id: int, values: Mapping[str, Any] | None, item_ids: np.ndarray
    ) -> np.ndarray:
        """The ranker on N rows that each repeat the user's features (no broadcast): what
        scoring costs when serving reuses the training path. Same logits as ``rank``."""
        assert self.ranker is not None
        block = self._items()
        pos, found = self._positions(block, item_ids)
        values = values or {}
        cohort = self.cohort_ctr(values.get("country"), values.get("age_bucket"))
        n = len(item_ids)
        table = self._user_table(user_id, values).take(pa.array(np.zeros(n, dtype=np.int64)))
        user = D.user_features(table, self.rk_vocab)
        items = self._candidate_features(block, pos, cohort, item_ids, found)
        merged = KeyedJaggedTensor.concat([user.sparse, items.sparse.to(torch.device("cpu"))])
        feats = Features(
            sparse=merged,
            user_dense=user.user_dense,
            item_dense=items.item_dense.cpu(),  # type: ignore[union-attr]
            cross_dense=items.cross_dense.cpu() if items.cross_dense is not None else None,
        ).to(self.device)
        with torch.inference_mode():
            return self.ranker(feats).float().cpu().numpy()

    # -- requests -----------------------------------------------------------------------

    def check_k(self, k: Any) -> int:
        if isinstance(k, bool) or not isinstance(k, int):
            raise RequestError("k", f"must be an integer, got {type(k).__name__}")
        if k < 1 or k > self.config.max_k:
            raise RequestError("k", f"must be between 1 and {self.config.max_k}, got {k}")
        return k

    def trending(
        self, k: int, exclude: set[int], country: str | None = None, age_bucket: str | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Cold-start list: global trending (``trending_score``), re-weighted when the cohort
        (country, age bucket) is known by the cohort's 28-day CTR of each item's category,
        relative to the cohort's mean over categories: the cohort's favourite categories
        rise, the rest sink, and within a category the global trend decides."""
        block = self._items()
        score = block.trending.copy()
        if country or age_bucket:
            ctr = self.cohort_ctr(country, age_bucket)
            if ctr.any():
                lift = ctr / max(float(ctr[ctr > 0].mean()), 1e-9)
                score = score * lift[block.category_code]
        return self._top(block, score, k, exclude)

    def _with_fresh(
        self,
        picked: list[dict[str, Any]],
        k: int,
        country: str | None,
        age_bucket: str | None,
    ) -> list[dict[str, Any]]:
        """Reserve ``fresh_share`` of a cold-start list (at least one slot) for items first
        seen on the feature day, best trending first, replacing the list's weakest non-fresh
        entries. Trending ranks by volume, so a day-old item can never reach a new user on
        its own; without exploration slots new items would wait for a week of history."""
        block = self._block
        share = self.config.fresh_share
        if share <= 0 or not block.fresh.any():
            return picked
        want = max(1, math.ceil(k * share))
        have = [p for p in picked if self._is_fresh(p["item_id"])]
        for p in have:  # fresh on their own merit: say so too
            p["stages"] = [p["stages"][0], "fresh", *p["stages"][1:]]
        if len(have) >= want:
            return picked
        taken = {p["item_id"] for p in picked}
        score = np.where(block.fresh, block.trending, -np.inf)
        ids, scores = self._top(block, score, want - len(have), taken)
        if len(ids) == 0:
            return picked
        out = picked + [
            {"item_id": int(i), "score": float(s), "stages": ["trending", "fresh", "rules"]}
            for i, s in zip(ids.tolist(), scores.tolist(), strict=True)
        ]
        # over k: drop the weakest non-fresh entries (the list is in rank order)
        for j in range(len(picked) - 1, -1, -1):
            if len(out) <= k:
                break
            if not self._is_fresh(out[j]["item_id"]):
                del out[j]
        return out

    def _is_fresh(self, item_id: int) -> bool:
        pos, found = self._positions(self._block, np.asarray([item_id], np.int64))
        return bool(found[0] and self._block.fresh[pos[0]])

    def popularity(self, k: int, exclude: set[int]) -> tuple[np.ndarray, np.ndarray]:
        block = self._items()
        variant = self.policy.get("variant", "trailing_7d")
        score = block.engagements_28d if variant == "all_time" else block.engagements_7d
        return self._top(block, score.astype(np.float64), k, exclude)

    @staticmethod
    def _top(
        block: _ItemBlock, score: np.ndarray, k: int, exclude: set[int]
    ) -> tuple[np.ndarray, np.ndarray]:
        if len(block.ids) == 0:
            return np.zeros(0, np.int64), np.zeros(0)
        s = score.astype(np.float64).copy()
        if exclude:
            ex = np.fromiter(exclude, dtype=np.int64, count=len(exclude))
            s[np.isin(block.ids, ex)] = -np.inf
        n = min(k, int(np.isfinite(s).sum()))
        if n <= 0:
            return np.zeros(0, np.int64), np.zeros(0)
        cand = np.argpartition(-s, n - 1)[:n] if n < len(s) else np.arange(len(s))
        order = cand[np.lexsort((block.ids[cand], -s[cand]))]
        return block.ids[order], s[order]

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
        block = self._items()
        values = self.user_row(user_id)
        notes: list[str] = []
        seen: set[int] = set()
        if values is not None and exclude_seen:
            seen = {int(i) for i in (values.get("history_item_ids") or [])}
            seen |= {int(i) for i in (values.get("last_engagement_item_ids") or [])}
        if values is None:
            policy = COLD_START
            notes.append("user not in the online store: cold start (trending)")
            ids, scores = self.trending(4 * k, set(), country, age_bucket)
            picked = self._with_fresh(
                self._rules(ids, scores, None, k, ["trending"], notes), k, country, age_bucket
            )
        elif not self.model:
            policy = POPULARITY
            ids, scores = self.popularity(4 * k, seen)
            picked = self._rules(ids, scores, None, k, ["popularity"], notes)
        else:
            policy = MODEL
            n = min(self.config.candidates, self.index.size)  # type: ignore[union-attr]
            # ask for extra so that dropping seen items still leaves n (seen <= 100 ids)
            ids, retrieval = self.retrieve(user_id, values, min(self.index.size, n + len(seen)))  # type: ignore[union-attr]
            if seen:
                keep = ~np.isin(ids, np.fromiter(seen, np.int64, len(seen)))
                ids, retrieval = ids[keep], retrieval[keep]
            ids, retrieval = ids[:n], retrieval[:n]
            if len(ids):
                logits, found = self.rank(user_id, values, ids)
                if not found.all():
                    notes.append(
                        f"{int((~found).sum())} candidate(s) missing from the online store: default features"
                    )
                order = np.lexsort((ids, -logits))
                picked = self._rules(
                    ids[order], logits[order], retrieval[order], k, ["retrieval", "ranking"], notes
                )
            else:
                picked = []
        if len(picked) < k:  # fewer than k survived: backfill from trending
            have = {p["item_id"] for p in picked} | seen
            ids, scores = self.trending(k - len(picked), have, country, age_bucket)
            if len(ids):
                notes.append(f"backfilled {len(ids)} item(s) from trending")
            for i, s in zip(ids.tolist(), scores.tolist(), strict=True):
                picked.append({"item_id": int(i), "score": float(s), "stages": ["backfill"]})
        return Recommendation(int(user_id), policy, picked[:k], block.day, notes)

    def _rules(
        self,
        ids: np.ndarray,
        scores: np.ndarray,
        retrieval: np.ndarray | None,
        k: int,
        stages: list[str],
        notes: list[str],
    ) -> list[dict[str, Any]]:
        """Dedupe, cap per category (relaxed in score order only if needed to reach k).

        A walk in score order that stops at the k-th item taken (usually within a few dozen
        of the N), over plain lists: at this size that beats array code, whose per-call
        overhead would be paid on all N."""
        block = self._block
        pos, found = self._positions(block, ids)
        pos_, found_, scores_ = pos.tolist(), found.tolist(), scores.tolist()
        retrieval_ = retrieval.tolist() if retrieval is not None else None
        category = block.category
        cap = self.config.max_per_category
        taken: list[dict[str, Any]] = []
        overflow: list[dict[str, Any]] = []
        per_cat: dict[Any, int] = {}
        done: set[int] = set()
        for j, item in enumerate(ids.tolist()):
            if item in done:
                continue
            done.add(item)
            entry = {"item_id": item, "score": scores_[j]}
            if retrieval_ is not None:
                entry["retrieval_score"] = retrieval_[j]
            cat = (category[pos_[j]] if found_[j] else None) or UNKNOWN
            if cap and per_cat.get(cat, 0) >= cap:
                entry["stages"] = [*stages, "rules:category_cap_relaxed"]
                overflow.append(entry)
                continue
            per_cat[cat] = per_cat.get(cat, 0) + 1
            entry["stages"] = [*stages, "rules"]
            entry["category"] = cat
            taken.append(entry)
            if len(taken) == k:
                break
        if len(taken) < k and overflow:
            extra = overflow[: k - len(taken)]
            notes.append(f"category cap {cap} relaxed for {len(extra)} item(s)")
            taken.extend(extra)
        return taken

    def rank_request(self, user_id: int, item_ids: Sequence[int]) -> list[dict[str, Any]]:
        """``/rank``: the given candidates in ranker order (popularity order without a model;
        duplicates dropped)."""
        ids = np.asarray(list(dict.fromkeys(int(i) for i in item_ids)), dtype=np.int64)
        if len(ids) == 0:
            return []
        values = self.user_row(user_id)
        if self.model:
            scores, found = self.rank(user_id, values, ids)
            stage = "ranking"
        else:
            block = self._items()
            pos, found = self._positions(block, ids)
            scores = np.where(found, block.engagements_7d[pos], 0.0)
            stage = "popularity"
        order = np.lexsort((ids, -scores))
        return [
            {
                "item_id": int(ids[j]),
                "score": float(scores[j]),
                "stages": [stage] + ([] if found[j] else ["missing_features"]),
            }
            for j in order
        ]

    def info(self) -> dict[str, Any]:
        block = self._items()
        return {
            "policy": self.policy.get("policy"),
            "features_day": block.day,
            "items_in_memory": int(len(block.ids)),
            "index": None
            if self.index is None
            else {"size": self.index.size, **self.index.info.__dict__},
            "bundle": self.bundle.manifest.get("tag"),
            "candidates": self.config.candidates,
        }


def load(bundle_dir: str | Path, home: str | None = None, **kwargs: Any) -> Recommender:
    """A ``Recommender`` over the bundle in ``bundle_dir`` and the online store of ``home``
    (default: ``RECASSETS_HOME``)."""
    return Recommender(Bundle.load(bundle_dir), Paths.from_env(home), **kwargs)


__all__ = [
    "Bundle",
    "FunnelConfig",
    "Recommendation",
    "Recommender",
    "RequestError",
    "load",
    "pin_threads",
    "trending_score",
]
