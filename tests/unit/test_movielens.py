"""import_movielens on tiny hand-written folders in the ml-100k layout, with exact expectations.

Timestamps are chosen around day boundaries: 864000000 is 1997-05-19T00:00:00Z, one second
less is still 1997-05-18 in UTC.
"""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from recassets.events import EVENTS, ITEMS, USERS
from recassets.movielens import GENRES, ImportSummary, import_movielens
from recassets.paths import Paths

D18, D19, D20 = dt.date(1997, 5, 18), dt.date(1997, 5, 19), dt.date(1997, 5, 20)


def item_line(item_id: int | str, title: str, *genres: str, release: str = "01-Jan-1995") -> str:
    flags = "|".join("1" if g in genres else "0" for g in GENRES)
    return f"{item_id}|{title}|{release}||http://us.imdb.com/M/title-exact?x|{flags}"


def write_ml(folder: Path, data: list[str], items: list[str], users: list[str]) -> Path:
    """Write u.data / u.item / u.user (latin-1, newline-terminated) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, lines in (("u.data", data), ("u.item", items), ("u.user", users)):
        (folder / name).write_bytes("".join(line + "\n" for line in lines).encode("latin-1"))
    return folder


def read_jsonl(path: Path) -> list[dict]:
    """Landed rows, with the serialization details of ``table_to_jsonl`` (explicit nulls,
    microsecond fractions) folded away so expectations read as the importer's content."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return [
        {
            k: (v.replace(".000000Z", "Z") if isinstance(v, str) else v)
            for k, v in r.items()
            if v is not None
        }
        for r in rows
    ]


def landed(paths: Paths, dataset: str, day: dt.date, fmt: str = "jsonl") -> Path:
    return Path(paths.landing_dir(dataset, day)) / f"movielens.{fmt}"


def snapshot(paths: Paths) -> dict[str, bytes]:
    root = Path(paths.landing)
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths.from_env(str(tmp_path / "home"))


BASIC_DATA = [
    "2\t20\t4\t864003600",  # 1997-05-19 01:00
    "1\t10\t3\t863999999",  # 1997-05-18 23:59:59: still the 18th in UTC
    "1\t20\t5\t864003600",  # same second as the first line: ordered by user
    "2\t10\t1\t864086460",  # 1997-05-20 00:01
]
BASIC_ITEMS = [
    item_line(10, "Toy Story (1995)", "Animation", "Children's", "Comedy"),
    item_line(20, "Café au lait (1994)", "Comedy", "Drama"),
    item_line(30, "Never Rated (1996)", release=""),  # no genre, no release date
]
BASIC_USERS = ["1|24|M|technician|85711", "2|53|F|other|94043", "3|17|M|student|T8H1N"]


def test_events_land_per_utc_day_with_exact_rows(tmp_path: Path, paths: Paths) -> None:
    src = write_ml(tmp_path / "ml", BASIC_DATA, BASIC_ITEMS, BASIC_USERS)
    summary = import_movielens(src, paths)

    assert summary == ImportSummary(
        days=3,
        events=4,
        users=3,
        items=3,
        rejected={"u.data": 0, "u.item": 0, "u.user": 0},
        rejects_path=Path(paths.landing) / "_rejected" / "movielens",
        orphan_ratings=0,
        landed_days=(D18, D19, D20),
        stale_removed=(),
        nulled={"u.data": 0, "u.item": 0, "u.user": 0},
    )
    assert paths.landed_days("events") == [D18, D19, D20]

    def event(user: int, item: int, rating: float, ts: int, iso: str) -> dict:
        return {
            "event_id": f"ml-{user}-{item}-{ts}",
            "ts": iso,
            "user_id": user,
            "item_id": item,
            "event_type": "rating",
            "value": rating,
        }  # surface, request_id, country, device are null, hence omitted

    assert read_jsonl(landed(paths, "events", D18)) == [
        event(1, 10, 3.0, 863999999, "1997-05-18T23:59:59Z")
    ]
    assert read_jsonl(landed(paths, "events", D19)) == [
        event(1, 20, 5.0, 864003600, "1997-05-19T01:00:00Z"),
        event(2, 20, 4.0, 864003600, "1997-05-19T01:00:00Z"),
    ]
    assert read_jsonl(landed(paths, "events", D20)) == [
        event(2, 10, 1.0, 864086460, "1997-05-20T00:01:00Z")
    ]
    # Nothing else was landed besides movielens.jsonl files.
    assert sorted(snapshot(paths)) == [
        "events/dt=1997-05-18/movielens.jsonl",
        "events/dt=1997-05-19/movielens.jsonl",
        "events/dt=1997-05-20/movielens.jsonl",
        "items/dt=1997-05-18/movielens.jsonl",
        "items/dt=1997-05-19/movielens.jsonl",
        "users/dt=1997-05-18/movielens.jsonl",
        "users/dt=1997-05-19/movielens.jsonl",
    ]


def test_users_and_items_land_on_first_rating_day(tmp_path: Path, paths: Paths) -> None:
    src = write_ml(tmp_path / "ml", BASIC_DATA, BASIC_ITEMS, BASIC_USERS)
    import_movielens(src, paths)

    # User 1 first rated on the 18th; user 3 never rated: the earliest rating overall.
    assert read_jsonl(landed(paths, "users", D18)) == [
        {"user_id": 1, "first_seen": "1997-05-18T23:59:59Z", "age_bucket": "18-24",
         "gender": "M", "occupation": "technician"},
        {"user_id": 3, "first_seen": "1997-05-18T23:59:59Z", "age_bucket": "<18",
         "gender": "M", "occupation": "student"},
    ]  # fmt: skip
    assert read_jsonl(landed(paths, "users", D19)) == [
        {"user_id": 2, "first_seen": "1997-05-19T01:00:00Z", "age_bucket": "45-54",
         "gender": "F", "occupation": "other"},
    ]  # fmt: skip
    # Item 10: first genre set is Animation; 30 has none and was never rated; 20 is latin-1.
    assert read_jsonl(landed(paths, "items", D18)) == [
        {"item_id": 10, "first_seen": "1997-05-18T23:59:59Z", "category": "animation",
         "title": "Toy Story (1995)"},
        {"item_id": 30, "first_seen": "1997-05-18T23:59:59Z", "category": "unknown",
         "title": "Never Rated (1996)"},
    ]  # fmt: skip
    assert read_jsonl(landed(paths, "items", D19)) == [
        {"item_id": 20, "first_seen": "1997-05-19T01:00:00Z", "category": "comedy",
         "title": "Café au lait (1994)"},
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("age", "bucket"),
    [(1, "<18"), (17, "<18"), (18, "18-24"), (24, "18-24"), (25, "25-34"), (34, "25-34"),
     (35, "35-44"), (44, "35-44"), (45, "45-54"), (54, "45-54"), (55, "55+"), (73, "55+")],
)  # fmt: skip
def test_age_bucket_edges(tmp_path: Path, paths: Paths, age: int, bucket: str) -> None:
    src = write_ml(tmp_path / "ml", ["1\t1\t3\t864000000"], [item_line(1, "A")],
                   [f"1|{age}|F|writer|00000"])  # fmt: skip
    import_movielens(src, paths)
    assert read_jsonl(landed(paths, "users", D19))[0]["age_bucket"] == bucket


