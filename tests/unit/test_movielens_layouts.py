"""import_movielens on the other MovieLens layouts (ml-1m / ml-10m ``.dat``, ml-20m and later
CSV) and on a release's ``.zip``: the same history lands the same rows whichever way it comes,
and each layout's own irregularities are named with file, line and field."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from recassets.movielens import import_movielens
from recassets.paths import Paths
from tests.movielens_history import rewrite, write_history


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths.from_env(str(tmp_path / "home"))


def landing(paths: Paths, dataset: str) -> dict[str, list[dict]]:
    """Each landed day's rows of ``dataset``, by day folder."""
    root = Path(paths.landing) / dataset
    return {
        f.parent.name: [json.loads(x) for x in f.read_text().splitlines()]
        for f in sorted(root.glob("dt=*/movielens.jsonl"))
    }


def rejects(paths: Paths, name: str) -> list[dict]:
    f = Path(paths.landing) / "_rejected" / "movielens" / f"{name}.rejects.jsonl"
    return [json.loads(x) for x in f.read_text().splitlines()] if f.exists() else []


@pytest.mark.parametrize("layout", ["ml-1m", "ml-10m", "ml-latest"])
def test_each_layout_lands_the_same_ratings_and_films_as_ml_100k(
    tmp_path: Path, layout: str
) -> None:
    src = tmp_path / "ml-100k"
    write_history(src, days=6, gap_days=(2,), users=20, items=30, ratings_per_day=40)
    base = Paths.from_env(str(tmp_path / "base"))
    expected = import_movielens(src, base)
    other = Paths.from_env(str(tmp_path / layout))
    got = import_movielens(rewrite(src, tmp_path / f"src-{layout}", layout), other)

    assert landing(other, "events") == landing(base, "events")
    assert landing(other, "items") == landing(base, "items")  # category: the first genre
    assert (got.events, got.days, got.items) == (expected.events, expected.days, expected.items)
    users = landing(other, "users")
    first_seen = {r["user_id"]: r["first_seen"] for rows in users.values() for r in rows}
    rated = {
        r["user_id"]: r["first_seen"]
        for rows in landing(base, "users").values()
        for r in rows
        if any(e["user_id"] == r["user_id"] for es in landing(base, "events").values() for e in es)
    }
    if layout == "ml-1m":  # users.dat holds every user: the same days and first_seen

        def placed(paths: Paths) -> dict[int, tuple[str, str]]:
            return {r["user_id"]: (day, r["first_seen"])
                    for day, rows in landing(paths, "users").items() for r in rows}  # fmt: skip

        assert placed(other) == placed(base)
    else:  # the rated users only, on their first rating's day
        assert first_seen == rated
    assert got.orphan_ratings == 0
    if layout == "ml-1m":
        by_id = {r["user_id"]: r for rows in users.values() for r in rows}
        assert (by_id[2]["gender"], by_id[2]["occupation"]) == ("M", "writer")  # code 20
        assert (by_id[3]["gender"], by_id[3]["occupation"]) == ("F", "other")  # code 0
        assert by_id[2]["age_bucket"] == "18-24"  # age 20: code 18
        assert by_id[1]["age_bucket"] is None  # age code 0: not one of ml-1m's, nulled
    else:  # no user file: every rated user, without attributes, and said
        assert all(r.get("age_bucket") is None and r.get("gender") is None
                   for rows in users.values() for r in rows)  # fmt: skip
        assert got.files[2] is None
        assert any("no user file in this layout" in line for line in got.describe())


