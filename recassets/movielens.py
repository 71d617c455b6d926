"""Importing MovieLens (ml-100k layout) into landing files: ratings, users and items.

Nothing is ever downloaded: point ``import_movielens`` at a folder that already holds the
three files of the ml-100k layout (see the dataset's README, files.grouplens.org)::

    u.data   user id <TAB> item id <TAB> rating <TAB> unix timestamp
    u.item   movie id | title | release date | video release date | IMDb URL | 19 genre flags
             (latin-1; flags in the order of ``GENRES``)
    u.user   user id | age | gender | occupation | zip code

What lands (all under the file name ``movielens.<fmt>``, one file per UTC day):

- ``events``: one ``rating`` event per valid line of ``u.data`` on the UTC date of its
  timestamp; ``value`` is the rating, ``event_id`` is ``ml-<user>-<item>-<ts>``. MovieLens has
  no surface, request, country or device, so those are null.
- ``users``: one row per valid line of ``u.user`` on the day of the user's first rating
  (``first_seen`` = that rating's time); ``age_bucket`` from the age, gender and occupation as
  reported; country and device null (MovieLens records neither; the zip code is not a country).
- ``items``: one row per valid line of ``u.item`` on the day of the item's first rating;
  ``category`` is the first genre flag set, lowercased ("unknown" when none is set); creator is
  null (MovieLens has none).

Users and items that never rated / were never rated still land, on the day of the earliest
rating of the whole import with ``first_seen`` = that rating's time: they were in the catalogue
from the start of the observed window, and any later day would invent a time at which they
"appeared". Ratings of a user or item missing from ``u.user`` / ``u.item`` still land (ingestion
does not join); they are counted as ``orphan_ratings``.

Bad lines are never dropped silently: each one goes, with its 1-based line number, raw text,
field and reason, to ``<landing>/_rejected/movielens/<file>.rejects.jsonl`` and is counted in
the summary. Checked: field count, integer ids (0 to int64's largest; a negative one or one
beyond int64 is named as such), rating a number in 1-5 (half stars pass:
later MovieLens releases have them), timestamp an integer from 1995-01-01 to tomorrow (UTC;
MovieLens' earliest ratings are of 1995-01: a 0, a cut-off line's few digits or a sentinel
like 9999-12-31 would otherwise stretch the history to decades of empty daily partitions; an
export in milliseconds or microseconds is named as such),
genre flags 0/1, and duplicate keys (a later line repeating an earlier one's user, item
and timestamp, or movie id, or user id: the first line wins). Release dates, URLs and zip codes
are not used and not checked.

A bad *attribute* does not cost the row: an age that is no integer from 1 to 150 (0 included:
sources write it for "unknown"; ml-100k's youngest is 7) lands as a null ``age_bucket``, with
the user's id, gender, occupation and ratings kept, and is written, line, field and raw text,
to ``<file>.nulled.jsonl`` beside the rejects (counted in ``nulled``). Rejecting the row would
lose the good fields and turn every rating of that user into an orphan.

Text is UTF-8 when the whole file decodes as UTF-8 (a BOM dropped), else latin-1 (the ml-100k
files) line by line, except a line that decodes as UTF-8 and holds a multi-byte character (a
title edited in a UTF-8 editor inside a latin-1 file): read as latin-1 it would land as
mojibake ("AmÃ©lie"); a latin-1 line is practically never valid UTF-8 (an accented letter
followed by plain text is not). Lines end in ``\n`` (a trailing ``\r`` dropped) or, in a file
with no ``\n`` at all (old Mac exports), in ``\r``.

Also counted and said, not refused: ``repeat_ratings``, lines rating a (user, item) pair an
earlier line rated at another time (both land: a re-rating is an event of a real history; ml-100k
has none), and ``orphan_ratings``, whose lines, ids and missing side are written to
``u.data.orphans.jsonl`` (the summary names the missing ids).
A dimension file with no valid row (empty, compressed, the wrong file) is said in a warning:
a ratings-only history still lands, every rating an orphan. Parsing is vectorized with Arrow compute (split, regex match,
cast): a 1M-line ``u.data`` parses in about two seconds; only rejected lines get Python-level
work. Writing JSON Lines (``recassets.landing``) dominates the time of a large import.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recassets import atomic
from recassets.events import AGE_BUCKETS
from recassets.landing import FORMATS, write_landing_file
from recassets.movielens_lines import Lines
from recassets.paths import Paths

LANDING_NAME = "movielens"
DATA_FILE, ITEM_FILE, USER_FILE = "u.data", "u.item", "u.user"
SOURCE_FILES = (DATA_FILE, ITEM_FILE, USER_FILE)
# The dataset each source file feeds: named in each of its rejects (``dataset``).
SOURCE_DATASETS = {DATA_FILE: "events", ITEM_FILE: "items", USER_FILE: "users"}

GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
_ITEM_FIXED = ("movie_id", "title", "release_date", "video_release_date", "imdb_url")

LAYOUT = (
    "expected the MovieLens ml-100k layout: u.data (user id<TAB>item id<TAB>rating<TAB>unix "
    "timestamp), u.item (movie id|title|release date|video release date|IMDb URL|19 genre "
    "flags, latin-1), u.user (user id|age|gender|occupation|zip code)"
)

# Lower edges of AGE_BUCKETS[1:]: np.digitize(age, _AGE_EDGES) is the bucket's index.
_AGE_EDGES = np.array([18, 25, 35, 45, 55])
_MAX_AGE = 150
# 1995-01-01T00:00:00Z: before MovieLens' first ratings (ml-latest's begin in 1995-01).
_FIRST_TS = 788_918_400
_SECONDS_PER_DAY = 86_400
_PROGRESS_EVERY_DAYS = 30


@dataclass(frozen=True)
class ImportSummary:
    """What one ``import_movielens`` call landed and rejected.

    ``days`` counts the event days landed (``landed_days`` lists them); ``rejected`` maps each
    source file name to its number of rejected lines (0 included); ``rejects_path`` is the
    folder of the ``<file>.rejects.jsonl`` files (a file exists only for a file with rejects).
    ``stale_removed`` lists ``movielens.*`` landing files of an earlier import that this input
    no longer produces (other days, or the other format), removed so the landing area matches
    the input.
    ``nulled`` maps each source file to its fields landed as null (``<file>.nulled.jsonl``);
    ``repeat_ratings`` counts re-ratings (a pair rated again at another time: both land);
    ``orphan_users`` / ``orphan_items`` are the ids rated but missing from ``u.user`` /
    ``u.item`` (sorted; their lines in ``u.data.orphans.jsonl``).
    """

    days: int
    events: int
    users: int
    items: int
    rejected: dict[str, int]
    rejects_path: Path
    orphan_ratings: int
    landed_days: tuple[dt.date, ...] = ()
    stale_removed: tuple[Path, ...] = ()
    nulled: dict[str, int] = field(default_factory=dict)
    repeat_ratings: int = 0
    detached: str | None = None  # ratings far from the rest (``detached``)
    orphan_users: tuple[int, ...] = ()
    orphan_items: tuple[int, ...] = ()

    def describe(self) -> list[str]:
        """What the import landed and set aside, a line each (``recassets import-movielens``)."""
        out = [f"landed {self.events} ratings over {self.days} days, {self.users} users, "
               f"{self.items} items"]  # fmt: skip
        if any(self.rejected.values()):
            out.append(f"rejected lines {self.rejected}: see {self.rejects_path}")
        if any(self.nulled.values()):
            out.append(f"fields landed as null {self.nulled} (their rows landed): see "
                       f"{self.rejects_path}")  # fmt: skip
        if self.repeat_ratings:
            out.append(f"{self.repeat_ratings} re-ratings (a user rating an item again later): "
                       "all landed")  # fmt: skip
        if self.orphan_ratings:
            missing = "; ".join(
                f"{what} {', '.join(map(str, ids[:10]))}"
                + (f" and {len(ids) - 10} more" if len(ids) > 10 else "")
                for what, ids in (("users", self.orphan_users), ("items", self.orphan_items))
                if ids
            )
            out.append(
                f"{self.orphan_ratings} ratings name a user or item missing from u.user / u.item "
                f"({missing}): landed (ingestion does not join), without that user's or item's "
                f"attributes; each line in {self.rejects_path / 'u.data.orphans.jsonl'}"
            )
        if self.detached:
            out.append(self.detached)
        out.append("next: RECASSETS_VOLUME_BAND=off recassets materialize (a rating history's "
                   "daily volume swings beyond the raw-events volume band, which would fail the "
                   "quality check; `recassets demo --movielens` sets it)")  # fmt: skip
        return out


def _check_layout(src: Path) -> None:
    odd = [n for n in SOURCE_FILES if (src / n).exists() and not (src / n).is_file()]
    if odd:  # /dev/zero or a pipe would be read without end, or wait for a writer
        raise ValueError(
            f"MovieLens import: {', '.join(odd)} in folder {src} is not a regular file (a "
            "folder, device or pipe); nothing was read"
        )
    missing = [n for n in SOURCE_FILES if not (src / n).is_file()]
    if missing:
        raise FileNotFoundError(
            f"MovieLens import: {', '.join(missing)} not found in folder {src} "
            f"(nothing is downloaded); {LAYOUT}"
        )


def _parse_ratings(lines: Lines) -> dict[str, np.ndarray]:
    user = lines.integers(0)
    item = lines.integers(1)
    rating = lines.numbers(2, 1, 5)
    ts = lines.integers(3)
    latest = int(dt.datetime.now(dt.UTC).timestamp()) + _SECONDS_PER_DAY
    # an export in milliseconds (or microseconds) is a whole file of them: say so
    for scale, unit in ((1_000, "milliseconds"), (1_000_000, "microseconds")):
        lines.reject_field(
            3,
            (ts // scale >= _FIRST_TS) & (ts // scale <= latest),
            f"looks like {unit} since 1970: MovieLens timestamps are seconds (divide by {scale})",
        )
    lines.reject_field(
        3,
        (ts < _FIRST_TS) | (ts > latest),
        "is not a time from 1995-01-01 to tomorrow (UTC) in seconds since 1970",
    )
    # Two lines with the same user, item and second would share an event_id.
    lines.reject_duplicates(
        {"user": user, "item": item, "ts": ts}, "event_id", "rating (same user, item, timestamp)"
    )
    ok = lines.valid_sub()
    return {"user_id": user[ok], "item_id": item[ok], "value": rating[ok], "ts": ts[ok],
            "line": lines.lines_of(ok)}  # fmt: skip


def _parse_items(lines: Lines) -> dict[str, np.ndarray]:
    item = lines.integers(0)
    flags = []
    for g in range(len(GENRES)):
        pos = len(_ITEM_FIXED) + g
        col = lines.fields[pos]
        good = pc.is_in(col, value_set=pa.array(["0", "1"], pa.large_string()))
        lines.reject_field(pos, ~good.to_numpy(zero_copy_only=False), "is not a 0/1 genre flag")
        flags.append(pc.equal(col, "1").to_numpy(zero_copy_only=False))
    lines.reject_duplicates({"item": item}, "movie_id", "movie id")
    ok = lines.valid_sub()
    flag_matrix = np.column_stack(flags)[ok]
    # argmax: the index of the first flag set, and 0 when none is, which is GENRES[0], "unknown".
    first = np.argmax(flag_matrix, axis=1)
    category = np.array([g.lower() for g in GENRES], dtype=object)[first]
    return {
        "item_id": item[ok],
        "category": category,
        "title": lines.text_or_null(1, _max_chars("title"), pa.array(ok)),
    }


def _parse_users(lines: Lines) -> dict[str, np.ndarray]:
    user = lines.integers(0)
    age, known = lines.integers_or_null(1, 1, _MAX_AGE)
    lines.reject_duplicates({"user": user}, "user_id", "user id")
    ok = lines.valid_sub()
    buckets = np.array(AGE_BUCKETS, dtype=object)[np.digitize(age, _AGE_EDGES)]
    buckets[~known] = None  # a bad age lands null (``nulled``), its user kept
    mask = pa.array(ok)
    return {
        "user_id": user[ok],
        "age_bucket": buckets[ok],
        "gender": lines.text_or_null(2, _max_chars("gender"), mask),
        "occupation": lines.text_or_null(3, _max_chars("occupation"), mask),
    }


def _max_chars(field: str) -> int:
    """The landing contract's longest string for a field of users or items."""
    from recassets.ingest.validation import MAX_CHARS, MAX_CHARS_DEFAULT

    return MAX_CHARS.get(field, MAX_CHARS_DEFAULT)


