"""``recassets.undo.all_or_none`` when its undo cannot complete (the disk full for the RESTORE
commit as for the run): the error says which table or file stays ahead, at which version, at
which version it should be, and what to do; an interrupt keeps its type and says it in a note.

Before, the restore's failure was only a note on the run's exception, which the CLI's one-line
summary drops: the operator read "No space left on device" while ``raw_events`` stayed a version
ahead of its manifest and of Dagster (review, 2026-12-07)."""

from __future__ import annotations

import errno
import os

import pytest

from recassets import undo
from tests.unit.test_undo import _ids, _write


def _no_space(*_args):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_failed_run_whose_restore_fails_says_what_stays_ahead_and_what_to_do(
    spark, paths, tmp_path, monkeypatch
):
    """Two tables written together (the feature run's case): the one that moved cannot be
    restored, the one that did not is not named; the manifest the run wrote goes back."""
    moved, untouched = paths.table("user_features"), paths.table("item_features")
    _write(spark, moved, [1])
    _write(spark, untouched, [1])
    manifest = tmp_path / "m.json"
    manifest.write_text("before")
    monkeypatch.setattr(undo, "restore_version", _no_space)

    with pytest.raises(undo.UndoIncomplete) as raised:
        with undo.all_or_none(spark, [moved, untouched], [manifest]):
            _write(spark, moved, [2])
            manifest.write_text("after")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    error = raised.value
    assert str(error) == (
        f"{undo.UNDO_INCOMPLETE}, which stay ahead of what Dagster recorded: {moved} at Delta "
        f"version 2, it should be at version 1 (before this run); free space or fix the cause, "
        "then run the same command again: the re-run replaces the partitions"
    )
    assert [(e.target, e.now) for e in error.left] == [(moved, "at Delta version 2")]
    # the run's own error is its cause (what the CLI says after it); the restore's error a note
    assert isinstance(error.__cause__, OSError) and error.__cause__.errno == errno.ENOSPC
    assert error.__cause__.__notes__ == [
        f"recassets could not restore {moved}: OSError: [Errno 28] No space left on device"
    ]
    assert _ids(moved) == [2] and manifest.read_text() == "before"


def test_a_file_not_put_back_is_named_with_what_it_should_be(spark, paths, tmp_path, monkeypatch):
    new = tmp_path / "2026-01-01.json"

    def refused(path):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(undo, "_put_back", lambda path, _data: refused(path))
    with pytest.raises(undo.UndoIncomplete) as raised:
        with undo.all_or_none(spark, [], [new]):
            new.write_text("made by the run")
            raise RuntimeError("failed after the manifest")
    assert [str(e) for e in raised.value.left] == [
        f"{new} was written by this run, it should be absent (it was not there before)"
    ]
    assert isinstance(raised.value.__cause__, RuntimeError)


def test_an_interrupt_keeps_its_type_and_says_it_in_one_note(spark, paths, monkeypatch):
    """Dagster ends the run cancelled or failed on the interrupt's type: it stays; the
    statement is a note, once, though an inner and an outer block both failed to restore."""
    table = paths.table("raw_events")
    _write(spark, table, [1])
    monkeypatch.setattr(undo, "restore_version", _no_space)

    with pytest.raises(KeyboardInterrupt) as raised:
        with undo.all_or_none(spark, [table]), undo.all_or_none(spark, [table]):
            _write(spark, table, [2])
            raise KeyboardInterrupt

    said = [n for n in raised.value.__notes__ if n.startswith(undo.UNDO_INCOMPLETE)]
    assert said == [
        f"{undo.UNDO_INCOMPLETE}, which stay ahead of what Dagster recorded: {table} at Delta "
        f"version 2, it should be at version 1 (before this run); {undo.AGAIN}"
    ]


def test_nested_blocks_raise_one_error_naming_both_what_the_inner_and_the_outer_left(
    spark, paths, tmp_path, monkeypatch
):
    """Ingestion's case: its two tables inside ``ingest``, the table and the manifests again
    around the asset's work. One error, with the run's own as its cause."""
    quarantine, table, manifest = paths.table("quarantine"), paths.table("raw"), tmp_path / "m"
    _write(spark, quarantine, [1])
    _write(spark, table, [1])
    monkeypatch.setattr(undo, "restore_version", _no_space)
    monkeypatch.setattr(undo, "_put_back", lambda *_a: _no_space())

    with pytest.raises(undo.UndoIncomplete) as raised:
        with undo.all_or_none(spark, [quarantine, table], [manifest]):
            with undo.all_or_none(spark, [quarantine, table]):
                _write(spark, table, [2])
                manifest.write_text("made by the run")
                raise ValueError("miscounted")

    assert [e.target for e in raised.value.left] == [table, str(manifest)]
    assert isinstance(raised.value.__cause__, ValueError)
    assert not isinstance(raised.value.__cause__, undo.UndoIncomplete)


def test_an_outer_undo_that_completes_drops_the_inner_ones_statement(spark, paths, monkeypatch):
    """The inner restore failed, the outer one (space freed meanwhile) made it: the run's own
    error goes on, as after any complete undo."""
    table = paths.table("t")
    _write(spark, table, [1])
    real, calls = undo.restore_version, []

    def first_fails(*args):
        calls.append(args)
        if len(calls) == 1:
            _no_space()
        real(*args)

    monkeypatch.setattr(undo, "restore_version", first_fails)
    with pytest.raises(ValueError, match="miscounted"):
        with undo.all_or_none(spark, [table]), undo.all_or_none(spark, [table]):
            _write(spark, table, [2])
            raise ValueError("miscounted")
    assert _ids(table) == [1] and len(calls) == 2
