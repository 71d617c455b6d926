"""The MovieLens releases ``recassets.movielens`` imports, and how each one's files parse.

GroupLens ships its releases in three layouts (files.grouplens.org/datasets/movielens, each
release's README); the importer takes any of them, from the folder the archive unpacks to or
from the ``.zip`` itself:

- **ml-100k**: ``u.data`` (tab-separated user, item, rating 1-5, unix seconds), ``u.item``
  (``|``-separated, 19 genre flags), ``u.user`` (``|``: id, age, gender, occupation, zip).
- **ml-1m, ml-10m** (``::``-separated ``.dat``): ``ratings.dat`` (UserID::MovieID::Rating::
  Timestamp; half stars from ml-10m on), ``movies.dat`` (MovieID::Title::Genres, the genres
  ``|``-separated names), and in ml-1m only ``users.dat`` (UserID::Gender::Age::Occupation::
  Zip-code, the age and occupation as the README's codes).
- **ml-20m, ml-25m, ml-32m, ml-latest, ml-latest-small** (CSV with a header line):
  ``ratings.csv`` (userId,movieId,rating,timestamp) and ``movies.csv`` (movieId,title,genres,
  titles quoted where they hold a comma). No user file: each rated user lands with no
  attribute. Columns are found by their header names, so another column order or an extra
  column reads the same; a missing one is refused naming the header.

A folder is read as the first layout whose ratings file it holds (``u.data``, ``ratings.dat``,
``ratings.csv``), and the import says which. Tags, links and genome files are not read.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import os
import shutil
import tempfile
import zipfile
import zlib
from collections.abc import Generator, Iterable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from recassets.events import AGE_BUCKETS
from recassets.movielens_lines import Lines, sniff

GENRES = (
    "unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
    "Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance",
    "Sci-Fi", "Thriller", "War", "Western",
)  # fmt: skip
_ITEM_FIXED = ("movie_id", "title", "release_date", "video_release_date", "imdb_url")
# ml-1m's README: the occupation codes of users.dat
OCCUPATIONS = (
    "other", "academic/educator", "artist", "clerical/admin", "college/grad student",
    "customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker",
    "K-12 student", "lawyer", "programmer", "retired", "sales/marketing", "scientist",
    "self-employed", "technician/engineer", "tradesman/craftsman", "unemployed", "writer",
)  # fmt: skip
NO_GENRE = "(no genres listed)"  # ml-latest's movies.csv for a film without genres
# ml-20m and later name a genre otherwise than ml-100k and ml-1m: one film, one category
GENRE_ALIASES = {"children": "children's"}

# Lower edges of AGE_BUCKETS[1:]: np.digitize(age, _AGE_EDGES) is the bucket's index. ml-1m's
# age codes are the lower edges of its own ranges (1: under 18, 18-24, 25-34, 35-44, 45-49,
# 50-55, 56+) and land in the bucket of that edge: 50-55 in 45-54, its 55-year-olds included.
# A number that is no code (30) is read as an age, as an ml-100k age is.
_AGE_EDGES = np.array([18, 25, 35, 45, 55])
_MAX_AGE = 150


@dataclass(frozen=True)
class Source:
    """One file of a layout: its name, field separator and fields. ``header``: the file starts
    with a header line, and each field is found there by one of its names (lowercase).
    ``joined``: the field that may hold the separator itself (``joined_at``)."""

    name: str
    sep: str
    sep_label: str
    fields: tuple[str, ...]
    header: dict[str, tuple[str, ...]] | None = None
    joined: str | None = None

    def lines(self, folder: Path, shown: str | None = None) -> Lines:
        rejoin = None
        if self.joined is not None:
            rejoin = functools.partial(joined_at, len(self.fields),
                                       self.fields.index(self.joined), self.sep)  # fmt: skip
        return Lines(folder / self.name, self.sep, self.sep_label, len(self.fields), self.fields,
                     header=self.header, quoted=self.sep == ",", shown=shown, rejoin=rejoin)  # fmt: skip


def joined_at(n: int, at: int, sep: str, got: list[str]) -> list[str]:
    """A line split into more than ``n`` fields (``got``) as ``n``, the field at ``at`` holding
    the separator: ml-1m's ``2::Foo::Bar (1999)::Drama`` is id 2, title "Foo::Bar (1999)",
    genres Drama (the id is the first field and the genres the last, and neither holds "::";
    the line was rejected and its film an orphan). A separator ending the line is no field,
    as in any file (``...::Drama::``). A last field of digits is no genre but a ratings
    line's timestamp: left wide, rejected, so a ratings.dat as movies.dat is still refused."""
    if len(got) > n and not got[-1].strip():
        got = got[:-1]
    extra = len(got) - n
    if extra <= 0 or got[-1].strip().isdigit():
        return got
    return [*got[:at], sep.join(got[at : at + extra + 1]), *got[at + extra + 1 :]]


