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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recassets import atomic
from recassets.events import AGE_BUCKETS
from recassets.landing import FORMATS, write_landing_file
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
# int64's largest, the largest id (a 19-digit string compared as a string: same length)
_INT64_MAX = str(2**63 - 1)
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
    orphan_users: tuple[int, ...] = ()
    orphan_items: tuple[int, ...] = ()


class _Lines:
    """One source file's lines split into fields, validated with vectorized masks.

    Row positions: "full" positions index every non-blank line; "sub" positions index the lines
    that had the right number of fields (the only ones whose fields exist). Each check marks a
    line bad only if no earlier check did, so a line's reason is its first failing field.
    """

    def __init__(self, path: Path, sep: str, sep_label: str, n_fields: int, names: tuple[str, ...]):
        self.path = path
        self.names = names
        data = path.read_bytes().removeprefix(b"\xef\xbb\xbf")
        if b"\n" not in data and b"\r" in data:  # old Mac line ends: \r alone
            data = data.replace(b"\r", b"\n")
        self.utf8_lines = 0  # lines read as UTF-8 inside a latin-1 file
        try:  # a file that decodes as UTF-8 is UTF-8: latin-1 would read "é" as "Ã©"
            text, self.encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:  # the ml-100k files; latin-1 decodes every byte
            text, self.utf8_lines = _decode_latin1_lines(data)
            self.encoding = "latin-1"
        # split("\n"), not splitlines(): latin-1 text may hold \x85 or \x0c inside a title.
        # The empty piece after the final newline is blank, hence skipped like any blank line.
        pieces = text.split("\n")
        raw = pc.utf8_rtrim(pa.array(pieces, pa.large_string()), characters="\r")
        # Blank lines carry no data: skipped, but line numbers still count them.
        blank = pc.equal(pc.utf8_trim_whitespace(raw), "").to_numpy(zero_copy_only=False)
        self.raw = raw.filter(pa.array(~blank))
        self.line_no = np.flatnonzero(~blank) + 1
        parts = pc.split_pattern(self.raw, pattern=sep)
        counts = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
        ok = counts == n_fields
        self.ok_idx = np.flatnonzero(ok)
        sub = parts.filter(pa.array(ok))
        self.fields = [pc.utf8_trim_whitespace(pc.list_element(sub, i)) for i in range(n_fields)]
        self.bad = ~ok
        self.nulls: dict[int, tuple[str, str]] = {}  # sub row -> (field, reason): landed null
        self.reasons: dict[int, tuple[str | None, str]] = {
            int(i): (None, f"expected {n_fields} {sep_label}-separated fields, got {counts[i]}")
            for i in np.flatnonzero(~ok)
        }

    def value(self, position: int, sub_i: int) -> str:
        return self.fields[position][sub_i].as_py()

    def reject(self, bad_sub: np.ndarray, fld: str | None, reason: Callable[[int], str]) -> None:
        """Mark the sub rows in ``bad_sub`` rejected (unless already), ``reason(sub_i)`` says why."""
        full = np.zeros(len(self.raw), dtype=bool)
        full[self.ok_idx] = bad_sub
        new = np.flatnonzero(full & ~self.bad)
        self.bad[new] = True
        sub_of = np.searchsorted(self.ok_idx, new)
        for i, s in zip(new.tolist(), sub_of.tolist(), strict=True):
            self.reasons[i] = (fld, reason(s))

    def reject_field(self, position: int, bad_sub: np.ndarray, what: str) -> None:
        name = self.names[position]
        self.reject(
            bad_sub, name,
            lambda s: f"field {position + 1} ({name}): {self.value(position, s)!r} {what}",
        )  # fmt: skip

    def integers(self, position: int, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Field ``position`` as int64 (sub length; 0 where invalid); rejects non-integers and
        values outside [lo, hi]."""
        col = self.fields[position]
        # Up to 18 digits always fits int64; 19 digits do up to int64's largest (digit strings
        # of one length compare as numbers), so the cast below cannot overflow.
        digits = pc.match_substring_regex(col, r"^\d{1,19}$")
        nineteen = pc.equal(pc.utf8_length(col), 19)
        good = pc.and_(digits, pc.or_(pc.invert(nineteen), pc.less_equal(col, _INT64_MAX)))
        for pattern, what in ((r"^-\d+$", "is negative"),
                              (r"^\d+$", f"is beyond int64 (at most {_INT64_MAX})")):  # fmt: skip
            named = pc.and_(pc.invert(good), pc.match_substring_regex(col, pattern))
            self.reject_field(position, named.to_numpy(zero_copy_only=False), what)
        self.reject_field(position, ~good.to_numpy(zero_copy_only=False), "is not an integer")
        values = pc.cast(pc.if_else(good, col, "0"), pa.int64()).to_numpy()
        out = (values < lo) | (values > hi if hi is not None else False)
        self.reject_field(position, out, f"is outside {lo}-{hi if hi is not None else ''}")
        return values

    def integers_or_null(self, position: int, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """Field ``position`` as int64 (sub length) and, second, where it is kept: a value
        that is no integer in [lo, hi] is nulled, not its line (``nulled``); an empty field is
        null without a note (the source says it does not know)."""
        col = self.fields[position]
        digits = pc.match_substring_regex(col, r"^\d{1,9}$").to_numpy(zero_copy_only=False)
        values = pc.cast(pc.if_else(pa.array(digits), col, "0"), pa.int64()).to_numpy()
        keep = digits & (values >= lo) & (values <= hi)
        empty = pc.equal(col, "").to_numpy(zero_copy_only=False)
        name = self.names[position]
        for sub_i in np.flatnonzero(~keep & ~empty).tolist():
            what = f"is outside {lo}-{hi}" if digits[sub_i] else "is not an integer"
            self.nulls[sub_i] = (name, f"field {position + 1} ({name}): "
                                       f"{self.value(position, sub_i)!r} {what}: landed as null")  # fmt: skip
        return values, keep

    def numbers(self, position: int, lo: float, hi: float) -> np.ndarray:
        """Field ``position`` as float64 in [lo, hi] (plain decimal notation only)."""
        col = self.fields[position]
        good = pc.match_substring_regex(col, r"^\d{1,6}(\.\d{1,6})?$")
        self.reject_field(position, ~good.to_numpy(zero_copy_only=False), "is not a number")
        values = pc.cast(pc.if_else(good, col, "0"), pa.float64()).to_numpy()
        self.reject_field(position, (values < lo) | (values > hi), f"is outside {lo:g}-{hi:g}")
        return values

    def reject_duplicates(self, keys: dict[str, np.ndarray], fld: str, what: str) -> None:
        """Reject later lines whose ``keys`` repeat an earlier valid line's (first one wins)."""
        valid = ~self.bad[self.ok_idx]
        frame = pd.DataFrame({k: v[valid] for k, v in keys.items()})
        frame["sub"] = np.flatnonzero(valid)
        dup = frame.duplicated(list(keys), keep=False).to_numpy()
        if not dup.any():
            return
        d = cast(pd.DataFrame, frame[dup])  # rows by mask (pandas is untyped: any __getitem__)
        first_sub = d.groupby(list(keys))["sub"].transform("min").to_numpy()
        later = d["sub"].to_numpy() != first_sub
        first_line = dict(
            zip(d["sub"].to_numpy()[later].tolist(),
                self.line_no[self.ok_idx[first_sub[later]]].tolist(), strict=True)
        )  # fmt: skip
        bad_sub = np.zeros(len(self.ok_idx), dtype=bool)
        bad_sub[list(first_line)] = True
        self.reject(bad_sub, fld, lambda s: f"duplicate {what} of line {first_line[s]}")

    def valid_sub(self) -> np.ndarray:
        """Boolean mask over sub rows: the lines that passed every check."""
        return ~self.bad[self.ok_idx]

    def rejects(self, dataset: str) -> list[dict]:
        return self._records(dataset, sorted(self.reasons.items()))

    def nulled(self, dataset: str) -> list[dict]:
        """The fields landed as null, of the lines that landed (a rejected line is in
        ``rejects`` with its own reason)."""
        full = [(int(self.ok_idx[s]), note) for s, note in sorted(self.nulls.items())]
        return self._records(dataset, [(i, note) for i, note in full if not self.bad[i]])

    def _records(self, dataset: str, rows: list[tuple[int, tuple[str | None, str]]]) -> list[dict]:
        source = str(self.path.absolute())
        return [
            {
                "source_file": source,
                "dataset": dataset,
                "line": int(self.line_no[i]),
                "field": fld,
                "raw": self.raw[i].as_py(),
                "reason": reason,
            }
            for i, (fld, reason) in rows
        ]

    def lines_of(self, sub_mask: np.ndarray) -> np.ndarray:
        """The 1-based line numbers of the sub rows in ``sub_mask``."""
        return self.line_no[self.ok_idx[sub_mask]]


def _decode_latin1_lines(data: bytes) -> tuple[str, int]:
    """``data`` as latin-1, line by line, except lines that decode as UTF-8 and hold a
    multi-byte character; returns the text and how many lines were read as UTF-8."""
    out, utf8 = [], 0
    for line in data.split(b"\n"):
        if line.isascii():
            out.append(line.decode("ascii"))
            continue
        try:
            out.append(line.decode("utf-8"))
            utf8 += 1
        except UnicodeDecodeError:
            out.append(line.decode("latin-1"))
    return "\n".join(out), utf8


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


def _parse_ratings(lines: _Lines) -> dict[str, np.ndarray]:
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


def _parse_items(lines: _Lines) -> dict[str, np.ndarray]:
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
    title = lines.fields[1].filter(pa.array(ok)).to_pylist()
    return {
        "item_id": item[ok],
        "category": category,
        "title": np.array([t if t else None for t in title], dtype=object),
    }


def _parse_users(lines: _Lines) -> dict[str, np.ndarray]:
    user = lines.integers(0)
    age, known = lines.integers_or_null(1, 1, _MAX_AGE)
    lines.reject_duplicates({"user": user}, "user_id", "user id")
    ok = lines.valid_sub()
    buckets = np.array(AGE_BUCKETS, dtype=object)[np.digitize(age, _AGE_EDGES)]
    buckets[~known] = None  # a bad age lands null (``nulled``), its user kept
    mask = pa.array(ok)

    def text(pos: int) -> np.ndarray:
        return np.array([v if v else None for v in lines.fields[pos].filter(mask).to_pylist()],
                        dtype=object)  # fmt: skip

    return {
        "user_id": user[ok],
        "age_bucket": buckets[ok],
        "gender": text(2),
        "occupation": text(3),
    }


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
    for name, (sep, label, names, parse) in specs.items():
        lines = _Lines(src / name, sep, label, len(names), names)
        parsed[name] = parse(lines)
        rejects = lines.rejects(SOURCE_DATASETS[name])
        notes = lines.nulled(SOURCE_DATASETS[name])
        _write_rejects(rejects_dir, name, rejects)
        _write_rejects(rejects_dir, name, notes, "nulled")
        rejected[name], nulled[name] = len(rejects), len(notes)
        say(f"read {name}: {len(lines.raw) - len(rejects)} rows, {len(rejects)} rejected"
            + (f", {len(notes)} field(s) landed as null" if notes else ""))  # fmt: skip
        if lines.utf8_lines:
            say(f"{name}: latin-1, but {lines.utf8_lines} line(s) decode as UTF-8: read as UTF-8")

    ratings, items, users = parsed[DATA_FILE], parsed[ITEM_FILE], parsed[USER_FILE]
    n = len(ratings["ts"])
    if n == 0:
        where = f", see {rejects_dir}" if rejected[DATA_FILE] else ""
        raise ValueError(
            f"MovieLens import: {src / DATA_FILE} has no valid rating ({rejected[DATA_FILE]} "
            f"lines rejected{where}); users and items have no day to land on, and nothing "
            "was landed (an earlier import's landing files are as they were)"
        )
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