@pytest.mark.parametrize(
    ("genres", "category"),
    [(("Children's",), "children's"), (("Film-Noir", "Thriller"), "film-noir"),
     (("Sci-Fi", "War"), "sci-fi"), (("Action", "Western"), "action"),
     (("unknown", "Drama"), "unknown"), (("Western",), "western"), ((), "unknown")],
)  # fmt: skip
def test_item_category_is_first_genre(
    tmp_path: Path, paths: Paths, genres: tuple[str, ...], category: str
) -> None:
    src = write_ml(tmp_path / "ml", ["1\t1\t3\t864000000"], [item_line(1, "A", *genres)],
                   ["1|30|F|writer|00000"])  # fmt: skip
    import_movielens(src, paths)
    assert read_jsonl(landed(paths, "items", D19))[0]["category"] == category


def test_every_kind_of_bad_line_is_rejected_with_file_line_field_reason(
    tmp_path: Path, paths: Paths
) -> None:
    data = [
        "1\t10\t3\t864000000",  # 1 ok
        "1\t10\t3",  # 2 too few fields
        "x1\t10\t3\t864000000",  # 3 user id not an integer
        "1\t1.5\t3\t864000000",  # 4 item id not an integer
        "1\t10\t6\t864000001",  # 5 rating above 5
        "1\t10\t0\t864000002",  # 6 rating below 1
        "1\t10\tgood\t864000003",  # 7 rating not a number
        "1\t10\t3\tyesterday",  # 8 timestamp not an integer
        "1\t10\t3\t-5",  # 9 negative timestamp
        "1\t10\t3\t999999999999",  # 10 beyond year 9999
        "",  # 11 blank: skipped, but still counted in line numbers
        "1\t10\t4\t864000000",  # 12 same user, item, second as line 1
        "1\t10\t3\t864000000\textra",  # 13 too many fields
        "2\t10\t5\t864003600",  # 14 ok, but user 2 is rejected in u.user: orphan
        "1\t99\t5\t864003600",  # 15 ok, but item 99 is not in u.item: orphan
    ]
    items = [
        item_line(10, "Ok"),  # 1
        "11|Short|01-Jan-1995||http://x|0|1",  # 2 too few fields
        item_line("abc", "Bad id"),  # 3
        "12|Bad flag|01-Jan-1995||http://x|0|2" + "|0" * 17,  # 4 Action flag is 2
        item_line(10, "Duplicate"),  # 5
    ]
    users = [
        "1|24|M|technician|85711",  # 1
        "x2|30|F|other|94043",  # 2 user id not an integer
        "3|200|F|other|94043",  # 3 age out of range: nulled, the row lands
        "4|30|F|other",  # 4 too few fields
        "1|33|F|writer|00000",  # 5 duplicate id
    ]
    src = write_ml(tmp_path / "ml", data, items, users)
    summary = import_movielens(src, paths)

    assert summary.rejected == {"u.data": 11, "u.item": 4, "u.user": 3}
    assert summary.nulled == {"u.data": 0, "u.item": 0, "u.user": 1}
    assert summary.events == 3
    assert summary.orphan_ratings == 2
    assert (summary.orphan_users, summary.orphan_items) == ((2,), (99,))
    # the orphans' user 2 and item 99 land as rows without attributes (their history kept)
    assert (summary.users, summary.items) == (3, 2)
    folder = Path(paths.landing) / "_rejected" / "movielens"
    assert summary.rejects_path == folder

    def rejects(name: str) -> list[tuple]:
        rows = read_jsonl(folder / f"{name}.rejects.jsonl")
        assert {r["source_file"] for r in rows} == {str((src / name).absolute())}
        assert {r["dataset"] for r in rows} == {
            {"u.data": "events", "u.item": "items", "u.user": "users"}[name]
        }
        return [(r["line"], r.get("field"), r["reason"], r["raw"]) for r in rows]

    assert rejects("u.data") == [
        (2, None, "expected 4 tab-separated fields, got 3", data[1]),
        (3, "user_id", "field 1 (user_id): 'x1' is not an integer", data[2]),
        (4, "item_id", "field 2 (item_id): '1.5' is not an integer", data[3]),
        (5, "rating", "field 3 (rating): '6' is outside 1-5", data[4]),
        (6, "rating", "field 3 (rating): '0' is outside 1-5", data[5]),
        (7, "rating", "field 3 (rating): 'good' is not a number", data[6]),
        (8, "timestamp", "field 4 (timestamp): 'yesterday' is not an integer", data[7]),
        (9, "timestamp", "field 4 (timestamp): '-5' is negative", data[8]),
        (10, "timestamp", "field 4 (timestamp): '999999999999' looks like milliseconds since "
         "1970: MovieLens timestamps are seconds (divide by 1000)", data[9]),
        (12, "event_id", "duplicate rating (same user, item, timestamp) of line 1", data[11]),
        (13, None, "expected 4 tab-separated fields, got 5", data[12]),
    ]  # fmt: skip
    assert rejects("u.item") == [
        (2, None, "expected 24 pipe-separated fields, got 7", items[1]),
        (3, "movie_id", "field 1 (movie_id): 'abc' is not an integer", items[2]),
        (4, "Action", "field 7 (Action): '2' is not a 0/1 genre flag", items[3]),
        (5, "movie_id", "duplicate movie id of line 1", items[4]),
    ]
    assert rejects("u.user") == [
        (2, "user_id", "field 1 (user_id): 'x2' is not an integer", users[1]),
        (4, None, "expected 5 pipe-separated fields, got 4", users[3]),
        (5, "user_id", "duplicate user id of line 1", users[4]),
    ]
    nulled = read_jsonl(folder / "u.user.nulled.jsonl")
    assert [(r["line"], r["field"], r["reason"], r["raw"]) for r in nulled] == [
        (3, "age", "field 2 (age): '200' is outside 1-150: landed as null", users[2]),
    ]
    orphans = read_jsonl(folder / "u.data.orphans.jsonl")
    assert [(r["line"], r["user_id"], r["item_id"], r["missing"]) for r in orphans] == [
        (14, 2, 10, "user"),
        (15, 1, 99, "item"),
    ]
    # The first of the duplicates won; the orphans landed anyway.
    assert read_jsonl(landed(paths, "events", D19)) == [
        {"event_id": "ml-1-10-864000000", "ts": "1997-05-19T00:00:00Z", "user_id": 1,
         "item_id": 10, "event_type": "rating", "value": 3.0},
        {"event_id": "ml-1-99-864003600", "ts": "1997-05-19T01:00:00Z", "user_id": 1,
         "item_id": 99, "event_type": "rating", "value": 5.0},
        {"event_id": "ml-2-10-864003600", "ts": "1997-05-19T01:00:00Z", "user_id": 2,
         "item_id": 10, "event_type": "rating", "value": 5.0},
    ]  # fmt: skip
    # user 2 (rejected in u.user, rated: a row without attributes) by its first rating's time
    assert [u["user_id"] for u in read_jsonl(landed(paths, "users", D19))] == [1, 3, 2]
    assert [i.get("title") for i in read_jsonl(landed(paths, "items", D19))] == ["Ok", None]

    # Fixing the input clears the stale rejects files on re-import.
    write_ml(src, data[:1], items[:1], users[:1])
    summary = import_movielens(src, paths)
    assert summary.rejected == {"u.data": 0, "u.item": 0, "u.user": 0}
    assert list(folder.iterdir()) == []


