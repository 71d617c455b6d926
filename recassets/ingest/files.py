"""Finding the landing files of a run's days, and what can be told of them before Spark reads.

Owns the listing rule (regular files not dot- or underscore-named: producers write ``.name.tmp``
and rename, so a half-written file is never read), the empty-day rule (``empty_days_allowed``),
and each file's verdict before parsing (``_classify``: JSON Lines, Parquet, or quarantined
whole). The sha256 that lineage records is read here too, and the same pass over the bytes
counts each JSON Lines file's lines and looks for lines Spark's JSON reader would not make one
row of (``_LineScan``): the parser is chosen from that, with no read of its own.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from recassets.events import INGESTED_CONTRACTS
from recassets.ingest.jsonvalue import first_value_end
from recassets.landing import file_digest
from recassets.paths import Paths

if TYPE_CHECKING:
    import pyarrow.parquet as pq

HEAD_BYTES = 1 << 16  # how much of a JSONL file is sniffed for binary content
JSONL_SUFFIXES = (".jsonl", ".json", ".ndjson")
PARQUET_SUFFIXES = (".parquet",)


class LandingMissingError(FileNotFoundError):
    """A requested day has no landing files."""


@dataclass
class LandedFile:
    path: str
    day: str
    size: int
    sha256: str | None  # None: a folder (quarantined whole, nothing read to hash)
    format: str  # jsonl | parquet | unreadable
    problem: str | None = None  # why it is quarantined whole
    stamp: tuple[int, int] | None = None  # (size, mtime in ns) before its digest was taken


class LandingChangedError(RuntimeError):
    """A landing file changed while the run read it: its rows and its recorded digest would
    describe different files."""


def unchanged_since_digest(files: Sequence[LandedFile]) -> None:
    """Raise ``LandingChangedError`` naming each file that is no longer what its digest read:
    another size, or, where only its modification time changed, other bytes. Called once
    Spark has read the rows, before anything is written: a file appended to during the run
    had landed its new rows while its lineage recorded the sha256 of a prefix, and
    ``--verify`` then said "changed" of a table landed as it should (probe, 2026-12-06)."""
    changed = []
    for f in files:
        if f.stamp is None:
            continue
        try:
            st = os.stat(f.path)
            now: tuple[int, int] | None = (st.st_size, st.st_mtime_ns)
        except OSError:
            now = None
        if now != f.stamp and now is not None and now[0] == f.stamp[0] and f.sha256 is not None:
            # the same size, a new time (touch, an rsync or a sync tool rewriting the same
            # bytes, a network file system's attributes): the bytes decide
            if file_digest(f.path)[1] == f.sha256:
                continue
        if now != f.stamp:
            size = "gone" if now is None else f"{now[0]:,} bytes"
            changed.append(f"{f.path} ({f.stamp[0]:,} bytes when read, {size} now)")
    if changed:
        raise LandingChangedError(
            f"{len(changed)} landing file(s) changed while this run read them: "
            + "; ".join(changed[:5])
            + ". Nothing was written; the files are ingested by a run once they settle "
            "(land a file whole: write it elsewhere, then move it into the day's folder)"
        )


def list_landing_files(
    paths: Paths, dataset: str, days: Sequence[str], allow_missing_days: bool = False
) -> list[LandedFile]:
    """Every landed file of the days, classified, with size and sha256 for lineage.

    Raises ``LandingMissingError`` naming each folder that is missing or holds no file, when
    ``empty_days_allowed`` says no (see there).
    """
    files, _scans, _empty = _landing_files(paths, dataset, days, allow_missing_days)
    return files


def empty_days_allowed(
    days: Sequence[str], missing: Sequence[str], allow_missing_days: bool
) -> bool:
    """Whether the ``missing`` days (no landing file) of a run over ``days`` become empty
    partitions, or fail the run.

    * Dimensions (``allow_missing_days``): always empty; a day without new users is normal.
    * Events, a range of several days: empty, as long as one day of the range has files. Real
      histories have days without a single event (a small product, an outage, a holiday; a
      MovieLens history has several), and a backfill must pass through them.
    * Events, a single day (the landing sensor's path: a day whose files just appeared), or a
      range in which no day has files: fail. That is a folder that should not be empty.
    """
    if not missing or allow_missing_days:
        return True
    return len(days) > 1 and len(missing) < len(days)


def _landing_files(
    paths: Paths, dataset: str, days: Sequence[str], allow_missing_days: bool
) -> tuple[list[LandedFile], dict[str, _LineScan], dict[str, str]]:
    """``list_landing_files``, what each JSON Lines file's sha256 pass saw of its lines, and
    the days left empty (day -> the folder looked in)."""
    files: list[LandedFile] = []
    scans: dict[str, _LineScan] = {}
    missing: dict[str, str] = {}
    notes: dict[str, str] = {}  # a day of files that hold no record: which
    refused: dict[str, str] = {}  # a day of files quarantined whole (or empty): folder (which)
    contract = INGESTED_CONTRACTS.get(dataset)
    nested = nested_pattern(contract.plain_strings) if contract is not None else None
    for day in days:
        folder = Path(paths.landing_dir(dataset, day))
        first = len(files)  # the day's own entries follow
        entries = sorted(p for p in folder.glob("*") if not p.name.startswith((".", "_")))
        found = [p for p in entries if p.is_file()]
        # A folder inside the day's (``hour=10/``, as some sinks write): its files are not read,
        # so it is quarantined whole, named, rather than passed over without a trace. So is
        # anything else that is no file: a link to a folder (not walked: it may lead anywhere),
        # a dangling link, a pipe (a read would wait for a writer), a socket or a device.
        folders = [p for p in entries if not p.is_file()]
        for sub in folders:
            if sub.is_dir() and not sub.is_symlink():
                held = sum(1 for x in sub.rglob("*") if x.is_file())
                problem = (f"a folder inside the day's landing folder, holding {held} file(s): "
                           f"not read; land files directly in {folder.name}/")  # fmt: skip
            else:
                what = ("a symbolic link to a folder" if sub.is_dir() else
                        "a dangling symbolic link" if sub.is_symlink() and not sub.exists() else
                        "not a regular file (a pipe, a socket or a device)")  # fmt: skip
                problem = f"{what}: not read; land regular files in {folder.name}/"
            files.append(LandedFile(str(sub), day, 0, None, "unreadable", problem))
        if not found and not folders:
            missing[day] = str(folder)
            continue
        blank: list[str] = []  # readable files that hold no record
        for p in found:
            scan = _LineScan(nested) if p.suffix.lower() in JSONL_SUFFIXES else None
            st = p.stat()
            size, sha = file_digest(p, visit=scan)
            verdict = _classify(p, size, scan)
            if verdict[0] == "jsonl" and scan is not None and scan.suspect:
                verdict = _trailing_content(p) or verdict
            files.append(
                LandedFile(str(p), day, size, sha, *verdict, stamp=(st.st_size, st.st_mtime_ns))
            )
            if scan is not None:
                scans[str(p)] = scan
            if _holds_no_record(p, verdict[0], size, scan):
                blank.append(f"{p.name} ({size:,} bytes)")
        if not folders and len(blank) == len(found):
            # a day whose files are all empty (a producer that truncated or touched its file
            # first, a 0-row Parquet) is a day without landing files, by the same rules: it
            # replaced the day's ingested rows with none, without a word
            missing[day] = str(folder)  # the manifest's looked_in: a folder
            notes[day] = f"only {', '.join(blank)}: no record in them"
        whole = [f for f in files[first:] if f.format == "unreadable"]
        if (
            whole
            and len(whole) + len(blank) == len(found) + len(folders)
            and _rows_held(paths, dataset, day)
        ):
            # every file quarantined whole (a day landed again as .gz or .csv, a corrupt
            # Parquet): ingested, the day's rows were replaced by none, the run a success
            # (probe, 2026-12-07). Refused whatever the range or the dataset where the day's
            # last ingestion landed rows (a day emptied on purpose is an empty folder, not an
            # unreadable file); a day that held none is ingested as before, its files
            # quarantined whole, so one such day does not hold back the others of a range.
            named = [f"{Path(f.path).name}{'' if f.sha256 is None else f' ({f.size:,} bytes)'}: "
                     f"{f.problem}" for f in whole]  # fmt: skip
            named += [f"{b}: no record in it" for b in blank]
            refused[day] = f"{folder} (only {'; '.join(named)})"
    if refused:
        raise LandingMissingError(
            f"no readable landing files for {dataset} on {len(refused)} day(s), each file "
            "quarantined whole; looked in: "
            + ", ".join(refused.values())
            + " (ingested, the day would lose the rows it holds: fix the files and land them "
            "again, or move them out to leave a day without files)"
        )
    if not empty_days_allowed(days, list(missing), allow_missing_days):
        raise LandingMissingError(
            f"no landing files for {dataset} on {len(missing)} day(s); looked in: "
            + ", ".join(f + (f" ({notes[d]})" if d in notes else "") for d, f in missing.items())
            + " (a day emptied on purpose, to withdraw its rows, is ingested in a range with a "
            "day that has files: docs/automation.md, known limits)"
        )
    return files, scans, missing


def _rows_held(paths: Paths, dataset: str, day: str) -> int:
    """The rows the day's last ingestion landed, from its lineage manifest; 0 without one."""
    from recassets.ingest.lineage import read_lineage
    from recassets.ingest.results import INGESTED_TABLES

    table = INGESTED_TABLES.get(dataset)
    try:
        rows = read_lineage(paths, table, day).get("rows") if table else 0
    except (OSError, ValueError, AttributeError):
        return 0
    return rows if isinstance(rows, int) else 0


def _holds_no_record(path: Path, fmt: str, size: int, scan: _LineScan | None) -> bool:
    """Whether a readable landed file holds no record: zero bytes, JSON Lines of white space
    only, or Parquet of no row. An unreadable file is quarantined whole, a record of its own."""
    if fmt == "unreadable":
        return False
    if size == 0:
        return True
    if scan is not None:
        return not scan.content
    if fmt == "parquet":
        import pyarrow.parquet as pq

        try:
            return pq.read_metadata(path).num_rows == 0
        except Exception:  # noqa: BLE001 - _classify read it; a file changed since is read as is
            return False
    return False


# Where a line starts (the file's first byte, or after a newline), a byte that can make Spark's
# JSON reader give it other than one row: a newline (a blank line: none), JSON whitespace (a
# blank line, or "  [..."), '[' (an array: one row per element), or one that Jackson's encoding
# detection acts on before parsing (BOMs EF BB BF, FE FF, FF FE; NUL bytes: UTF-16 or UTF-32).
# Any other first byte starts one JSON value or one unparseable line: one row either way.
_ODD_LINE = re.compile(rb"\n[\n \t\r\[\x00\xef\xfe\xff]")
# A '}' followed, on its line, by something JSON never puts after a closing brace (only ',',
# ']', '}' or the line's end may follow one): two objects on one line (files concatenated
# without a final newline: `{..}{..}`) or trailing text (`{..} xyz`). Jackson parses the first
# value and silently ignores the rest, so the second record would be lost without a trace.
# A '}' inside a string can match too: a hit only makes ``_trailing_content`` parse the file's
# lines to be sure.
# Also suspected: '},{' (two records joined by a comma, which Jackson reads as the first one
# alone; inside an array of objects it is legal, and the exact parse clears it) and a '}'
# followed by a CR that does not end the line (records separated by CR alone: old Mac line
# ends, which Spark's reader, splitting on '\n', takes for one line), and a '}' followed by
# ']'s, ','s and '['s and then '{' ('}]{', '},,{', '}] {', '}][{', '}],[{', '}, [{'): legal
# only inside an array, a top-level record has none, and Jackson reads the first record alone
# (the probes of 2026-12-05 and 2026-12-07 lost the second one so). And a ',' followed by a
# value that can be no object's next key ('}, 1', '}, null', '}, [1]', '},,'): legal only in an array of
# mixed values, which Jackson likewise reads past; a '"' after '},' is left alone, as it begins
# the next key of every nested object ('{"ctx": {..}, "ts": ..}') and would make every such
# file take the exact parse.
_AFTER_OBJECT = re.compile(
    rb"\}[ \t]*(?:[^ \t\r\n,\]\}]|,[ \t]*[^ \t\r\n\"]|\r[^\n]|[\],][ \t\[\],\}]*\{)"
)


def nested_pattern(names: Sequence[str]) -> re.Pattern[bytes] | None:
    """A key of ``names`` (a contract's plain string fields) given a JSON object or array, as
    the bytes of a line show it (a nested object's key of the same name matches too: the
    parse tells them apart)."""
    if not names:
        return None
    keys = b"|".join(re.escape(n.encode()) for n in names)
    return re.compile(rb'"(?:' + keys + rb')"[ \t]*:[ \t]*[\[{]')


# The start of a \u escape of a UTF-16 surrogate, paired or not (case as JSON allows).
_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F]")

