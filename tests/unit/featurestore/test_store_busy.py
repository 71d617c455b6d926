"""A SQLite online store locked by another process (``BEGIN EXCLUSIVE``): the serving reader
waits ``SQLITE_BUSY_TIMEOUT_S`` (a real writer's commit, milliseconds), not the 2 s that held
every request of the worker one after another (the handlers read on the event loop); the
busy read fails as ``OnlineStoreUnavailable`` (the request goes the cold-start path, noted
and counted) and is logged at most once an interval. A lock held for a commit's
milliseconds is waited out, and the writer's own timeout is unchanged."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time

import pytest

from recassets.featurestore import backends as B

PROJECT = "recassets"


@pytest.fixture
def store(tmp_path):
    path = str(tmp_path / "online.db")
    conn = sqlite3.connect(path)
    conn.execute(f"CREATE TABLE {PROJECT}_user_daily_features "
                 "(entity_key BLOB, feature_name TEXT, value BLOB)")  # fmt: skip
    conn.execute(
        f"INSERT INTO {PROJECT}_user_daily_features VALUES (?, 'age', x'01')",
        (B.wire.serialize_entity_key("user_id", 7),),
    )
    conn.commit()
    conn.close()
    return path


def _read(backend):
    return backend.read_one("user_daily_features", "user_id", 7, ["age"])


def test_a_held_lock_fails_the_read_fast_and_is_logged_once(store, caplog):
    backend = B._SqliteBackend(store, PROJECT)
    assert _read(backend) == {"age": b"\x01"}
    holder = sqlite3.connect(store, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.WARNING, logger=B.__name__):
            for _ in range(3):
                start = time.monotonic()
                with pytest.raises(B.OnlineStoreUnavailable, match="locked"):
                    _read(backend)
                assert time.monotonic() - start < 0.6  # was 2.0 s a request
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    said = [r.getMessage() for r in caplog.records if "busy" in r.getMessage()]
    assert len(said) == 1 and "cold-start" in said[0]
    assert _read(backend) == {"age": b"\x01"}  # the lock gone, the next read answers


def test_a_commits_lock_is_waited_out(store):
    backend = B._SqliteBackend(store, PROJECT)
    _read(backend)  # the connection opened before the writer comes
    holder = sqlite3.connect(store, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    releaser = threading.Timer(0.03, lambda: (holder.execute("COMMIT"), holder.close()))
    releaser.start()
    try:
        assert _read(backend) == {"age": b"\x01"}  # waited the 30 ms, not failed
    finally:
        releaser.join()


def test_the_bounds():
    assert 0.05 <= B.SQLITE_BUSY_TIMEOUT_S <= 0.25
    import inspect

    from recassets.featurestore import upkeep

    assert "timeout=30" in inspect.getsource(upkeep._sqlite)  # the writer waits as before
