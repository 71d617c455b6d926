"""import_movielens on the quirks a review found: a ratings file mostly rejected (it landed
its minority without a reason), blank lines and lines of separators (dropped unsaid), the
folders a killed ``.zip`` import left (kept for an hour, unpacked again beside), a ``::`` in
an ml-1m title (the film rejected) and a release's file given for its folder."""

from __future__ import annotations

import fcntl
import os
import zipfile
from pathlib import Path

import pytest

from recassets.movielens import import_movielens
from recassets.paths import Paths
from tests.unit.test_movielens import BASIC_ITEMS, BASIC_USERS, read_jsonl, write_ml

BASE = 864_000_000  # 1997-05-19T00:00:00Z


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths.from_env(str(tmp_path / "home"))


def ratings(n: int, sep: str = "\t", start: int = 0) -> list[str]:
    """``n`` valid ml-100k rating lines (users 1-3, items 10 and 20, one second apart),
    their fields joined by ``sep``."""
    return [sep.join(map(str, (1 + k % 3, 10 if k % 2 else 20, 4, BASE + start + k)))
            for k in range(n)]  # fmt: skip


def rejects(paths: Paths, name: str, failed: bool = False) -> list[dict]:
    folder = Path(paths.landing, "_rejected", "movielens", *(["failed"] if failed else []))
    return read_jsonl(folder / f"{name}.rejects.jsonl")


# 3. A ratings file mostly rejected ------------------------------------------------------------


def test_a_ratings_file_mostly_rejected_is_refused_naming_the_reason(
    tmp_path: Path, paths: Paths
) -> None:
    """Tabs, then spaces: the first 1,000 lines are clean, so the head check passes, and the
    import landed the tab-separated minority with "rejected lines {'u.data': 1200}" alone."""
    data = ratings(800) + ratings(1_200, " ", start=5_000)
    src = write_ml(tmp_path / "ml", data, BASIC_ITEMS, BASIC_USERS)
    with pytest.raises(ValueError) as err:
        import_movielens(src, paths)
    message = str(err.value)
    assert f"{src / 'u.data'}: 1,200 of its 2,000 lines were rejected, more than half" in message
    assert ("all for: expected 4 tab-separated fields (first at line 801: expected 4 "
            "tab-separated fields, got 1; its fields look separated by spaces)") in message  # fmt: skip
    assert "Nothing was landed" in message
    assert not list(Path(paths.landing).rglob("movielens.*"))
    assert len(rejects(paths, "u.data", failed=True)) == 1_200
    # fewer than MOSTLY_REJECTED_MIN: a small file's bad lines, landed and named
    write_ml(src, ratings(60) + ratings(99, " ", start=5_000), BASIC_ITEMS, BASIC_USERS)
    summary = import_movielens(src, paths)
    assert (summary.events, summary.rejected["u.data"]) == (60, 99)


def test_a_minority_of_rejected_lines_lands_and_names_its_reason(
    tmp_path: Path, paths: Paths
) -> None:
    data = ratings(1_500) + ratings(500, " ", start=5_000)
    src = write_ml(tmp_path / "ml", data, BASIC_ITEMS, BASIC_USERS)
    summary = import_movielens(src, paths)
    assert (summary.events, summary.rejected["u.data"]) == (1_500, 500)
    assert ("u.data: 500 of 2,000 lines rejected, all for: expected 4 tab-separated fields "
            "(first at line 1501: expected 4 tab-separated fields, got 1; its fields look "
            "separated by spaces)") in summary.describe()  # fmt: skip
    first = rejects(paths, "u.data")[0]
    assert first["reason"] == (
        "expected 4 tab-separated fields, got 1; its fields look separated by spaces"
    )
    # a short line that no other separator splits right gets no hint
    write_ml(src, [*ratings(10), "1\t10\t4"], BASIC_ITEMS, BASIC_USERS)
    summary = import_movielens(src, paths)
    assert [r["reason"] for r in rejects(paths, "u.data")] == [
        "expected 4 tab-separated fields, got 3"
    ]
    assert ("u.data: 1 of 11 lines rejected, all for: expected 4 tab-separated fields (first "
            "at line 11: expected 4 tab-separated fields, got 3)") in summary.describe()  # fmt: skip


def test_the_summary_names_the_commonest_of_several_reasons(tmp_path: Path, paths: Paths) -> None:
    data = [*ratings(20), "1\t10\t9\t864000100", "1\t10\t3", "2\t10\t8\t864000200"]
    src = write_ml(tmp_path / "ml", data, BASIC_ITEMS, BASIC_USERS)
    summary = import_movielens(src, paths)
    assert ("u.data: 3 of 23 lines rejected, 2 of them for: field 3 (rating) is outside 1-5 "
            "(first at line 21: field 3 (rating): '9' is outside 1-5)") in summary.describe()  # fmt: skip
    assert not any(line.startswith("u.item:") for line in summary.describe())  # none rejected


# 4. Blank lines and lines of separators ---------------------------------------------------------


