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

Bad lines are never dropped silently: each one goes, with its 1-based line number, raw text
(its first 4,096 characters; ``raw_length`` then gives the whole length), field and reason, to
``<landing>/_rejected/movielens/<file>.rejects.jsonl`` and is counted in the summary. A file
whose first 1,000 lines all fail one check (spaces for tabs, a date for a timestamp) is the
wrong file: refused there, naming the check and line 1, before a reason and a record are made
for each of its lines (a 2M-line one took 2 GB and wrote a 359 MB rejects file). Checked: field count, integer ids (0 to int64's largest; a negative one or one
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
``<ratings file>.orphans.jsonl`` (the summary names the missing ids). An empty dimension
file is said in a warning: a ratings-only history still lands, every rating an orphan; one
whose every line is rejected is refused (the wrong file, or a header ending in a comma, read
before as a fourth column: every film would land as a bare orphan). A compressed file or an
archive under a release file's name is refused as such by its first bytes. The records of a
file this import does not read (another layout's, imported before into this home) are removed
with its landing files: the records describe what landed. Parsing is vectorized with Arrow compute (split, regex match, cast): a
1M-line ``u.data`` parses in about two seconds; only rejected and quoted lines get Python-level
work. Writing JSON Lines (``recassets.landing``) dominates the time of a large import.

Every file and record is first written to a staging folder in the landing zone and moved in
only once the whole import is written (``recassets.movielens_landing`` says why and how far
that is atomic): a failure before leaves the zone and its records as they were.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recassets.landing import FORMATS, writing
from recassets.movielens_landing import (
    LANDING_NAME,
    Staging,
    check_lake_days,
    orphans,
    oserror_text,
)
from recassets.movielens_layouts import GENRES as GENRES  # re-exported: the ml-100k flags
from recassets.movielens_layouts import (
    ML_100K,
    Layout,
    detect,
    mostly_rejected,
    parse_items,
    parse_ratings,
    parse_users,
    release_folder,
    sweep_unpacked,
    unpacked,
    with_bare_rows,
)
from recassets.movielens_lines import Lines
from recassets.paths import Paths

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
    ``why_rejected``: of each file with rejects, how many and the commonest reason, with its
    first line; ``blank``: the blank lines skipped (a file's lines: rows, rejected, blank).
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
    why_rejected: dict[str, str] = field(default_factory=dict)
    blank: dict[str, int] = field(default_factory=dict)

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
        out += [f"{name}: {why}" for name, why in self.why_rejected.items()]
        if self.blank:
            out.append(f"blank lines skipped (no data, not rejected): {self.blank}")
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
    removed); refused beside another source's landing files (``landing.others_landed``).
    Raises ``FileNotFoundError`` (naming the files, the folder and the layouts) when a file is
    missing, before anything is written; ``ValueError`` when the ratings file has no valid
    rating (its rejects are written to ``failed/``), since users and items would then have no
    day to land on, and when a file is the wrong one (compressed, every line of a user or item
    file rejected, the first 1,000 lines failing one check); ``OSError`` saying that nothing
    was landed when writing fails (a full disk), or that the landing is partly replaced when
    moving the written files in fails part-way. Staging and unpacked folders a killed import
    left are removed first.

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
    scratch = Path(paths.landing, "_rejected", ".unpacked")
    with writing(paths, "MovieLens import", own=lambda f: f.stem == LANDING_NAME):
        if swept := sweep_unpacked(scratch):  # a killed zip import's copy: can be GBs
            say(f"removed {len(swept)} unpacked archive folder(s) a killed import left")
        with unpacked(Path(src_dir), scratch) as (folder, shown):
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
    """Read, check and stage the release (``_stage``), then move it in (``movielens_landing``):
    a failure before the move leaves the landing zone and its records as they were."""
    if shown is None:  # a folder: the release may sit one or two levels down
        src = release_folder(src)
    layout = detect(src, shown)
    landing = Path(paths.landing)
    created = not landing.exists()
    stage = Staging(landing)
    if stage.swept:
        say(f"removed {len(stage.swept)} staging folder(s) a killed import left")
    try:
        summary, keep = _stage(src, shown, layout, paths, stage, fmt, say, window)
        # a lake day this import would take away: refused after its last day, else warned
        lost = check_lake_days(paths, keep, [d.isoformat() for d in summary.landed_days])
    except BaseException as e:
        stage.discard()
        if created:  # a refusal leaves no empty zone behind
            with contextlib.suppress(OSError):
                landing.rmdir()
        if isinstance(e, OSError) and "nothing was landed" not in str(e):  # ENOSPC mid-way
            raise OSError(e.errno, f"MovieLens import: {oserror_text(e)}; nothing was landed (the "
                          "landing zone and its records are as they were)") from e  # fmt: skip
        raise
    try:
        removed = stage.commit(summary.rejects_path, keep)
    finally:
        stage.discard()
    if removed:
        say(f"removed {len(removed)} stale movielens landing files of an earlier import")
    if lost:
        say(lost)
    return dataclasses.replace(summary, stale_removed=tuple(removed))


def _stage(
    src: Path,
    shown: str | None,
    layout: Layout,
    paths: Paths,
    stage: Staging,
    fmt: str,
    say: Callable[[str], None],
    window: tuple[dt.date | None, int | None],
) -> tuple[ImportSummary, set[Path]]:
    """Stage every landing file and record of the import; returns its summary (no stale
    files yet) and the landing files it keeps."""
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
    why: dict[str, str] = {}  # of a file with rejects: how many, and the commonest reason
    blank: dict[str, int] = {}
    dominant = ""  # the ratings file's most common reason: in a "no valid rating" error
    for kind, source in sources.items():
        if source is None:
            continue
        name = source.name
        named = f"{shown}{name}" if shown else str(src / name)
        lines = source.lines(src, f"{shown}{name}" if shown else None)
        parsed[kind] = parsers[kind](lines)
        # written as made, into the staging folder: moved in only once the import lands
        rejected[name] = stage.write_records(name, "rejects", lines.rejects(DATASETS[kind]))
        nulled[name] = stage.write_records(name, "nulled", lines.nulled(DATASETS[kind]))
        total, blank[name] = len(lines.raw), lines.blank_lines
        say(f"read {name}: {total - rejected[name]} rows, {rejected[name]} rejected"
            + (f", {nulled[name]} field(s) landed as null" if nulled[name] else "")
            + (f", {blank[name]} blank line(s) skipped" if blank[name] else ""))  # fmt: skip
        if lines.utf8_lines:
            say(f"{name}: latin-1, but {lines.utf8_lines} line(s) decode as UTF-8: read as UTF-8")
        if rejected[name]:
            why[name] = f"{rejected[name]:,} of {total:,} lines rejected, {lines.commonest()}"
        if kind == "ratings":
            dominant = lines.dominant()
            if most := mostly_rejected(lines, rejected[name]):  # refused whole: says why
                failed = stage.fail(rejects_dir)
                raise ValueError(f"MovieLens import: {named}: {most} Nothing was landed; its "
                                 f"rejects are in {failed}")  # fmt: skip
        elif len(lines.raw) and rejected[name] == len(lines.raw):  # the wrong file: its rows
            # would all land as bare orphans, as a ratings-only layout's, without a word
            failed = stage.fail(rejects_dir)
            raise ValueError(
                f"MovieLens import: every one of the {len(lines.raw):,} lines of {named} was "
                f"rejected ({lines.dominant()}): the wrong file, or its separator or columns? "
                f"Nothing was landed; its rejects are in {failed}"
            )
        del lines  # its text and fields: a large ratings file is not kept while landing

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
        failed = stage.fail(rejects_dir)
        where = f", see {failed}" if rejected[data_file] else ""
        most = f", {dominant}" if dominant else ""
        none = f"no valid rating on or after {cut_day} ({before} before it)" if before else (
            "no valid rating")  # fmt: skip
        raise ValueError(
            f"MovieLens import: {data_shown} has {none} ({rejected[data_file]} "
            f"lines rejected{most}{where}); users and items have no day to land on, and nothing "
            "was landed (an earlier import's landing files and records are as they were)"
        )
    if users_file is None:  # every rated user, with no attribute: the release has none
        rated = np.unique(ratings["user_id"])
        none = np.full(len(rated), None, dtype=object)
        users = {"user_id": rated, "age_bucket": none, "gender": none, "occupation": none}
    else:
        users = parsed["users"]
    for source, rows, key in ((layout.items, items, "item_id"), (users_file, users, "user_id")):
        if source is not None and len(rows[key]) == 0:  # empty: ratings-only is allowed, said
            named = f"{shown}{source.name}" if shown else src / source.name
            say(f"warning: {named} holds no line: every rating lands as an orphan")
    uid, iid, ts = ratings["user_id"], ratings["item_id"], ratings["ts"]
    no_user, no_item = ~np.isin(uid, users["user_id"]), ~np.isin(iid, items["item_id"])
    orphan = no_user | no_item
    stage.write_records(data_file, "orphans", orphans(data_shown, ratings, no_user, no_item))
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
            say(f"events: staged {k}/{total} days")

    # Ties on the timestamp are broken by user then item: lexsort takes one key, so combine.
    tie = np.lexsort((iid, uid)).argsort()
    event_files = stage.land_by_day("events", events, ts, tie, fmt, on_event_day)
    del events

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
    user_files = stage.land_by_day("users", user_table, on_day, users["user_id"], fmt)
    say(f"users: staged {n_users} users over {len(user_files)} days")

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
    item_files = stage.land_by_day("items", item_table, on_day, items["item_id"], fmt)
    say(f"items: staged {n_items} items over {len(item_files)} days")

    keep = {p for _, p in event_files + user_files + item_files}
    summary = ImportSummary(
        days=len(event_files),
        events=n,
        users=n_users,
        items=n_items,
        rejected=rejected,
        rejects_path=rejects_dir,
        orphan_ratings=int(orphan.sum()),
        landed_days=tuple(d for d, _ in event_files),
        nulled=nulled,
        repeat_ratings=int(repeats),
        detached=detached(ts),
        left_before=before,
        window_start=cut_day if cut is not None else None,
        orphan_users=tuple(int(u) for u in np.unique(uid[no_user])),
        orphan_items=tuple(int(i) for i in np.unique(iid[no_item])),
        layout=layout.name,
        files=(data_file, layout.items.name, users_file.name if users_file else None),
        why_rejected=why,
        blank={k: v for k, v in blank.items() if v},
    )
    return summary, keep