def test_timestamps_outside_movielens_time_are_rejected_not_landed_in_1970(
    tmp_path: Path, paths: Paths
) -> None:
    """A 0, a cut-off last line (a few digits, no newline) or a far-future sentinel would
    otherwise stretch the history over decades of daily partitions; 1995-01-01 passes."""
    tomorrow = int(dt.datetime.now(dt.UTC).timestamp()) + 86_400
    data = [
        "1\t10\t3\t864000000",  # 1 ok (1997-05-19)
        "1\t20\t3\t0",  # 2 1970-01-01
        "2\t10\t4\t788918399",  # 3 the last second of 1994
        "2\t20\t4\t788918400",  # 4 ok: 1995-01-01T00:00:00Z
        f"3\t10\t4\t{tomorrow + 60}",  # 5 after tomorrow
        "3\t20\t4\t87689",  # 6 cut off (written without a final newline below)
    ]
    src = write_ml(tmp_path / "ml", data, BASIC_ITEMS, BASIC_USERS)
    (src / "u.data").write_bytes("\n".join(data).encode())
    summary = import_movielens(src, paths)
    assert (summary.events, summary.rejected["u.data"]) == (2, 4)
    rows = read_jsonl(Path(paths.landing) / "_rejected" / "movielens" / "u.data.rejects.jsonl")
    why = "is not a time from 1995-01-01 to tomorrow (UTC) in seconds since 1970"
    assert [(r["line"], r["field"], r["reason"]) for r in rows] == [
        (n, "timestamp", f"field 4 (timestamp): {data[n - 1].split(chr(9))[3]!r} {why}")
        for n in (2, 3, 5, 6)
    ]
    assert [d.isoformat() for d in paths.landed_days("events")] == ["1995-01-01", "1997-05-19"]


def test_ids_up_to_int64_land_and_each_reject_names_what_is_wrong(
    tmp_path: Path, paths: Paths
) -> None:
    """A 19-digit id up to int64's largest is an id (it was "not an integer"); one beyond,
    a negative one and a timestamp in milliseconds or microseconds each say what they are."""
    ts = 881_250_949  # 1997-12-04
    big = 2**63 - 1
    data = [
        f"{big}\t10\t4\t{ts}",  # 1 ok: int64's largest user id
        f"{big + 1}\t10\t4\t{ts}",  # 2 beyond int64
        f"-5\t10\t4\t{ts}",  # 3 negative
        f"1\t10\t4\t{ts * 1000}",  # 4 milliseconds
        f"1\t20\t4\t{ts * 1_000_000}",  # 5 microseconds
    ]
    src = write_ml(tmp_path / "ml", data, BASIC_ITEMS, BASIC_USERS)
    summary = import_movielens(src, paths)
    assert (summary.events, summary.rejected["u.data"]) == (1, 4)
    landed_users = [e["user_id"] for e in read_jsonl(landed(paths, "events", dt.date(1997, 12, 4)))]
    assert landed_users == [big]
    rows = read_jsonl(Path(paths.landing) / "_rejected" / "movielens" / "u.data.rejects.jsonl")
    assert [(r["line"], r["reason"]) for r in rows] == [
        (2, f"field 1 (user_id): '{big + 1}' is beyond int64 (at most {big})"),
        (3, "field 1 (user_id): '-5' is negative"),
        (4, f"field 4 (timestamp): '{ts * 1000}' looks like milliseconds since 1970: MovieLens "
            "timestamps are seconds (divide by 1000)"),
        (5, f"field 4 (timestamp): '{ts * 1_000_000}' looks like microseconds since 1970: "
            "MovieLens timestamps are seconds (divide by 1000000)"),
    ]  # fmt: skip


