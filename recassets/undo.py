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

An undo can fail as the run did: on a full disk the ``RESTORE`` commit cannot be written either.
That failure was a note on the run's exception, which the CLI's one-line summary drops: the
operator read "No space left on device" while ``raw_events`` stayed a version ahead of its
manifest and of Dagster (``user_features`` ahead of the two others, for features; review,
2026-12-07). So an undo that does not complete is the step's error: ``UndoIncomplete``, raised from the run's
exception, says each table and file left behind, the version it is at and the one it should
be at, and what to do. An interrupt keeps its type (Dagster ends the run on it as cancelled
or failed) and carries the same statement as a note, a line starting with ``UNDO_INCOMPLETE``,
which ``assets.launch.failures`` adds to the step's line.

What it cannot cover: a process killed outright (SIGKILL, a lost container), where no Python is
left to restore, and a write the JVM is still committing when the interrupt reaches Python (the
py4j call returns early, the commit lands after the check); those leave the lake ahead of
Dagster until the partition is materialized again (docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import functools
import os
import signal
import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from recassets import atomic
from recassets.lake import is_delta_table, latest_version, open_delta, restore_version

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# A table the block created has no version before it: it goes back to its creation commit,
# which ``recassets.lake.ensure_table`` makes empty (every writer here creates its table so).
CREATED = 0
# How a statement of an undo that did not complete begins (the error's message, or the note on
# an interrupt): assets.launch.failures finds it by this.
UNDO_INCOMPLETE = "recassets could not undo this run's writes"
AGAIN = ("free space or fix the cause, then run the same command again: the re-run replaces "
         "the partitions")  # fmt: skip


@dataclass(frozen=True)
class Left:
    """A table or file an undo could not put back: where it is (``now``) and where it should
    be (``should``), both in words."""

    target: str
    now: str
    should: str

    def __str__(self) -> str:
        return f"{self.target} {self.now}, it should be {self.should}"


class UndoIncomplete(RuntimeError):
    """A block raised and its undo did not complete; ``left`` says what stays as the run wrote
    it. Raised from the block's exception, which stays its cause."""

    def __init__(self, left: Sequence[Left]) -> None:
        self.left = list(left)
        super().__init__(statement(self.left))


def statement(left: Sequence[Left]) -> str:
    """One line: what an undo left behind and what to do."""
    return (f"{UNDO_INCOMPLETE}, which stay ahead of what Dagster recorded: "
            f"{'; '.join(map(str, left))}; {AGAIN}")  # fmt: skip


@contextlib.contextmanager
def all_or_none(
    spark: SparkSession,
    tables: Iterable[str],
    files: Iterable[str | os.PathLike[str]] = (),
    progress: Callable[[str], None] | None = None,
) -> Generator[None, None, None]:
    """Run the block; should it raise (``BaseException``: an interrupt too), restore each Delta
    table at ``tables`` that moved to its version before the block, and each of ``files`` to
    its bytes before it (removed where it did not exist), then raise. A restore that fails does
    not stop the others; should any fail, the block's exception becomes ``UndoIncomplete``
    (raised from it) or, for an interrupt and Dagster's own exceptions, carries its statement
    as a note (``_raised``). ``progress`` hears what was undone (the run's log: it said
    "Delta version N" before the undo)."""
    say = progress or (lambda _msg: None)
    before = {path: _version(spark, path) for path in dict.fromkeys(tables)}
    saved = {Path(f): _bytes(Path(f)) for f in files}
    try:
        yield
    except BaseException as exc:
        left: dict[str, Left | None] = {}  # target: what stays behind, None where undone
        with _interrupts_deferred():  # a second Terminate must not stop the undo half-way
            for path, version in before.items():
                restore = functools.partial(_restore, spark, path, version, say)
                after = functools.partial(_table_left, spark, path, version)
                left[path] = _undo(exc, f"restore {path}", restore, after)
            for target, data in saved.items():
                put_back = functools.partial(_put_back, target, data)
                after = functools.partial(_file_left, target, data)
                left[str(target)] = _undo(exc, f"put back {target}", put_back, after)
        raised = _raised(exc, left)
        if raised is exc:
            raise
        raise raised from raised.__cause__


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


def _table_left(spark: SparkSession, path: str, version: int | None) -> Left | None:
    """The table after a failed restore: None where it is at ``version`` all the same."""
    target = CREATED if version is None else version
    try:
        now: int | None = latest_version(spark, path)
    except Exception:  # noqa: BLE001 - Spark gone with the restore: delta-rs reads the log
        now = _delta_rs_version(path)
    if now == target:
        return None
    at = "at an unknown Delta version" if now is None else f"at Delta version {now}"
    return Left(path, at, f"at version {target} (before this run)")


def _delta_rs_version(path: str) -> int | None:
    """The table's version read by delta-rs, without Spark (None where that fails too).
    ``latest_version`` asks Spark for a table on an object store, and a restore often failed
    because Spark had gone (its JVM killed): the table was then said to be "at an unknown
    Delta version" while its log said the version to any reader."""
    try:
        return open_delta(path).version()
    except Exception:  # noqa: BLE001 - its version unknown: said so
        return None


def _file_left(path: Path, data: bytes | None) -> Left | None:
    """The file after a failed put-back: None where it is as before all the same."""
    try:
        if _bytes(path) == data:
            return None
    except OSError:
        return Left(str(path), "cannot be read", "as it was before this run")
    if data is None:
        return Left(str(path), "was written by this run", "absent (it was not there before)")
    return Left(str(path), "was not put back", "as it was before this run")


def _undo(
    exc: BaseException, what: str, step: Callable[[], None], left: Callable[[], Left | None]
) -> Left | None:
    """One restore; should it fail, its error is noted on the run's exception, not raised over
    it (the other restores still run), and ``left()`` says what stays behind."""
    try:
        step()
    except Exception as failed:  # noqa: BLE001 - noted, and the other restores still run
        exc.add_note(f"recassets could not {what}: {type(failed).__name__}: {failed}")
        return left()
    return None


def _raised(exc: BaseException, left: dict[str, Left | None]) -> BaseException:
    """What the block raises once its undo ran: ``exc`` itself where all is undone, here and
    in an inner ``all_or_none`` whose ``UndoIncomplete`` this block caught (what this undo put
    back since is dropped from that: all of it, and the run's own exception goes on); else
    ``UndoIncomplete`` from the run's exception. An interrupt and Dagster's own exceptions
    keep their type, which Dagster reads (the run ends cancelled or failed, a ``Failure``
    keeps its metadata): they carry the statement as a note instead, one line that replaces
    an inner block's."""
    inner = isinstance(exc, UndoIncomplete)
    earlier = exc.left if inner else getattr(exc, "recassets_left", [])
    merged: dict[str, Left | None] = {**{e.target: e for e in earlier}, **left}
    stays = [e for e in merged.values() if e is not None]
    notes = [n for n in getattr(exc, "__notes__", []) if not n.startswith(UNDO_INCOMPLETE)]
    run_error = (exc.__cause__ or exc) if inner else exc
    if not stays:
        return run_error
    if isinstance(exc, Exception) and not type(exc).__module__.startswith("dagster"):
        incomplete = UndoIncomplete(stays)
        incomplete.__cause__ = run_error
        if inner:  # the inner block's notes (each failed restore's error) go on with it
            incomplete.__notes__ = notes
        return incomplete
    exc.recassets_left = stays  # type: ignore[attr-defined]
    exc.__notes__ = [*notes, statement(stays)]
    return exc


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
