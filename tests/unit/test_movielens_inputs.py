"""Inputs that are not quite a release, and what the MovieLens import says of each: a CSV
header ending in a comma, a wholly wrong file, a compressed or binary one, an odd number."""

from __future__ import annotations

import bz2
import gzip
import lzma
import zipfile
from collections.abc import Callable, Collection
from pathlib import Path

import pytest

from recassets.movielens import import_movielens
from recassets.movielens_lines import HEAD_LINES, RAW_MAX_CHARS
from recassets.paths import Paths
from tests.unit.test_movielens import (
    BASIC_DATA,
    BASIC_ITEMS,
    BASIC_USERS,
    read_jsonl,
    snapshot,
    write_ml,
)


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths.from_env(str(tmp_path / "home"))


def rejects(paths: Paths, name: str, failed: bool = False) -> list[dict]:
    folder = Path(paths.landing, "_rejected", "movielens", *(["failed"] if failed else []))
    return read_jsonl(folder / f"{name}.rejects.jsonl")


def write_csv(folder: Path, ratings: str, movies: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ratings.csv").write_text(ratings)
    (folder / "movies.csv").write_text(movies)
    return folder


# 1. ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("end", [",", ""])
def test_a_csv_header_ending_in_a_comma_names_no_column(
    tmp_path: Path, paths: Paths, end: str
) -> None:
    """`movieId,title,genres,` (Excel, a hand edit): the trailing comma counted as a column,
    every row was "expected 4 comma-separated fields, got 3", every film an orphan and the
    ratings "no valid rating"."""
    src = write_csv(
        tmp_path / "ml",
        f"userId,movieId,rating,timestamp{end}\n1,10,4.0,864000000{end}\n2,10,3.5,864003600\n",
        f"movieId,title,genres{end}\n10,Toy Story (1995),Animation|Comedy{end}\n",
    )
    summary = import_movielens(src, paths)
    assert summary.rejected == {"ratings.csv": 0, "movies.csv": 0}
    assert (summary.events, summary.items, summary.orphan_ratings) == (2, 1, 0)
    [item] = read_jsonl(Path(paths.landing_dir("items", "1997-05-19")) / "movielens.jsonl")
    assert (item["title"], item["category"]) == ("Toy Story (1995)", "animation")


def test_a_dimension_file_whose_every_line_is_rejected_is_refused(
    tmp_path: Path, paths: Paths
) -> None:
    """Its rows would all have landed as bare orphans, as a ratings-only layout's do."""
    items = [line.replace("|", ";") for line in BASIC_ITEMS]
    src = write_ml(tmp_path / "ml", BASIC_DATA, items, BASIC_USERS)
    with pytest.raises(ValueError) as err:
        import_movielens(src, paths)
    failed = Path(paths.landing, "_rejected", "movielens", "failed")
    assert str(err.value) == (
        f"MovieLens import: every one of the 3 lines of {src / 'u.item'} was rejected (3 of "
        f"them: expected 24 pipe-separated fields; the first, line 1: {items[0]!r}): the wrong "
        f"file, or its separator or columns? Nothing was landed; its rejects are in {failed}"
    )
    assert not list(Path(paths.landing).rglob("movielens.*"))
    assert [r["line"] for r in rejects(paths, "u.item", failed=True)] == [1, 2, 3]
    # one good line is a file with bad lines, not the wrong file: it lands
    write_ml(src, BASIC_DATA, [BASIC_ITEMS[0], *items[1:]], BASIC_USERS)
    assert import_movielens(src, paths).rejected["u.item"] == 2


# 3. ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "check"),
    [
        ("1 10 4 864000000", "expected 4 tab-separated fields (line 1: expected 4 tab-separated "
         "fields, got 1; its fields look separated by spaces; its text: '1 10 4 864000000')"),
        ("1\t10\t4\t1997-05-19", "field 4 (timestamp) is not an integer (line 1: field 4 "
         "(timestamp): '1997-05-19' is not an integer; its text: '1\\t10\\t4\\t1997-05-19')"),
        ("1\t10\t4\t864000000000", "field 4 (timestamp) looks like milliseconds since 1970"),
    ],
)  # fmt: skip
def test_a_wholly_wrong_ratings_file_is_refused_from_its_first_lines(
    tmp_path: Path, paths: Paths, line: str, check: str
) -> None:
    """Every line got a reason and a record: 2 GB and a 359 MB rejects file for a 2M-line
    u.data with spaces for tabs. Refused after the first lines, nothing written."""
    data = [line.replace("10", str(10 + k % 7)) if k else line for k in range(HEAD_LINES + 200)]
    src = write_ml(tmp_path / "ml", data, BASIC_ITEMS, BASIC_USERS)
    with pytest.raises(ValueError) as err:
        import_movielens(src, paths)
    assert f"{src / 'u.data'}: its first 1,000 lines all fail one check, {check}" in str(err.value)
    assert "nothing was landed" in str(err.value)
    assert not Path(paths.landing).exists()  # not even a rejects file
    # one good line among the first: checked line by line, and refused as mostly rejected
    # (more than half, at least 100), its records kept aside, nothing landed
    data[HEAD_LINES - 1] = "1\t10\t4\t864000000"
    write_ml(src, data, BASIC_ITEMS, BASIC_USERS)
    with pytest.raises(ValueError, match="1,199 of its 1,200 lines were rejected, more than half"):
        import_movielens(src, paths)
    assert not list(Path(paths.landing).rglob("movielens.*"))