@dataclass(frozen=True)
class Layout:
    name: str
    ratings: Source
    items: Source
    users: Source | None  # None: the release has no user file
    genre_flags: bool  # ml-100k's 19 flags, else a "|"-separated list of names
    min_rating: float  # half stars (0.5) from ml-10m on
    occupation_codes: bool = False  # ml-1m's users.dat

    @property
    def files(self) -> tuple[Source, ...]:
        return (self.ratings, self.items) + ((self.users,) if self.users else ())

    def describe(self) -> str:
        return f"{self.name} ({', '.join(s.name for s in self.files)})"


_RATING_FIELDS = ("user_id", "item_id", "rating", "timestamp")
ML_100K = Layout(
    "ml-100k",
    Source("u.data", "\t", "tab", _RATING_FIELDS),
    Source("u.item", "|", "pipe", _ITEM_FIXED + GENRES),
    Source("u.user", "|", "pipe", ("user_id", "age", "gender", "occupation", "zip_code")),
    genre_flags=True,
    min_rating=1,
)
ML_1M = Layout(
    "ml-1m / ml-10m",
    Source("ratings.dat", "::", "'::'", _RATING_FIELDS),
    Source("movies.dat", "::", "'::'", ("movie_id", "title", "genres"), joined="title"),
    Source("users.dat", "::", "'::'", ("user_id", "gender", "age", "occupation", "zip_code")),
    genre_flags=False,
    min_rating=0.5,
    occupation_codes=True,
)
ML_LATEST = Layout(
    "ml-20m / ml-25m / ml-32m / ml-latest",
    Source("ratings.csv", ",", "comma", _RATING_FIELDS,
           header={"user_id": ("userid", "user_id"), "item_id": ("movieid", "movie_id", "item_id"),
                   "rating": ("rating",), "timestamp": ("timestamp",)}),
    Source("movies.csv", ",", "comma", ("movie_id", "title", "genres"),
           header={"movie_id": ("movieid", "movie_id", "item_id"), "title": ("title",),
                   "genres": ("genres",)}),
    None,
    genre_flags=False,
    min_rating=0.5,
)  # fmt: skip
LAYOUTS = (ML_100K, ML_1M, ML_LATEST)
EXPECTED = (
    "expected a MovieLens release as GroupLens ships it, unpacked or as its .zip: ml-100k "
    "(u.data, u.item, u.user), ml-1m / ml-10m (ratings.dat, movies.dat, users.dat where the "
    "release has it) or ml-20m and later (ratings.csv, movies.csv)"
)


def detect(src: Path, shown: str | None = None) -> Layout:
    """The layout of folder ``src`` (named ``shown``: an archive's folder): the one whose
    ratings file it holds, with every file it needs (``users.dat`` is optional: ml-10m has
    none). Refuses before anything is read, naming what is missing (a folder with ``u.item``
    but no ``u.data``: ``u.data``), and a folder holding two layouts' ratings files, which
    would otherwise import one of them without a word."""
    where = shown or f"folder {src}"
    held = [lay for lay in LAYOUTS if (src / lay.ratings.name).exists()]
    if len(held) > 1:
        raise ValueError(
            f"MovieLens import: {where} holds the ratings of several releases ("
            f"{', '.join(f'{lay.ratings.name}: {lay.name}' for lay in held)}): keep one of "
            "them in a folder of its own; nothing was read"
        )
    present = held or [lay for lay in LAYOUTS if any((src / f.name).exists() for f in lay.files)]
    for layout in present[:1]:  # no ratings file: the layout whose other files are there
        needed = [s.name for s in layout.files if s is not layout.users or layout is ML_100K]
        odd = [n for n in needed + [s.name for s in layout.files]
               if (src / n).exists() and not (src / n).is_file()]  # fmt: skip
        if odd:  # /dev/zero or a pipe would be read without end, or wait for a writer
            raise ValueError(
                f"MovieLens import: {', '.join(dict.fromkeys(odd))} in {where} is not a "
                "regular file (a folder, device or pipe); nothing was read"
            )
        # a link to nothing is no absent file: an optional users.dat read as "none in this
        # layout" landed every user without attributes
        if dangling := [s.name for s in layout.files if _dangling(src / s.name)]:
            raise FileNotFoundError(
                f"MovieLens import: {', '.join(dangling)} in {where} is a link to "
                f"{os.readlink(src / dangling[0])}, which does not exist; nothing was read"
            )
        missing = [n for n in needed if not (src / n).is_file()]
        if missing:
            found = [n for n in needed if n not in missing]
            raise FileNotFoundError(
                f"MovieLens import: {', '.join(missing)} not found in {where}{_cased(src)} "
                f"beside {', '.join(found)} (the {layout.name} layout; nothing is "
                f"downloaded); {EXPECTED}"
            )
        return layout
    raise FileNotFoundError(
        f"MovieLens import: no u.data, ratings.dat or ratings.csv in {where}{_cased(src)} "
        f"(nothing is downloaded); {EXPECTED}"
    )