# More than one NUL byte in this many of a text file's first 64 KiB: not UTF-8 text at all
# (UTF-16 holds one in two for ASCII), rather than a few bad bytes in values.
NUL_SHARE = 100


class _LineScan:
    """Counts a JSON Lines file's lines and looks for odd ones (``_ODD_LINE``) in the blocks that
    ``file_digest`` reads for the sha256, and checks that they are UTF-8: no read of its own,
    and about a third of a second per 200 MiB (a regex search for a newline-led pair, a count
    of newlines, an incremental UTF-8 decode: 0.03 s per 50 MiB), where a text pass of Spark
    over the files to count and inspect each split's lines took a second."""

    def __init__(self, nested: re.Pattern[bytes] | None = None) -> None:
        import codecs

        self.newlines = 0
        # the whole file is checked to be UTF-8 as it goes by (a bad byte past the first
        # 64 KiB was found only row by row, or decoded to U+FFFD by the text parser)
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self.not_utf8: str | None = None  # "line N: <the decoder's reason>"
        self.plain = True  # no odd line: the JSON reader makes exactly one row per line
        self.last = b"\n"  # the byte before the block; the first line starts at byte 0
        self.content = False  # a byte that is not white space: the file may hold a record
        self.suspect = False  # a line may hold more than one JSON value (``_AFTER_OBJECT``)
        # a \ud800-\udfff escape, perhaps a lone surrogate (``parsing._lone_surrogate``, whose
        # second pass over the text runs only for such files)
        self.surrogate = False
        # a plain string field given a JSON object or array (``nested_pattern``), perhaps: the
        # parse then looks at such lines' values (``parsing._nested_in_text``)
        self.nested = False
        self._nested = nested
        self._tail = b""  # the end of the previous block, for a match across the edge

    def __call__(self, block: bytes) -> None:
        if self.not_utf8 is None:
            try:
                self._utf8.decode(block)
            except UnicodeDecodeError as exc:
                line = self.newlines + block.count(b"\n", 0, exc.start) + 1
                self.not_utf8 = f"line {line}: {exc.reason} (byte 0x{block[exc.start]:02x})"
        lines = block.count(b"\n")
        self.newlines += lines
        if not self.content:  # strip() stops at the first such byte: no scan of a full block
            self.content = bool(block.strip())
        if self.plain and (_ODD_LINE.search(self.last + block[:1]) or _ODD_LINE.search(block)):
            self.plain = False
        if not self.suspect and (
            _AFTER_OBJECT.search(self._tail + block[:64]) or _AFTER_OBJECT.search(block)
        ):
            self.suspect = True
        if not self.surrogate and (
            _SURROGATE.search(self._tail[-5:] + block[:6]) or _SURROGATE.search(block)
        ):
            self.surrogate = True
        if self._nested is not None and not self.nested:
            # The full search only where a value may be an object or an array: a '[' anywhere,
            # or more '{' than lines open in the block, each with one while the file
            # is plain (no blank or space-led line: ``_ODD_LINE``). A file of flat records,
            # the usual one, pays one count and one byte search (the regex alone cost 0.7 s
            # per 200 MiB, the rest of this pass 0.2 s).
            starts = lines + (self.last == b"\n") - (block[-1:] == b"\n")  # lines opening here
            inner = not self.plain or b"[" in block or block.count(b"{") > starts
            self.nested = bool(
                self._nested.search(self._tail + block[:64])
                or (inner and self._nested.search(block))
            )
        self.last = block[-1:]
        self._tail = (self._tail + block[-64:])[-64:]  # tiny blocks too

    @property
    def lines(self) -> int:
        """The file's lines, a last one without a newline included (Spark reads it too)."""
        return self.newlines + (self.last != b"\n")

    def finish(self) -> None:
        """After the last block: a multi-byte character cut by the file's end is no UTF-8."""
        if self.not_utf8 is None:
            try:
                self._utf8.decode(b"", final=True)
            except UnicodeDecodeError as exc:
                self.not_utf8 = f"line {self.lines}: {exc.reason} at the end of the file"