def test_no_valid_rating_names_the_dominant_reason(tmp_path: Path, paths: Paths) -> None:
    data = ["1\t10\t9\t864000000", "1\t20\t7\t864000000", "2\t10\tx\t864000000"]
    src = write_ml(tmp_path / "ml", data, BASIC_ITEMS, BASIC_USERS)
    with pytest.raises(ValueError) as err:
        import_movielens(src, paths)
    assert (
        "has no valid rating (3 lines rejected, 2 of them: field 3 (rating) is outside 1-5; "
        "the first, line 1: '1\\t10\\t9\\t864000000', see "
    ) in str(err.value)


def test_a_rejected_lines_text_is_cut_in_its_record(tmp_path: Path, paths: Paths) -> None:
    """A binary or newline-less file can be one "line": its record kept it whole."""
    long = "1\t10\t3\t" + "9" * 10_000
    src = write_ml(tmp_path / "ml", [*BASIC_DATA, long, "1\t10\t3"], BASIC_ITEMS, BASIC_USERS)
    import_movielens(src, paths)
    cut, short = rejects(paths, "u.data")
    assert cut["raw"] == long[:RAW_MAX_CHARS] and cut["raw_length"] == len(long) == 10_007
    assert short["raw"] == "1\t10\t3" and "raw_length" not in short


# 4. ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pack", "what"),
    [
        (gzip.compress, "is gzip-compressed data, not a text file: decompress it first (gunzip)"),
        (bz2.compress, "is bzip2-compressed data, not a text file: decompress it first (bunzip2)"),
        (lzma.compress, "is xz-compressed data, not a text file: decompress it first (unxz)"),
    ],
    ids=["gzip", "bzip2", "xz"],
)
def test_a_compressed_file_under_the_releases_name_is_named_so(
    tmp_path: Path, paths: Paths, pack: Callable[[bytes], bytes], what: str
) -> None:
    """gzip data named u.data was "no valid rating", its bytes written out as raw text."""
    src = write_ml(tmp_path / "ml", BASIC_DATA, BASIC_ITEMS, BASIC_USERS)
    (src / "u.data").write_bytes(pack((src / "u.data").read_bytes()))
    with pytest.raises(ValueError, match="nothing was landed") as err:
        import_movielens(src, paths)
    assert f"{src / 'u.data'} {what}" in str(err.value)
    assert not Path(paths.landing).exists()


def test_a_workbook_or_zip_named_ratings_csv_is_no_utf16(tmp_path: Path, paths: Paths) -> None:
    src = write_csv(tmp_path / "ml", "", "movieId,title,genres\n10,A,Comedy\n")
    with zipfile.ZipFile(src / "ratings.csv", "w") as z:  # what an .xlsx is
        z.writestr("xl/worksheets/sheet1.xml", "<x/>")
    with pytest.raises(ValueError) as err:
        import_movielens(src, paths)
    assert "ratings.csv is a zip archive (an .xlsx workbook is one too), not a text file: " \
           "unpack it, or save a spreadsheet as CSV, first" in str(err.value)  # fmt: skip


def ml_100k_zip(path: Path, names: dict[str, str], pack: Collection[str] = ()) -> Path:
    """A release zip holding BASIC_* under ``names`` (u.data -> member), gzipped in ``pack``."""
    text = {"u.data": BASIC_DATA, "u.item": BASIC_ITEMS, "u.user": BASIC_USERS}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name, member in names.items():
            body = "".join(f"{line}\n" for line in text[name]).encode("latin-1")
            z.writestr(member, gzip.compress(body) if name in pack else body)
    return path