def _dangling(path: Path) -> bool:
    return path.is_symlink() and not path.exists()


def _cased(src: Path) -> str:
    """``_near`` of the names in folder ``src``."""
    return _near(p.name for p in src.iterdir())


# what a compressed copy of a release's file ends in (``u.data.gz``)
_PACKED = {".gz": "gunzip", ".bz2": "bunzip2", ".xz": "unxz", ".zst": "unzstd", ".zip": "unzip"}


def _near(names: Iterable[str], archive: bool = False) -> str:
    """A hint naming the files (or an archive's members: ``archive``) among ``names`` that are
    a release's file under other case (``U.ITEM``) or compressed (``u.data.gz``), or ""."""
    release = {f.name for lay in LAYOUTS for f in lay.files}
    unpack, then = ("unpack the archive, ", ", then import the folder") if archive else ("", "")
    cased, hints = [], []
    for name in sorted(set(names)):
        suffix = next((x for x in _PACKED if name.lower().endswith(x)), None)
        if suffix is not None and name[: -len(suffix)].lower() in release:
            hints.append(f"{name} is compressed: {unpack}decompress it ({_PACKED[suffix]}){then}")
        elif name not in release and name.lower() in release:
            cased.append(name)
    if cased:
        hints.insert(0, f"{', '.join(cased)}: the release's names are lower case, "
                        f"{unpack}rename them{then}")  # fmt: skip
    return f" ({'; '.join(hints)})" if hints else ""


def release_folder(src: Path) -> Path:
    """``src``, or the one folder under it (two levels at most, as an unpacked archive
    nests it: ``ml-100k/`` in a download folder) that holds a release's ratings file when
    ``src`` itself holds none. Several such folders are refused, each named (``detect`` said
    "no u.data, ratings.dat or ratings.csv" of a folder holding ml-100k/ and ml-1m/)."""
    if any((src / lay.ratings.name).exists() for lay in LAYOUTS):
        return src
    found = {
        p.relative_to(src)
        for lay in LAYOUTS
        for pattern in (f"*/{lay.ratings.name}", f"*/*/{lay.ratings.name}")
        for p in src.glob(pattern)
        if "__MACOSX" not in p.parts and p.is_file()
    }
    if len(found) > 1:
        raise ValueError(
            f"MovieLens import: the folder {src} holds several releases ("
            f"{', '.join(sorted(map(str, found)))}): import the folder of the one you want; "
            "nothing was read"
        )
    return src / found.pop().parent if found else src


def with_bare_rows(rows: dict[str, np.ndarray], key: str, ids: np.ndarray) -> dict[str, np.ndarray]:
    """``rows`` (parsed user or item rows) and a row for each of ``ids``, its other fields
    None: an id the ratings name and the user or item file lacks."""
    if not len(ids):
        return rows
    out = {}
    for name, values in rows.items():
        more = ids.astype(values.dtype) if name == key else np.full(len(ids), None, dtype=object)
        out[name] = np.concatenate([values.astype(object) if name != key else values, more])
    return out


# what a damaged, encrypted or unsupported member raises while it is read
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)


