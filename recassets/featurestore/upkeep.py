"""What keeps the online store holding exactly one day, the day its marker names.

- ``RedisWriterLock``: one writer at a time on a Redis store, whichever home it runs from.
- ``holds_rows``, ``clear``, ``prune``, ``online_keys``: the feature views' rows in the
  SQLite or Redis store, in Feast's layouts (``wire.py``), without Feast.
- ``set_aside``: a damaged file that is rebuilt from what it derives from.

A view is given as ``(view, join_key, features)``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from recassets.featurestore import config as cfg
from recassets.featurestore import wire
from recassets.featurestore.backends import REDIS_TIMEOUT_S, _chunks, _glob_escape

log = logging.getLogger(__name__)
View = tuple[str, str, list[str]]  # (view, join key, feature names)

# The Redis writer lock: held across the marker's check, the rows' writes and the marker's
# update. Its expiry is renewed every third of it while the writer lives, so a writer that
# dies frees the store after at most REDIS_LOCK_TTL_S; one that waits gives up after
# REDIS_LOCK_WAIT_S (a day of a large catalogue takes minutes to write).
REDIS_LOCK_KEY = "recassets:{project}:materialize-lock"
REDIS_LOCK_TTL_S = 30.0
REDIS_LOCK_WAIT_S = 900.0
_IF_HELD = "if redis.call('get', KEYS[1]) == ARGV[1] then "
_RELEASE = _IF_HELD + "return redis.call('del', KEYS[1]) else return 0 end"
_RENEW = _IF_HELD + "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end"
_SET_IF_HELD = _IF_HELD + "redis.call('set', KEYS[2], ARGV[2]) return 1 else return 0 end"


class WriterLockError(RuntimeError):
    """The Redis writer lock could not be had in time, or was lost while writing."""


class RedisWriterLock:
    """``SET key value NX PX`` with a value no other writer holds (host, pid, home, day and a
    random token), renewed while held, released by a compare-and-delete (a Lua script), so a
    writer never frees a lock another writer took after its own expired.

    The file lock of ``store._materialize_lock`` serializes the writers of one home only: two
    homes (two deployments, two machines) writing one Redis both passed the check of the
    marker before either wrote it, and the older day, written last, won. Markers are written
    through ``set_marker``, which writes only while the lock is this writer's: a writer whose
    lock expired (Redis unreachable for the whole expiry, a process stalled that long) fails
    instead of naming its day over another writer's rows."""

    def __init__(
        self,
        url: str,
        project: str,
        owner: dict[str, Any],
        ttl_s: float = REDIS_LOCK_TTL_S,
        wait_s: float = REDIS_LOCK_WAIT_S,
    ) -> None:
        import redis

        self.key = REDIS_LOCK_KEY.format(project=project)
        self.value = json.dumps(
            {
                **owner,
                "host": socket.gethostname(),
                "pid": os.getpid(),
                "since": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                "token": uuid.uuid4().hex,
            },
            sort_keys=True,
        )
        self.ttl_ms, self.wait_s = int(ttl_s * 1000), wait_s
        self.client: Any = redis.Redis.from_url(
            url, socket_timeout=REDIS_TIMEOUT_S * 5, socket_connect_timeout=REDIS_TIMEOUT_S * 5
        )
        self._stop = threading.Event()
        self._renewer: threading.Thread | None = None
        self.lost: str | None = None

    def __enter__(self) -> RedisWriterLock:
        deadline = time.monotonic() + self.wait_s
        while not self.client.set(self.key, self.value, nx=True, px=self.ttl_ms):
            if time.monotonic() >= deadline:
                holder = self.client.get(self.key)
                self.client.close()
                raise WriterLockError(
                    f"the Redis writer lock {self.key} is held by another materialization "
                    f"({holder.decode() if holder else 'released just now'}) after waiting "
                    f"{self.wait_s:.0f} s; run again when it ends (a holder that died frees it "
                    f"within {self.ttl_ms / 1000:.0f} s)"
                )
            time.sleep(0.1)
        self._renewer = threading.Thread(target=self._renew, name="redis-writer-lock", daemon=True)
        self._renewer.start()
        return self

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl_ms / 3000):
            try:
                if not self.client.eval(_RENEW, 1, self.key, self.value, self.ttl_ms):
                    self.lost = f"the Redis writer lock {self.key} expired while writing"
                    return
            except Exception as e:  # noqa: BLE001 - retried until the lock expires
                log.warning("online store: renewing the Redis writer lock failed: %s", e)

    def set_marker(self, key: str, marker: dict[str, Any]) -> None:
        """Write ``marker`` at ``key`` while the lock is this writer's, else raise."""
        payload = json.dumps(marker, sort_keys=True)
        if self.lost or not self.client.eval(_SET_IF_HELD, 2, self.key, key, self.value, payload):
            why = self.lost or f"the Redis writer lock {self.key} is no longer this writer's"
            raise WriterLockError(
                f"{why}: the marker {key} was not written (another materialization may have begun)"
            )

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._renewer is not None:
            self._renewer.join()
        try:
            self.client.eval(_RELEASE, 1, self.key, self.value)
        finally:
            self.client.close()


# -- the views' rows ----------------------------------------------------------------------


def holds_rows(settings: cfg.OnlineStoreSettings, project: str, views: Sequence[View]) -> bool:
    """Whether the store holds any entity of any of ``views``."""
    if settings.kind == "sqlite":  # one row is enough: no DISTINCT over the whole table
        if not Path(settings.path or "").exists():
            return False
        with _sqlite(settings) as conn:
            tables = {t for (t,) in conn.execute("SELECT name FROM sqlite_master")}
            return any(
                conn.execute(f"SELECT 1 FROM {_table(project, v[0])} LIMIT 1").fetchone()
                for v in views
                if f"{project}_{v[0]}" in tables
            )
    return any(next(_entity_keys(settings, project, v), None) is not None for v in views)