def test_a_truncated_zip_is_named_as_such(tmp_path: Path, paths: Paths) -> None:
    names = {n: f"ml-100k/{n}" for n in ("u.data", "u.item", "u.user")}
    whole = ml_100k_zip(tmp_path / "ml-100k.zip", names).read_bytes()
    cut = tmp_path / "cut.zip"
    cut.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(ValueError) as err:
        import_movielens(cut, paths)
    assert str(err.value) == (
        f"MovieLens import: {cut} is a zip archive that cannot be read, truncated or damaged "
        "(a download cut short?): download it again; nothing was landed"
    )
    (tmp_path / "ml.tar.gz").write_bytes(gzip.compress(whole))
    with pytest.raises(ValueError, match=r"nor a \.zip archive but gzip-compressed data \("):
        import_movielens(tmp_path / "ml.tar.gz", paths)


def test_compressed_or_upper_case_names_are_hinted_in_folders_and_archives(
    tmp_path: Path, paths: Paths
) -> None:
    src = write_ml(tmp_path / "ml", BASIC_DATA, BASIC_ITEMS, BASIC_USERS)
    (src / "u.data.gz").write_bytes(gzip.compress((src / "u.data").read_bytes()))
    (src / "u.data").unlink()
    with pytest.raises(FileNotFoundError) as err:
        import_movielens(src, paths)
    assert f"u.data not found in folder {src} (u.data.gz is compressed: decompress it " \
           "(gunzip)) beside u.item, u.user" in str(err.value)  # fmt: skip

    upper = {n: f"ML-100K/{n.upper()}" for n in ("u.data", "u.item", "u.user")}
    with pytest.raises(FileNotFoundError) as err:
        import_movielens(ml_100k_zip(tmp_path / "upper.zip", upper), paths)
    assert "holds no u.data, ratings.dat or ratings.csv (U.DATA, U.ITEM, U.USER: the " \
           "release's names are " \
           "lower case, unpack the archive, rename them, then import the folder)" \
           in str(err.value)  # fmt: skip

    names = {"u.data": "ml-100k/u.data", "u.item": "ml-100k/u.item.gz", "u.user": "ml-100k/u.user"}
    archive = ml_100k_zip(tmp_path / "gz.zip", names, pack={"u.item"})
    with pytest.raises(FileNotFoundError) as err:
        import_movielens(archive, paths)
    assert f"u.item not found in {archive}!ml-100k/ (u.item.gz is compressed: unpack the " \
           "archive, decompress it (gunzip), then import the folder) beside u.data, " \
           "u.user (the ml-100k layout" in str(err.value)  # fmt: skip
    assert not list(Path(paths.landing).rglob("movielens.*"))


# 5. ---------------------------------------------------------------------------------------


def test_zero_padded_ids_a_decimal_comma_and_a_csv_of_other_separators(
    tmp_path: Path, paths: Paths
) -> None:
    data = [*BASIC_DATA, "00000000000000000000001\t10\t4\t864090000", "1\t20\t4,5\t864090000"]
    src = write_ml(tmp_path / "ml", data, BASIC_ITEMS, BASIC_USERS)
    summary = import_movielens(src, paths)
    assert summary.events == 5 and summary.orphan_ratings == 0  # the padded id is user 1
    assert [r["reason"] for r in rejects(paths, "u.data")] == [
        "field 3 (rating): '4,5' is not a number: a decimal comma? write 4.5, not 4,5"
    ]
    before = snapshot(paths)
    for sep, label in ((";", "semicolons"), ("\t", "tabs")):
        header = sep.join(("userId", "movieId", "rating", "timestamp"))
        csv = write_csv(tmp_path / f"csv{label}", f"{header}\n1{sep}10{sep}4{sep}864000000\n",
                        "movieId,title,genres\n10,A,Comedy\n")  # fmt: skip
        with pytest.raises(ValueError) as err:
            import_movielens(csv, paths)
        assert f"is not a header naming userid, movieid, rating, timestamp; its fields look " \
               f"separated by {label} (the release's CSV files" in str(err.value)  # fmt: skip
    assert snapshot(paths) == before


def test_an_unquoted_decimal_comma_in_a_csv_rating_is_named(tmp_path: Path, paths: Paths) -> None:
    """`1,10,4,5,864000000`: five fields where four were expected; the hint names the rating's
    decimal comma. A line one field wide for another reason gets no such hint."""
    src = write_csv(
        tmp_path / "ml",
        "userId,movieId,rating,timestamp\n1,10,4.0,864000000\n1,20,4,5,864003600\n"
        "2,10,x,3.5,864003600\n",
        "movieId,title,genres\n10,A,Comedy\n20,B,Drama\n",
    )
    summary = import_movielens(src, paths)
    assert summary.events == 1
    assert [r["reason"] for r in rejects(paths, "ratings.csv")] == [
        "expected 4 comma-separated fields, got 5: a decimal comma in the rating (4,5)? write 4.5",
        "expected 4 comma-separated fields, got 5",
    ]
