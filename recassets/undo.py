"""All or none over a run's writes: the Delta tables and the files (lineage manifests) a block
of work changes go back to their state before it when the block raises, an interrupt included.

Delta has no transaction over two tables, and a run's work does not end with its last commit:
ingestion writes the day's manifests after it, and an asset still reads back a preview and
builds its metadata before it hands its results to Dagster. A run terminated from the UI
(SIGINT, raised in the step as ``DagsterExecutionInterruptedError``, a ``BaseException``) or
failing anywhere in that stretch left the tables and the manifests at the new version while
Dagster recorded nothing: the landing sensor trusted the manifest and nothing downstream was
rebuilt. So the stretch from before the first write to the hand-off goes inside
``all_or_none``: on any exception each table that moved is restored to its version before the
block (a Delta ``RESTORE`` commit) and each file is put back as it was (or removed, where there
was none), then the exception goes on. One writer per table at a time is the instance's pools'
job (``dagster.yaml``), so nothing of another run is undone.

What it cannot cover: a process killed outright (SIGKILL, a lost container), where no Python is
left to restore, and a write the JVM is still committing when the interrupt reaches Python (the
py4j call returns early, the commit lands after the check); those leave the lake ahead of
Dagster until the partition is materialized again (docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Generator, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from recassets import atomic
from recassets.lake import is_delta_table, latest_version, restore_version

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# A table the block created has no version before it: it goes back to its creation commit,
# which ``recassets.lake.ensure_table`` makes empty (every writer here creates its table so).
CREATED = 0


@contextlib.contextmanager
def all_or_none(
    spark: SparkSession,
    tables: Iterable[str],
    files: Iterable[str | os.PathLike[str]] = (),
    progress: Callable[[str], None] | None = None,
) -> Generator[None, None, None]:
    """Run the block; should it raise (``BaseException``: an interrupt too), restore each Delta
    table at ``tables`` that moved to its version before the block, and each of ``files`` to
    its bytes before it (removed where it did not exist), then raise. A restore that fails is
    noted on the exception, and the others are still made. ``progress`` hears what was
    undone (the run's log: it said "Delta version N" before the undo)."""
    say = progress or (lambda _msg: None)
    before = {path: _version(spark, path) for path in dict.fromkeys(tables)}
    saved = {Path(f): _bytes(Path(f)) for f in files}
    try:
        yield
    except BaseException as exc:
        with _interrupts_deferred():  # a second Terminate must not stop the undo half-way
            for path, version in before.items():
                _undo(exc, f"restore {path}", lambda p=path, v=version: _restore(spark, p, v, say))
            for target, data in saved.items():
                _undo(exc, f"put back {target}", lambda t=target, d=data: _put_back(t, d))
        raise


def _version(spark: SparkSession, path: str) -> int | None:
    return latest_version(spark, path) if is_delta_table(spark, path) else None


def _bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None


def _restore(
    spark: SparkSession, path: str, version: int | None, say: Callable[[str], None]
) -> None:
    if version is None and not is_delta_table(spark, path):
        return  # not created: nothing written
    target = CREATED if version is None else version
    if latest_version(spark, path) != target:
        restore_version(spark, path, target)
        say(f"undone: {path} restored to version {target}, its state before the run")


def _put_back(path: Path, data: bytes | None) -> None:
    if data is None:
        path.unlink(missing_ok=True)
    else:
        atomic.write_bytes_if_changed(path, data)


def _undo(exc: BaseException, what: str, step: Callable[[], None]) -> None:
    """One restore; its failure is noted on the run's exception, not raised over it (the
    exception that stopped the run stays the one the run reports)."""
    try:
        step()
    except Exception as failed:  # noqa: BLE001 - noted, and the other restores still run
        exc.add_note(f"recassets could not {what}: {type(failed).__name__}: {failed}")


@contextlib.contextmanager
def _interrupts_deferred() -> Generator[None, None, None]:
    """SIGINT and SIGTERM ignored for the block: the undo that follows a Terminate is not cut
    short by a second one (the run is ending with the first). Only the main thread can set
    signal handlers; elsewhere (a thread's run) the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, lambda *_: None)
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, signal.SIG_DFL if handler is None else handler)