def test_ml_1m_codes_genres_and_latin1_titles(tmp_path: Path, paths: Paths) -> None:
    src = tmp_path / "ml-1m"
    src.mkdir()
    (src / "ratings.dat").write_text(
        "1::10::5::978300760\n2::10::3::978302109\n2::20::4.5::978301968\n3::20::0::978300275\n"
    )
    (src / "movies.dat").write_bytes(
        "10::Toy Story (1995)::Animation|Children's|Comedy\n"
        "20::Cité des enfants perdus, La (1995)::Adventure|Sci-Fi\n".encode("latin-1")
    )
    (src / "users.dat").write_text("1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::21::55117\n")
    summary = import_movielens(src, paths)

    assert summary.layout == "ml-1m / ml-10m"
    assert summary.files == ("ratings.dat", "movies.dat", "users.dat")
    items = {r["item_id"]: r for rows in landing(paths, "items").values() for r in rows}
    assert items[10]["category"] == "animation"
    assert items[20]["title"] == "Cité des enfants perdus, La (1995)"
    assert items[20]["category"] == "adventure"
    users = {r["user_id"]: r for rows in landing(paths, "users").values() for r in rows}
    assert (users[1]["age_bucket"], users[1]["occupation"]) == ("<18", "K-12 student")
    assert (users[2]["age_bucket"], users[2]["occupation"]) == ("55+", "self-employed")
    assert users[3]["occupation"] is None  # code 21 is no occupation: nulled, the user kept
    assert summary.nulled["users.dat"] == 1
    # half stars pass (ml-10m on); a 0 is no rating: rejected with its line and field
    values = sorted(e["value"] for rows in landing(paths, "events").values() for e in rows)
    assert values == [3.0, 4.5, 5.0]
    [bad] = rejects(paths, "ratings.dat")
    assert (bad["line"], bad["field"], bad["raw"]) == (4, "rating", "3::20::0::978300275")
    assert bad["reason"] == "field 3 (rating): '0' is outside 0.5-5"


def test_csv_columns_are_found_by_their_header_and_quoted_titles_kept(
    tmp_path: Path, paths: Paths
) -> None:
    src = tmp_path / "ml-latest-small"
    src.mkdir()
    # another column order and an extra column read the same; a CRLF file too
    (src / "ratings.csv").write_bytes(
        b"timestamp,rating,movieId,userId,source\r\n"
        b"964982703,4.0,1,1,web\r\n"
        b"964981247,x,3,1,web\r\n"
        b"964982224,4.5,6,2,app\r\n"
        b"964982225,-1,6,3,app\r\n"
    )
    (src / "movies.csv").write_text(
        "movieId,title,genres\n"
        '1,"American President, The (1995)",Comedy|Drama|Romance\n'
        '3,"Sabrina ""Remake"" (1995)",Comedy\n'
        "6,Heat (1995),(no genres listed)\n"
        '7,"Unclosed, (1995),Comedy\n'
    )
    summary = import_movielens(src, paths)
    items = {r["item_id"]: r for rows in landing(paths, "items").values() for r in rows}
    assert items[1]["title"] == "American President, The (1995)"
    assert items[3]["title"] == 'Sabrina "Remake" (1995)'
    assert (items[1]["category"], items[6]["category"]) == ("comedy", "unknown")
    events = sorted(
        (e["user_id"], e["item_id"], e["value"]) for rows in landing(paths, "events").values()
        for e in rows
    )  # fmt: skip
    assert events == [(1, 1, 4.0), (2, 6, 4.5)]
    # line numbers count the header; fields are named as the header names them
    bad, negative = rejects(paths, "ratings.csv")
    assert (bad["line"], bad["field"]) == (3, "rating")
    assert bad["reason"] == "field 2 (rating): 'x' is not a number"
    assert negative["reason"] == "field 2 (rating): '-1' is negative (outside 0.5-5)"
    [broken] = rejects(paths, "movies.csv")
    assert broken["line"] == 5 and broken["reason"].startswith("expected 3 comma-separated")
    assert summary.rejected == {"ratings.csv": 2, "movies.csv": 1}