def _nanosecond_columns(metadata: pq.FileMetaData) -> list[str]:
    """The Parquet columns (leaf paths) stored as nanosecond times: the file's own logical
    types, what Spark reads, not the Arrow schema pyarrow may rebuild from its metadata."""
    out = []
    for i in range(metadata.num_columns):
        column = metadata.schema.column(i)
        logical = column.logical_type.to_json() if column.logical_type is not None else "{}"
        if '"timeUnit": "nanoseconds"' in logical:
            out.append(column.path)
    return out


# What Spark 4's Parquet reader decodes: codecs with a Hadoop codec class on its classpath
# (BROTLI and LZO have none: "BrotliCodec was not found"), and the encodings its vectorized
# reader implements (BYTE_STREAM_SPLIT, which pyarrow writes on request, is not one:
# "Unsupported encoding"). Either failed the whole run, naming no file (probe, 2026-12-06).
SPARK_CODECS = ("UNCOMPRESSED", "SNAPPY", "GZIP", "LZ4", "LZ4_RAW", "ZSTD")
SPARK_ENCODINGS = frozenset({"PLAIN", "PLAIN_DICTIONARY", "RLE_DICTIONARY", "RLE", "BIT_PACKED",
                             "DELTA_BINARY_PACKED", "DELTA_LENGTH_BYTE_ARRAY", "DELTA_BYTE_ARRAY"})  # fmt: skip


