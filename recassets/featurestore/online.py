"""The serving read path: Feast's online values without Feast's per-request overhead.

``OnlineFeatureReader`` reads the same online store that ``materialize_day`` fills (SQLite
or Redis, chosen as ``feature_store.yaml`` is) in Feast's own encodings (``wire.py``):

- item features are held in-process as NumPy arrays sorted by item id, loaded from the
  online store once and reloaded when ``materialized.json`` (the marker ``materialize_day``
  writes after loading a day) changes. Ranking reads hundreds of items per request; a gather
  from arrays costs microseconds where a store round trip per item costs milliseconds.
- user features are read fresh per request: one point read of the user's key.

Values equal what ``FeatureStore.get_online_features(...).to_dict()`` returns for the same
keys (tested), and ``import feast`` never happens here: a serving process starts in well
under a second instead of the seconds Feast takes to import torch.

A store that fails (Redis down, the SQLite file missing, replaced, or locked) raises
``OnlineStoreUnavailable`` from ``user``; ``StoreHealth`` (``reader.health``) remembers the
last failure until a read succeeds again, and an item reload that fails keeps the arrays in
memory and is retried at the next check. Nothing is cached about the failure itself: the
next read goes to the store, so serving recovers by itself when the store is back. A SQLite
file deleted under the reader fails every read (before, the open connection went on reading
the deleted file); a file replaced (a rebuild) is reopened, and its items reloaded, at the next
check (``backends._SqliteBackend``).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recassets.featurestore import config as cfg
from recassets.featurestore import wire
from recassets.featurestore.backends import (  # re-exported: callers import them from here
    REDIS_TIMEOUT_S,
    SQLITE_BUSY_TIMEOUT_S,
    OnlineStoreUnavailable,
    _backend,
)
from recassets.paths import Paths

__all__ = [
    "FOUND",
    "REDIS_TIMEOUT_S",
    "SQLITE_BUSY_TIMEOUT_S",
    "OnlineFeatureReader",
    "OnlineStoreUnavailable",
    "StoreHealth",
]

log = logging.getLogger(__name__)
USER_VIEW, ITEM_VIEW = "user_daily_features", "item_daily_features"
FOUND = "found"  # the key of items()'s boolean mask: False where the store has no such item

# Feast value type -> (array dtype, fill for a missing item) for scalar features.
_SCALAR_ARRAYS = {
    "INT64": (np.int64, 0),
    "INT32": (np.int32, 0),
    "DOUBLE": (np.float64, np.nan),
    "FLOAT": (np.float32, np.nan),
}
# List features of one fixed length become a 2-D array (n, D); else an object array of lists.
_LIST_ARRAYS = {
    "FLOAT_LIST": (np.float32, np.nan),
    "DOUBLE_LIST": (np.float64, np.nan),
    "INT64_LIST": (np.int64, 0),
}


class StoreHealth:
    """The outcome of the last reads of the store: ``error`` is None while it answers, else
    what the last failed read raised (until a read succeeds); ``failures`` counts them all."""

    def __init__(self) -> None:
        self.error: str | None = None
        self.since: float | None = None  # time.time() of the first failure of this outage
        self.failures = 0

    def ok(self) -> None:
        self.error = self.since = None

    def failed(self, error: BaseException) -> None:
        self.failures += 1
        if self.since is None:
            self.since = time.time()
        self.error = str(error)

    @property
    def degraded(self) -> bool:
        return self.error is not None


@dataclass(frozen=True)
class _Items:
    """One immutable load of the item view: ``columns[name][i]`` is item ``ids[i]``; each
    column has one extra last row, the value returned for unknown ids."""

    ids: np.ndarray  # sorted int64
    columns: dict[str, np.ndarray]
    day: str | None
    marker: tuple | None
    unfinished: str | None = None  # the marker says a materialization began and never ended


class OnlineFeatureReader:
    """Read user and item features for serving.

    ``service``: read the features this Feast feature service takes of the user and item
    views (``"ranking_v1"``, ``"retrieval_v1"``); None reads every feature of both views.
    ``check_interval_s``: how often (at most) a request looks at the marker for a newer
    materialization; the reload itself happens in the request that sees the change.
    """

    def __init__(
        self,
        paths: Paths,
        service: str | None = None,
        redis_url: str | None = None,
        check_interval_s: float = 1.0,
        catalog: Path | None = None,
    ) -> None:
        """``catalog``: the Feast catalog to read by (a bundle's, which its models were built
        with), else the home's: a serving pod has a bundle and a Redis store but no home."""
        found = catalog if catalog is not None and catalog.is_file() else cfg.catalog_path(paths)
        read = cfg.read_json(found)
        if read is None:
            raise FileNotFoundError(
                f"no Feast catalog at {found}: the feature store has not been applied; "
                "materialize the feature_store asset (or run materialize_day) first"
            )
        self.paths = paths
        self.project = read["project"]
        self.settings = cfg.online_store_settings(paths, redis_url)
        self.check_interval_s = check_interval_s
        views = read["views"]
        if service is not None and service not in read["services"]:
            raise ValueError(
                f"unknown feature service {service!r}; known: {sorted(read['services'])}"
            )

        def chosen(view: str) -> list[str]:
            names = list(views[view]["features"])
            if service is None:
                return names
            return read["services"][service].get(view, [])

        self.user_key = views[USER_VIEW]["join_key"]
        self.item_key = views[ITEM_VIEW]["join_key"]
        self.user_features = chosen(USER_VIEW)
        self.item_features = chosen(ITEM_VIEW)
        self._item_types = {f: views[ITEM_VIEW]["features"][f] for f in self.item_features}
        self._backend = _backend(self.settings, self.project)
        self._lock = threading.Lock()
        self._next_check = 0.0
        self.health = StoreHealth()
        self.marker_error: str | None = None  # a damaged materialized.json (``_try_load``)
        self._items = _Items(np.zeros(0, np.int64), self._columns([]), None, None)
        # a store that is down at start: start empty, the next check loads the items
        self._try_load(self._marker_signature())

    # -- requests ---------------------------------------------------------------------------

    def user(self, user_id: int) -> dict[str, Any]:
        """One user's features, read now: ``{user_id, feature: value}`` as Feast returns
        them (None for every feature of an unknown user)."""
        raw = self.read_one(USER_VIEW, self.user_key, user_id, self.user_features)
        out: dict[str, Any] = {self.user_key: user_id}
        for name in self.user_features:
            out[name] = wire.decode_value(raw.get(name)) if raw else None
        return out

    def items(self, item_ids: Sequence[int] | np.ndarray) -> dict[str, np.ndarray]:
        """Features of many items from memory: ``{item_id, found, feature: array}``, row i for
        ``item_ids[i]``. Scalars are 1-D (int64, float64, float32, or object for strings,
        None where null), fixed-length lists 2-D (the embedding: (n, D) float32). Where
        ``found`` is False (an item the store does not hold) the values are fillers: 0, NaN
        or None."""
        self.maybe_refresh()
        state = self._items
        q = np.asarray(item_ids, dtype=np.int64)
        n = len(state.ids)
        if n:
            pos = np.minimum(np.searchsorted(state.ids, q), n - 1)
            hit = state.ids[pos] == q
            rows = np.where(hit, pos, n)
        else:
            hit = np.zeros(len(q), dtype=bool)
            rows = np.zeros(len(q), dtype=np.int64)
        out = {self.item_key: q, FOUND: hit}
        for name, column in state.columns.items():
            out[name] = column[rows]
        return out

    def read_one(
        self, view: str, join_key: str, value: Any, features: list[str]
    ) -> dict[str, bytes] | None:
        """One entity's raw values from the store (None when it holds no such key); raises
        ``OnlineStoreUnavailable`` when the store fails, and keeps ``health`` up to date."""
        try:
            raw = self._backend.read_one(view, join_key, value, features)
        except OnlineStoreUnavailable as e:
            self.health.failed(e)
            raise
        self.health.ok()
        return raw

    def ping(self) -> bool:
        """Whether the store answers now (a cheap read; updates ``health``)."""
        try:
            self._backend.ping()
        except OnlineStoreUnavailable as e:
            self.health.failed(e)
            return False
        self.health.ok()
        return True

    @property
    def day(self) -> str | None:
        """The day whose item features are in memory (None before any materialization)."""
        return self._items.day

    @property
    def unfinished(self) -> str | None:
        """What the marker says of a materialization that began and has not ended (a failed
        run leaves the store holding part of its day), None otherwise."""
        return self._items.unfinished

    # -- refresh ----------------------------------------------------------------------------

    def maybe_refresh(self) -> bool:
        """Reload the items if the marker changed since the last load (checked at most every
        ``check_interval_s``). True when it reloaded."""
        now = time.monotonic()
        if now < self._next_check:
            return False
        self._next_check = now + self.check_interval_s
        signature = self._marker_signature()
        if signature == self._items.marker:
            self.marker_error = None  # a marker moved back, or a store filled again
            return False
        return self._try_load(signature)

    def refresh(self, signature: tuple | None = None) -> bool:
        """Reload the item arrays now (from the online store), then swap them in at once:
        concurrent requests see the old or the new arrays, never a mix. Raises
        ``OnlineStoreUnavailable`` (keeping the old arrays) when the store fails, and
        ``ValueError`` (keeping them too) when a load would leave no item where items are
        served: the marker gone (a file moved, a Redis without it), or a store that holds no
        item of the day its marker names (a Redis restarted without persistence, flushed, an
        empty replica). Before, both emptied the catalog: empty pages and a ready service."""
        with self._lock:
            signature = signature or self._marker_signature()
            try:
                items = self._load_items(signature)
            except OnlineStoreUnavailable as e:
                self.health.failed(e)
                raise
            self.health.ok()
            if items.unfinished and len(self._items.ids):  # keep what is held, and say why
                raise ValueError(items.unfinished)
            if len(self._items.ids) and not len(items.ids):
                where = cfg.marker_path(self.paths) if signature is None else "the online store"
                raise ValueError(
                    f"the marker {where} is gone" if signature is None
                    else f"{where} holds no item of {items.day} (flushed or emptied?)"
                )  # fmt: skip
            self._items = items
        return True

    def _try_load(self, signature: tuple | None) -> bool:
        """``refresh``, but a failing store keeps the arrays in memory (False); the next
        check, ``check_interval_s`` later, tries again (the marker still differs). So does a
        damaged marker (``marker_error`` says what, logged once per version of the file):
        before, its error reached every request and readiness check that looked for a newer
        day, once per interval, as a 500."""
        try:
            loaded = self.refresh(signature)
        except OnlineStoreUnavailable:
            return False
        except ValueError as e:  # the marker is not JSON, not a marker, gone; the store empty
            if self.marker_error != str(e):
                log.warning("online store: %s; keeping the items of %s", e, self._items.day)
            self.marker_error = str(e)
            return False
        self.marker_error = None
        return loaded

    def _marker_signature(self) -> tuple | None:
        """What identifies the marker's version: on Redis, the marker Redis holds (its bytes:
        the store says which day it serves, to a pod with no home and to one whose home file
        another machine's materialization left behind), else the home's file; a Redis that
        fails keeps the last."""
        try:
            held = self._backend.marker()
        except OnlineStoreUnavailable:
            return self._items.marker
        if held is not None:
            return held
        try:
            st = os.stat(cfg.marker_path(self.paths))
        except FileNotFoundError:
            return None
        # materialized.json is replaced atomically (new inode) at every materialization; the
        # SQLite file's identity too: a store deleted or rebuilt under an unchanged marker is
        # reloaded (or fails, and says so) instead of serving items of the file that was
        return (st.st_ino, st.st_mtime_ns, st.st_size, *self._backend.identity())

    def _load_items(self, signature: tuple | None) -> _Items:
        path = cfg.marker_path(self.paths)
        try:
            if signature and signature[0] == "redis":  # (``_RedisBackend.marker``)
                path, marker = signature[1], json.loads(signature[2])
            else:
                marker = cfg.read_json(path) if signature else None
            first_unfinished = (
                marker is not None and marker.get("writing") and not marker.get("day")
            )
            if (
                marker is not None
                and not first_unfinished
                and not isinstance(marker.get("day"), str)
            ):
                raise ValueError("no day in it")
        except (ValueError, AttributeError) as e:
            raise ValueError(f"the marker {path} is damaged ({e})") from e
        if marker is None:
            return _Items(np.zeros(0, np.int64), self._columns([]), None, None)
        if first_unfinished:
            raise ValueError(f"the first materialization, of {marker['writing']}, never ended")
        named = str(marker.get("online_store") or "")
        if named and not named.startswith(f"{self.settings.kind}:"):
            # a home's SQLite marker read by a reader of Redis (a Redis without its own marker):
            # the day it names is not what this store holds, and an empty catalog looked ready
            raise ValueError(
                f"the marker {path} names another online store ({named.split(':')[0]}) than "
                f"this reader's {self.settings.describe()}"
            )
        ids, rows = [], []
        for item_id, values in self._backend.scan(ITEM_VIEW, self.item_key, self.item_features):
            ids.append(item_id)
            rows.append(values)
        if not ids:  # a day is named: a store restarted empty, flushed, or another db
            raise ValueError(f"the online store holds no item of {marker.get('day')}, the day "
                             f"its marker {path} names (flushed or emptied?)")  # fmt: skip
        order = np.argsort(np.asarray(ids, dtype=np.int64), kind="stable")
        sorted_ids = np.asarray(ids, dtype=np.int64)[order]
        unfinished = None
        if marker.get("writing"):
            unfinished = (
                f"the materialization of {marker['writing']} began at {marker.get('writing_since')} "
                f"and has not ended: the online store may hold part of that day over "
                f"{marker.get('day')}"
            )
        return _Items(
            sorted_ids,
            self._columns([rows[i] for i in order]),
            marker.get("day"),
            signature,
            unfinished,
        )

    def _columns(self, rows: list[dict[str, bytes | None]]) -> dict[str, np.ndarray]:
        columns = {}
        for name in self.item_features:
            values = [wire.decode_value(r.get(name)) for r in rows]
            columns[name] = _column(values, self._item_types[name])
        return columns


def _column(values: list[Any], value_type: str) -> np.ndarray:
    """Decoded values -> an array with one extra last row for unknown ids."""
    if value_type in _SCALAR_ARRAYS:
        dtype, fill = _SCALAR_ARRAYS[value_type]
        if any(v is None for v in values):
            # a null in an integer column (the DDL forbids it): keep it visible as NaN
            dtype, fill = np.float64, np.nan
        return np.asarray([*(fill if v is None else v for v in values), fill], dtype=dtype)
    if value_type in _LIST_ARRAYS:
        dtype, fill = _LIST_ARRAYS[value_type]
        lengths = {len(v) for v in values if v is not None}
        if len(lengths) == 1 and all(v is not None for v in values):
            (width,) = lengths
            block = np.full((len(values) + 1, width), fill, dtype=dtype)
            if values:
                block[:-1] = np.asarray(values, dtype=dtype)
            return block
    out = np.empty(len(values) + 1, dtype=object)  # filled with None
    for i, v in enumerate(values):  # one by one: numpy would turn lists into a 2-D block
        out[i] = v
    return out