def test_utf8_titles_stay_utf8_and_latin1_files_stay_latin1(tmp_path: Path, paths: Paths) -> None:
    """A file that decodes as UTF-8 (a BOM dropped) is read as UTF-8; the ml-100k files,
    latin-1, as latin-1: "Café" lands as "Café" from both, never as "CafÃ©"."""
    src = write_ml(tmp_path / "ml", BASIC_DATA, BASIC_ITEMS, BASIC_USERS)  # latin-1
    import_movielens(src, paths)
    titles = {i["item_id"]: i["title"] for i in read_jsonl(landed(paths, "items", D19))}
    assert titles[20] == "Café au lait (1994)"
    body = "".join(line + "\n" for line in [*BASIC_ITEMS, item_line(40, "Amélie (2001)")])
    (src / "u.item").write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    summary = import_movielens(src, paths)
    assert summary.rejected["u.item"] == 0  # the BOM is not part of line 1's movie id
    landed_items = [
        i for d in paths.landed_days("items") for i in read_jsonl(landed(paths, "items", d))
    ]
    titles = {i["item_id"]: i["title"] for i in landed_items}
    assert (titles[20], titles[40]) == ("Café au lait (1994)", "Amélie (2001)")


def test_a_dimension_file_without_rows_is_said_and_the_cli_counts_orphans(
    tmp_path: Path, paths: Paths, monkeypatch, capsys
) -> None:
    from recassets import cli

    src = write_ml(tmp_path / "ml", BASIC_DATA, BASIC_ITEMS, [])
    said: list[str] = []
    import_movielens(src, paths, progress=said.append)
    assert [m for m in said if m.startswith("warning:")] == [
        f"warning: {src / 'u.user'} holds no line: every rating lands as an orphan"
    ]
    monkeypatch.setenv("RECASSETS_HOME", paths.home)
    cli.main(["import-movielens", str(src)])
    out = capsys.readouterr()
    assert "4 ratings name a user or item missing from u.user / u.item" in out.out + out.err
    write_ml(src, BASIC_DATA, BASIC_ITEMS, BASIC_USERS)  # the failing case: nothing said
    cli.main(["import-movielens", str(src)])
    out = capsys.readouterr()
    assert "missing from u.user" not in out.out + out.err and "warning:" not in out.out + out.err


def test_clean_input_writes_no_rejects(tmp_path: Path, paths: Paths) -> None:
    src = write_ml(tmp_path / "ml", BASIC_DATA, BASIC_ITEMS, BASIC_USERS)
    summary = import_movielens(src, paths)
    assert summary.rejected == {"u.data": 0, "u.item": 0, "u.user": 0}
    assert not summary.rejects_path.exists()


def test_crlf_and_whitespace_around_fields_are_accepted(tmp_path: Path, paths: Paths) -> None:
    src = write_ml(tmp_path / "ml", ["1\t 10 \t3\t864000000\r"], [item_line(10, "A") + "\r"],
                   ["1|24|M|technician|85711\r"])  # fmt: skip
    summary = import_movielens(src, paths)
    assert summary.rejected == {"u.data": 0, "u.item": 0, "u.user": 0}
    assert read_jsonl(landed(paths, "events", D19))[0]["event_id"] == "ml-1-10-864000000"


@pytest.mark.parametrize("missing", ["u.data", "u.item", "u.user"])
def test_missing_file_names_file_folder_and_layout(
    tmp_path: Path, paths: Paths, missing: str
) -> None:
    src = write_ml(tmp_path / "ml", BASIC_DATA, BASIC_ITEMS, BASIC_USERS)
    (src / missing).unlink()
    with pytest.raises(FileNotFoundError) as err:
        import_movielens(src, paths)
    message = str(err.value)
    assert f"{missing} not found in folder {src}" in message
    assert "ml-100k layout" in message
    assert not Path(paths.landing).exists()  # nothing landed before the check


def test_no_valid_rating_raises_after_writing_rejects(tmp_path: Path, paths: Paths) -> None:
    src = write_ml(tmp_path / "ml", ["1\t10\t9\t864000000"], BASIC_ITEMS, BASIC_USERS)
    failed = Path(paths.landing) / "_rejected" / "movielens" / "failed"
    with pytest.raises(ValueError, match=f"has no valid rating .*see {failed}"):
        import_movielens(src, paths)
    rows = read_jsonl(failed / "u.data.rejects.jsonl")
    assert [r["reason"] for r in rows] == ["field 3 (rating): '9' is outside 1-5"]
    (src / "u.data").write_bytes(b"")  # nothing rejected: no folder to point at
    with pytest.raises(ValueError) as err:
        import_movielens(src, paths)
    assert "(0 lines rejected); users and items have no day to land on" in str(err.value)


def test_a_failed_import_leaves_the_landed_imports_records_as_they_were(
    tmp_path: Path, paths: Paths
) -> None:
    """The records under ``_rejected/movielens`` describe what landed: a later import that
    lands nothing writes its own beside them (``failed/``), and the next import that lands
    clears those."""
    users = [*BASIC_USERS, "4|999|F|writer|00000"]  # a bad age: u.user.nulled.jsonl
    src = write_ml(tmp_path / "ml", BASIC_DATA, BASIC_ITEMS, users)
    good = import_movielens(src, paths)
    before = snapshot(paths)
    assert "_rejected/movielens/u.user.nulled.jsonl" in before
    bad = write_ml(tmp_path / "bad", [line.replace("\t", " ") for line in BASIC_DATA],
                   BASIC_ITEMS, BASIC_USERS)  # fmt: skip
    with pytest.raises(ValueError, match="has no valid rating"):
        import_movielens(bad, paths)
    after = snapshot(paths)
    failed = {k: v for k, v in after.items() if "/failed/" in k}
    assert {k: v for k, v in after.items() if k not in failed} == before
    assert sorted(failed) == ["_rejected/movielens/failed/u.data.rejects.jsonl"]
    import_movielens(src, paths)  # lands again: the failure's records are gone
    assert snapshot(paths) == before and good.events == 4


