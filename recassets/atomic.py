"""Atomic writes: readers (the serving process, a concurrent run, an auditor) never see half a
file, and a failed write leaves the previous file in place.

The one way this codebase replaces a file: write a temporary sibling (same folder, so the
rename stays on one filesystem), flush and fsync it, then ``os.replace`` it over the target,
which POSIX makes atomic. The temporary name carries the process id, so two processes writing
the same target never share a temporary file; it starts with a dot, so landing-zone scans and
globs skip it. On any error the temporary file is removed and the target is untouched, and an
``OSError`` names the target: a full disk while a lineage manifest was written failed its step
with "OSError: [Errno 28] No space left on device" and no file (review, 2026-12-07).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import stat
from collections.abc import Callable, Generator
from pathlib import Path
from typing import IO, Any


@contextlib.contextmanager
def atomic_path(
    path: str | os.PathLike[str], *, exclusive: bool = False
) -> Generator[Path, None, None]:
    """Yield a temporary path beside ``path``; on a clean exit it replaces ``path``.

    For writers that want a file name rather than a handle (``pyarrow.parquet.write_table``).
    ``exclusive``: create ``path`` only if it does not exist (``os.link`` of the finished
    temporary file, atomic and refused with ``FileExistsError`` when another writer got there
    first): for versioned files that must never be overwritten."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    name = f".{target.name}.tmp-{os.getpid()}"
    if len(name.encode()) > 255:  # a name near the file system's limit: a short one beside it
        name = f".{hashlib.sha256(target.name.encode()).hexdigest()[:16]}.tmp-{os.getpid()}"
    tmp = target.with_name(name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
            with contextlib.suppress(FileNotFoundError):  # a file replaced keeps its mode
                # (an --out over a private 0600 report made it world-readable, 0644)
                os.fchmod(f.fileno(), stat.S_IMODE(os.stat(target).st_mode))
        if exclusive:
            os.link(tmp, target)
        else:
            os.replace(tmp, target)
    except OSError as e:
        if (named := _naming(e, target, tmp)) is None:
            raise
        raise named from e
    finally:
        tmp.unlink(missing_ok=True)


def _naming(error: OSError, target: Path, tmp: Path) -> OSError | None:
    """``error`` again, naming ``target`` as its file (not the temporary one, removed by then):
    the same type, which the errno picks (``FileExistsError`` for an exclusive write's loser,
    ``PermissionError``...). None, to raise ``error`` as it is, where it names another file (a
    writer reading its source) or, without an errno or of a library's own subclass that the
    errno would not rebuild, once it has the target in a note."""
    if error.filename is not None and os.fspath(error.filename) != str(tmp):
        return None
    if error.errno is not None:
        named = OSError(error.errno, error.strerror, str(target))
        if type(named) is type(error):
            return named
    error.add_note(f"while writing {target}")
    return None


def write_with(
    path: str | os.PathLike[str], write: Callable[[IO[bytes]], Any], *, exclusive: bool = False
) -> Path:
    """Call ``write(handle)`` on a temporary binary file, then put it in place of ``path``
    (``exclusive``: only where nothing is, see ``atomic_path``)."""
    target = Path(path)
    with atomic_path(target, exclusive=exclusive) as tmp, open(tmp, "wb") as f:
        write(f)
        f.flush()
    return target


def write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    return write_with(path, lambda f: f.write(data))


def write_bytes_if_changed(path: str | os.PathLike[str], data: bytes) -> Path:
    """``write_bytes``, except that a plain file already holding exactly ``data`` is left
    alone, its modification time with it: for files a watcher takes as new when their time
    changes (the landing zone under the daemon's sensor)."""
    target = Path(path)
    try:
        same = (
            target.is_file()
            and target.stat().st_size == len(data)  # another length is never read
            and target.read_bytes() == data
        )
    except OSError:
        same = False
    return target if same else write_bytes(target, data)


def write_text(path: str | os.PathLike[str], text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike[str], obj: Any, **dumps_kwargs: Any) -> Path:
    """JSON, indented and key-sorted unless told otherwise (manifests diff cleanly)."""
    dumps_kwargs = {"indent": 2, "sort_keys": True, **dumps_kwargs}
    return write_text(path, json.dumps(obj, **dumps_kwargs))
