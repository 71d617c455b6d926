import json
import os

import pytest

from recassets import atomic


def test_write_json_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "manifest.json"
    atomic.write_json(target, {"b": 1, "a": 2})
    assert json.loads(target.read_text()) == {"a": 2, "b": 1}
    assert target.read_text().index('"a"') < target.read_text().index('"b"')  # sorted keys
    atomic.write_text(target, "second")
    assert target.read_text() == "second"
    assert sorted(p.name for p in target.parent.iterdir()) == ["manifest.json"]


def test_a_failed_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "model.pt"
    target.write_bytes(b"good model")

    def half_then_fail(f):
        f.write(b"half a mod")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        atomic.write_with(target, half_then_fail)
    assert target.read_bytes() == b"good model"
    assert os.listdir(tmp_path) == ["model.pt"]


def test_atomic_path_for_writers_that_take_a_file_name(tmp_path):
    target = tmp_path / "snap.parquet"
    with atomic.atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.name.startswith(".")
        tmp.write_bytes(b"x")
        assert not target.exists()  # nothing visible until the block ends
    assert target.read_bytes() == b"x"


def test_an_exclusive_write_never_replaces_an_existing_file(tmp_path):
    target = tmp_path / "0003.pt"
    atomic.write_bytes(target, b"first")  # the plain write replaces...
    atomic.write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    with pytest.raises(FileExistsError):  # ...the exclusive one refuses
        atomic.write_with(target, lambda f: f.write(b"third"), exclusive=True)
    assert target.read_bytes() == b"second"
    assert os.listdir(tmp_path) == ["0003.pt"]  # no temporary left behind
    fresh = tmp_path / "0004.pt"
    atomic.write_with(fresh, lambda f: f.write(b"fourth"), exclusive=True)
    assert fresh.read_bytes() == b"fourth"


def test_a_replaced_file_keeps_its_mode_and_a_long_name_is_written(tmp_path):
    """An --out over a private (0600) report made it world-readable (0644); a name near the
    file system's 255 bytes failed on the temporary's longer one, after all the work."""
    private = tmp_path / "report.html"
    private.write_text("old")
    private.chmod(0o600)
    atomic.write_bytes(private, b"new")
    assert private.read_bytes() == b"new" and (private.stat().st_mode & 0o777) == 0o600
    fresh = atomic.write_bytes(
        tmp_path / "fresh.html", b"x"
    )  # a new file: the umask's mode, as open()
    assert fresh.stat().st_mode & 0o777 == 0o666 & ~_umask()
    long = tmp_path / ("a" * 250 + ".html")
    assert atomic.write_bytes(long, b"y").read_bytes() == b"y"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["report.html", "fresh.html", long.name]
    )


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