def test_over_long_attributes_land_as_null_not_the_row_quarantined(
    tmp_path: Path, paths: Paths
) -> None:
    """The landing contract quarantines a user or item row for one string over its limit
    (256 characters, a title 1,000): the import nulls that field and notes it, as a bad age."""
    long_job, long_title = "x" * 257, "T" * 1001
    src = write_ml(tmp_path / "ml", ["1\t1\t3\t864000000"],
                   [item_line(1, long_title, "Drama"), item_line(2, "T" * 1000)],
                   [f"1|30|F|{long_job}|00000", f"2|30|{'g' * 300}|{'y' * 256}|00000"])  # fmt: skip
    summary = import_movielens(src, paths)
    users = {u["user_id"]: u for u in read_jsonl(landed(paths, "users", D19))}
    assert "occupation" not in users[1] and users[1]["gender"] == "F"
    assert "gender" not in users[2] and users[2]["occupation"] == "y" * 256  # at the limit: kept
    items = {i["item_id"]: i for i in read_jsonl(landed(paths, "items", D19))}
    assert "title" not in items[1] and items[1]["category"] == "drama"
    assert items[2]["title"] == "T" * 1000
    assert (summary.rejected["u.user"], summary.nulled["u.user"], summary.nulled["u.item"]) == (
        0,
        2,
        1,
    )
    notes = read_jsonl(summary.rejects_path / "u.user.nulled.jsonl")
    assert [(n["line"], n["field"], n["reason"]) for n in notes] == [
        (1, "occupation", "field 4 (occupation): 257 characters, more than 256: landed as null"),
        (2, "gender", "field 3 (gender): 300 characters, more than 256: landed as null"),
    ]
    [title] = read_jsonl(summary.rejects_path / "u.item.nulled.jsonl")
    assert title["reason"] == "field 2 (title): 1,001 characters, more than 1,000: landed as null"


def test_a_bad_age_and_an_over_long_field_on_one_line_are_both_noted(
    tmp_path: Path, paths: Paths
) -> None:
    src = write_ml(tmp_path / "ml", ["1\t1\t3\t864000000"], [item_line(1, "A")],
                   [f"1|abc|F|{'z' * 300}|00000"])  # fmt: skip
    summary = import_movielens(src, paths)
    notes = read_jsonl(summary.rejects_path / "u.user.nulled.jsonl")
    assert [n["field"] for n in notes] == ["age", "occupation"]


def test_unknown_format_is_refused(tmp_path: Path, paths: Paths) -> None:
    src = write_ml(tmp_path / "ml", BASIC_DATA, BASIC_ITEMS, BASIC_USERS)
    with pytest.raises(ValueError, match="unknown landing format 'csv'"):
        import_movielens(src, paths, fmt="csv")


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_reimport_is_byte_identical_even_with_shuffled_input(
    tmp_path: Path, paths: Paths, fmt: str
) -> None:
    # 200 ratings over 5 days: the stray one is 0.5 % of them
    data = [f"{u}\t{i}\t{(u + i) % 5 + 1}\t{864000000 + 3600 * (7 * u + 13 * i)}"
            for u in range(1, 9) for i in range(1, 12)]  # fmt: skip
    items = [item_line(i, f"Film {i}", GENRES[i % 19]) for i in range(1, 12)]
    users = [f"{u}|{10 + 7 * u}|{'MF'[u % 2]}|writer|0000{u}" for u in range(1, 9)]
    src = write_ml(tmp_path / "ml", data, items, users)

    first = import_movielens(src, paths, fmt=fmt)
    before = snapshot(paths)
    again = import_movielens(src, paths, fmt=fmt)
    assert snapshot(paths) == before
    assert again == first

    random.Random(7).shuffle(data)
    random.Random(8).shuffle(users)
    write_ml(src, data, items[::-1], users)
    assert import_movielens(src, paths, fmt=fmt) == first
    assert snapshot(paths) == before
    assert first.events == 88
    assert len([k for k in before if k.startswith("events/")]) == first.days


def test_reimport_removes_files_the_new_input_no_longer_produces(
    tmp_path: Path, paths: Paths
) -> None:
    src = write_ml(tmp_path / "ml", BASIC_DATA, BASIC_ITEMS, BASIC_USERS)
    import_movielens(src, paths, fmt="parquet")
    # Same ratings minus the one of the 20th, now as JSON Lines.
    write_ml(src, BASIC_DATA[:3], BASIC_ITEMS, BASIC_USERS)
    said: list[str] = []
    summary = import_movielens(src, paths, fmt="jsonl", progress=said.append)

    assert summary.landed_days == (D18, D19)
    assert sorted(snapshot(paths)) == [
        "events/dt=1997-05-18/movielens.jsonl",
        "events/dt=1997-05-19/movielens.jsonl",
        "items/dt=1997-05-18/movielens.jsonl",
        "items/dt=1997-05-19/movielens.jsonl",
        "users/dt=1997-05-18/movielens.jsonl",
        "users/dt=1997-05-19/movielens.jsonl",
    ]
    assert len(summary.stale_removed) == 7  # 7 parquet files, one of them a whole day
    assert paths.landed_days("events") == [D18, D19]  # the emptied folder is gone too
    assert not any("warning" in line for line in said)  # no lake yet: nothing to say
    ingested(paths, "raw_events", D19)  # a lake built from the earlier import: not the 18th
    write_ml(src, [BASIC_DATA[0], BASIC_DATA[2]], BASIC_ITEMS, BASIC_USERS)  # the 19th's only
    import_movielens(src, paths, fmt="jsonl", progress=said.append)
    assert not any("warning" in line for line in said)  # a day the lake never held: no loss
    write_ml(src, BASIC_DATA[:3], BASIC_ITEMS, BASIC_USERS)
    import_movielens(src, paths, fmt="jsonl")
    ingested(paths, "raw_events", D18)
    write_ml(src, [BASIC_DATA[0], BASIC_DATA[2]], BASIC_ITEMS, BASIC_USERS)
    import_movielens(src, paths, fmt="jsonl", progress=said.append)
    assert said[-1].startswith("warning: the lake holds 1 day(s) no longer in this input")
    # the 18th is before the first landed day now: no partition unless the window opens to it
    assert (
        "`RECASSETS_START_DATE=1997-05-18 RECASSETS_VOLUME_BAND=off recassets materialize "
        "--first 1997-05-18 --last 1997-05-19`" in said[-1]
    ), said[-1]
    import_movielens(src, paths, fmt="parquet", progress=said.append)  # the same days again
    assert not said[-1].startswith("warning"), said[-1]


