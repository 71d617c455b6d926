"""SQLite errors of the online store, named with what to do: only a damaged file is to be
deleted. A full disk during materialization had said "damaged ... delete it" of a sound file
that a running bento reads (fault review, 2026-12-07); a locked or unopenable store says who
or why. The errors are SQLite's own, raised by tiny real databases."""

from __future__ import annotations

import os
import sqlite3

import pytest

from recassets.featurestore import config as cfg
from recassets.featurestore import errors, store, upkeep


def _online_db(paths) -> str:
    path = cfg.sqlite_path(paths)
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE t (v BLOB)")
    conn.execute("INSERT INTO t VALUES (x'01')")
    conn.commit()
    conn.close()
    return str(path)


def _said(paths, action) -> RuntimeError:
    with pytest.raises(RuntimeError) as err, store._named_errors(paths, None):
        action()
    return err.value


def test_a_full_disk_says_free_space_and_run_again_not_delete(paths):
    path = _online_db(paths)
    conn = sqlite3.connect(path)
    # SQLite's own SQLITE_FULL, as a full file system gives it: the file may grow no further
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")

    def write():
        with conn:
            conn.execute("INSERT INTO t VALUES (?)", (b"x" * 1_000_000,))

    said = str(_said(paths, write))
    conn.close()
    assert said.startswith(f"no space left for {path} (database or disk is full): free space")
    assert "run again" in said and "damaged" not in said and "delete" not in said
    check = sqlite3.connect(path)  # and the store is as it was: sound, its row kept
    assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert check.execute("SELECT v FROM t").fetchall() == [(b"\x01",)]
    check.close()


def test_a_locked_store_names_the_holder_and_says_to_retry(paths):
    path = _online_db(paths)
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    writer = sqlite3.connect(path, timeout=0.05)
    try:
        said = str(_said(paths, lambda: writer.execute("INSERT INTO t VALUES (x'02')")))
    finally:
        writer.close()
        holder.execute("ROLLBACK")
        holder.close()
    assert said.startswith(f"the SQLite online store {path} is locked (database is locked): ")
    assert f"pid {os.getpid()} (this process)" in said  # the holder, from /proc/locks
    assert "run again" in said and "delete" not in said


def test_an_unopenable_store_names_its_path_and_folder(paths):
    target = cfg.sqlite_path(paths)
    assert not target.parent.exists()
    said = str(_said(paths, lambda: sqlite3.connect(target)))
    assert said == (
        f"cannot open the SQLite online store {target} (unable to open database file): "
        f"its folder {target.parent} is missing (or not a folder)"
    )


def test_only_a_damaged_file_is_to_be_deleted(paths):
    path = _online_db(paths)
    with open(path, "r+b") as f:
        f.write(b"\x00garbage\xff" * 20)  # the header gone
    said = str(_said(paths, lambda: sqlite3.connect(path).execute("SELECT * FROM t")))
    assert said == (
        f"the SQLite online store {path} is damaged (file is not a database): delete it (or "
        "move it aside); the next materialization rebuilds it from its day"
    )
    assert errors.is_damage("database disk image is malformed")
    assert not errors.is_damage("database is locked")
    assert not errors.is_damage(sqlite3.OperationalError("database or disk is full"))


def test_apply_sets_aside_only_a_damaged_store_not_a_locked_one(paths, monkeypatch):
    """``apply`` moves aside an online store it cannot read: a locked one (another process's
    long transaction) is sound and stays where serving reads it."""
    path = cfg.sqlite_path(paths)
    _online_db(paths)
    locked = sqlite3.OperationalError("database is locked")
    monkeypatch.setattr(upkeep, "sqlite_damage", lambda _db: locked)
    store._set_aside_damaged(paths, None)
    assert path.exists() and not list(path.parent.glob("online.db.damaged-*"))
    not_a_db = sqlite3.DatabaseError("file is not a database")
    monkeypatch.setattr(upkeep, "sqlite_damage", lambda _db: not_a_db)
    store._set_aside_damaged(paths, None)
    assert not path.exists() and len(list(path.parent.glob("online.db.damaged-*"))) == 1


def test_a_store_with_a_broken_schema_is_set_aside_by_its_code(paths):
    """SQLITE_CORRUPT says more than "database disk image is malformed": a broken schema's
    message ("malformed database schema (t) - incomplete input") had failed a text match, so
    apply left the file in place and every materialization failed on it."""
    path = cfg.sqlite_path(paths)
    conn = sqlite3.connect(_online_db(paths))
    conn.execute("PRAGMA writable_schema = ON")
    conn.execute("UPDATE sqlite_master SET sql = 'CREATE TABLE t (v'")
    conn.commit()
    conn.close()
    store._set_aside_damaged(paths, None)
    assert not path.exists()
    [aside] = path.parent.glob("online.db.damaged-*")
    error = upkeep.sqlite_damage(aside)
    assert str(error) == "malformed database schema (t) - incomplete input"
    assert error is not None and errors.sqlite_code(error) == errors.SQLITE_CORRUPT
    # an error that carries no code is judged by its text, "malformed" counted as corrupt
    assert errors.is_damage("malformed database schema (t) - incomplete input")