@contextlib.contextmanager
def unpacked(src: Path, scratch: Path) -> Generator[tuple[Path, str | None]]:
    """``src`` as a folder: itself, or a ``.zip`` of a release with its layout's files copied
    out to a folder under ``scratch`` (removed after). Yields the folder and, for an archive,
    what names a file in it (``<zip>!<folder>/``). An archive holding several releases, or a
    member that cannot be read (damaged, encrypted, a compression Python lacks) is refused in
    one line before anything lands."""
    if src.is_dir():
        yield src, None
        return
    if not src.exists():
        raise FileNotFoundError(f"MovieLens import: {src} does not exist; {EXPECTED}")
    if not src.is_file() or not zipfile.is_zipfile(src):
        head = b""
        with contextlib.suppress(OSError):
            with open(src, "rb") as f:
                head = f.read(8)
        if head.startswith(b"PK\x03\x04"):  # begins as a zip, lacks the end's directory
            raise ValueError(f"MovieLens import: {src} is a zip archive that cannot be read, "
                             "truncated or damaged (a download cut short?): download it again; "
                             "nothing was landed")  # fmt: skip
        # a release's own file (``ml-1m/ratings.dat``) for its folder: name the folder
        if layout := next((lay for lay in LAYOUTS if src.name in {f.name for f in lay.files}),
                          None):  # fmt: skip
            raise ValueError(
                f"MovieLens import: {src} is a file of a release ({layout.name}'s {src.name}), "
                f"not the release: import the folder holding it, {src.absolute().parent}"
            )
        kind = sniff(head)
        raise ValueError(
            f"MovieLens import: {src} is neither a folder nor a .zip archive"
            + (f" but {kind[0]} ({kind[1]}, then import the folder)" if kind else "")
            + f"; {EXPECTED}"
        )
    try:
        archive = zipfile.ZipFile(src)
    except _ZIP_ERRORS as e:
        raise ValueError(f"MovieLens import: the archive {src} cannot be read ({e})") from None
    with archive:
        # a zip made on Windows may name its members with backslashes (ml-100k\\u.data)
        members = [(PurePosixPath(i.filename.replace("\\", "/")), i)
                   for i in archive.infolist() if not i.is_dir()]  # fmt: skip
        infos = dict(members)
        if len(infos) < len(members):  # a dict keeps the last copy: the others unread, unsaid
            seen = collections.Counter(m for m, _ in members)
            twice = sorted(str(m) for m, n in seen.items() if n > 1)
            raise ValueError(
                f"MovieLens import: the archive {src} holds {', '.join(twice[:3])} more than "
                "once (which copy is the release cannot be told); nothing was read"
            )
        # the folder of each release's ratings file (ml-1m.zip holds ml-1m/ratings.dat);
        # macOS' __MACOSX/ copies are not the release
        real = [m for m in infos if "__MACOSX" not in m.parts]
        releases = [(lay, m.parent) for lay in LAYOUTS for m in real if m.name == lay.ratings.name]
        if not releases:
            raise FileNotFoundError(
                f"MovieLens import: the archive {src} holds no u.data, ratings.dat or "
                f"ratings.csv{_near((m.name for m in real), archive=True)}; {EXPECTED}"
            )
        if len(releases) > 1:
            raise ValueError(
                f"MovieLens import: the archive {src} holds several releases ("
                f"{', '.join(f'{f}/{lay.ratings.name}' for lay, f in releases)}): unpack it "
                "and import the folder of the one you want; nothing was read"
            )
        [(layout, folder)] = releases
        shown = f"{src.absolute()}!" + ("" if str(folder) == "." else f"{folder}/")
        wanted = [folder / s.name for s in layout.files if folder / s.name in real]
        # as ``detect`` says of a folder, with the hint the copied-out folder cannot give
        needed = [s.name for s in layout.files if s is not layout.users or layout is ML_100K]
        if missing := [n for n in needed if folder / n not in real]:
            raise FileNotFoundError(
                f"MovieLens import: {', '.join(missing)} not found in {shown}"
                f"{_near((m.name for m in real if m.parent == folder), archive=True)} beside "
                f"{', '.join(n for n in needed if n not in missing)} (the {layout.name} layout; "
                f"nothing is downloaded); {EXPECTED}"
            )
        need = sum(infos[m].file_size for m in wanted)
        scratch.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(scratch).free
        if need > 0.9 * free:  # the sizes the archive declares bound what is copied out
            raise OSError(
                f"MovieLens import: {src}'s {', '.join(m.name for m in wanted)} unpack to "
                f"{need / 1e9:.1f} GB and {scratch} has {free / 1e9:.1f} GB free: unpack it "
                "where there is room and import the folder; nothing was landed"
            )
        out = Path(tempfile.mkdtemp(prefix="movielens-zip-", dir=scratch))
        try:
            for member in wanted:  # a file ``detect`` needs and the archive lacks: named there
                # copied by name, never by the member's own path: no way out of ``out``
                try:
                    with archive.open(infos[member]) as r, open(out / member.name, "wb") as w:
                        shutil.copyfileobj(r, w, 1 << 20)
                except _ZIP_ERRORS as e:
                    raise ValueError(f"MovieLens import: {shown}{member.name} cannot be read "
                                     f"({e}); nothing was landed") from None  # fmt: skip
            yield out, shown
        finally:
            shutil.rmtree(out, ignore_errors=True)
            with contextlib.suppress(OSError):
                scratch.rmdir()  # when no other import's folder is in it