def test_a_csv_without_its_header_or_a_column_is_refused_before_anything_lands(
    tmp_path: Path, paths: Paths
) -> None:
    src = tmp_path / "ml-latest"
    src.mkdir()
    (src / "movies.csv").write_text("movieId,title,genres\n1,A (1995),Comedy\n")
    (src / "ratings.csv").write_text("1,1,4.0,964982703\n")  # no header line
    with pytest.raises(ValueError, match=r"ratings\.csv line 1: '1,1,4\.0,964982703' is not a "
                       r"header naming userid, movieid, rating, timestamp"):  # fmt: skip
        import_movielens(src, paths)
    (src / "ratings.csv").write_text("userId,movieId,score,timestamp\n1,1,4.0,964982703\n")
    with pytest.raises(ValueError, match=r"is not a header naming rating \("):
        import_movielens(src, paths)
    assert not Path(paths.landing).exists() or not any(Path(paths.landing).rglob("movielens.*"))
    (src / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4.0,964982703\n")
    assert import_movielens(src, paths).events == 1  # the passing case


def test_a_missing_file_is_named_with_its_layout(tmp_path: Path, paths: Paths) -> None:
    src = tmp_path / "ml-10m"
    src.mkdir()
    (src / "ratings.dat").write_text("1::1::4::978300760\n")
    with pytest.raises(FileNotFoundError, match=r"movies\.dat not found .* beside ratings\.dat "
                       r"\(the ml-1m / ml-10m layout"):  # fmt: skip
        import_movielens(src, paths)
    (src / "movies.dat").write_text("1::A (1995)::Drama\n")
    assert import_movielens(src, paths).users == 1  # users.dat is optional (ml-10m has none)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no u.data, ratings.dat or ratings.csv"):
        import_movielens(empty, paths)


def test_a_release_zip_imports_as_its_folder_and_is_named_in_rejects(
    tmp_path: Path,
) -> None:
    src = tmp_path / "ml-1m"
    write_history(tmp_path / "base", days=4, gap_days=(), users=10, items=12, ratings_per_day=20)
    rewrite(tmp_path / "base", src, "ml-1m")
    with (src / "ratings.dat").open("a") as f:
        f.write("1::1::9::978300760\n")  # a rating out of range: a reject
    archive = tmp_path / "ml-1m.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for f in sorted(src.iterdir()):
            z.write(f, f"ml-1m/{f.name}")
        z.writestr("__MACOSX/ml-1m/._ratings.dat", b"\x00\x05\x16\x07")
        z.writestr("ml-1m/README", "the release's notes")
    from_folder = Paths.from_env(str(tmp_path / "h1"))
    from_zip = Paths.from_env(str(tmp_path / "h2"))
    a, b = import_movielens(src, from_folder), import_movielens(archive, from_zip)
    for dataset in ("events", "users", "items"):
        assert landing(from_zip, dataset) == landing(from_folder, dataset)
    assert (a.events, a.rejected) == (b.events, b.rejected)
    [bad] = rejects(from_zip, "ratings.dat")
    assert bad["source_file"] == f"{archive.absolute()}!ml-1m/ratings.dat"
    assert not (Path(from_zip.landing) / "_rejected" / ".unpacked").exists()  # nothing left

    not_zip = tmp_path / "ratings.tar"
    not_zip.write_bytes(b"not an archive")
    with pytest.raises(ValueError, match="is neither a folder nor a .zip archive"):
        import_movielens(not_zip, from_zip)
    empty_zip = tmp_path / "other.zip"
    with zipfile.ZipFile(empty_zip, "w") as z:
        z.writestr("data/readme.txt", "no ratings here")
    with pytest.raises(FileNotFoundError, match="holds no u.data, ratings.dat or ratings.csv"):
        import_movielens(empty_zip, from_zip)


def test_an_archive_unpacks_by_file_name_only_and_never_past_the_disks_room(
    tmp_path: Path, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    top = tmp_path / "top.zip"
    with zipfile.ZipFile(top, "w") as z:  # the files at the archive's top
        z.writestr("ratings.csv", "userId,movieId,rating,timestamp\n1,1,4.0,964982703\n1,2,x,1\n")
        z.writestr("movies.csv", "movieId,title,genres\n1,A (1995),Drama\n")
    summary = import_movielens(top, paths)
    assert (summary.events, summary.layout) == (1, "ml-20m / ml-25m / ml-32m / ml-latest")
    [bad] = rejects(paths, "ratings.csv")
    assert bad["source_file"] == f"{top.absolute()}!ratings.csv"
    archive = tmp_path / "odd.zip"
    with zipfile.ZipFile(archive, "w") as z:  # the release's own files named to climb out
        z.writestr(
            "../../escaped/ratings.csv", "userId,movieId,rating,timestamp\n1,1,4,964982703\n"
        )
        z.writestr("../../escaped/movies.csv", "movieId,title,genres\n1,A (1995),Drama\n")
    assert import_movielens(archive, paths).events == 1
    assert not (tmp_path.parent / "escaped").exists() and not (tmp_path / "escaped").exists()
    assert len(list(tmp_path.rglob("ratings.csv"))) == 0  # copied out by name, then removed

    import shutil

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda _p: usage._replace(free=10))
    with pytest.raises(OSError, match=r"unpack to 0\.0 GB and .* has 0\.0 GB free"):
        import_movielens(archive, Paths.from_env(str(tmp_path / "full")))
    assert not (Path(Paths.from_env(str(tmp_path / "full")).landing) / "events").exists()


def test_a_window_lands_its_days_and_keeps_who_was_seen_before_it(
    tmp_path: Path, paths: Paths, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """ml-latest's ratings span two decades: a partition a day of each daily asset. A window
    lands its days only; a user or film first seen before it lands on its first day, with the
    real first_seen; what is left out is counted, never rejected."""
    src = tmp_path / "ml"
    src.mkdir()
    day = 86_400
    t0 = 864_000_000  # 1997-05-19T00:00:00Z
    (src / "ratings.dat").write_text(
        f"1::10::4::{t0}\n2::10::5::{t0 + 2 * day}\n1::20::3::{t0 + 3 * day + 60}\n"
    )
    (src / "movies.dat").write_text("10::A (1995)::Drama\n20::B (1995)::Comedy\n")
    summary = import_movielens(src, paths, since="1997-05-21")
    assert (summary.events, summary.left_before) == (2, 1)
    assert [d.isoformat() for d in summary.landed_days] == ["1997-05-21", "1997-05-22"]
    users = landing(paths, "users")
    assert sorted(users) == ["dt=1997-05-21"]  # user 1, seen on the 19th, lands on the 21st
    assert {r["user_id"]: r["first_seen"] for r in users["dt=1997-05-21"]} == {
        1: "1997-05-19T00:00:00.000000Z", 2: "1997-05-21T00:00:00.000000Z"}  # fmt: skip
    items = landing(paths, "items")
    assert {r["item_id"] for r in items["dt=1997-05-21"]} == {10}
    assert {r["item_id"] for r in items["dt=1997-05-22"]} == {20}
    assert any("left out 1 ratings before 1997-05-21" in line for line in summary.describe())
    # a window whose first day holds no rating: who was seen before lands on the first day
    # that does (the 20th opens no partition: users landed there were never ingested)
    gap = import_movielens(src, paths, since="1997-05-20")
    assert [d.isoformat() for d in gap.landed_days] == ["1997-05-21", "1997-05-22"]
    assert sorted(landing(paths, "users")) == ["dt=1997-05-21"]
    assert sorted(landing(paths, "items")) == ["dt=1997-05-21", "dt=1997-05-22"]
    # the last N days of a longer history; a shorter one lands whole
    assert import_movielens(src, paths, max_days=2).landed_days[0].isoformat() == "1997-05-21"
    whole = import_movielens(src, paths, max_days=4)
    assert (whole.events, whole.left_before, whole.window_start) == (3, 0, None)
    with pytest.raises(ValueError, match=r"no valid rating on or after 1997-06-01 \(3 before it\)"):
        import_movielens(src, paths, since="1997-06-01")
    assert import_movielens(src, paths).events == 3  # the failed window left the landing whole

    from recassets import cli, movielens

    monkeypatch.setenv("RECASSETS_HOME", paths.home)
    cli.main(["import-movielens", str(src), "--since", "1997-05-22"])
    assert "left out 2 ratings before 1997-05-22" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["import-movielens", str(src), "--since", "22/05/1997"])
    assert "expected a date YYYY-MM-DD" in capsys.readouterr().err
    # the demo lands the last DEMO_MAX_DAYS of a longer history, and says how to land more
    monkeypatch.setattr(movielens, "DEMO_MAX_DAYS", 2)
    cli.cmd_import_movielens(
        cli.argparse.Namespace(dir=str(src), format="jsonl", since=None, demo=True)
    )
    out = capsys.readouterr().out
    assert "left out 1 ratings before 1997-05-21" in out
    cli.main(["import-movielens", str(src)])  # the command itself lands everything, and says
    assert "the history spans 4 days" in capsys.readouterr().out


def test_archives_that_cannot_be_read_or_hold_two_releases_are_one_line_refusals(
    tmp_path: Path, paths: Paths
) -> None:
    """A member whose bytes fail their CRC (a damaged download) ended in a traceback
    (zipfile.BadZipFile), as did an encrypted one or a compression Python lacks; an archive or a
    folder holding two releases imported one of them without a word."""
    ratings = "userId,movieId,rating,timestamp\n" + "1,1,4.0,964982703\n" * 1
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w", zipfile.ZIP_STORED) as z:
        z.writestr("ml/ratings.csv", ratings)
        z.writestr("ml/movies.csv", "movieId,title,genres\n1,A (1995),Drama\n")
    assert import_movielens(good, paths).events == 1  # the passing case
    data = bytearray(good.read_bytes())
    at = data.index(b"1,1,4.0")
    data[at : at + 3] = b"9,9"  # the member's bytes, not its header: the CRC check fails
    damaged = tmp_path / "damaged.zip"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"damaged\.zip!ml/ratings\.csv cannot be read \(Bad CRC"):
        import_movielens(damaged, paths)
    two = tmp_path / "two.zip"
    with zipfile.ZipFile(two, "w") as z:
        for folder in ("ml-25m", "ml-latest-small"):
            z.writestr(f"{folder}/ratings.csv", ratings)
            z.writestr(f"{folder}/movies.csv", "movieId,title,genres\n1,A (1995),Drama\n")
    with pytest.raises(ValueError, match=r"holds several releases \(ml-25m/ratings\.csv, "
                       r"ml-latest-small/ratings\.csv\)"):  # fmt: skip
        import_movielens(two, paths)
    both = rewrite(write_ml_100k(tmp_path / "both"), tmp_path / "both", "ml-latest")
    with pytest.raises(ValueError, match=r"holds the ratings of several releases \(u\.data: "
                       r"ml-100k, ratings\.csv"):  # fmt: skip
        import_movielens(both, paths)