def online_keys(settings: cfg.OnlineStoreSettings, project: str, view: View) -> set[bytes]:
    """The serialized entity keys the store holds a row of ``view`` for."""
    return set(_entity_keys(settings, project, view))


def clear(settings: cfg.OnlineStoreSettings, project: str, views: Sequence[View]) -> int:
    """Remove every row of ``views``; returns the entities removed."""
    return sum(prune(settings, project, views, {}).values())


def prune(
    settings: cfg.OnlineStoreSettings,
    project: str,
    views: Sequence[View],
    keep: dict[str, set[bytes]],
) -> dict[str, int]:
    """Remove the rows of each view whose entity key is not in ``keep[view]`` (serialized
    keys); returns the entities removed per view."""
    out = {}
    for view in views:
        name, _, features = view
        wanted = keep.get(name, set())
        gone = [k for k in _entity_keys(settings, project, view) if k not in wanted]
        if gone and settings.kind == "sqlite":
            with _sqlite(settings) as conn, conn:
                conn.executemany(
                    f"DELETE FROM {_table(project, name)} WHERE entity_key = ?",
                    [(k,) for k in gone],
                )
        elif gone:
            fields = [wire.redis_field(name, f) for f in features] + [wire.redis_ts_field(name)]
            client = _redis(settings)
            try:
                for chunk in _chunks(gone, 1000):
                    with client.pipeline(transaction=False) as pipe:
                        for k in chunk:  # the view's fields: an emptied hash goes with them
                            pipe.hdel(k + project.encode(), *fields)
                        pipe.execute()
            finally:
                client.close()
        out[name] = len(gone)
    return out


def _entity_keys(settings: cfg.OnlineStoreSettings, project: str, view: View) -> Iterator[bytes]:
    name, join_key, _ = view
    if settings.kind == "sqlite":
        if not Path(settings.path or "").exists():
            return
        with _sqlite(settings) as conn:
            try:
                rows = conn.execute(f"SELECT DISTINCT entity_key FROM {_table(project, name)}")
                keys = [bytes(k) for (k,) in rows]
            except sqlite3.OperationalError as e:
                if "no such table" in str(e):
                    return
                raise
        yield from keys
        return
    client = _redis(settings)
    suffix = project.encode()
    pattern = _glob_escape(wire.entity_key_head(join_key)) + b"*" + _glob_escape(suffix)
    ts_field = wire.redis_ts_field(name)
    try:
        for chunk in _chunks(client.scan_iter(match=pattern, count=1000), 1000):
            with client.pipeline(transaction=False) as pipe:
                for key in chunk:
                    pipe.hexists(key, ts_field)
                held = pipe.execute()
            for key, has in zip(chunk, held, strict=True):
                parsed = wire.parse_entity_key(key[: len(key) - len(suffix)], join_key)
                if has and parsed is not None and parsed[1] == b"":
                    yield key[: len(key) - len(suffix)]
    finally:
        client.close()


def _table(project: str, view: str) -> str:
    return '"' + f"{project}_{view}".replace('"', '""') + '"'


class _sqlite:
    """A writable connection to the store's file, closed on exit (sqlite3's own context
    manager commits but does not close)."""

    def __init__(self, settings: cfg.OnlineStoreSettings) -> None:
        self.conn = sqlite3.connect(settings.path or "", timeout=30)

    def __enter__(self) -> sqlite3.Connection:
        return self.conn

    def __exit__(self, *exc: object) -> None:
        self.conn.close()


def _redis(settings: cfg.OnlineStoreSettings) -> Any:
    import redis

    return redis.Redis.from_url(
        settings.url or "",
        socket_timeout=REDIS_TIMEOUT_S * 5,
        socket_connect_timeout=REDIS_TIMEOUT_S * 5,
    )


def read_marker(path: Path) -> dict[str, Any]:
    """The marker file (``materialized.json``), {} when there is none."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    return parse_marker(raw, str(path))


def parse_marker(raw: bytes, where: str) -> dict[str, Any]:
    """A marker's bytes as a dict, or an error naming ``where`` and what to do."""
    try:
        marker = json.loads(raw)
        if not isinstance(marker, dict):
            raise ValueError(f"a JSON {type(marker).__name__}, not an object")
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise RuntimeError(
            f"the online store's marker {where} is damaged ({e}); it says which day the "
            "online store serves: delete it, and the next materialization clears the online "
            "store and loads its day"
        ) from e
    return marker


# -- damaged files ------------------------------------------------------------------------


def sqlite_damage(path: Path) -> sqlite3.DatabaseError | None:
    """The error that reading the file at ``path`` as a SQLite database raised (None when it
    reads, or when there is no file). Reads the header and the schema only: damage deeper in
    the file shows when the rows are written (``store`` names the file then). The error, not
    its text: ``errors.is_damage`` judges it by SQLite's code, and SQLITE_CORRUPT has other
    messages than "database disk image is malformed" (a broken schema's among them)."""
    if not path.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        return e
    return None


def set_aside(path: Path, why: str, rebuilt_by: str) -> Path:
    """Rename a damaged ``path`` to ``<name>.damaged-<UTC time>`` beside it (kept for a look,
    never read again) and log it."""
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
    target = path.with_name(f"{path.name}.damaged-{stamp}")
    os.replace(path, target)
    log.warning("feature_store: %s is damaged (%s): moved to %s; %s", path, why, target, rebuilt_by)
    return target