def _spark_cannot_read(metadata: pq.FileMetaData) -> str | None:
    """Why Spark 4 would fail the whole read of a Parquet file whose footer pyarrow reads, or
    None: no column at all, a column type Spark has no type for (TIME, FLOAT16, UUID, a
    decimal of more than 38 digits), a codec or an encoding it cannot decode
    (``SPARK_CODECS``, ``SPARK_ENCODINGS``), a name twice, or a name Spark's reader cannot take
    (``_metadata`` in any case,
    its hidden file column, which the row numbers are read from; a backtick, which no quoting
    survives). Each one failed the run with Spark's error and no file named (probe,
    2026-12-05); extra columns of other types are read and ignored."""
    import json

    if metadata.num_columns == 0:
        return "no columns"
    for i in range(metadata.num_columns):
        column = metadata.schema.column(i)
        logical = json.loads(column.logical_type.to_json()) if column.logical_type else {}
        kind = logical.get("Type")
        if kind in ("Time", "Float16", "UUID"):
            what = {"Time": "a time of day (TIME)", "Float16": "half precision (FLOAT16)",
                    "UUID": "a UUID"}[kind]  # fmt: skip
            return f"column {column.path}: {what}, a type Spark cannot read"
        if kind == "Decimal" and int(logical.get("precision", 0)) > 38:
            return (f"column {column.path}: a decimal of {logical['precision']} digits; Spark "
                    "reads 38 at most")  # fmt: skip
    for g in range(metadata.num_row_groups):  # what Spark's reader has no codec or decoder for
        group = metadata.row_group(g)
        for i in range(group.num_columns):
            chunk = group.column(i)
            if chunk.compression not in SPARK_CODECS:
                return (f"column {chunk.path_in_schema}: {chunk.compression} compression, which "
                        f"Spark cannot read (it reads {', '.join(SPARK_CODECS)})")  # fmt: skip
            if odd := sorted(set(chunk.encodings) - SPARK_ENCODINGS):
                return (f"column {chunk.path_in_schema}: {', '.join(odd)} encoding, which "
                        "Spark's reader cannot decode (write it without byte_stream_split)")  # fmt: skip
    names = metadata.schema.to_arrow_schema().names
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        return f"column {', '.join(twice)} appears twice"
    odd = [n for n in names if n.lower() == "_metadata" or "`" in n]  # Spark ignores case
    if odd:
        return (f"column name {', '.join(map(repr, odd))}: Spark's reader cannot take it "
                "(`_metadata` is its own; a backtick cannot be quoted): rename it")  # fmt: skip
    return None


