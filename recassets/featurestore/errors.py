"""Errors of Feast's reads and writes, raised again naming the file and what to do about it.

Feast's errors name no file: protobuf's ``DecodeError`` for a garbage registry, ``sqlite3``'s
for the online store. Only real damage (``file is not a database``, ``database disk image is
malformed``) advises deleting the store; the other ``sqlite3`` errors leave a sound file
behind, and a full disk had been reported as damage: its owner deleted a good store that a
running bento reads, where freeing space and running again was all it took (fault review of
2026-12-07: ``PRAGMA integrity_check`` ok, a plain re-run after freeing space succeeded).
SQLite says which by its primary result code (``sqlite_errorcode``, Python 3.11), the
message's text where an error carries none.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Generator
from pathlib import Path

from recassets.featurestore import config as cfg
from recassets.paths import Paths

# SQLite's primary result codes (https://www.sqlite.org/rescode.html): the low byte of an
# extended code. Only CORRUPT and NOTADB mean the file itself is bad.
SQLITE_BUSY, SQLITE_LOCKED, SQLITE_CORRUPT = 5, 6, 11
SQLITE_FULL, SQLITE_CANTOPEN, SQLITE_NOTADB = 13, 14, 26
DAMAGE = frozenset({SQLITE_CORRUPT, SQLITE_NOTADB})
_BY_TEXT = {  # sqlite3_errstr's text of each code, for an error that carries no code
    "database disk image is malformed": SQLITE_CORRUPT,
    "file is not a database": SQLITE_NOTADB,
    "database or disk is full": SQLITE_FULL,
    "database is locked": SQLITE_BUSY,
    "database table is locked": SQLITE_LOCKED,
    "unable to open database file": SQLITE_CANTOPEN,
    # SQLite's other CORRUPT messages ("malformed database schema (t) - ...") share the word
    "malformed": SQLITE_CORRUPT,
}


def sqlite_code(error: BaseException | str) -> int | None:
    """The primary result code of a ``sqlite3`` error (or of its message), None if unknown."""
    code = getattr(error, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF
    text = str(error).lower()
    return next((c for t, c in _BY_TEXT.items() if t in text), None)


def is_damage(error: BaseException | str) -> bool:
    """True when the error says the file is no sound SQLite database (the only case where
    setting it aside or deleting it is the fix)."""
    return sqlite_code(error) in DAMAGE


def sqlite_problem(path: Path, error: BaseException) -> str:
    """What went wrong with the SQLite online store at ``path``, and what to do."""
    code = sqlite_code(error)
    if code in DAMAGE:
        return (
            f"the SQLite online store {path} is damaged ({error}): delete it (or move it "
            "aside); the next materialization rebuilds it from its day"
        )
    if code == SQLITE_FULL:
        # A failed write rolls its transaction back; the marker names the day being written
        # (``store._write_day``), so readers say so and the next run loads that day whole.
        return (
            f"no space left for {path} ({error}): free space and run again; the store is "
            "unchanged up to its last committed write, and the next run loads the day whole"
        )
    if code in (SQLITE_BUSY, SQLITE_LOCKED):
        return (
            f"the SQLite online store {path} is locked ({error}): {lock_holders(path)} held "
            "it past Feast's wait; run again once it lets go (the store is sound)"
        )
    if code == SQLITE_CANTOPEN:
        return f"cannot open the SQLite online store {path} ({error}): {_why_unopenable(path)}"
    return f"the SQLite online store {path} failed ({error})"


def lock_holders(path: Path) -> str:
    """Who holds a lock on the file at ``path``: SQLite locks with POSIX record locks, which
    ``/proc/locks`` lists by process and inode (Linux). Where it cannot tell, the command
    that can is named."""
    try:
        st = path.stat()
        device = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return f"another process (`fuser {path}` lists those that have it open)"
    pids = sorted({int(f[4]) for f in (line.split() for line in lines)
                   if len(f) >= 6 and f[1] != "->" and f[5] == device and f[4].isdigit()})  # fmt: skip
    if not pids:
        return f"another process (`fuser {path}` lists those that have it open)"
    return ", ".join(f"pid {p} ({_command(p)})" for p in pids)


def _command(pid: int) -> str:
    if pid == os.getpid():
        return "this process"
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip() or "?"
    except OSError:
        return "gone"


def _why_unopenable(path: Path) -> str:
    folder = path.parent
    if not folder.is_dir():
        return f"its folder {folder} is missing (or not a folder)"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"its folder {folder} is not writable by this user (uid {os.getuid()})"
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        return f"the file is not readable and writable by this user (uid {os.getuid()})"
    return f"check {folder}'s permissions and free inodes (`df -i {folder}`)"


@contextlib.contextmanager
def named_errors(paths: Paths, redis_url: str | None) -> Generator[None, None, None]:
    """Errors of Feast's reads and writes that name no file, raised again naming it."""
    from google.protobuf.message import DecodeError

    try:
        yield
    except DecodeError as e:
        raise RuntimeError(
            f"the Feast registry {cfg.registry_path(paths)} is damaged ({e}): materialize a "
            "day (or run apply), which moves it aside and rebuilds it from repo.py"
        ) from e
    except sqlite3.DatabaseError as e:
        if redis_url:
            raise
        raise RuntimeError(sqlite_problem(cfg.sqlite_path(paths), e)) from e