def _timestamps(seconds: np.ndarray) -> pa.Array:
    return pa.array(seconds * 1_000_000, type=pa.timestamp("us", tz="UTC"))


def _first_seen(ids: np.ndarray, ev_ids: np.ndarray, ev_ts: np.ndarray, default: int) -> np.ndarray:
    """Per id: the earliest ``ev_ts`` among events with that id, else ``default``.
    ``ev_ids`` must not be empty."""
    order = np.lexsort((ev_ts, ev_ids))
    uniq, first = np.unique(ev_ids[order], return_index=True)
    earliest = ev_ts[order][first]
    pos = np.clip(np.searchsorted(uniq, ids), 0, len(uniq) - 1)
    return np.where(uniq[pos] == ids, earliest[pos], default)


# A stretch of ratings this many days from the rest, holding at most this share of them, is
# named by the import: one stray clock (a 2026 timestamp beside 1997's) made a 10,669-day
# history whose daily assets would run for hours, and only the span was said.
DETACHED_GAP_DAYS = 365
DETACHED_SHARE = 0.01


def detached(seconds: np.ndarray) -> str | None:
    """The ratings cut off from the rest by the history's widest gap between two rated days,
    when it is over ``DETACHED_GAP_DAYS`` and that side holds at most ``DETACHED_SHARE`` of
    them: a line saying which and how to leave them out; else None."""
    days, counts = np.unique(np.asarray(seconds, np.int64) // _SECONDS_PER_DAY, return_counts=True)
    if len(days) < 2:
        return None
    at = int(np.argmax(np.diff(days)))  # the widest gap: after days[at]
    gap = int(days[at + 1] - days[at])
    head, tail = int(counts[: at + 1].sum()), int(counts[at + 1 :].sum())
    if gap <= DETACHED_GAP_DAYS or min(head, tail) > DETACHED_SHARE * (head + tail):
        return None
    epoch = dt.date(1970, 1, 1)

    def day(i: int) -> dt.date:
        return epoch + dt.timedelta(days=int(days[i]))

    if tail <= head:
        few, span, rest = tail, f"{day(at + 1)}..{day(len(days) - 1)}", f"{day(0)}..{day(at)}"
        leave = f"--last {day(at)}"
    else:
        few, span, rest = head, f"{day(0)}..{day(at)}", f"{day(at + 1)}..{day(len(days) - 1)}"
        leave = f"--first {day(at + 1)}"
    return (f"{few} rating(s) on {span} lie {gap} days from the other {max(head, tail)} "
            f"({rest}): a clock or unit error? They landed; every day between is a partition "
            f"of each daily asset: leave them out with `recassets materialize {leave}`, or "
            "drop their lines from u.data")  # fmt: skip


def _land_by_day(
    paths: Paths,
    dataset: str,
    table: pa.Table,
    seconds: np.ndarray,
    key: np.ndarray,
    fmt: str,
    on_day: Callable[[int, int], None] | None = None,
) -> list[tuple[dt.date, Path]]:
    """Land ``table`` as one file per UTC day of ``seconds``, rows ordered by (seconds, key)
    so that the same input always writes the same bytes."""
    if table.num_rows == 0:
        return []
    order = np.lexsort((key, seconds))
    table = table.take(pa.array(order))
    day_no = seconds[order] // _SECONDS_PER_DAY
    starts = np.flatnonzero(np.r_[True, day_no[1:] != day_no[:-1]])
    ends = np.r_[starts[1:], len(day_no)]
    epoch = dt.date(1970, 1, 1)
    written = []
    for k, (start, end) in enumerate(zip(starts, ends, strict=True), 1):
        day = epoch + dt.timedelta(days=int(day_no[start]))
        part = table.slice(int(start), int(end - start))
        written.append((day, write_landing_file(paths, dataset, day, part, LANDING_NAME, fmt)))
        if on_day:
            on_day(k, len(starts))
    return written


def _write_rejects(folder: Path, name: str, rejects: list[dict], kind: str = "rejects") -> None:
    """``<folder>/<name>.<kind>.jsonl`` (rejects, nulled, orphans), or none when empty."""
    target = folder / f"{name}.{kind}.jsonl"
    if not rejects:
        target.unlink(missing_ok=True)  # an earlier import's rejects no longer apply
        return
    body = "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in rejects)
    atomic.write_text(target, body)


def _rebuild_command(gone: list[str], landed: list[str]) -> str:
    """The command that rebuilds the ``gone`` days (ISO dates, sorted) and every day after,
    through the ``landed`` ones: a day before the first landed or after the last is no daily
    partition unless ``RECASSETS_START_DATE`` / ``RECASSETS_END_DATE`` open the window to it."""
    first, last = gone[0], max(gone[-1], landed[-1])
    env = (f"RECASSETS_START_DATE={first} " if first < landed[0] else "") + (
        f"RECASSETS_END_DATE={last} " if last > landed[-1] else "")  # fmt: skip
    return f"{env}recassets materialize --first {first} --last {last}"


def _remove_stale(paths: Paths, keep: set[Path]) -> list[Path]:
    """Remove ``movielens.*`` landing files not written by this import (and their then-empty
    day folders, which ``Paths.landed_days`` would still count)."""
    removed = []
    for dataset in SOURCE_DATASETS.values():
        root = Path(paths.landing) / dataset
        if not root.is_dir():
            continue
        for fmt in FORMATS:
            for f in sorted(root.glob(f"dt=*/{LANDING_NAME}.{fmt}")):
                if f.resolve() not in keep:
                    f.unlink()
                    removed.append(f)
                    if not any(f.parent.iterdir()):
                        f.parent.rmdir()
    return removed


def import_movielens(
    src_dir: str | Path,
    paths: Paths,
    fmt: str = "jsonl",
    progress: Callable[[str], None] | None = None,
) -> ImportSummary:
    """Land an ml-100k style folder as daily ``events``, ``users`` and ``items`` files.

    Idempotent: the same input writes byte-identical files, each replaced atomically, and
    ``movielens.*`` files an earlier import left that this input does not produce are removed.
    Raises ``FileNotFoundError`` (naming the files, the folder and the layout) when a file is
    missing, before anything is written; ``ValueError`` when ``u.data`` has no valid rating
    (its rejects are written first), since users and items would then have no day to land on.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown landing format {fmt!r}: use one of {FORMATS}")
    src = Path(src_dir)
    _check_layout(src)
    say = progress or (lambda _msg: None)
    rejects_dir = Path(paths.landing) / "_rejected" / LANDING_NAME

    specs = {
        DATA_FILE: ("\t", "tab", ("user_id", "item_id", "rating", "timestamp"), _parse_ratings),
        ITEM_FILE: ("|", "pipe", _ITEM_FIXED + GENRES, _parse_items),
        USER_FILE: ("|", "pipe", ("user_id", "age", "gender", "occupation", "zip_code"), _parse_users),
    }  # fmt: skip
    parsed: dict[str, dict[str, np.ndarray]] = {}
    rejected: dict[str, int] = {}
    nulled: dict[str, int] = {}
    records: list[tuple[str, list[dict], str]] = []  # written once the import will land
    for name, (sep, label, names, parse) in specs.items():
        lines = Lines(src / name, sep, label, len(names), names)
        parsed[name] = parse(lines)
        rejects = lines.rejects(SOURCE_DATASETS[name])
        notes = lines.nulled(SOURCE_DATASETS[name])
        records += [(name, rejects, "rejects"), (name, notes, "nulled")]
        rejected[name], nulled[name] = len(rejects), len(notes)
        say(f"read {name}: {len(lines.raw) - len(rejects)} rows, {len(rejects)} rejected"
            + (f", {len(notes)} field(s) landed as null" if notes else ""))  # fmt: skip
        if lines.utf8_lines:
            say(f"{name}: latin-1, but {lines.utf8_lines} line(s) decode as UTF-8: read as UTF-8")

    ratings, items, users = parsed[DATA_FILE], parsed[ITEM_FILE], parsed[USER_FILE]
    n = len(ratings["ts"])
    if n == 0:
        # the failed input's records go beside the landed import's, never over them: what
        # ``_rejected/movielens`` holds describes what landed
        failed = rejects_dir / "failed"
        shutil.rmtree(failed, ignore_errors=True)  # an earlier failure's: this one replaces it
        for name, rows, kind in records:
            _write_rejects(failed, name, rows, kind)
        where = f", see {failed}" if rejected[DATA_FILE] else ""
        raise ValueError(
            f"MovieLens import: {src / DATA_FILE} has no valid rating ({rejected[DATA_FILE]} "
            f"lines rejected{where}); users and items have no day to land on, and nothing "
            "was landed (an earlier import's landing files and records are as they were)"
        )
    for name, rows, kind in records:
        _write_rejects(rejects_dir, name, rows, kind)
    shutil.rmtree(rejects_dir / "failed", ignore_errors=True)  # an earlier failure's, now stale
    for name, rows, key in ((ITEM_FILE, items, "item_id"), (USER_FILE, users, "user_id")):
        if len(rows[key]) == 0:  # a ratings-only history is allowed; say it loudly
            say(
                f"warning: {src / name} has no valid row ({rejected[name]} lines rejected): "
                "empty, compressed or another file? Every rating lands as an orphan"
            )
    uid, iid, ts = ratings["user_id"], ratings["item_id"], ratings["ts"]
    no_user, no_item = ~np.isin(uid, users["user_id"]), ~np.isin(iid, items["item_id"])
    orphan = no_user | no_item
    _write_rejects(rejects_dir, DATA_FILE, _orphans(src / DATA_FILE, ratings, no_user, no_item),
                   "orphans")  # fmt: skip
    # a pair rated again at another second (the same second is a duplicate, rejected above)
    repeats = len(uid) - len(np.unique(np.stack([uid, iid], axis=1), axis=0)) if n else 0
    if repeats:
        say(f"{repeats} rating(s) rate a (user, item) pair again at another time: all landed")
    nulls = pa.nulls(n, pa.string())
    events = pa.table(
        {
            "event_id": pc.binary_join_element_wise(
                "ml", *(pc.cast(pa.array(c), pa.string()) for c in (uid, iid, ts)), "-"
            ),
            "ts": _timestamps(ts),
            "user_id": pa.array(uid, pa.int64()),
            "item_id": pa.array(iid, pa.int64()),
            "event_type": pa.array(["rating"] * n, pa.string()),
            "value": pa.array(ratings["value"], pa.float64()),
            "surface": nulls,
            "request_id": nulls,
            "country": nulls,
            "device": nulls,
        }
    )

    def on_event_day(k: int, total: int) -> None:
        if k % _PROGRESS_EVERY_DAYS == 0 or k == total:
            say(f"events: landed {k}/{total} days")

    # Ties on the timestamp are broken by user then item: lexsort takes one key, so combine.
    tie = np.lexsort((iid, uid)).argsort()
    event_files = _land_by_day(paths, "events", events, ts, tie, fmt, on_event_day)

    start = int(ts.min())
    user_seen = _first_seen(users["user_id"], uid, ts, start)
    n_users = len(user_seen)
    user_table = pa.table(
        {
            "user_id": pa.array(users["user_id"], pa.int64()),
            "first_seen": _timestamps(user_seen),
            "country": pa.nulls(n_users, pa.string()),
            "device": pa.nulls(n_users, pa.string()),
            "age_bucket": pa.array(users["age_bucket"], pa.string()),
            "gender": pa.array(users["gender"], pa.string()),
            "occupation": pa.array(users["occupation"], pa.string()),
        }
    )
    user_files = _land_by_day(paths, "users", user_table, user_seen, users["user_id"], fmt)
    say(f"users: landed {n_users} users over {len(user_files)} days")

    item_seen = _first_seen(items["item_id"], iid, ts, start)
    n_items = len(item_seen)
    item_table = pa.table(
        {
            "item_id": pa.array(items["item_id"], pa.int64()),
            "first_seen": _timestamps(item_seen),
            "category": pa.array(items["category"], pa.string()),
            "creator": pa.nulls(n_items, pa.string()),
            "title": pa.array(items["title"], pa.string()),
        }
    )
    item_files = _land_by_day(paths, "items", item_table, item_seen, items["item_id"], fmt)
    say(f"items: landed {n_items} items over {len(item_files)} days")

    keep = {p.resolve() for _, p in event_files + user_files + item_files}
    removed = _remove_stale(paths, keep)
    if removed:
        say(f"removed {len(removed)} stale movielens landing files of an earlier import")
        landed = {d.isoformat() for d, _ in event_files + user_files + item_files}
        gone = sorted({f.parent.name.removeprefix("dt=") for f in removed} - landed)
        if gone and Path(paths.table("raw_events")).is_dir():  # a lake of the earlier import
            say(f"warning: the lake may still hold {len(gone)} day(s) no longer in this input "
                f"({gone[0]}..{gone[-1]}), which materializing the landed days does not reach: "
                f"`{_rebuild_command(gone, [d.isoformat() for d, _ in event_files])}` rebuilds "
                "them (a day without landing files lands empty) and every day after")  # fmt: skip

    return ImportSummary(
        days=len(event_files),
        events=n,
        users=n_users,
        items=n_items,
        rejected=rejected,
        rejects_path=rejects_dir,
        orphan_ratings=int(orphan.sum()),
        landed_days=tuple(d for d, _ in event_files),
        stale_removed=tuple(removed),
        nulled=nulled,
        repeat_ratings=int(repeats),
        detached=detached(ts),
        orphan_users=tuple(int(u) for u in np.unique(uid[no_user])),
        orphan_items=tuple(int(i) for i in np.unique(iid[no_item])),
    )


def _orphans(
    source: Path, ratings: dict[str, np.ndarray], no_user: np.ndarray, no_item: np.ndarray
) -> list[dict]:
    """One record per landed rating whose user or item the dimension files lack."""
    at = np.flatnonzero(no_user | no_item)
    missing = np.where(no_user[at] & no_item[at], "user, item",
                       np.where(no_user[at], "user", "item"))  # fmt: skip
    file = str(source.absolute())
    return [
        {"source_file": file, "dataset": "events", "line": int(line), "user_id": int(u),
         "item_id": int(i), "missing": str(m)}
        for line, u, i, m in zip(ratings["line"][at].tolist(), ratings["user_id"][at].tolist(),
                                 ratings["item_id"][at].tolist(), missing.tolist(), strict=True)
    ]  # fmt: skip