def sweep_unpacked(scratch: Path) -> list[Path]:
    """Remove the folders a killed archive import left under ``scratch`` (``unpacked``'s
    ``movielens-zip-*``; a release's copy can be GBs), whatever their age. Returns them.

    Called only under the zone's one-writer lock (``landing.writing``, an exclusive ``flock``
    taken before it yields: a lock held elsewhere is refused, one a file system cannot take
    raises), and ``unpacked`` runs only under it: so no live import owns such a folder, as
    ``movielens_landing.sweep`` reasons of staging folders. They were kept until an hour old,
    and a rerun after a kill unpacked a second copy beside the first (ml-25m: 1 GB each)."""
    if not scratch.is_dir():
        return []
    old = []
    for folder in sorted(scratch.glob("movielens-zip-*")):
        with contextlib.suppress(OSError):
            shutil.rmtree(folder)
            old.append(folder)
    return old


# A ratings file with more than half its lines rejected, and at least this many, is refused
# whole (``mostly_rejected``).
MOSTLY_REJECTED_MIN = 100


def mostly_rejected(lines: Lines, rejected: int) -> str:
    """Why a ratings file with ``rejected`` of its lines rejected is refused whole, or "":
    refused when more than half of them were, at least ``MOSTLY_REJECTED_MIN``, and not all
    (none landing is "no valid rating", said by the import). Such a file is no release with a
    few bad lines (GroupLens' have none) but another format mixed in (tab-separated lines,
    then spaces: the head check passes its clean first 1,000) or the wrong columns, and
    landing its minority made a history of a fraction of the input, said in a count alone.
    Below half, the lines land and the import's summary names the commonest reason; so do a
    few dozen bad lines of a small file, a hand-made sample, whose rejects read at a glance."""
    total = len(lines.raw)
    if not MOSTLY_REJECTED_MIN <= rejected < total < 2 * rejected:
        return ""
    return (f"{rejected:,} of its {total:,} lines were rejected, more than half "
            f"({lines.commonest()}): the wrong file, or lines of another format mixed in?")  # fmt: skip