def ingested(paths: Paths, table: str, day: dt.date) -> None:
    """The lake of ``paths`` holds ``table``'s ``day``, as ingestion records it (its lineage
    manifest)."""
    from recassets.ingest.lineage import lineage_path

    manifest = Path(lineage_path(paths, table, day.isoformat()))
    manifest.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_text("{}")


def test_an_import_that_would_leave_later_days_of_another_history_in_the_lake_is_refused(
    tmp_path: Path, paths: Paths
) -> None:
    """A shorter or another history imported into a home whose lake holds days after its last:
    those days stayed in the lake, its features and models, and the next step served the old
    history with exit 0. Refused, nothing landed; the same import lands where the lake never
    held those days."""
    src = write_ml(tmp_path / "ml", BASIC_DATA, BASIC_ITEMS, BASIC_USERS)  # the 18th to the 20th
    import_movielens(src, paths)
    ingested(paths, "raw_events", D20)
    before = snapshot(paths)
    write_ml(src, BASIC_DATA[:3], BASIC_ITEMS, BASIC_USERS)  # the 18th and the 19th
    with pytest.raises(ValueError, match=r"lake holds 1 day\(s\) after this input's last day "
                       r"\(1997-05-20\).*fresh RECASSETS_HOME.*nothing was landed"):  # fmt: skip
        import_movielens(src, paths)
    assert snapshot(paths) == before
    Path(paths.lineage, "raw_events", "dt=1997-05-20.json").unlink()
    Path(paths.table("raw_events"), "dt=1997-05-20").mkdir(parents=True)  # no lineage folder
    with pytest.raises(ValueError, match=r"lake holds 1 day\(s\) after"):
        import_movielens(src, paths)
    Path(paths.table("raw_events"), "dt=1997-05-20").rmdir()
    assert import_movielens(src, paths).landed_days == (D18, D19)


def test_other_sources_files_are_left_alone(tmp_path: Path, paths: Paths) -> None:
    other = Path(paths.landing_dir("events", D20)) / "part-00000.jsonl"
    other.parent.mkdir(parents=True)
    other.write_text("{}\n")
    src = write_ml(tmp_path / "ml", BASIC_DATA[:3], BASIC_ITEMS, BASIC_USERS)
    with pytest.raises(FileExistsError, match="already holds files of another source"):
        import_movielens(src, paths)  # neither mixed with them nor removing them
    assert other.read_text() == "{}\n"
    assert not list(Path(paths.landing).rglob("movielens.*"))


def test_parquet_lands_contract_schema_and_values(tmp_path: Path, paths: Paths) -> None:
    src = write_ml(tmp_path / "ml", BASIC_DATA, BASIC_ITEMS, BASIC_USERS)
    import_movielens(src, paths, fmt="parquet")

    # ParquetFile, not read_table: read_table would add a dictionary "dt" column from the
    # hive-style folder name.
    events = pq.ParquetFile(landed(paths, "events", D19, "parquet")).read()
    assert events.schema.remove_metadata() == EVENTS.pyarrow_schema()
    assert events.to_pylist() == [
        {"event_id": "ml-1-20-864003600",
         "ts": dt.datetime(1997, 5, 19, 1, tzinfo=dt.UTC), "user_id": 1, "item_id": 20,
         "event_type": "rating", "value": 5.0, "surface": None, "request_id": None,
         "country": None, "device": None},
        {"event_id": "ml-2-20-864003600",
         "ts": dt.datetime(1997, 5, 19, 1, tzinfo=dt.UTC), "user_id": 2, "item_id": 20,
         "event_type": "rating", "value": 4.0, "surface": None, "request_id": None,
         "country": None, "device": None},
    ]  # fmt: skip
    users = pq.ParquetFile(landed(paths, "users", D18, "parquet")).read()
    assert users.schema.remove_metadata() == USERS.pyarrow_schema()
    assert users.column("user_id").to_pylist() == [1, 3]
    assert users.column("country").to_pylist() == [None, None]
    items = pq.ParquetFile(landed(paths, "items", D19, "parquet")).read()
    assert items.schema.remove_metadata() == ITEMS.pyarrow_schema()
    assert items.to_pylist() == [
        {"item_id": 20, "first_seen": dt.datetime(1997, 5, 19, 1, tzinfo=dt.UTC),
         "category": "comedy", "creator": None, "title": "Café au lait (1994)"},
    ]  # fmt: skip


def test_progress_once_per_file_and_every_30_days(tmp_path: Path, paths: Paths) -> None:
    # One rating a day for 65 days.
    data = [f"1\t1\t3\t{864000000 + 86400 * d}" for d in range(65)]
    src = write_ml(tmp_path / "ml", data, [item_line(1, "A")], ["1|30|F|writer|0"])
    messages: list[str] = []
    import_movielens(src, paths, progress=messages.append)
    assert messages == [
        "layout ml-100k: u.data, u.item, u.user",
        "read u.data: 65 rows, 0 rejected",
        "read u.item: 1 rows, 0 rejected",
        "read u.user: 1 rows, 0 rejected",
        "events: staged 30/65 days",
        "events: staged 60/65 days",
        "events: staged 65/65 days",
        "users: staged 1 users over 1 days",
        "items: staged 1 items over 1 days",
    ]


def test_empty_user_and_item_files_still_land_ratings_as_orphans(
    tmp_path: Path, paths: Paths
) -> None:
    """The ratings land, and each rated user and item as a row without attributes: with no
    row, features kept an id only while the 28-day window held an event of it, and serving
    then forgot what the user rated (an e2e probe's user missing from u.user was offered a
    film it had rated, 4 months on)."""
    src = write_ml(tmp_path / "ml", BASIC_DATA, [], [])
    summary = import_movielens(src, paths)
    assert (summary.events, summary.users, summary.items) == (4, 2, 2)
    assert summary.orphan_ratings == 4 and summary.orphan_users == (1, 2)
    assert [(r["user_id"], r.get("age_bucket"), r.get("gender"))
            for r in read_jsonl(landed(paths, "users", D18))] == [(1, None, None)]  # fmt: skip
    assert [(r["item_id"], r.get("category"), r.get("title"))
            for r in read_jsonl(landed(paths, "items", D19))] == [(20, None, None)]  # fmt: skip
    assert [e["event_id"] for e in read_jsonl(landed(paths, "events", D20))] == [
        "ml-2-10-864086460"
    ]


