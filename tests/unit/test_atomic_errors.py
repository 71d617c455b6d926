"""``recassets.atomic``: a write that fails with an ``OSError`` names the file it was writing.

A full disk while a lineage manifest was written failed its step with "OSError: [Errno 28] No
space left on device" and no file (review, 2026-12-07): the error now names the target, keeps
its type (the errno's), and leaves neither a temporary file nor a changed target."""

from __future__ import annotations

import errno
import os

import pytest

from recassets import atomic


def _no_space(_f):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_names_the_target_and_leaves_the_old_file(tmp_path):
    target = tmp_path / "lineage" / "raw_events" / "2026-01-01.json"
    target.parent.mkdir(parents=True)
    target.write_text("before")

    with pytest.raises(OSError) as raised:
        atomic.write_with(target, _no_space)

    assert type(raised.value) is OSError and raised.value.errno == errno.ENOSPC
    assert raised.value.filename == str(target)
    assert str(raised.value) == f"[Errno 28] No space left on device: '{target}'"
    assert target.read_text() == "before"
    assert os.listdir(target.parent) == ["2026-01-01.json"]  # the temporary removed


def test_a_refused_temporary_file_names_the_target_as_a_permission_error(tmp_path, monkeypatch):
    """open() of the temporary failing (EACCES) named the temporary, a dot file the operator
    never sees, removed by then; the target is the one to fix."""
    target = tmp_path / "manifest.json"

    def refused(path, *_args, **_kwargs):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    monkeypatch.setattr(atomic, "open", refused, raising=False)  # the module's open()
    with pytest.raises(PermissionError) as raised:
        atomic.write_json(target, {"a": 1})
    assert raised.value.filename == str(target)
    assert not target.exists()


def test_an_exclusive_writes_loser_is_still_file_exists_naming_the_target(tmp_path):
    target = tmp_path / "0003.pt"
    target.write_bytes(b"first")
    with pytest.raises(FileExistsError) as raised:
        atomic.write_with(target, lambda f: f.write(b"second"), exclusive=True)
    assert raised.value.filename == str(target) and target.read_bytes() == b"first"


def test_an_error_about_another_file_is_left_as_it_is(tmp_path):
    """A writer that reads its source: the missing source is the file to name, not the
    target."""
    source, target = tmp_path / "missing.parquet", tmp_path / "copy.parquet"

    def copy(f):
        f.write(source.read_bytes())

    with pytest.raises(FileNotFoundError) as raised:
        atomic.write_with(target, copy)
    assert raised.value.filename == str(source)
    assert os.listdir(tmp_path) == []


def test_an_error_without_an_errno_keeps_its_type_and_notes_the_target(tmp_path):
    target = tmp_path / "t.bin"

    def odd(_f):
        raise OSError("the writer's own words")

    with pytest.raises(OSError, match="the writer's own words") as raised:
        atomic.write_with(target, odd)
    assert raised.value.__notes__ == [f"while writing {target}"]
    assert os.listdir(tmp_path) == []