def parse_ratings(
    lines: Lines, layout: Layout, first_ts: int, latest: int
) -> dict[str, np.ndarray]:
    at = lines.pos
    user, item = lines.integers(at["user_id"]), lines.integers(at["item_id"])
    rating = lines.numbers(at["rating"], layout.min_rating, 5)
    ts = lines.integers(at["timestamp"])
    # an export in milliseconds (or microseconds) is a whole file of them: say so
    for scale, unit in ((1_000, "milliseconds"), (1_000_000, "microseconds")):
        lines.reject_field(
            at["timestamp"],
            (ts // scale >= first_ts) & (ts // scale <= latest),
            f"looks like {unit} since 1970: MovieLens timestamps are seconds (divide by {scale})",
        )
    lines.reject_field(
        at["timestamp"],
        (ts < first_ts) | (ts > latest),
        "is not a time from 1995-01-01 to tomorrow (UTC) in seconds since 1970",
    )
    # Two lines with the same user, item and second would share an event_id.
    lines.reject_duplicates(
        {"user": user, "item": item, "ts": ts}, "event_id", "rating (same user, item, timestamp)"
    )
    ok = lines.valid_sub()
    return {"user_id": user[ok], "item_id": item[ok], "value": rating[ok], "ts": ts[ok],
            "line": lines.lines_of(ok)}  # fmt: skip


def parse_items(lines: Lines, layout: Layout) -> dict[str, np.ndarray]:
    at = lines.pos
    if layout.items.sep == "::" and len(lines.fields):  # "Re: Animator:::Horror": a title
        # ending in ":" split before its colon; the genres never start with one
        title, genres = lines.fields[at["title"]], lines.fields[at["genres"]]
        lead = pc.starts_with(genres, ":")
        lines.fields[at["title"]] = pc.if_else(
            lead,
            pc.binary_join_element_wise(
                title, pa.scalar(":", title.type), pa.scalar("", title.type)
            ),
            title,
        )
        lines.fields[at["genres"]] = pc.if_else(lead, pc.utf8_slice_codeunits(genres, 1), genres)
    item = lines.integers(at["movie_id"])
    flags: list[np.ndarray] = []
    if layout.genre_flags:
        for g in range(len(GENRES)):
            pos = len(_ITEM_FIXED) + g
            col = lines.fields[pos]
            good = pc.is_in(col, value_set=pa.array(["0", "1"], pa.large_string()))
            lines.reject_field(pos, ~good.to_numpy(zero_copy_only=False), "is not a 0/1 genre flag")
            flags.append(pc.equal(col, "1").to_numpy(zero_copy_only=False))
    lines.reject_duplicates({"item": item}, lines.names[at["movie_id"]], "movie id")
    ok = lines.valid_sub()
    if layout.genre_flags:
        # argmax: the index of the first flag set, and 0 when none is: GENRES[0], "unknown"
        first = np.argmax(np.column_stack(flags)[ok], axis=1)
        category = np.array([g.lower() for g in GENRES], dtype=object)[first]
    else:
        category = _first_genre(lines, at["genres"])[ok]
    return {
        "item_id": item[ok],
        "category": category,
        "title": lines.text_or_null(at["title"], _max_chars("title"), pa.array(ok)),
    }


def _first_genre(lines: Lines, pos: int) -> np.ndarray:
    """The first genre named ("Animation|Children's|Comedy": animation), in ml-100k's words
    (ml-20m on write "Children"), for every sub row; "unknown" for none; null, with a note,
    for a name over the landing contract's length (ingestion would quarantine the item)."""
    names = pc.utf8_lower(pc.utf8_trim_whitespace(
        pc.list_element(pc.split_pattern(lines.fields[pos], "|"), 0)))  # fmt: skip
    for said, ours in GENRE_ALIASES.items():
        names = pc.if_else(pc.equal(names, said), ours, names)
    names = pc.if_else(pc.or_(pc.equal(names, ""), pc.equal(names, NO_GENRE)), "unknown", names)
    limit = _max_chars("category")
    long = pc.greater(pc.utf8_length(names), limit).to_numpy(zero_copy_only=False)
    for sub_i in np.flatnonzero(long).tolist():
        lines.nulls.append((sub_i, (lines.names[pos], (
            f"field {pos + 1} ({lines.names[pos]}): a first genre of "
            f"{len(names[sub_i].as_py()):,} characters, more than {limit:,}: category landed as "
            "null"))))  # fmt: skip
    out = np.array(names.to_pylist(), dtype=object)
    out[long] = None
    return out


def parse_users(lines: Lines, layout: Layout) -> dict[str, np.ndarray]:
    at = lines.pos
    user = lines.integers(at["user_id"])
    age, known = lines.integers_or_null(at["age"], 1, _MAX_AGE)
    lines.reject_duplicates({"user": user}, lines.names[at["user_id"]], "user id")
    ok = lines.valid_sub()
    buckets = np.array(AGE_BUCKETS, dtype=object)[np.digitize(age, _AGE_EDGES)]
    buckets[~known] = None  # a bad age lands null (``nulled``), its user kept
    mask = pa.array(ok)
    if layout.occupation_codes:
        code, named = lines.integers_or_null(at["occupation"], 0, len(OCCUPATIONS) - 1)
        occupation = np.array(OCCUPATIONS, dtype=object)[np.where(named, code, 0)]
        occupation[~named] = None
        occupation = occupation[ok]
    else:
        occupation = lines.text_or_null(at["occupation"], _max_chars("occupation"), mask)
    return {
        "user_id": user[ok],
        "age_bucket": buckets[ok],
        "gender": lines.text_or_null(at["gender"], _max_chars("gender"), mask),
        "occupation": occupation,
    }


def _max_chars(field: str) -> int:
    """The landing contract's longest string for a field of users or items."""
    from recassets.ingest.validation import MAX_CHARS, MAX_CHARS_DEFAULT

    return MAX_CHARS.get(field, MAX_CHARS_DEFAULT)


__all__ = [
    "GENRES", "LAYOUTS", "Layout", "ML_100K", "ML_1M", "ML_LATEST", "OCCUPATIONS", "Source",
    "detect", "mostly_rejected", "parse_items", "parse_ratings", "parse_users", "release_folder", "sweep_unpacked",
    "unpacked", "with_bare_rows",
]  # fmt: skip
