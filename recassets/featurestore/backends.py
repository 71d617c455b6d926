"""The online stores as ``OnlineFeatureReader`` reads them, in Feast's own layouts, without
``import feast`` (see ``online.py`` and ``wire.py``)."""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

from recassets.featurestore import config as cfg
from recassets.featurestore import wire

# How long a serving read waits for a SQLite lock held by a writer (sqlite's own default is 5 s).
# The handlers are ``async`` and read on the worker's event loop, so the wait stalls every
# request of the worker, /livez included: at 2 s, a process holding BEGIN EXCLUSIVE made each
# /recommend take 2.0 s, one at a time. In the rollback journal a reader is shut out only while
# a writer holds the EXCLUSIVE lock: for a commit, the journal and the pages written and synced
# (milliseconds), or for a batch whose dirty pages overflow the writer's cache (Feast writes a
# materialization in batches of rows, each one transaction: that may hold the lock for the
# batch's whole write, a second and more, which no bound short of stalling covers). 0.25 s
# covers a commit on a slow disk; past it the request goes the cold-start path (noted, counted
# in recassets_online_store_fallbacks_total, logged once a minute: ``BUSY_LOG_INTERVAL_S``).
# The writer's own timeout (``upkeep._sqlite``, 30 s) is unchanged: it may wait, nobody waits on
# it. The journal mode is not switched to WAL (which lets readers in during a write): replicas
# may read the file over a shared volume, and WAL's shared memory is not safe there.
SQLITE_BUSY_TIMEOUT_S = 0.25
BUSY_LOG_INTERVAL_S = 60.0
# Redis: a server that stopped answering fails a read after this long, not never.
REDIS_TIMEOUT_S = 1.0

log = logging.getLogger(__name__)


class OnlineStoreUnavailable(RuntimeError):
    """The online store could not be read (connection refused or lost, file missing, locked,
    timed out). The message names the store and the cause, never a password."""


class _SqliteBackend:
    """Feast's SQLite layout: table ``<project>_<view>``, one row per (entity_key, feature).

    Every read first compares the file at the path with the one this thread's connection
    opened (``(st_dev, st_ino)``). An open connection keeps reading the file it opened: once
    ``online.db`` was deleted, reads went on answering from the deleted file (and ``ping``
    said healthy), and after a rebuild wrote a new file, the reader "reloaded" the new day's
    marker through the old connection, serving the old day's rows under the new day. Now a
    missing file raises ``OnlineStoreUnavailable`` and a replaced one is reopened, in each
    thread (each has its own connection) at its next read. The check is one ``stat`` (about
    a microsecond) per read.
    """

    def __init__(self, path: str, project: str) -> None:
        self.path, self.project = path, project
        self._local = threading.local()
        self.busy = 0  # reads failed on a lock held past SQLITE_BUSY_TIMEOUT_S
        self._busy_said = 0  # ``busy`` when it was last logged
        self._busy_logged_at = -BUSY_LOG_INTERVAL_S  # time.monotonic() of that line

    def _said_busy(self, e: sqlite3.Error) -> None:
        """Count a read refused by a lock and log it at most once a ``BUSY_LOG_INTERVAL_S``,
        with the count since: a writer holding the lock is said, not one line a request."""
        self.busy += 1
        now = time.monotonic()
        if now - self._busy_logged_at < BUSY_LOG_INTERVAL_S:
            return
        self._busy_logged_at, since, self._busy_said = now, self.busy - self._busy_said, self.busy
        log.warning(
            "SQLite online store %s busy: %d read(s) waited %.2f s for a lock another process "
            "holds (%s) and were answered from the cold-start path",
            self.path, since, SQLITE_BUSY_TIMEOUT_S, e,
        )  # fmt: skip

    def marker(self) -> tuple | None:
        return None  # the marker of a SQLite store is the home's file beside it

    def identity(self) -> tuple:
        """``(st_dev, st_ino)`` of the file at the path, ``(None,)`` when there is none."""
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return (None,)
        return (st.st_dev, st.st_ino)

    def _conn(self) -> sqlite3.Connection:
        identity = self.identity()
        conn = getattr(self._local, "conn", None)
        if conn is not None and (identity == (None,) or identity != self._local.identity):
            conn.close()  # the file was deleted or replaced: never read the old one
            self._local.conn = conn = None
        if identity == (None,):
            raise OnlineStoreUnavailable(f"SQLite online store {self.path}: the file is missing")
        if conn is None:
            # read-only: serving can never write to the store it reads. A file replaced
            # between the stat and the open is reopened at the next read (identities differ).
            conn = sqlite3.connect(
                f"file:{self.path}?mode=ro",
                uri=True,
                check_same_thread=False,
                timeout=SQLITE_BUSY_TIMEOUT_S,
            )
            self._local.conn, self._local.identity = conn, identity
        return conn

    def _failed(self, e: sqlite3.Error) -> OnlineStoreUnavailable:
        # a connection that failed is not kept: the next read opens the file anew
        conn = getattr(self._local, "conn", None)
        if "locked" in str(e):  # SQLITE_BUSY: a writer's lock, kept past the wait
            self._said_busy(e)
        elif conn is not None:
            conn.close()
            self._local.conn = None
        cause = e if os.path.exists(self.path) else "the file is missing"
        return OnlineStoreUnavailable(f"SQLite online store {self.path}: {cause}")

    def ping(self) -> None:
        try:
            self._conn().execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.Error as e:
            raise self._failed(e) from e

    def _table(self, view: str) -> str:
        return '"' + f"{self.project}_{view}".replace('"', '""') + '"'

    def read_one(
        self, view: str, join_key: str, value: Any, features: list[str]
    ) -> dict[str, bytes] | None:
        key = wire.serialize_entity_key(join_key, value)
        try:
            rows = (
                self._conn()
                .execute(
                    f"SELECT feature_name, value FROM {self._table(view)} WHERE entity_key = ?",
                    (key,),
                )
                .fetchall()
            )
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):  # a view never materialized: no such key
                return None
            raise self._failed(e) from e
        except sqlite3.Error as e:
            raise self._failed(e) from e
        return dict(rows) if rows else None

    def scan(
        self, view: str, join_key: str, features: list[str]
    ) -> Iterator[tuple[int, dict[str, bytes]]]:
        # materialized.json says a day is loaded (scan is only called then): a missing file is
        # a failure (``_conn`` raises), not an empty catalog
        prefix = wire.int64_key_prefix(join_key)
        current: bytes | None = None
        values: dict[str, bytes] = {}
        try:
            rows = self._conn().execute(
                f"SELECT entity_key, feature_name, value FROM {self._table(view)} "
                "ORDER BY entity_key"
            )
            for key, name, blob in rows:
                if key != current:
                    if current is not None:
                        yield _int64_of(current, prefix), values
                    current, values = key, {}
                values[name] = blob
        except sqlite3.Error as e:
            raise self._failed(e) from e
        if current is not None:
            yield _int64_of(current, prefix), values