def write_ml_100k(folder: Path) -> Path:
    write_history(folder, days=3, gap_days=(), users=5, items=6, ratings_per_day=8)
    return folder


def test_titles_and_genres_real_files_hold(tmp_path: Path, paths: Paths) -> None:
    """A title ending in a colon before movies.dat's "::" (its colon went to the genres, the
    category ":horror"); a CSV title holding a newline (two rejected lines, the film lost); a
    first genre over the contract's 256 characters (the item quarantined later by ingestion);
    ml-20m's "Children" for ml-100k's "Children's" (two categories for one genre)."""
    dat = tmp_path / "dat"
    dat.mkdir()
    (dat / "ratings.dat").write_text("1::2::4::881250949\n1::3::4::881250950\n")
    (dat / "movies.dat").write_text("2::Re: Animator:::Horror\n3::Plain (1995)::Drama\n")
    import_movielens(dat, paths)
    items = {r["item_id"]: r for rows in landing(paths, "items").values() for r in rows}
    assert (items[2]["title"], items[2]["category"]) == ("Re: Animator:", "horror")
    assert (items[3]["title"], items[3]["category"]) == ("Plain (1995)", "drama")

    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    (csv_dir / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n1,1,4,881250949\n1,2,4,881250950\n1,3,4,881250951\n"
    )
    long = "G" * 300
    (csv_dir / "movies.csv").write_text(
        'movieId,title,genres\n1,"Toy\nStory (1995)",Children|Comedy\n'
        f"2,Ok (1995),{long}|Drama\n"
        '3,"Unclosed (1995),Drama\n'
    )
    summary = import_movielens(csv_dir, paths)
    items = {r["item_id"]: r for rows in landing(paths, "items").values() for r in rows}
    assert (items[1]["title"], items[1]["category"]) == ("Toy\nStory (1995)", "children's")
    assert items[2].get("category") is None and items[2]["title"] == "Ok (1995)"
    [note] = [json.loads(x) for x in (Path(paths.landing) / "_rejected" / "movielens"
                                      / "movies.csv.nulled.jsonl").read_text().splitlines()]  # fmt: skip
    assert note["line"] == 4 and "a first genre of 300 characters" in note["reason"]
    [bad] = rejects(paths, "movies.csv")  # the unclosed quote: its own line, nothing swallowed
    assert bad["line"] == 5 and summary.orphan_ratings == 1