def _undecodable(path: Path) -> str | None:
    """Why a page of the Parquet file cannot be decoded (a damaged page under a sound footer:
    Spark failed the whole run with FAILED_TO_UNCOMPRESS, naming the file only deep in its
    log), or None. Every row group is decoded once with pyarrow, one at a time (memory: one
    row group), and dropped: 0.12 s for 53 MB (3 M rows, snappy), a small share of Spark's
    own read of the same file."""
    import pyarrow.parquet as pq

    try:
        with pq.ParquetFile(path) as f:
            for g in range(f.num_row_groups):
                f.read_row_group(g)
    except Exception as exc:  # noqa: BLE001 - any decoding error: the file is quarantined whole
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]
        return f"a page of the Parquet file cannot be decoded ({first}): fix it and land it again"
    return None


def _case_twins(names: Sequence[str]) -> list[str]:
    """The column names that another column repeats but for case (``device``, ``Device``)."""
    seen: dict[str, list[str]] = {}
    for name in dict.fromkeys(names):
        seen.setdefault(name.lower(), []).append(name)
    return [n for group in seen.values() if len(group) > 1 for n in group]


def _trailing_content(path: Path) -> tuple[str, str] | None:
    """``("unreadable", problem)`` when a line of the JSON Lines file holds more than one JSON
    value (``_AFTER_OBJECT`` only suspects it), naming the first such line; else None.

    The whole file is quarantined, as for the other whole-file faults: the line's records
    cannot be told apart safely (``{..}{..}`` from a concatenation, or text after a record),
    and quarantine keeps every byte for the producer to fix and land again. A line is read as
    Spark reads it (``jsonvalue.first_value_end``): Python's json alone passed over a line it refused,
    one with ``-INF`` in it, whose second record Spark then lost."""
    import json

    # the fast path; numbers are not converted (int() refuses over 4,300 digits)
    decoder = json.JSONDecoder(parse_int=len, parse_float=len)
    with open(path, "rb") as f:
        for number, raw in enumerate(f, start=1):
            # a BOM first (Hadoop's line reader drops it, Jackson then read {..}{..}): dropped
            line = raw.decode("utf-8", errors="replace").strip().removeprefix("\ufeff").strip()
            if not line.startswith("{"):
                continue  # not an object: the row-level rules name it
            try:
                try:
                    end: int | None = decoder.raw_decode(line)[1]
                except (json.JSONDecodeError, RecursionError):
                    end = first_value_end(line)  # Jackson's extra numbers, deep nesting
            except Exception as exc:  # noqa: BLE001 - named, then raised as it was
                exc.add_note(f"{path}, line {number}: looking for a second JSON value")
                raise
            if end is None:
                continue  # unparseable: quarantined as a row, with its line
            rest = line[end:].strip()
            if rest:
                hint = (
                    "records separated by a carriage return alone? Lines must end in \\n"
                    if line[end:].lstrip(" \t").startswith("\r")
                    else "a missing newline between records?"
                )
                return "unreadable", (
                    f"line {number}: more than one JSON value on one line (after the first "
                    f"object: {rest[:40]!r}); {hint} Fix the file and land it again"
                )
    return None