class _RedisBackend:
    """Feast's Redis layout: a hash per entity key, a field per feature (see wire.py)."""

    def __init__(self, url: str, project: str) -> None:
        import redis

        self.project = project
        self.client: Any = redis.Redis.from_url(  # sync client (redis-py's stubs mix in async)
            url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
        self._error = redis.RedisError
        self._fields: dict[tuple[str, tuple[str, ...]], list[bytes]] = {}

    def _failed(self, e: Exception) -> OnlineStoreUnavailable:
        # redis-py's messages name host and port, never the password of the URL
        return OnlineStoreUnavailable(f"Redis online store: {type(e).__name__}: {e}")

    def ping(self) -> None:
        try:
            self.client.ping()
        except self._error as e:
            raise self._failed(e) from e

    def identity(self) -> tuple:
        return ()  # a server, not a file: its marker says when it changed

    def marker(self) -> tuple | None:
        """``("redis", key, bytes)`` of the marker Redis holds, or None."""
        key = cfg.REDIS_MARKER_KEY.format(project=self.project)
        try:
            raw = self.client.get(key)
        except self._error as e:
            raise self._failed(e) from e
        return ("redis", f"redis key {key}", raw) if raw is not None else None

    def _hash_fields(self, view: str, features: list[str]) -> list[bytes]:
        key = (view, tuple(features))
        if key not in self._fields:
            self._fields[key] = [wire.redis_field(view, f) for f in features] + [
                wire.redis_ts_field(view)
            ]
        return self._fields[key]

    def read_one(
        self, view: str, join_key: str, value: Any, features: list[str]
    ) -> dict[str, bytes] | None:
        try:
            got = self.client.hmget(
                wire.redis_key(join_key, value, self.project), self._hash_fields(view, features)
            )
        except self._error as e:
            raise self._failed(e) from e
        if got[-1] is None:  # no timestamp for this view: the entity was never written
            return None
        return dict(zip(features, got[:-1], strict=True))

    def scan(
        self, view: str, join_key: str, features: list[str]
    ) -> Iterator[tuple[int, dict[str, bytes]]]:
        prefix = wire.int64_key_prefix(join_key)
        project = self.project.encode()
        pattern = _glob_escape(prefix) + b"????????" + _glob_escape(project)
        fields = self._hash_fields(view, features)
        try:
            for chunk in _chunks(self.client.scan_iter(match=pattern, count=1000), 1000):
                with self.client.pipeline(transaction=False) as pipe:
                    for key in chunk:
                        pipe.hmget(key, fields)
                    replies = pipe.execute()
                for key, got in zip(chunk, replies, strict=True):
                    if got[-1] is not None:
                        yield (
                            _int64_of(key[: len(key) - len(project)], prefix),
                            dict(zip(features, got[:-1], strict=True)),
                        )
        except self._error as e:
            raise self._failed(e) from e


def _backend(settings: cfg.OnlineStoreSettings, project: str) -> _SqliteBackend | _RedisBackend:
    if settings.kind == "sqlite":
        return _SqliteBackend(settings.path or "", project)
    return _RedisBackend(settings.url or "", project)


def _int64_of(entity_key: bytes, prefix: bytes) -> int:
    if len(entity_key) != len(prefix) + 8 or not entity_key.startswith(prefix):
        raise ValueError(
            f"unexpected entity key {entity_key!r} (expected an INT64 key after {prefix!r})"
        )
    return int.from_bytes(entity_key[-8:], "little", signed=True)


def _glob_escape(raw: bytes) -> bytes:
    out = bytearray()
    for b in raw:
        if b in b"*?[]\\":
            out.append(ord("\\"))
        out.append(b)
    return bytes(out)


def _chunks(it: Iterable[Any], size: int) -> Iterator[list[Any]]:
    chunk = []
    for x in it:
        chunk.append(x)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