def test_a_layout_switch_leaves_no_record_of_the_other_layouts_files(
    tmp_path: Path, paths: Paths
) -> None:
    src = write_ml_100k(tmp_path / "ml-100k")
    with (src / "u.data").open("a") as f:
        f.write("1\t1\t9\t881250949\n")  # a reject: u.data.rejects.jsonl
    import_movielens(src, paths)
    records = Path(paths.landing) / "_rejected" / "movielens"
    assert (records / "u.data.rejects.jsonl").exists()
    import_movielens(rewrite(src, tmp_path / "latest", "ml-latest"), paths)
    assert sorted(p.name for p in records.glob("*.jsonl")) == ["ratings.csv.rejects.jsonl"]
    with pytest.raises(ValueError, match="max_days is a number of days, 1 or more: 0"):
        import_movielens(src, paths, max_days=0)
    with pytest.raises(ValueError, match=r"since is a day YYYY-MM-DD: '1997-13-01'"):
        import_movielens(src, paths, since="1997-13-01")


def test_two_unclosed_quotes_are_two_bad_lines_not_one_record(tmp_path: Path, paths: Paths) -> None:
    src = tmp_path / "csv"
    src.mkdir()
    (src / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,2,4,881250949\n")
    (src / "movies.csv").write_text(
        'movieId,title,genres\n1,"Open (1995),Drama\n2,Kept (1995),Drama\n3,"Open too,Drama\n'
    )
    import_movielens(src, paths)
    items = {r["item_id"] for rows in landing(paths, "items").values() for r in rows}
    assert items == {2}  # the line between two unclosed quotes lands
    assert [r["line"] for r in rejects(paths, "movies.csv")] == [2, 4]


def test_csv_lines_python_csv_refuses_are_rejected_one_by_one_never_merged(
    tmp_path: Path, paths: Paths
) -> None:
    """Lines Python's csv raises on (two inch marks within 20 lines, a bare \\r beside a
    quote) were a traceback and nothing landed; two odd-quote lines were merged into one film
    whenever the join had three fields, losing the second film without a word."""
    src = tmp_path / "csv"
    src.mkdir()
    (src / "ratings.csv").write_text(
        "userId,movieId,rating,timestamp\n"
        + "".join(f"1,{i},4,88125095{i}\n" for i in (1, 3, 6, 7, 8, 9))
    )
    (src / "movies.csv").write_bytes(
        b"movieId,title,genres\n"
        b'3,The 12" Single (1995),Comedy|Romance\n'  # an inch mark: literal, as before
        b'6,Heat 7" (1995),Action\n'  # a second one: their join is no CSV record
        b'7,"Grumpier, Old (1995)",Comedy\r|Romance\n'  # a stray \r beside a quote: kept
        b'8,"Open Old Men (1995),Comedy\n'  # opens a quote ...
        b'9,Heat 12" (1995),Action\n'  # ... that this inch mark does not close
        b'1, "Spaced, The (1995)", Drama\n'  # a space before a quoted field
    )
    summary = import_movielens(src, paths)
    items = {r["item_id"]: r for rows in landing(paths, "items").values() for r in rows}
    assert items[3]["title"] == 'The 12" Single (1995)'
    assert items[6]["title"] == 'Heat 7" (1995)'
    assert (items[7]["title"], items[7]["category"]) == ("Grumpier, Old (1995)", "comedy")
    assert items[9]["title"] == 'Heat 12" (1995)' and items[9]["category"] == "action"
    assert (items[1]["title"], items[1]["category"]) == ("Spaced, The (1995)", "drama")
    assert [r["line"] for r in rejects(paths, "movies.csv")] == [5]
    assert items[8].get("title") is None  # its rating's film: a row without attributes
    assert summary.rejected["movies.csv"] == 1


def test_a_csv_line_csv_cannot_read_is_rejected_with_its_reason(
    tmp_path: Path, paths: Paths
) -> None:
    from recassets.movielens_lines import _csv_fields

    assert _csv_fields('1,"a"b,c', strict=True).__class__.__name__ == "Error"
    assert _csv_fields('1,"a"b,c') == ["1", "ab", "c"]  # lenient, as the release reads
    big = "T" * 140_000  # over csv's 131,072-character field limit: read whole
    assert _csv_fields(f'1,"{big}",Drama') == ["1", big, "Drama"]
    src = tmp_path / "csv"
    src.mkdir()
    (src / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4,881250951\n")
    (src / "movies.csv").write_text(f'movieId,title,genres\n1,"{big}",Drama\n')
    import_movielens(src, paths)
    [item] = [r for rows in landing(paths, "items").values() for r in rows]
    assert item.get("title") is None and item["category"] == "drama"  # nulled, as documented


def test_numbers_as_exporters_write_them_land(tmp_path: Path, paths: Paths) -> None:
    """``3.6666666666666665``, ``4.``, ``.5`` and a timestamp written as a float
    (``881250949.0``, pandas' for an int column with a gap) land; a separator ending every
    u.data line is no fifth field. Still rejected: a fractional timestamp, an exponent."""
    src = write_ml_100k(tmp_path / "ml-100k")
    lines = (src / "u.data").read_text().splitlines()
    extra = [
        "1\t1\t3.6666666666666665\t881250949",
        "1\t2\t4.\t881250950",
        "2\t1\t.5\t881250951",  # below ml-100k's 1: rejected as outside, not "not a number"
        "2\t2\t4\t881250952.0\t",
        "3\t1\t4\t881250953.5",
        "3\t2\t4e0\t881250954",
    ]
    (src / "u.data").write_text("\n".join(lines + extra) + "\n")
    summary = import_movielens(src, paths)
    bad = {r["line"]: r["reason"] for r in rejects(paths, "u.data")}
    n = len(lines)
    assert bad == {
        n + 3: "field 3 (rating): '.5' is outside 1-5",
        n + 5: "field 4 (timestamp): '881250953.5' is not an integer",
        n + 6: "field 3 (rating): '4e0' is not a number",
    }
    assert summary.events == n + 3
    events = [r for rows in landing(paths, "events").values() for r in rows]
    got = {r["event_id"]: r["value"] for r in events}
    assert got["ml-1-1-881250949"] == pytest.approx(3.6666666666666665, abs=1e-12)
    assert (got["ml-1-2-881250950"], got["ml-2-2-881250952"]) == (4.0, 4.0)


def test_a_release_one_level_down_a_windows_zip_and_upper_case_names(
    tmp_path: Path, paths: Paths
) -> None:
    """A download folder holding ``ml-100k/`` imports as the zip of it does; a zip whose
    members use backslashes too; upper-case names are refused, naming them."""
    write_ml_100k(tmp_path / "downloads" / "ml-100k")
    summary = import_movielens(tmp_path / "downloads", paths)
    n = len((tmp_path / "downloads" / "ml-100k" / "u.data").read_text().splitlines())
    assert summary.layout == "ml-100k" and summary.events == n and not rejects(paths, "u.data")
    zipped = tmp_path / "win.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        for f in (tmp_path / "downloads" / "ml-100k").iterdir():
            z.writestr(f"ml-100k\\{f.name}", f.read_bytes())
    assert import_movielens(zipped, paths).events == n
    upper = tmp_path / "upper"
    upper.mkdir()
    for f in (tmp_path / "downloads" / "ml-100k").iterdir():
        (upper / f.name.upper()).write_bytes(f.read_bytes())
    with pytest.raises(FileNotFoundError, match=r"U\.DATA, U\.ITEM, U\.USER: the release's names"):
        import_movielens(upper, paths)
    (upper / "U.DATA").rename(upper / "u.data")  # the files beside it are named too
    with pytest.raises(
        FileNotFoundError, match=r"u\.item, u\.user not found .* \(U\.ITEM, U\.USER"
    ):
        import_movielens(upper, paths)


def test_two_releases_a_folder_down_a_member_zipped_twice_and_a_dangling_link_are_refused(
    tmp_path: Path, paths: Paths
) -> None:
    """A download folder with ml-100k/ and ml-1m/ was "no u.data, ratings.dat or ratings.csv";
    a zip holding ml-100k/u.data twice landed its last copy alone; a users.dat linked to a
    file gone landed every user without attributes, said as "no user file in this layout"."""
    downloads = tmp_path / "downloads"
    write_ml_100k(downloads / "ml-100k")
    m1 = downloads / "ml-1m"
    m1.mkdir()
    (m1 / "ratings.dat").write_text("1::1::4::978300760\n")
    (m1 / "movies.dat").write_text("1::A (1995)::Drama\n")
    with pytest.raises(ValueError, match=r"holds several releases \(ml-100k/u\.data, "
                       r"ml-1m/ratings\.dat\)"):  # fmt: skip
        import_movielens(downloads, paths)
    (m1 / "users.dat").symlink_to(tmp_path / "gone.dat")
    with pytest.raises(
        FileNotFoundError, match=r"users\.dat in folder .* is a link to .*gone\.dat"
    ):
        import_movielens(m1, paths)
    (m1 / "users.dat").unlink()
    assert import_movielens(m1, paths).users == 1  # no users.dat at all: optional in ml-1m
    twice = tmp_path / "twice.zip"
    with zipfile.ZipFile(twice, "w") as z:
        for f in (downloads / "ml-100k").iterdir():
            z.writestr(f"ml-100k/{f.name}", f.read_bytes())
        with pytest.warns(UserWarning, match="Duplicate name"):
            z.writestr("ml-100k/u.data", "1\t1\t4\t881250949\n")
    with pytest.raises(ValueError, match=r"holds ml-100k/u\.data more than once"):
        import_movielens(twice, paths)


def test_an_import_beside_another_sources_landing_files_is_refused_and_so_is_the_reverse(
    tmp_path: Path, paths: Paths
) -> None:
    """`make demo` then `make demo MOVIELENS=...` in one home landed MovieLens beside the
    synthetic days: one lake of 1997 to 2026, two histories under the same ids."""
    from recassets.synthetic import SyntheticConfig, generate

    synthetic = Paths.from_env(str(tmp_path / "synthetic"))
    generate(synthetic, SyntheticConfig(days=1, events_per_day=20, initial_users=5))
    with pytest.raises(
        FileExistsError, match=r"already holds files of another source \(events/"
    ) as e:
        import_movielens(write_ml_100k(tmp_path / "ml"), synthetic)
    assert "This home holds a MovieLens import" not in str(e.value)
    assert not list(Path(synthetic.landing).rglob("movielens.*"))  # nothing written
    import_movielens(tmp_path / "ml", paths)
    assert import_movielens(tmp_path / "ml", paths).events > 0  # its own files: again is fine
    with pytest.raises(FileExistsError, match=r"generate: .* \(events/dt=.*/movielens\.jsonl") as e:
        generate(paths, SyntheticConfig(days=1, events_per_day=20, initial_users=5))
    # `recassets demo` on an imported home: pointed at building the import, not at a fresh home
    assert "This home holds a MovieLens import: `RECASSETS_VOLUME_BAND=off recassets " in str(
        e.value
    )
    assert not list(Path(paths.landing).rglob("part-*"))


@pytest.mark.parametrize(
    ("body", "title"),
    [(b'movieId,title,genres\r\n1,"Toy\r\nStory",Comedy\r\n2,B,Drama\r\n', "Toy\nStory"),  # CRLF
     (b'movieId,title,genres\n1,"Toy\nStory" ,Comedy\n2,B,Drama\n', "Toy\nStory")],  # a space after
)  # fmt: skip
def test_a_quoted_newline_is_one_record_in_a_windows_file_and_before_a_space(
    tmp_path: Path, paths: Paths, body: bytes, title: str
) -> None:
    """The strict join (two inch marks are no record) read a Windows file's line ending and a
    space after the closing quote as breaking the record: the film cut short, its rest rejected."""
    src = tmp_path / "csv"
    src.mkdir()
    (src / "ratings.csv").write_text("userId,movieId,rating,timestamp\n1,1,4,881250949\n")
    (src / "movies.csv").write_bytes(body)
    summary = import_movielens(src, paths)
    items = {r["item_id"]: r for rows in landing(paths, "items").values() for r in rows}
    assert summary.rejected["movies.csv"] == 0
    assert (items[1]["title"], items[1]["category"], items[2]["title"]) == (title, "comedy", "B")