def _classify(path: Path, size: int, scan: _LineScan | None = None) -> tuple[str, str | None]:
    """``(format, problem)`` of a landed file, from its name, its suffix and a look at its
    bytes (the Parquet footer; the text: the first 64 KiB, and the whole file's UTF-8 when
    ``scan`` went over it): a file Spark could not read is quarantined whole, with the reason,
    rather than failing the run."""
    suffix = path.suffix.lower()
    if ":" in path.name:  # Hadoop takes "a:b" for a URI scheme: the read fails, the day with it
        return (
            "unreadable",
            "the file name holds ':', which Hadoop cannot read as a path: rename it",
        )
    try:
        path.name.encode("utf-8")
    except UnicodeEncodeError:  # bytes that are no UTF-8 (a Latin-1 "café"): no path for Spark
        return "unreadable", "the file name is not UTF-8: rename it"
    if suffix in PARQUET_SUFFIXES:
        import pyarrow.parquet as pq

        try:
            metadata = pq.read_metadata(path)
            nanos = _nanosecond_columns(metadata)
        except Exception as exc:  # any footer error means Spark cannot read it either
            return "unreadable", f"unreadable Parquet file: {exc}"
        if (why := _spark_cannot_read(metadata)) is not None:
            return "unreadable", f"{why}: fix the file and land it again"
        if (why := _undecodable(path)) is not None:
            return "unreadable", why
        twins = _case_twins(metadata.schema.to_arrow_schema().names)
        if twins:  # Spark matches columns ignoring case: COLUMN_ALREADY_EXISTS, the run fails
            return "unreadable", (
                f"columns {', '.join(twins)} differ only in case, which Spark reads as one "
                "name: rename or drop one"
            )
        if nanos:
            # Spark 4 refuses INT64 TIMESTAMP(NANOS) for the whole read (PARQUET_TYPE_ILLEGAL),
            # which would fail the run; pandas writes it by default.
            return "unreadable", (
                f"column {', '.join(nanos)}: nanosecond timestamps, which Spark cannot read; "
                "write microseconds (pandas: df.to_parquet(..., coerce_timestamps='us', "
                "allow_truncated_timestamps=True); pyarrow: pq.write_table(..., "
                "coerce_timestamps='us'))"
            )
        return "parquet", None
    if suffix in JSONL_SUFFIXES:
        with open(path, "rb") as f:
            head = f.read(HEAD_BYTES)
        if scan is not None:
            scan.finish()
        not_utf8 = scan.not_utf8 if scan is not None else None
        try:
            head.decode("utf-8")
        except UnicodeDecodeError as exc:
            # A multibyte char cut at the 64 KiB edge is fine; only when the read stopped
            # there, though: a short file ending in a Latin-1 byte is not UTF-8.
            cut_at_edge = len(head) == HEAD_BYTES and exc.reason == "unexpected end of data"
            if not cut_at_edge:
                not_utf8 = not_utf8 or str(exc)
        # NUL bytes: UTF-16 or UTF-32 text, or a binary or compressed file, whole. A few NULs
        # in UTF-8 text are a producer's bad bytes in some values: those lines are rejected
        # one by one, named (a raw control character is no JSON), and the others land (a
        # single NUL in a value had sent the whole file to quarantine: probe, 2026-12-06).
        nuls = head.count(b"\x00")
        if nuls and (not_utf8 is not None or nuls * NUL_SHARE > len(head)):
            return "unreadable", "not UTF-8 text (NUL bytes): binary or compressed file?"
        if not_utf8 is not None:
            return "unreadable", f"not UTF-8 text: {not_utf8}"
        # a line that is "[" or "{" alone opens a JSON document written over several lines
        # (json.dump(..., indent=2), a ".json" export): each of its lines was rejected as
        # unparseable JSON, 16 rejects for one file, with no word of what it was
        first = next(
            (t.strip() for t in head.removeprefix(b"\xef\xbb\xbf").splitlines() if t.strip()), b""
        )
        if first in (b"[", b"{"):
            return "unreadable", (
                "a JSON document over several lines (pretty-printed), not JSON Lines: write one "
                "object per line (jq -c '.[]' FILE for an array, jq -c . FILE for objects)"
            )
        # the same array written compactly: a file of one line, one reject "not an object";
        # one array line among object lines is that line's reject alone
        one_line = scan.lines == 1 if scan is not None else b"\n" not in head.rstrip()
        if first.startswith(b"[") and one_line and (scan is not None or len(head) < HEAD_BYTES):
            return "unreadable", (
                "one JSON array on one line, not JSON Lines: write one object per line "
                "(jq -c '.[]' FILE)"
            )
        return "jsonl", None
    return "unreadable", f"unsupported file type {suffix or '(none)'}: use .jsonl or .parquet"