@pytest.mark.parametrize(
    ("age", "bucket", "note"),
    [("24", "18-24", None), ("0", None, "'0' is outside 1-150"),
     ("200", None, "'200' is outside 1-150"), ("old", None, "'old' is not an integer"),
     ("", None, None)],
)  # fmt: skip
def test_a_bad_age_is_landed_as_null_and_keeps_the_user(
    tmp_path: Path, paths: Paths, age: str, bucket: str | None, note: str | None
) -> None:
    """One bad attribute does not cost the row: the user lands with its gender and occupation,
    the age bucket null, the field named in u.user.nulled.jsonl; its ratings are no orphans. A
    good age writes no note; an empty one is null without a note (the source does not know)."""
    src = write_ml(tmp_path / "ml", ["1\t1\t3\t864000000"], [item_line(1, "A")],
                   [f"1|{age}|F|writer|00000"])  # fmt: skip
    summary = import_movielens(src, paths)
    user = read_jsonl(landed(paths, "users", D19))[0]
    assert (user.get("age_bucket"), user["gender"], user["occupation"]) == (bucket, "F", "writer")
    assert (summary.rejected["u.user"], summary.orphan_ratings) == (0, 0)
    notes = summary.rejects_path / "u.user.nulled.jsonl"
    if note is None:
        assert summary.nulled["u.user"] == 0 and not notes.exists()
    else:
        [row] = read_jsonl(notes)
        assert (row["line"], row["field"], row["raw"]) == (1, "age", f"1|{age}|F|writer|00000")
        assert row["reason"] == f"field 2 (age): {note}: landed as null"


def test_a_utf8_line_inside_a_latin1_file_is_read_as_utf8(tmp_path: Path, paths: Paths) -> None:
    """A title edited in a UTF-8 editor inside the latin-1 u.item lands as written, not as
    "AmÃ©lie"; the file's latin-1 lines stay latin-1 (the failing case: whole-file latin-1)."""
    src = write_ml(tmp_path / "ml", BASIC_DATA, BASIC_ITEMS, BASIC_USERS)  # latin-1: "Café"
    body = (src / "u.item").read_bytes() + (item_line(40, "Amélie (2001)") + "\n").encode()
    (src / "u.item").write_bytes(body)
    said: list[str] = []
    import_movielens(src, paths, progress=said.append)
    items = [i for d in paths.landed_days("items") for i in read_jsonl(landed(paths, "items", d))]
    titles = {i["item_id"]: i["title"] for i in items}
    assert (titles[20], titles[40]) == ("Café au lait (1994)", "Amélie (2001)")
    assert "u.item: latin-1, but 1 line(s) decode as UTF-8: read as UTF-8" in said


def test_windows_1252_quotes_land_as_quotes_not_control_characters(
    tmp_path: Path, paths: Paths
) -> None:
    """Latin-1 reads 0x92 as U+0092, an invisible control character; the title a Windows
    editor wrote has a typographic apostrophe. Bytes Windows-1252 leaves undefined stay
    latin-1's, and latin-1's letters are the same in both."""
    src = write_ml(tmp_path / "ml", BASIC_DATA, BASIC_ITEMS, BASIC_USERS)
    body = (src / "u.item").read_bytes()
    body += (
        item_line(40, "Schindler?s List \u2013 X").encode("cp1252").replace(b"?", b"\x92") + b"\n"
    )
    body += item_line(50, "Odd ? byte").encode("latin-1").replace(b"?", b"\x81") + b"\n"
    (src / "u.item").write_bytes(body)
    import_movielens(src, paths)
    items = [i for d in paths.landed_days("items") for i in read_jsonl(landed(paths, "items", d))]
    titles = {i["item_id"]: i["title"] for i in items}
    assert titles[40] == "Schindler\u2019s List \u2013 X"
    assert (titles[20], titles[50]) == ("Café au lait (1994)", "Odd \x81 byte")


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-le"])
def test_a_utf16_file_is_named_as_such_and_nothing_lands(
    tmp_path: Path, paths: Paths, encoding: str
) -> None:
    src = write_ml(tmp_path / "ml", BASIC_DATA, BASIC_ITEMS, BASIC_USERS)
    (src / "u.data").write_bytes("".join(f"{line}\n" for line in BASIC_DATA).encode(encoding))
    with pytest.raises(ValueError, match=r"u\.data is UTF-16 .*save it as UTF-8 or latin-1"):
        import_movielens(src, paths)
    assert not Path(paths.landing).exists()


def test_a_file_with_carriage_returns_only_is_read_line_by_line(
    tmp_path: Path, paths: Paths
) -> None:
    src = write_ml(tmp_path / "ml", BASIC_DATA, BASIC_ITEMS, BASIC_USERS)
    (src / "u.data").write_bytes("".join(line + "\r" for line in BASIC_DATA).encode())
    summary = import_movielens(src, paths)
    assert (summary.events, summary.rejected["u.data"]) == (4, 0)
    # one line a Unix tool appended ("\n") does not make the file Unix
    (src / "u.data").write_bytes(("\r".join(BASIC_DATA[:3]) + "\r" + BASIC_DATA[3] + "\n").encode())
    summary = import_movielens(src, paths)
    assert (summary.events, summary.rejected["u.data"]) == (4, 0)
    # and a stray \r inside a Unix file's line stays in that line
    (src / "u.item").write_bytes(("\n".join(BASIC_ITEMS[:2]) + "\n" + item_line(30, "A\rB")
                                  + "\n").encode("latin-1"))  # fmt: skip
    summary = import_movielens(src, paths)
    assert (summary.items, summary.rejected["u.item"]) == (3, 0)


