"""Importing a MovieLens release into landing files: ratings, users and items.

Nothing is ever downloaded: point ``import_movielens`` at a release GroupLens ships, unpacked
or as its ``.zip``: ml-100k, ml-1m / ml-10m (``::`` ``.dat`` files) or ml-20m and later (CSV
with a header); ``recassets.movielens_layouts`` says how each one's files are read. Below,
the ml-100k files stand for each layout's own (``u.data``: ``ratings.dat`` / ``ratings.csv``;
``u.item``: ``movies.*``; ``u.user``: ``users.dat``, which only ml-1m has)::

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
landed rating with ``first_seen`` = the earliest valid rating's time: they were in the
catalogue from the start of the observed window, and any later day would invent a time at which
they "appeared". Ratings of a user or item missing from ``u.user`` / ``u.item`` still land
(ingestion does not join); they are counted as ``orphan_ratings``.

Bad lines are never dropped silently: each one goes, with its 1-based line number, raw text,
field and reason, to ``<landing>/_rejected/movielens/<file>.rejects.jsonl`` and is counted in
the summary. Checked: field count, integer ids (0 to int64's largest; a negative one or one
beyond int64 is named as such), rating a number in 1-5 (0.5-5 in the layouts of ml-10m on,
which have half stars; any plain decimal passes: `4.`, `.5`), timestamp an integer (`.0` allowed) from 1995-01-01 to tomorrow (UTC;
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
``<ratings file>.orphans.jsonl`` (the summary names the missing ids). A dimension file with no
valid row (empty, compressed, the wrong file) is said in a warning: a ratings-only history
still lands, every rating an orphan. The records of a file this import does not read (another
layout's, imported before into this home) are removed with its landing files: the records
describe what landed. Parsing is vectorized with Arrow compute (split, regex match, cast): a
1M-line ``u.data`` parses in about two seconds; only rejected and quoted lines get Python-level
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
from recassets.landing import FORMATS, write_landing_file, writing
from recassets.movielens_layouts import GENRES as GENRES  # re-exported: the ml-100k flags
from recassets.movielens_layouts import (
    ML_100K,
    detect,
    parse_items,
    parse_ratings,
    parse_users,
    release_folder,
    unpacked,
    with_bare_rows,
)
from recassets.movielens_lines import Lines
from recassets.paths import Paths

LANDING_NAME = "movielens"
# The dataset each kind of source file feeds: named in each of its rejects (``dataset``).
DATASETS = {"ratings": "events", "items": "items", "users": "users"}

# 1995-01-01T00:00:00Z: before MovieLens' first ratings (ml-latest's begin in 1995-01).
_FIRST_TS = 788_918_400
_SECONDS_PER_DAY = 86_400
# The longest history ``recassets demo --movielens`` lands: three years. A day costs every
# daily asset a partition, and ml-latest's ratings span 1995 to the release (8,000 days and
# more); ML-1M's 1,038 days fit.
DEMO_MAX_DAYS = 1_096
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
    ``orphan_users`` / ``orphan_items`` are the ids rated but missing from the user / item
    file (sorted; their lines in ``<ratings file>.orphans.jsonl``). ``layout`` names the
    release's layout and ``files`` its ratings, item and user file (None: the release has none).
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
    layout: str = ML_100K.name
    files: tuple[str, str, str | None] = ("u.data", "u.item", "u.user")
    left_before: int = 0  # valid ratings before the window (``since`` / ``max_days``)
    window_start: dt.date | None = None

    def describe(self, next_step: bool = True) -> list[str]:
        """What the import landed and set aside, a line each (``recassets import-movielens``),
        and the command to run next (``next_step``: not in the demo, which runs it)."""
        ratings, items, users = self.files
        out = [f"landed {self.events} ratings over {self.days} days, {self.users} users, "
               f"{self.items} items ({self.layout})"]  # fmt: skip
        if users is None:
            out.append(f"no user file in this layout: the {self.users} rated users landed "
                       "without age, gender or occupation")  # fmt: skip
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
            bad = [f for f in (users, items) if f and self.rejected.get(f)]
            out.append(
                f"{self.orphan_ratings} ratings name a user or item missing from "
                f"{' / '.join(f for f in (users, items) if f)} ({missing}"
                + (f"; or on a line of {' / '.join(bad)} that was rejected" if bad else "")
                + "): landed (ingestion does not join), and each such user or item as a row "
                "without attributes (so that its history is kept); each line in "
                f"{self.rejects_path / f'{ratings}.orphans.jsonl'}"
            )
        if self.detached:
            out.append(self.detached)
        if self.left_before:
            out.append(f"left out {self.left_before} ratings before {self.window_start} (the "
                       "import's window; `import-movielens --since DAY` moves it)")  # fmt: skip
        span = (self.landed_days[-1] - self.landed_days[0]).days + 1 if self.landed_days else 0
        if span > DEMO_MAX_DAYS:
            out.append(f"the history spans {span} days: each daily asset builds a partition a "
                       f"day; `recassets demo` lands the last {DEMO_MAX_DAYS}, and "
                       "`import-movielens --since DAY` lands a shorter window")  # fmt: skip
        if next_step:
            out.append("next: RECASSETS_VOLUME_BAND=off recassets materialize (a rating history's "
                       "daily volume swings beyond the raw-events volume band, which would fail the "
                       "quality check; `recassets demo --movielens` sets it)")  # fmt: skip
        return out


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


def _detached_split(seconds: np.ndarray) -> tuple[np.ndarray, int, int, int] | None:
    """The rated days (epoch days, sorted), the index after which the widest gap between two
    of them opens, and the ratings before and after it, when one side is detached
    (``detached``); else None."""
    days, counts = np.unique(np.asarray(seconds, np.int64) // _SECONDS_PER_DAY, return_counts=True)
    if len(days) < 2:
        return None
    at = int(np.argmax(np.diff(days)))  # the widest gap: after days[at]
    head, tail = int(counts[: at + 1].sum()), int(counts[at + 1 :].sum())
    if days[at + 1] - days[at] <= DETACHED_GAP_DAYS or min(head, tail) > DETACHED_SHARE * (
        head + tail
    ):
        return None
    return days, at, head, tail


def detached(seconds: np.ndarray) -> str | None:
    """The ratings cut off from the rest by the history's widest gap between two rated days,
    when it is over ``DETACHED_GAP_DAYS`` and that side holds at most ``DETACHED_SHARE`` of
    them: a line saying which and how to leave them out; else None."""
    split = _detached_split(seconds)
    if split is None:
        return None
    days, at, head, tail = split
    gap = int(days[at + 1] - days[at])
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
            "drop their lines from the ratings file")  # fmt: skip


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
    day_no = seconds[order] // _SECONDS_PER_DAY  # each day taken in its turn: no sorted copy
    starts = np.flatnonzero(np.r_[True, day_no[1:] != day_no[:-1]])
    ends = np.r_[starts[1:], len(day_no)]
    epoch = dt.date(1970, 1, 1)
    written = []
    for k, (start, end) in enumerate(zip(starts, ends, strict=True), 1):
        day = epoch + dt.timedelta(days=int(day_no[start]))
        part = table.take(pa.array(order[start:end]))
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
    for dataset in DATASETS.values():
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
    since: dt.date | str | None = None,
    max_days: int | None = None,
) -> ImportSummary:
    """Land a MovieLens release (``recassets.movielens_layouts``: ml-100k, ml-1m / ml-10m,
    ml-20m and later; a folder or the release's ``.zip``) as daily ``events``, ``users`` and
    ``items`` files.

    Idempotent (same input, same bytes; ``movielens.*`` files this input does not produce are
    removed); refused beside another source's landing files (``landing.others_landed``). Raises ``FileNotFoundError`` (naming the files, the folder and the layouts) when a file is
    missing, before anything is written; ``ValueError`` when the ratings file has no valid
    rating (its rejects are written first), since users and items would then have no day to
    land on.

    ``since`` lands the ratings of that UTC day and after; ``max_days`` the last that many days
    of a longer history (``since`` wins). Each daily asset builds one partition a day, so a
    history of decades (ml-latest's ratings begin in 1995) is thousands of partitions:
    ``recassets demo`` lands the last ``DEMO_MAX_DAYS``. The ratings before are counted and
    said, not rejected; users and items keep their real ``first_seen`` and land on the
    window's first day with a rating when they were seen before it.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown landing format {fmt!r}: use one of {FORMATS}")
    if max_days is not None and max_days < 1:
        raise ValueError(f"MovieLens import: max_days is a number of days, 1 or more: {max_days}")
    if isinstance(since, str):
        try:
            since = dt.date.fromisoformat(since)
        except ValueError:
            raise ValueError(f"MovieLens import: since is a day YYYY-MM-DD: {since!r}") from None
    say = progress or (lambda _msg: None)
    with (
        writing(paths, "MovieLens import", own=lambda f: f.stem == LANDING_NAME),
        unpacked(Path(src_dir), Path(paths.landing, "_rejected", ".unpacked")) as (folder, shown),
    ):
        return _import(folder, shown, paths, fmt, say, (since, max_days))


def _window(
    ts: np.ndarray, since: dt.date | None, max_days: int | None
) -> tuple[int | None, int | None]:
    """The window's first second (None: the start) and, for ``max_days``, its end when a few
    stray ratings lie far after the rest (None: no end): the last days of the history itself
    (from one 2023 rating beside 1997's, they left 1997 out, and it spanned 26 years)."""
    if since is not None:
        return int(dt.datetime.combine(since, dt.time(), dt.UTC).timestamp()), None
    if max_days is None or not len(ts):
        return None, None
    last, end = int(ts.max()) // _SECONDS_PER_DAY, None
    split = _detached_split(ts)
    if split is not None and split[3] <= split[2]:
        last = int(split[0][split[1]])
        end = (last + 1) * _SECONDS_PER_DAY
    first = last - max_days + 1
    return (first * _SECONDS_PER_DAY if first > int(ts.min()) // _SECONDS_PER_DAY else None), end


def _import(
    src: Path,
    shown: str | None,
    paths: Paths,
    fmt: str,
    say: Callable[[str], None],
    window: tuple[dt.date | None, int | None] = (None, None),
) -> ImportSummary:
    if shown is None:  # a folder: the release may sit one or two levels down
        src = release_folder(src)
    layout = detect(src, shown)
    rejects_dir = Path(paths.landing) / "_rejected" / LANDING_NAME
    users_file = layout.users if layout.users and (src / layout.users.name).is_file() else None
    say(f"layout {layout.name}: " + ", ".join(
        s.name for s in (layout.ratings, layout.items, users_file) if s))  # fmt: skip
    latest = int(dt.datetime.now(dt.UTC).timestamp()) + _SECONDS_PER_DAY
    parsers: dict[str, Callable[[Lines], dict[str, np.ndarray]]] = {
        "ratings": lambda lines: parse_ratings(lines, layout, _FIRST_TS, latest),
        "items": lambda lines: parse_items(lines, layout),
        "users": lambda lines: parse_users(lines, layout),
    }
    sources = {"ratings": layout.ratings, "items": layout.items, "users": users_file}
    parsed: dict[str, dict[str, np.ndarray]] = {}
    rejected: dict[str, int] = {}
    nulled: dict[str, int] = {}
    records: list[tuple[str, list[dict], str]] = []  # written once the import will land
    for kind, source in sources.items():
        if source is None:
            continue
        name = source.name
        lines = source.lines(src, f"{shown}{name}" if shown else None)
        parsed[kind] = parsers[kind](lines)
        rejects = lines.rejects(DATASETS[kind])
        notes = lines.nulled(DATASETS[kind])
        records += [(name, rejects, "rejects"), (name, notes, "nulled")]
        rejected[name], nulled[name] = len(rejects), len(notes)
        say(f"read {name}: {len(lines.raw) - len(rejects)} rows, {len(rejects)} rejected"
            + (f", {len(notes)} field(s) landed as null" if notes else ""))  # fmt: skip
        if lines.utf8_lines:
            say(f"{name}: latin-1, but {lines.utf8_lines} line(s) decode as UTF-8: read as UTF-8")

    data_file = layout.ratings.name
    data_shown = f"{shown}{data_file}" if shown else str((src / data_file).absolute())
    every, items = parsed["ratings"], parsed["items"]  # every: first_seen, before any window
    cut, end = _window(every["ts"], *window)
    after = every["ts"] >= end if end is not None else np.zeros(len(every["ts"]), bool)
    inside = (every["ts"] >= (cut or 0)) & ~after
    ratings = every if inside.all() else {k: v[inside] for k, v in every.items()}
    n, before = len(ratings["ts"]), int((~inside).sum() - after.sum())
    cut_day = dt.date(1970, 1, 1) + dt.timedelta(days=(cut or 0) // _SECONDS_PER_DAY)
    if before:
        say(f"left out {before} rating(s) before {cut_day} (the import's window): not landed")
    if end is not None and after.any():
        gap_from = dt.date(1970, 1, 1) + dt.timedelta(days=end // _SECONDS_PER_DAY)
        say(f"left out {int(after.sum())} rating(s) from {gap_from} on, over a year after the rest "
            "(a stray clock?): not landed in the window; `import-movielens` alone lands them")  # fmt: skip
    if n == 0:
        # the failed input's records go beside the landed import's, never over them: what
        # ``_rejected/movielens`` holds describes what landed
        failed = rejects_dir / "failed"
        shutil.rmtree(failed, ignore_errors=True)  # an earlier failure's: this one replaces it
        for name, rows, kind in records:
            _write_rejects(failed, name, rows, kind)
        where = f", see {failed}" if rejected[data_file] else ""
        none = f"no valid rating on or after {cut_day} ({before} before it)" if before else (
            "no valid rating")  # fmt: skip
        raise ValueError(
            f"MovieLens import: {data_shown} has {none} ({rejected[data_file]} "
            f"lines rejected{where}); users and items have no day to land on, and nothing "
            "was landed (an earlier import's landing files and records are as they were)"
        )
    for name, rows, kind in records:
        _write_rejects(rejects_dir, name, rows, kind)
    read = {s.name for s in sources.values() if s}
    for old in rejects_dir.glob("*.jsonl"):  # another layout's, imported before: not this one's
        if old.name.split(".jsonl")[0].rsplit(".", 1)[0] not in read:
            old.unlink()
    shutil.rmtree(rejects_dir / "failed", ignore_errors=True)  # an earlier failure's, now stale
    if users_file is None:  # every rated user, with no attribute: the release has none
        rated = np.unique(ratings["user_id"])
        none = np.full(len(rated), None, dtype=object)
        users = {"user_id": rated, "age_bucket": none, "gender": none, "occupation": none}
    else:
        users = parsed["users"]
    for source, rows, key in ((layout.items, items, "item_id"), (users_file, users, "user_id")):
        if source is not None and len(rows[key]) == 0:  # ratings-only is allowed; said loudly
            named = f"{shown}{source.name}" if shown else src / source.name
            say(
                f"warning: {named} has no valid row ({rejected[source.name]} lines "
                "rejected): empty, compressed or another file? Every rating lands as an orphan"
            )
    uid, iid, ts = ratings["user_id"], ratings["item_id"], ratings["ts"]
    no_user, no_item = ~np.isin(uid, users["user_id"]), ~np.isin(iid, items["item_id"])
    orphan = no_user | no_item
    _write_rejects(rejects_dir, data_file, _orphans(data_shown, ratings, no_user, no_item),
                   "orphans")  # fmt: skip
    # ...and each such user or item lands as a row without attributes, as in a layout without
    # a user file: features keep an id with no row only while the 28-day window holds an event
    # of it, and serving then forgot what the user rated (and offered it again)
    users = with_bare_rows(users, "user_id", np.unique(uid[no_user]))
    items = with_bare_rows(items, "item_id", np.unique(iid[no_item]))
    # a pair rated again at another second (the same second is a duplicate, rejected above)
    repeats = len(uid) - len(np.unique(np.stack([uid, iid], axis=1), axis=0)) if n else 0
    nulls = pa.nulls(n, pa.string())
    events = pa.table(
        {
            "event_id": pc.binary_join_element_wise(
                "ml", *(pc.cast(pa.array(c), pa.string()) for c in (uid, iid, ts)), "-"
            ),
            "ts": _timestamps(ts),
            "user_id": pa.array(uid, pa.int64()),
            "item_id": pa.array(iid, pa.int64()),
            "event_type": pa.repeat("rating", n),
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

    # first seen: at the first rating of every valid one (a window's earlier ones included); a
    # row lands on that day, or on the first landed rating's day when it was seen before: the
    # window's first day may hold no rating, and then opens no partition to ingest it
    start, floor = int(every["ts"].min()), int(ts.min())
    user_seen = _first_seen(users["user_id"], every["user_id"], every["ts"], start)
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
    on_day = np.maximum(user_seen, floor)
    user_files = _land_by_day(paths, "users", user_table, on_day, users["user_id"], fmt)
    say(f"users: landed {n_users} users over {len(user_files)} days")

    item_seen = _first_seen(items["item_id"], every["item_id"], every["ts"], start)
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
    on_day = np.maximum(item_seen, floor)
    item_files = _land_by_day(paths, "items", item_table, on_day, items["item_id"], fmt)
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
        left_before=before,
        window_start=cut_day if cut is not None else None,
        orphan_users=tuple(int(u) for u in np.unique(uid[no_user])),
        orphan_items=tuple(int(i) for i in np.unique(iid[no_item])),
        layout=layout.name,
        files=(data_file, layout.items.name, users_file.name if users_file else None),
    )


def _orphans(
    source: str, ratings: dict[str, np.ndarray], no_user: np.ndarray, no_item: np.ndarray
) -> list[dict]:
    """One record per landed rating whose user or item the dimension files lack."""
    at = np.flatnonzero(no_user | no_item)
    missing = np.where(no_user[at] & no_item[at], "user, item",
                       np.where(no_user[at], "user", "item"))  # fmt: skip
    file = source
    return [
        {"source_file": file, "dataset": "events", "line": int(line), "user_id": int(u),
         "item_id": int(i), "missing": str(m)}
        for line, u, i, m in zip(ratings["line"][at].tolist(), ratings["user_id"][at].tolist(),
                                 ratings["item_id"][at].tolist(), missing.tolist(), strict=True)
    ]  # fmt: skip