def test_blank_lines_are_counted_and_a_line_of_separators_is_rejected(
    tmp_path: Path, paths: Paths
) -> None:
    """25 lines: 22 ratings, one empty, one of spaces, one of three tabs. It said "22 rows,
    0 rejected": three lines in, none out. Lines in = landed + rejected + blank."""
    data = ratings(22)
    data[5:5], data[10:10], data[15:15] = [""], ["   "], ["\t\t\t"]
    src = write_ml(tmp_path / "ml", data, BASIC_ITEMS, BASIC_USERS)
    said: list[str] = []
    summary = import_movielens(src, paths, progress=said.append)
    assert (summary.events, summary.rejected["u.data"], summary.blank) == (22, 1, {"u.data": 2})
    assert "read u.data: 22 rows, 1 rejected, 2 blank line(s) skipped" in said
    assert "blank lines skipped (no data, not rejected): {'u.data': 2}" in summary.describe()
    [row] = rejects(paths, "u.data")
    assert (row["line"], row["raw"], row["reason"]) == (
        16, "\t\t\t", "every one of the 4 fields is empty (a line of separators only)"
    )  # fmt: skip
    # a clean file: nothing blank, nothing said
    write_ml(src, ratings(22), BASIC_ITEMS, BASIC_USERS)
    summary = import_movielens(src, paths)
    assert summary.blank == {}
    assert not any("blank" in line for line in summary.describe())


# 6. The folders a killed .zip import left ------------------------------------------------------


def _zip_release(tmp_path: Path) -> Path:
    src = write_ml(tmp_path / "ml-100k", ratings(5), BASIC_ITEMS, BASIC_USERS)
    archive = tmp_path / "ml-100k.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for name in ("u.data", "u.item", "u.user"):
            z.write(src / name, f"ml-100k/{name}")
    return archive


def test_a_killed_zip_imports_folder_is_removed_by_the_next_import_at_once(
    tmp_path: Path, paths: Paths
) -> None:
    """Kept until an hour old, it stayed beside the rerun's own copy (ml-25m: 1 GB each)."""
    archive = _zip_release(tmp_path)
    scratch = Path(paths.landing, "_rejected", ".unpacked")
    left = scratch / "movielens-zip-killed"  # as a kill -9 a second ago leaves it
    left.mkdir(parents=True)
    (left / "u.data").write_bytes(b"x" * 1_000)
    said: list[str] = []
    assert import_movielens(archive, paths, progress=said.append).events == 5
    assert not left.exists() and not scratch.exists()
    assert "removed 1 unpacked archive folder(s) a killed import left" in said


def test_an_import_that_does_not_hold_the_lock_leaves_the_folders_alone(
    tmp_path: Path, paths: Paths
) -> None:
    """Another import writing now (it holds the zone's lock) owns its folder: the import
    refused beside it removes nothing."""
    archive = _zip_release(tmp_path)
    live = Path(paths.landing, "_rejected", ".unpacked", "movielens-zip-live")
    live.mkdir(parents=True)
    root = Path(paths.landing).absolute()
    lock = os.open(root.parent / f".{root.name}.writing.lock", os.O_RDONLY | os.O_CREAT, 0o666)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the other import's
        with pytest.raises(FileExistsError, match="another generate or import is writing"):
            import_movielens(archive, paths)
        assert live.is_dir()
    finally:
        os.close(lock)


# 7. ml-1m titles holding "::", and a release's file given for its folder -------------------------


def _ml_1m(folder: Path, movies: list[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.dat").write_text("".join(f"1::{m}::4::{BASE + m}\n" for m in (2, 3, 4, 5)))
    (folder / "movies.dat").write_text("".join(f"{line}\n" for line in movies))
    (folder / "users.dat").write_text("1::F::18::10::48067\n")
    return folder


def test_a_title_holding_the_separator_keeps_it(tmp_path: Path, paths: Paths) -> None:
    """``2::Foo::Bar (1999)::Drama`` was "expected 3 '::'-separated fields, got 4", and the
    film an orphan: the id is the first field and the genres the last."""
    src = _ml_1m(tmp_path / "ml-1m", [
        "2::Foo::Bar (1999)::Drama",
        "3::Re: X::Y:::Horror|Drama",  # "::" inside, and a title ending in ":"
        "4::A::B::C (2000)::Comedy::",  # a separator ending the line: no field
        "5::Plain (1998)::Comedy|Drama",
        "6::No genres",  # too few fields: still rejected
    ])  # fmt: skip
    summary = import_movielens(src, paths)
    assert (summary.rejected["movies.dat"], summary.orphan_ratings) == (1, 0)
    rows = read_jsonl(Path(paths.landing_dir("items", "1997-05-19")) / "movielens.jsonl")
    got = {r["item_id"]: (r.get("title"), r["category"]) for r in rows}
    assert got == {
        2: ("Foo::Bar (1999)", "drama"),
        3: ("Re: X::Y:", "horror"),
        4: ("A::B::C (2000)", "comedy"),
        5: ("Plain (1998)", "comedy"),
    }
    [row] = rejects(paths, "movies.dat")
    assert (row["line"], row["reason"]) == (5, "expected 3 '::'-separated fields, got 2")
    # ratings lines as movies.dat are no titles holding "::": still the wrong file
    (src / "movies.dat").write_bytes((src / "ratings.dat").read_bytes())
    with pytest.raises(ValueError, match="every one of the 4 lines of .*movies.dat was rejected"):
        import_movielens(src, paths)


def test_a_releases_file_given_for_its_folder_names_the_folder(
    tmp_path: Path, paths: Paths
) -> None:
    src = _ml_1m(tmp_path / "ml-1m", ["2::Foo (1999)::Drama"])
    with pytest.raises(ValueError) as err:
        import_movielens(src / "ratings.dat", paths)
    assert str(err.value).startswith(
        f"MovieLens import: {src / 'ratings.dat'} is a file of a release (ml-1m / ml-10m's "
        f"ratings.dat), not the release: import the folder holding it, {src}"
    )
    other = tmp_path / "notes.txt"  # no release's file name: as before
    other.write_text("1::2::4::864000000\n")
    with pytest.raises(ValueError, match="notes.txt is neither a folder nor a .zip archive"):
        import_movielens(other, paths)