def test_re_ratings_land_and_are_counted(tmp_path: Path, paths: Paths, monkeypatch, capsys) -> None:
    """A pair rated again at another time is an event of a real history: both land, counted
    and said; the basic history (no pair twice) counts none."""
    from recassets import cli

    src = write_ml(tmp_path / "ml", BASIC_DATA, BASIC_ITEMS, BASIC_USERS)
    assert import_movielens(src, paths).repeat_ratings == 0
    write_ml(src, [*BASIC_DATA, "1\t10\t5\t864090000"], BASIC_ITEMS, BASIC_USERS)
    summary = import_movielens(src, paths)
    assert (summary.repeat_ratings, summary.events) == (1, 5)
    monkeypatch.setenv("RECASSETS_HOME", paths.home)
    cli.main(["import-movielens", str(src)])
    out = capsys.readouterr()
    assert "1 re-ratings (a user rating an item again later): all landed" in out.out + out.err


def test_the_orphans_are_named_by_id_and_line(
    tmp_path: Path, paths: Paths, monkeypatch, capsys
) -> None:
    from recassets import cli

    src = write_ml(tmp_path / "ml", [*BASIC_DATA, "7\t10\t4\t864000000", "1\t77\t4\t864000000"],
                   BASIC_ITEMS, BASIC_USERS)  # fmt: skip
    monkeypatch.setenv("RECASSETS_HOME", paths.home)
    cli.main(["import-movielens", str(src)])
    out = capsys.readouterr()
    assert "2 ratings name a user or item missing from u.user / u.item (users 7; items 77)" in (
        out.out + out.err
    )
    rows = read_jsonl(Path(paths.landing) / "_rejected" / "movielens" / "u.data.orphans.jsonl")
    assert [(r["line"], r["missing"]) for r in rows] == [(5, "user"), (6, "item")]
    write_ml(src, BASIC_DATA, BASIC_ITEMS, BASIC_USERS)  # fixed: the list goes with them
    assert import_movielens(src, paths).orphan_ratings == 0
    assert not (Path(paths.landing) / "_rejected" / "movielens" / "u.data.orphans.jsonl").exists()


def test_a_device_or_a_pipe_in_place_of_a_file_is_refused_unread(
    tmp_path: Path, paths: Paths
) -> None:
    """/dev/zero behind u.data was read until memory ran out; a pipe waited for a writer. The
    message said "not found" of a file that was there."""
    import os

    src = write_ml(tmp_path / "ml", BASIC_DATA, BASIC_ITEMS, BASIC_USERS)
    (src / "u.data").unlink()
    os.mkfifo(src / "u.data")
    with pytest.raises(ValueError, match="u.data in folder .* is not a regular file"):
        import_movielens(src, paths)
    (src / "u.data").unlink()
    (src / "u.data").symlink_to("/dev/zero")
    with pytest.raises(ValueError, match="not a regular file"):
        import_movielens(src, paths)
    assert not Path(paths.landing).exists()


def test_ratings_far_from_the_rest_are_named_with_how_to_leave_them_out():
    """One stray clock (an hour ago beside 1997) made a 10,669-day history and only its span
    was said; the stretch cut off by the widest gap is named when it is small and far."""
    import numpy as np

    from recassets.movielens import detached

    day = 86_400
    bulk = np.arange(14 * 100) // 100 * day + 874_713_600  # 1997-09-20.., 100 ratings a day
    stray = detached(np.r_[bulk, 1_764_900_000])  # 2025-12-05
    assert stray is not None and stray.startswith("1 rating(s) on 2025-12-05..2025-12-05 lie")
    assert "from the other 1400 (1997-09-20..1997-10-03)" in stray
    assert "`recassets materialize --last 1997-10-03`" in stray
    early = detached(np.r_[0, bulk])  # a timestamp of 0 before them: --first
    assert early is not None and "`recassets materialize --first 1997-09-20`" in early
    assert detached(bulk) is None  # no gap
    assert detached(np.r_[bulk, bulk + 400 * day]) is None  # two halves: no stray side
    assert detached(np.r_[bulk, bulk[-1] + 300 * day]) is None  # a quiet season, not a year


def test_the_demos_window_counts_back_from_the_history_not_from_a_stray_clock(
    tmp_path: Path, paths: Paths
) -> None:
    """``max_days`` (the demo's last three years) counted back from the latest rating: one
    2023 rating beside 1997's landed alone, the 1997 ones "left out before 2020-11-14"."""
    from recassets.movielens import DEMO_MAX_DAYS

    data = [f"{u}\t{i}\t4\t{874_713_600 + 86_400 * d + i}" for d in range(5) for u in (1, 2)
            for i in range(10, 30)]  # fmt: skip
    src = write_ml(tmp_path / "ml", data + ["1\t30\t4\t1700000000"], BASIC_ITEMS, BASIC_USERS)
    said: list[str] = []
    summary = import_movielens(src, paths, max_days=DEMO_MAX_DAYS, progress=said.append)
    # the 1997 ratings land; the stray one is left out, said: landed, it made the demo's
    # range of partitions run over the 26 years between
    assert (summary.events, summary.left_before, summary.window_start) == (200, 0, None)
    assert summary.landed_days[-1] == dt.date(1997, 9, 24) and summary.detached is None
    assert any(m.startswith("left out 1 rating(s) from 1997-09-25 on, over a year") for m in said)
    short = import_movielens(src, paths, max_days=2)  # the window: the history's last 2 days
    assert (short.events, short.left_before) == (80, 120)
    assert short.window_start == dt.date(1997, 9, 23)
    whole = import_movielens(src, paths)  # no window: everything lands, the stray one named
    assert whole.events == 201 and whole.detached is not None


def test_the_demo_is_not_told_to_run_what_it_runs_next(tmp_path: Path, paths: Paths) -> None:
    summary = import_movielens(
        write_ml(tmp_path / "ml", BASIC_DATA, BASIC_ITEMS, BASIC_USERS), paths
    )
    assert summary.describe()[-1].startswith(
        "next: RECASSETS_VOLUME_BAND=off recassets materialize"
    )
    assert not [line for line in summary.describe(next_step=False) if line.startswith("next:")]
