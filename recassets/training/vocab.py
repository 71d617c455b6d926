"""Collisionless vocabularies: raw ids and categorical strings to embedding rows.

After Monolith (Liu et al. 2022, "Monolith: Real Time Recommendation System With Collisionless
Embedding Table", arXiv:2209.07663): a hashed table makes unrelated ids share a row, which
hurts most on the long tail where ids arrive and leave every day. Monolith gives every id it
keeps its own row, keeps only ids seen often enough (frequency filtering) and drops ids not seen
for a while (expiry). Here the table has a fixed size, so that the embedding table behind it
never changes shape (and a checkpoint stays loadable into the same module):

    rows [0, K)              K out-of-vocabulary buckets: ids without a row of their own hash here
    rows [K, K + capacity)   one row per admitted id (a "slot")

- **Admission**: an id gets a slot once it was counted ``min_count`` times in total (counts add
  up across updates while it waits), as long as a slot is free. Candidates compete for the free
  slots by count, ties broken by key, so that admission is deterministic.
- **Expiry**: an id not seen for more than ``ttl`` steps loses its slot (Monolith's expire time);
  a waiting candidate not seen for ``ttl`` steps is forgotten.
- **Recycling**: an expired id's slot goes to the next admitted id. Its row still holds the old
  id's trained weights (and optimizer state), so ``update`` reports the recycled rows and the
  trainer must re-initialize them before training on the new owner.

The unit of ``now_step`` is the caller's: the trainer updates once per daily partition with the
day's ordinal, so ``ttl`` counts days.

State is plain tensors, lists of strings and numbers (``state_dict``), so a checkpoint holding it
loads with ``torch.load(weights_only=True)``. Lookups are vectorized with numpy
(``searchsorted`` over the admitted keys, sorted), for int64 ids and for strings alike.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import torch

KeyType = Literal["int64", "string"]
Counts = Mapping[Any, int] | tuple[Any, Any]

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass(frozen=True)
class FeatureVocabConfig:
    """The shape of one feature's vocabulary.

    ``capacity`` rows are owned by admitted ids, ``num_oov_buckets`` rows are shared by the rest
    (table size: ``capacity + num_oov_buckets``). ``ttl=None`` never expires ids (categoricals
    with a small, stable domain).
    """

    key_type: KeyType = "int64"
    capacity: int = 100_000
    num_oov_buckets: int = 1_000
    min_count: int = 1
    ttl: int | None = None
    max_pending: int | None = None  # cap on waiting candidates; default 4 x capacity

    def __post_init__(self) -> None:
        if self.key_type not in ("int64", "string"):
            raise ValueError(f"key_type must be 'int64' or 'string', not {self.key_type!r}")
        if self.capacity < 0 or self.num_oov_buckets < 1 or self.min_count < 1:
            raise ValueError("need capacity >= 0, num_oov_buckets >= 1 and min_count >= 1")
        if self.ttl is not None and self.ttl < 0:
            raise ValueError("ttl must be >= 0 or None")

    @property
    def num_rows(self) -> int:
        return self.capacity + self.num_oov_buckets

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class VocabUpdate:
    """What one ``update`` changed, in table rows (absolute: OOV buckets included)."""

    admitted: np.ndarray  # rows given to newly admitted ids
    evicted: np.ndarray  # rows whose id expired (now free, or already re-given)
    recycled: np.ndarray  # admitted rows that had an earlier owner: re-initialize them

    def __repr__(self) -> str:
        return (
            f"VocabUpdate(admitted={len(self.admitted)}, evicted={len(self.evicted)}, "
            f"recycled={len(self.recycled)})"
        )


# --- hashing ------------------------------------------------------------------------------------


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer, vectorized over uint64 (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return (z ^ (z >> np.uint64(31))) & _MASK64


def _string_fingerprints(keys: np.ndarray) -> np.ndarray:
    """A stable 64-bit fingerprint per string (blake2b; Python's ``hash`` is salted per process).

    Hashes each distinct value once: categorical batches repeat few distinct strings.
    """
    if len(keys) == 0:
        return np.zeros(0, dtype=np.uint64)
    uniq, inverse = np.unique(keys, return_inverse=True)
    fps = np.fromiter(
        (
            int.from_bytes(hashlib.blake2b(str(k).encode(), digest_size=8).digest(), "little")
            for k in uniq
        ),
        dtype=np.uint64,
        count=len(uniq),
    )
    return fps[inverse.reshape(-1)]


# --- one feature --------------------------------------------------------------------------------


class FeatureVocab:
    """The vocabulary of one feature (see the module docstring)."""

    def __init__(self, name: str, config: FeatureVocabConfig | None = None) -> None:
        self.name = name
        self.config = config or FeatureVocabConfig()
        cap = self.config.capacity
        self._slot_keys = self._empty_keys(cap)  # key owning each slot (junk where free)
        self._occupied = np.zeros(cap, dtype=bool)
        self._ever_used = np.zeros(cap, dtype=bool)  # slot had an owner once: reuse = recycle
        self._last_seen = np.zeros(cap, dtype=np.int64)
        self._counts = np.zeros(cap, dtype=np.int64)  # sightings since admission
        self._pending_keys = self._empty_keys(0)  # candidates waiting for min_count (sorted)
        self._pending_counts = np.zeros(0, dtype=np.int64)
        self._pending_last_seen = np.zeros(0, dtype=np.int64)
        self._last_step: int | None = None
        self.reset_stats()
        self._reindex()

    # -- properties --

    @property
    def num_rows(self) -> int:
        """Rows of the embedding table behind this vocabulary (fixed)."""
        return self.config.num_rows

    @property
    def num_oov_buckets(self) -> int:
        return self.config.num_oov_buckets

    def __len__(self) -> int:
        """Ids that own a row."""
        return int(self._occupied.sum())

    @property
    def num_pending(self) -> int:
        return len(self._pending_keys)

    def keys(self) -> np.ndarray:
        """Admitted keys, in row order."""
        return self._slot_keys[self._occupied]

    def rows(self) -> np.ndarray:
        """The rows of ``keys()``."""
        return np.flatnonzero(self._occupied).astype(np.int64) + self.num_oov_buckets

    def __contains__(self, key: Any) -> bool:
        return bool(self.lookup([key], record=False)[0] >= self.num_oov_buckets)

    # -- keys --

    def _empty_keys(self, n: int) -> np.ndarray:
        return (
            np.zeros(n, dtype=np.int64)
            if self.config.key_type == "int64"
            else np.full(n, "", dtype=np.str_)
        )

    def _as_keys(self, values: Any) -> np.ndarray:
        """Values as a 1-d key array: int64, or numpy unicode for strings. No nulls allowed."""
        if hasattr(values, "to_numpy") and not isinstance(values, np.ndarray):  # pyarrow / pandas
            if getattr(values, "null_count", 0):
                raise ValueError(f"{self.name}: null values have no row; drop them first")
            values = (
                values.to_numpy(zero_copy_only=False) if _is_arrow(values) else values.to_numpy()
            )
        arr = np.asarray(values)
        if arr.ndim != 1:
            arr = arr.reshape(-1)
        if self.config.key_type == "int64":
            if arr.dtype.kind not in "iu":
                if arr.size == 0:
                    return arr.astype(np.int64)
                raise TypeError(f"{self.name}: int64 keys expected, got {arr.dtype}")
            return arr.astype(np.int64, copy=False)
        if arr.dtype.kind == "U":
            return arr
        if arr.dtype.kind == "O":
            if any(v is None for v in arr):
                raise ValueError(f"{self.name}: null values have no row; drop them first")
            return arr.astype(np.str_)
        if arr.size == 0:
            return arr.astype(np.str_)
        raise TypeError(f"{self.name}: string keys expected, got {arr.dtype}")

    def _fingerprints(self, keys: np.ndarray) -> np.ndarray:
        """A 64-bit identity per key (uint64): the id itself for int64, blake2b for strings."""
        if self.config.key_type == "int64":
            return keys.view(np.uint64)
        return _string_fingerprints(keys)

    def oov_buckets(self, values: Any) -> np.ndarray:
        """The OOV bucket each value hashes to (whether or not it owns a row)."""
        keys = self._as_keys(values)
        return self._buckets(self._fingerprints(keys))

    def _buckets(self, fps: np.ndarray) -> np.ndarray:
        return (_splitmix64(fps) % np.uint64(self.num_oov_buckets)).astype(np.int64)

    def _reindex(self) -> None:
        slots = np.flatnonzero(self._occupied)
        keys = self._slot_keys[slots]
        order = np.argsort(keys, kind="stable")
        self._index_keys = keys[order]
        self._index_rows = slots[order].astype(np.int64) + self.num_oov_buckets

    def _find(self, keys: np.ndarray) -> np.ndarray:
        """Row of each key, or -1."""
        n = len(self._index_keys)
        if n == 0 or len(keys) == 0:
            return np.full(len(keys), -1, dtype=np.int64)
        pos = np.searchsorted(self._index_keys, keys)
        pos_c = np.minimum(pos, n - 1)
        found = self._index_keys[pos_c] == keys
        return np.where(found, self._index_rows[pos_c], -1)

    # -- lookup --

    def lookup(self, values: Any, *, record: bool = True, weights: Any = None) -> np.ndarray:
        """Rows of ``values`` (1-d, int64 ids or strings, no nulls): the id's own row when
        admitted, else its OOV bucket. ``record`` counts the lookups into ``stats()``;
        ``weights`` (occurrences per value, for distinct values looked up once) scales that count."""
        keys = self._as_keys(values)
        rows = self._find(keys)
        miss = rows < 0
        if miss.any():
            fps = self._fingerprints(keys[miss])
            buckets = self._buckets(fps)
            rows[miss] = buckets
            if record:
                self._record_oov(buckets, fps)
        if record:
            w = (
                np.ones(len(keys), dtype=np.int64)
                if weights is None
                else np.asarray(weights, dtype=np.int64)
            )
            self._lookups += int(w.sum())
            self._oov_lookups += int(w[miss].sum())
        return rows

    def _record_oov(self, buckets: np.ndarray, fps: np.ndarray) -> None:
        """Track, per OOV bucket, one owner fingerprint and whether another id arrived since."""
        pairs = np.unique(np.stack([buckets.astype(np.uint64), fps]), axis=1)
        b, fp = pairs[0].astype(np.int64), pairs[1]
        fresh = ~self._bucket_used[b]
        if fresh.any():
            # the first (smallest) fingerprint of each fresh bucket becomes its owner
            fb, first = np.unique(b[fresh], return_index=True)
            self._bucket_fp[fb] = fp[fresh][first]
            self._bucket_used[fb] = True
        shared = fp != self._bucket_fp[b]
        self._bucket_collided[b[shared]] = True

    def reset_stats(self) -> None:
        k = self.config.num_oov_buckets
        self._lookups = 0
        self._oov_lookups = 0
        self._bucket_fp = np.zeros(k, dtype=np.uint64)
        self._bucket_used = np.zeros(k, dtype=bool)
        self._bucket_collided = np.zeros(k, dtype=bool)

    def stats(self) -> dict[str, float | int]:
        """Lookups since the last ``reset_stats``: ``oov_rate`` is the fraction hashed to OOV
        buckets, ``collision_rate`` the fraction of OOV buckets hit that several distinct ids
        shared (admitted ids never collide)."""
        used = int(self._bucket_used.sum())
        collided = int(self._bucket_collided.sum())
        return {
            "size": len(self),
            "capacity": self.config.capacity,
            "pending": self.num_pending,
            "lookups": self._lookups,
            "oov_lookups": self._oov_lookups,
            "oov_rate": self._oov_lookups / self._lookups if self._lookups else 0.0,
            "oov_buckets_used": used,
            "oov_buckets_shared": collided,
            "collision_rate": collided / used if used else 0.0,
        }

    # -- update --

    def _normalize_counts(self, counts: Counts) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(counts, Mapping):
            keys = self._as_keys(list(counts.keys()))
            cnts = np.fromiter(counts.values(), dtype=np.int64, count=len(counts))
        else:
            raw_keys, raw_counts = counts
            keys = self._as_keys(raw_keys)
            cnts = np.asarray(
                raw_counts.to_numpy(zero_copy_only=False) if _is_arrow(raw_counts) else raw_counts,
                dtype=np.int64,
            ).reshape(-1)
        if len(keys) != len(cnts):
            raise ValueError(f"{self.name}: {len(keys)} keys but {len(cnts)} counts")
        if (cnts < 0).any():
            raise ValueError(f"{self.name}: negative counts")
        uniq, inverse = np.unique(keys, return_inverse=True)
        summed = np.zeros(len(uniq), dtype=np.int64)
        np.add.at(summed, inverse.reshape(-1), cnts)
        keep = summed > 0
        return uniq[keep], summed[keep]

    def update(self, counts: Counts, now_step: int) -> VocabUpdate:
        """Count sightings at time ``now_step`` and admit, expire and recycle rows.

        ``counts``: ``{key: count}`` or ``(keys, counts)`` arrays (repeated keys add up).
        Steps must not go backwards.
        """
        now = int(now_step)
        if self._last_step is not None and now < self._last_step:
            raise ValueError(
                f"{self.name}: now_step {now} is before the last update {self._last_step}"
            )
        self._last_step = now
        keys, cnts = self._normalize_counts(counts)
        off = self.num_oov_buckets
        empty = np.zeros(0, dtype=np.int64)

        # 1. sightings of admitted ids
        rows = self._find(keys)
        hit = rows >= 0
        slots = rows[hit] - off
        self._last_seen[slots] = now
        self._counts[slots] += cnts[hit]

        # 2. the rest wait as candidates, their counts adding up
        miss_keys, miss_counts = keys[~hit], cnts[~hit]
        if len(miss_keys):
            all_keys = np.concatenate([self._pending_keys, miss_keys])
            uniq, inverse = np.unique(all_keys, return_inverse=True)
            inverse = inverse.reshape(-1)
            pc = np.zeros(len(uniq), dtype=np.int64)
            np.add.at(pc, inverse, np.concatenate([self._pending_counts, miss_counts]))
            pl = np.full(len(uniq), np.iinfo(np.int64).min, dtype=np.int64)
            np.maximum.at(
                pl, inverse, np.concatenate([self._pending_last_seen, np.full(len(miss_keys), now)])
            )
            self._pending_keys, self._pending_counts, self._pending_last_seen = uniq, pc, pl

        # 3. expiry: admitted ids and candidates not seen for more than ttl steps
        evicted = empty
        ttl = self.config.ttl
        if ttl is not None:
            stale = self._occupied & (now - self._last_seen > ttl)
            evicted = np.flatnonzero(stale).astype(np.int64)
            self._occupied[evicted] = False
            self._counts[evicted] = 0
            fresh = now - self._pending_last_seen <= ttl
            self._pending_keys = self._pending_keys[fresh]
            self._pending_counts = self._pending_counts[fresh]
            self._pending_last_seen = self._pending_last_seen[fresh]

        # 4. admission: eligible candidates by count (desc), then key, into free slots (asc)
        admitted_slots = empty
        eligible = np.flatnonzero(self._pending_counts >= self.config.min_count)
        free = np.flatnonzero(~self._occupied)
        if len(eligible) and len(free):
            order = np.lexsort((self._pending_keys[eligible], -self._pending_counts[eligible]))
            chosen = eligible[order[: len(free)]]
            admitted_slots = free[: len(chosen)].astype(np.int64)
            recycled_slots = admitted_slots[self._ever_used[admitted_slots]]
            new_keys = self._pending_keys[chosen]
            if self._slot_keys.dtype.kind == "U":  # widen the fixed-width strings if needed
                self._slot_keys = self._slot_keys.astype(np.result_type(self._slot_keys, new_keys))
            self._slot_keys[admitted_slots] = new_keys
            self._occupied[admitted_slots] = True
            self._ever_used[admitted_slots] = True
            self._last_seen[admitted_slots] = self._pending_last_seen[chosen]
            self._counts[admitted_slots] = self._pending_counts[chosen]
            keep = np.ones(len(self._pending_keys), dtype=bool)
            keep[chosen] = False
            self._pending_keys = self._pending_keys[keep]
            self._pending_counts = self._pending_counts[keep]
            self._pending_last_seen = self._pending_last_seen[keep]
        else:
            recycled_slots = empty

        # 5. bound the waiting list: keep the most frequent, then most recent candidates
        cap = (
            self.config.max_pending
            if self.config.max_pending is not None
            else 4 * self.config.capacity
        )
        if len(self._pending_keys) > cap:
            order = np.lexsort(
                (self._pending_keys, -self._pending_last_seen, -self._pending_counts)
            )
            keep_idx = np.sort(order[:cap])
            self._pending_keys = self._pending_keys[keep_idx]
            self._pending_counts = self._pending_counts[keep_idx]
            self._pending_last_seen = self._pending_last_seen[keep_idx]

        self._reindex()
        return VocabUpdate(
            admitted=admitted_slots + off, evicted=evicted + off, recycled=recycled_slots + off
        )

    # -- persistence --

    def _keys_state(self, keys: np.ndarray) -> torch.Tensor | list[str]:
        if self.config.key_type == "int64":
            return torch.from_numpy(keys.astype(np.int64, copy=True))
        return [str(k) for k in keys]

    def _keys_from_state(self, value: Any) -> np.ndarray:
        if self.config.key_type == "int64":
            return np.asarray(
                value.numpy() if isinstance(value, torch.Tensor) else value, dtype=np.int64
            ).copy()
        return np.asarray(list(value), dtype=np.str_) if len(value) else np.zeros(0, dtype=np.str_)

    def state_dict(self) -> dict[str, Any]:
        """Plain tensors, lists and numbers: loads with ``torch.load(weights_only=True)``."""
        t = torch.from_numpy
        return {
            "name": self.name,
            "config": self.config.to_dict(),
            "slot_keys": self._keys_state(self._slot_keys),
            "occupied": t(self._occupied.copy()),
            "ever_used": t(self._ever_used.copy()),
            "last_seen": t(self._last_seen.copy()),
            "counts": t(self._counts.copy()),
            "pending_keys": self._keys_state(self._pending_keys),
            "pending_counts": t(self._pending_counts.copy()),
            "pending_last_seen": t(self._pending_last_seen.copy()),
            "last_step": self._last_step,
            "stats": {
                "lookups": self._lookups,
                "oov_lookups": self._oov_lookups,
                "bucket_fp": t(self._bucket_fp.view(np.int64).copy()),
                "bucket_used": t(self._bucket_used.copy()),
                "bucket_collided": t(self._bucket_collided.copy()),
            },
        }

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> FeatureVocab:
        vocab = cls(state["name"], FeatureVocabConfig(**state["config"]))
        vocab._slot_keys = vocab._keys_from_state(state["slot_keys"])
        vocab._occupied = state["occupied"].numpy().astype(bool).copy()
        vocab._ever_used = state["ever_used"].numpy().astype(bool).copy()
        vocab._last_seen = state["last_seen"].numpy().astype(np.int64).copy()
        vocab._counts = state["counts"].numpy().astype(np.int64).copy()
        vocab._pending_keys = vocab._keys_from_state(state["pending_keys"])
        vocab._pending_counts = state["pending_counts"].numpy().astype(np.int64).copy()
        vocab._pending_last_seen = state["pending_last_seen"].numpy().astype(np.int64).copy()
        vocab._last_step = state["last_step"]
        stats = state["stats"]
        vocab._lookups = int(stats["lookups"])
        vocab._oov_lookups = int(stats["oov_lookups"])
        vocab._bucket_fp = stats["bucket_fp"].numpy().astype(np.int64).view(np.uint64).copy()
        vocab._bucket_used = stats["bucket_used"].numpy().astype(bool).copy()
        vocab._bucket_collided = stats["bucket_collided"].numpy().astype(bool).copy()
        vocab._reindex()
        return vocab


def _is_arrow(values: Any) -> bool:
    return type(values).__module__.startswith("pyarrow")


# --- all features -------------------------------------------------------------------------------


class Vocabulary:
    """One ``FeatureVocab`` per vocabulary name (``user_id``, ``item_id``, ``country``, ...).

    Several model features may share one vocabulary (``history_item_ids`` looks up through
    ``item_id``): the mapping from features to vocabularies is the data layer's.
    """

    def __init__(self, features: Mapping[str, FeatureVocab]) -> None:
        self.features: dict[str, FeatureVocab] = dict(features)

    @classmethod
    def from_configs(cls, configs: Mapping[str, FeatureVocabConfig]) -> Vocabulary:
        return cls({name: FeatureVocab(name, cfg) for name, cfg in configs.items()})

    def __getitem__(self, name: str) -> FeatureVocab:
        return self.features[name]

    def __contains__(self, name: str) -> bool:
        return name in self.features

    def __iter__(self):
        return iter(self.features)

    def names(self) -> list[str]:
        return list(self.features)

    def configs(self) -> dict[str, FeatureVocabConfig]:
        return {name: v.config for name, v in self.features.items()}

    def num_rows(self) -> dict[str, int]:
        return {name: v.num_rows for name, v in self.features.items()}

    def lookup(self, name: str, values: Any, *, record: bool = True) -> np.ndarray:
        return self.features[name].lookup(values, record=record)

    def update(self, counts: Mapping[str, Counts], now_step: int) -> dict[str, VocabUpdate]:
        """Update each named vocabulary (see ``FeatureVocab.update``); names absent from
        ``counts`` still age (expiry runs with no sightings)."""
        unknown = set(counts) - set(self.features)
        if unknown:
            raise KeyError(f"no vocabulary for {sorted(unknown)}")
        return {name: v.update(counts.get(name, {}), now_step) for name, v in self.features.items()}

    def stats(self) -> dict[str, dict[str, float | int]]:
        return {name: v.stats() for name, v in self.features.items()}

    def reset_stats(self) -> None:
        for v in self.features.values():
            v.reset_stats()

    def state_dict(self) -> dict[str, Any]:
        return {"features": {name: v.state_dict() for name, v in self.features.items()}}

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Any]) -> Vocabulary:
        return cls({name: FeatureVocab.from_state_dict(s) for name, s in state["features"].items()})


def count_values(values: Iterable[Any] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(unique keys, counts)`` of raw occurrences, for ``update``."""
    arr = np.asarray(values if isinstance(values, np.ndarray) else list(values))
    uniq, counts = np.unique(arr, return_counts=True)
    return uniq, counts.astype(np.int64)


__all__: Sequence[str] = (
    "Counts",
    "FeatureVocab",
    "FeatureVocabConfig",
    "VocabUpdate",
    "Vocabulary",
    "count_values",
)
