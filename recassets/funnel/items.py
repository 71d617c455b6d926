"""The funnel's item side, in memory: the catalog as arrays, and the cohort CTRs of its
categories.

``OnlineFeatureReader`` holds the item view as arrays sorted by item id and reloads them when
a new feature day is materialized. ``Catalog`` turns each load into an ``ItemBlock``: the
columns the funnel reads (category, counters, the trending score, the fresh flag) and, when a
ranker serves, the ranker's item-only work over the whole catalog (``DCNv2.prepare_items``:
item features change once a day, so their lookups and projections happen at refresh, not per
request). It also memoizes, per feature day, each cohort's 28-day CTR and 7-day engagements by
category (one store read per category, the first time a cohort is seen that day), in an LRU of at most
``COHORT_CACHE_SIZE`` cohorts: the cohort's country and age bucket come from requests, so the
number of distinct keys is the client's to choose.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import torch
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recassets.featurestore import wire
from recassets.featurestore.online import FOUND, OnlineFeatureReader, OnlineStoreUnavailable
from recassets.featurestore.snapshot import cohort_id
from recassets.funnel.rules import UNKNOWN, trending_score
from recassets.models.ranking import DCNv2, PreparedItems
from recassets.training import data as D
from recassets.training.schema import ITEM_DENSE
from recassets.training.vocab import Vocabulary

# item_features names of the training columns (i_ctr_7d <- ctr_7d, i_trending <- trending)
ITEM_DENSE_SOURCE = tuple("trending" if c == "i_trending" else c[2:] for c in ITEM_DENSE)
FRESH_DAYS = 1.0  # item_features.age_days of an item first seen on the feature day
# Cohorts memoized per process: countries x age buckets of real users are a few hundred; the
# bound is for keys a client makes up (each costs C floats and one store read per category).
COHORT_CACHE_SIZE = 1024

# What a request reads of its cohort, per category: the ranker's cross counter and the taste
# the cohort source weighs trending by (``Catalog.cohort_ctr``, ``Catalog.cohort_engagements``).
COHORT_FEATURES = ("ctr_28d", "engagements_7d")


@dataclass
class ItemBlock:
    """The in-memory item view prepared for the funnel, one row per item the reader holds."""

    ids: np.ndarray  # (M,) sorted int64
    day: str | None
    category: np.ndarray  # (M,) object: str or None
    category_code: np.ndarray  # (M,) int64 index into categories (UNKNOWN for None)
    categories: list[str]
    rows: dict[str, np.ndarray]  # ranker vocabulary row per sparse item feature; -1 = null
    dense: np.ndarray  # (M, Di) float32 in ITEM_DENSE order
    engagements_7d: np.ndarray
    engagements_28d: np.ndarray
    trending: np.ndarray  # (M,) the cold-start score (see rules.trending_score)
    fresh: np.ndarray  # (M,) bool: first seen within the feature day (age_days <= 1)
    found: np.ndarray  # (M,) bool
    # the ranker's item-only work over the block (DCNv2.prepare_items); None without a ranker
    prepared: PreparedItems | None = None
    # (M,) each item's positives as the bundle's popularity counts them (``popularity_counts``)
    # for the variant ``positives_variant``; None: the bundle has none
    positives: np.ndarray | None = None
    positives_variant: str | None = None
    # variant -> (counts, their tie-broken order key), made once per block (``popularity``)
    _popularity: dict[str, tuple[np.ndarray, np.ndarray]] = field(
        init=False, default_factory=dict, repr=False, compare=False
    )

    def popularity(self, variant: str) -> tuple[np.ndarray, np.ndarray]:
        """(counts, order key) of the popularity policy ``variant``: the bundle's positives of
        that variant where it has them (``bento.popularity``: the order the gate scored), else
        the online store's 7-day engagements, or 28-day for "all_time" (a bento built before
        2026-12-06, and the model policy's fallback). The key breaks the online counters' ties
        (a quiet week leaves most items at 0) by the other window's count, and ``rules.top_k``
        then by the smaller id; the bundle's counts break theirs by the smaller id as the gate
        and ``recassets recommend`` do, and only the items nobody rated positively by the
        28-day count. Counts are whole numbers: a fraction below 1 orders within a tie and
        never across one. Made once per block: the popularity policy serves every request
        from it."""
        got = self._popularity.get(variant)
        if got is None:
            e7 = self.engagements_7d.astype(np.float64)
            e28 = self.engagements_28d.astype(np.float64)
            counts, other = (e28, e7) if variant == "all_time" else (e7, e28)
            tie = np.nan_to_num(np.maximum(other, 0.0))
            if self.positives is not None and variant == self.positives_variant:
                counts = self.positives
                tie = np.where(counts > 0, 0.0, np.nan_to_num(np.maximum(e28, 0.0)))
            key = counts + tie / (tie.max() + 1.0) if len(tie) else counts
            got = self._popularity[variant] = (counts, key)
        return got

    def popularity_of(self, item_ids: np.ndarray, variant: str) -> tuple[np.ndarray, np.ndarray]:
        """(N,) each item's count under the popularity policy ``variant`` (0 where the block
        lacks it; a block of no item, as before the first load, holds none) and whether the
        block holds it: ``/rank``'s order without a model."""
        pos, found = self.positions(item_ids)
        if not len(self.ids):
            return np.zeros(len(item_ids), np.float64), found
        return np.where(found, self.popularity(variant)[0][pos], 0.0), found

    def positions(self, item_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Rows of ``item_ids`` in the block and whether each is there (row 0 where not)."""
        if len(self.ids) == 0:
            return np.zeros(len(item_ids), np.int64), np.zeros(len(item_ids), bool)
        pos = np.minimum(np.searchsorted(self.ids, item_ids), len(self.ids) - 1)
        return pos, self.ids[pos] == item_ids

    def category_of(self, item_ids: np.ndarray) -> np.ndarray:
        """(N,) object: each item's category; None where the block has no such item or the
        item no category."""
        out = np.full(len(item_ids), None, dtype=object)
        pos, found = self.positions(item_ids)
        out[found] = self.category[pos[found]]
        return out

    def is_fresh(self, item_ids: np.ndarray) -> np.ndarray:
        """(N,) bool: the item is in the block and first seen on its feature day."""
        pos, found = self.positions(item_ids)
        return found & self.fresh[pos] if len(self.ids) else found


def item_kjt(rows: Mapping[str, np.ndarray], pos: np.ndarray) -> KeyedJaggedTensor:
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


def popularity_counts(path: Path | None) -> tuple[np.ndarray, np.ndarray, str] | None:
    """(item ids sorted, their positives, the variant) from a bundle's ``popularity.npz``
    (``bento.popularity.write_counts``; its sha256 is checked by ``Bundle.load``); None
    without one."""
    from recassets.bento.popularity import VARIANTS

    if path is None:
        return None
    try:
        with np.load(path) as f:  # allow_pickle stays off: plain arrays only
            variant = str(f["variant"]) if "variant" in f.files else "all_time"  # the first ones
            ids, counts = f["item_ids"].astype(np.int64), f["counts"].astype(np.float64)
    except (KeyError, ValueError, OSError) as e:
        raise ValueError(f"popularity counts {path}: {type(e).__name__}: {e}") from None
    # what the order served rests on: unsorted ids misplaced counts, a NaN dropped an item
    why = ("its arrays are not 1-D of one length" if ids.ndim != 1 or counts.shape != ids.shape
           else "its item ids are not sorted and distinct" if np.any(np.diff(ids) <= 0)
           else "a count is negative or not finite" if not np.all(np.isfinite(counts) & (counts >= 0))
           else f"its variant {variant!r} is none of {', '.join(VARIANTS)}"
           if variant not in VARIANTS else None)  # fmt: skip
    if why:
        raise ValueError(f"popularity counts {path}: {why}; rebuild the bento")
    return ids, counts, variant


def build_block(
    reader: OnlineFeatureReader,
    ranker: DCNv2 | None = None,
    vocab: Vocabulary | None = None,
    device: torch.device | None = None,
    counts: tuple[np.ndarray, np.ndarray, str] | None = None,
) -> ItemBlock:
    """The block of the reader's current item load; with a ``ranker`` (and its ``vocab``),
    the items' vocabulary rows and the ranker's prepared item half too; with ``counts``
    (``popularity_counts``), each item's positives (0 for an item not counted)."""
    state = reader._items
    ids = state.ids
    m = len(ids)
    got = reader.items(ids) if m else None

    def col(name: str, fill: float = 0.0) -> np.ndarray:
        if got is None or name not in got:
            return np.full(m, fill, dtype=np.float64)
        return np.nan_to_num(np.asarray(got[name], dtype=np.float64), nan=fill)

    category = np.asarray(got["category"], dtype=object) if got is not None else np.empty(0, object)
    names = sorted({c for c in category if c is not None} | {UNKNOWN})
    code = {c: i for i, c in enumerate(names)}
    category_code = np.asarray([code[c or UNKNOWN] for c in category], dtype=np.int64)
    dense = np.stack([col(c) for c in ITEM_DENSE_SOURCE], axis=1).astype(np.float32)
    e7, e28 = col("engagements_7d"), col("engagements_28d")
    rows: dict[str, np.ndarray] = {}
    prepared = None
    if ranker is not None and got is not None:
        assert vocab is not None and device is not None  # the ranker comes with its device
        rows = _vocab_rows(ids, category, got["creator"], vocab)
        with torch.inference_mode():
            pooled = ranker.embeddings(item_kjt(rows, np.arange(m)).to(device))
            item_rows = torch.from_numpy(np.asarray(rows["item_id"], np.int64)).to(device)
            prepared = ranker.prepare_items(pooled, torch.from_numpy(dense).to(device), item_rows)
    return ItemBlock(
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
        positives=None if counts is None else _aligned(ids, counts[0], counts[1]),
        positives_variant=None if counts is None else counts[2],
    )


def _aligned(ids: np.ndarray, known: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """(M,) the count of each of ``ids`` among ``known`` (sorted) and ``counts``; 0 if absent."""
    if len(known) == 0:
        return np.zeros(len(ids), np.float64)
    pos = np.minimum(np.searchsorted(known, ids), len(known) - 1)
    return np.where(known[pos] == ids, counts[pos], 0.0)


def _vocab_rows(
    ids: np.ndarray, category: np.ndarray, creator: Any, vocab: Vocabulary
) -> dict[str, np.ndarray]:
    """The ranker's vocabulary row of each item feature of each item (-1 where null), as
    ``data.item_features`` would look them up."""
    m = len(ids)
    table = pa.table(
        {
            "item_id": pa.array(ids, pa.int64()),
            "category": pa.array(category.tolist(), pa.string()),
            "creator": pa.array(list(creator), pa.string()),
        }
    )
    rows: dict[str, np.ndarray] = {}
    for feature in D.ITEM_FEATURES:
        column = table[feature].combine_chunks()
        valid = column.is_valid().to_numpy(zero_copy_only=False)
        r = np.full(m, -1, dtype=np.int64)
        if valid.any():
            r[valid] = D._lookup(
                vocab[D.FEATURE_VOCAB[feature]], column.filter(pa.array(valid)), False
            )
        rows[feature] = r
    return rows


class Catalog:
    """The reader's item view as an ``ItemBlock``, rebuilt when the reader loads a newer
    feature day, and the cohort CTRs by category of the current day."""

    def __init__(
        self,
        reader: OnlineFeatureReader,
        ranker: DCNv2 | None = None,
        vocab: Vocabulary | None = None,
        device: torch.device | None = None,
        counts: Path | None = None,
    ) -> None:
        """``counts``: the bundle's ``popularity.npz`` (``popularity_counts``), if any."""
        self.reader = reader
        self._ranker, self._vocab, self._device = ranker, vocab, device
        self._counts = popularity_counts(counts)
        self._lock = threading.Lock()
        self._cohorts: OrderedDict[tuple[Any, ...], np.ndarray] = OrderedDict()
        self.cohort_cache_size = COHORT_CACHE_SIZE
        self.last = self._build()  # the block last built, without a look for a newer day

    def _build(self) -> ItemBlock:
        return build_block(self.reader, self._ranker, self._vocab, self._device, self._counts)

    def block(self) -> ItemBlock:
        """The current block; first lets the reader look for a newer feature day (at most
        once per its check interval) and rebuilds the block on a new load."""
        if self.reader.maybe_refresh() or self.last.ids is not self.reader._items.ids:
            with self._lock:
                if self.last.ids is not self.reader._items.ids:
                    self.last = self._build()
                    self._cohorts = OrderedDict()
        return self.last

    def cohort_ctr(
        self, block: ItemBlock, country: str | None, age_bucket: str | None
    ) -> np.ndarray:
        """(C,) the cohort's 28-day CTR per category of ``block`` (0 where the store has
        none), as ``training_examples.c_ctr_28d`` joins it (nulls read as 'unknown')."""
        return self._cohort(block, country, age_bucket)[0]

    def cohort_engagements(
        self, block: ItemBlock, country: str | None, age_bucket: str | None
    ) -> np.ndarray:
        """(C,) the cohort's engagements of the last 7 days per category of ``block`` (0 where
        the store has none): its taste, what the cohort source weighs trending by."""
        return self._cohort(block, country, age_bucket)[1]

    def _cohort(self, block: ItemBlock, country: str | None, age_bucket: str | None) -> np.ndarray:
        """(2, C): the cohort's ``COHORT_FEATURES`` per category, read once per cohort and day
        (one store read per category) and kept in the LRU."""
        key = (country or UNKNOWN, age_bucket or UNKNOWN, block.day)
        cache = self._cohorts
        got = cache.get(key)
        if got is not None:
            try:
                cache.move_to_end(key)
            except KeyError:  # evicted by a concurrent request meanwhile
                pass
            return got
        got = np.zeros((len(COHORT_FEATURES), len(block.categories)), dtype=np.float32)
        for i, cat in enumerate(block.categories):
            try:
                raw = self.reader.read_one(
                    "cohort_daily_features",
                    "cohort_id",
                    cohort_id(key[0], key[1], cat),
                    list(COHORT_FEATURES),
                )
            except OnlineStoreUnavailable:
                # no CTRs while the store is down (trending unweighted); not memoized, so
                # the cohort reads again once the store is back
                return np.zeros_like(got)
            for f, name in enumerate(COHORT_FEATURES):
                if raw and raw.get(name) is not None:
                    value = wire.decode_value(raw[name])
                    got[f, i] = 0.0 if value is None or value != value else float(value)
        cache[key] = got
        while len(cache) > self.cohort_cache_size:
            try:
                cache.popitem(last=False)
            except KeyError:  # emptied by a concurrent request
                break
        return got


__all__ = ["COHORT_CACHE_SIZE", "FRESH_DAYS", "Catalog", "ItemBlock", "build_block", "item_kjt"]
