"""Reading one MovieLens source file (``recassets.movielens``): its lines decoded (UTF-8, else
latin-1 line by line), split into fields, and checked with vectorized masks; each rejected line
and each field landed as null kept with its line number, field and reason.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import cast

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

# int64's largest, the largest id (a 19-digit string compared as a string: same length)
_INT64_MAX = str(2**63 - 1)
# A file whose first this many non-blank lines all fail one check is refused before the rest
# is checked: the wrong file or separator. A 2M-line u.data with spaces for tabs gave every
# line a reason and a record (2 GB at the peak, a 359 MB rejects file); a 1 GB one, ~37 GB.
HEAD_LINES = 1_000
# A rejected line's text is kept in its record up to this many characters (``raw_length``
# then gives the whole length): one line of a binary or newline-less file can be the file.
RAW_MAX_CHARS = 4_096
# What a file that is no text starts with, and what to do about it: read as text, gzip data
# became one "line" rejected as "not a header" and an .xlsx (a zip) "UTF-16".
MAGIC = (
    (b"\x1f\x8b", "gzip-compressed data", "decompress it first (gunzip)"),
    (b"PK\x03\x04", "a zip archive (an .xlsx workbook is one too)",
     "unpack it, or save a spreadsheet as CSV, first"),
    (b"PK\x05\x06", "an empty zip archive", "use the release's own file"),
    (b"BZh", "bzip2-compressed data", "decompress it first (bunzip2)"),
    (b"\xfd7zXZ\x00", "xz-compressed data", "decompress it first (unxz)"),
    (b"(\xb5/\xfd", "zstd-compressed data", "decompress it first (unzstd)"),
    (b"7z\xbc\xaf'\x1c", "a 7-Zip archive", "unpack it first"),
)  # fmt: skip


def sniff(head: bytes) -> tuple[str, str] | None:
    """What ``head`` (a file's first bytes) says the file is, and what to do, when it is a
    compressed file or an archive (``MAGIC``); else None. bzip2's "BZh" counts only before
    its block-size digit: a text line may start with "BZh"."""
    for magic, what, todo in MAGIC:
        if head.startswith(magic) and (magic != b"BZh" or b"1" <= head[3:4] <= b"9"):
            return what, todo
    return None


class Lines:
    """One source file's lines split into fields, validated with vectorized masks.

    Row positions: "full" positions index every non-blank line; "sub" positions index the lines
    that had the right number of fields (the only ones whose fields exist). Each check marks a
    line bad only if no earlier check did, so a line's reason is its first failing field.
    """

    def __init__(
        self,
        path: Path,
        sep: str,
        sep_label: str,
        n_fields: int,
        names: tuple[str, ...],
        header: dict[str, tuple[str, ...]] | None = None,
        quoted: bool = False,
        shown: str | None = None,
        rejoin: Callable[[list[str]], list[str]] | None = None,
    ):
        """``header``: the first non-blank line names the fields, and each of ``names`` is
        found there by one of its aliases (lowercase); ``pos`` maps each of ``names`` to its
        position either way. ``quoted``: CSV quoting (a title holding a comma). ``shown``:
        the file's name in records (an archive's member) instead of its path. ``rejoin``: a
        line split into too many fields, split again (``Source.joined``: a title holding
        the separator)."""
        self.path = path
        self.shown = shown
        self.names = names
        self.sep = sep
        self.pos = {n: i for i, n in enumerate(names)}
        data = path.read_bytes()
        if kind := sniff(data[:8]):
            raise ValueError(
                f"MovieLens import: {shown or path} is {kind[0]}, not a text file: {kind[1]}; "
                "nothing was landed"
            )
        data = data.removeprefix(b"\xef\xbb\xbf")
        if data[:2] in (b"\xff\xfe", b"\xfe\xff") or data[:200].count(b"\x00") > 10:
            # every line would be rejected as "not an integer" with \x00 in its text
            raise ValueError(
                f"MovieLens import: {shown or path} is UTF-16 (or holds NUL bytes): save it as "
                "UTF-8 or latin-1, as the ml-100k files are"
            )
        # old Mac line ends, \r alone: when bare \r outnumber \n (a file of them a Unix tool
        # appended one line to holds a single \n); a stray \r in a Unix file's title is kept
        if data.count(b"\r") - data.count(b"\r\n") > data.count(b"\n"):
            data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        self.utf8_lines = 0  # lines read as UTF-8 inside a latin-1 file
        try:  # a file that decodes as UTF-8 is UTF-8: latin-1 would read "é" as "Ã©"
            text, self.encoding = data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:  # the ml-100k files; latin-1 decodes every byte
            text, self.utf8_lines = _decode_latin1_lines(data)
            self.encoding = "latin-1"
        del data  # the text holds it now: a large file is not kept twice
        # split at "\n" only, not splitlines(): latin-1 text may hold \x85 or \x0c inside a
        # title. The empty piece after the final newline is blank, skipped like any blank line.
        # Each step below drops what the next no longer needs, and copies only when it
        # changes something (no "\r", no blank line, every line of the right width: the
        # release's files): a 5M-line ratings.csv peaked at 1.67 GB, 330 bytes a line.
        crlf = "\r" in text
        if quoted and '"' in text:  # a quoted field may hold a newline: one record, two lines
            pieces = text.split("\n")
            if crlf:  # each line's own "\r" first: a record's quoted newline is "\n" alone
                pieces = [p[:-1] if p.endswith("\r") else p for p in pieces]
            pieces, numbers = _records(pieces)
            del text
            lines = pa.array(pieces, pa.large_string())
            del pieces
        else:  # split by Arrow: no Python string per line (a 25M-line ratings.csv)
            whole = pa.array([text], pa.large_string())
            del text
            lines = pc.split_pattern(whole, "\n").values
            del whole
            numbers = np.arange(1, len(lines) + 1)  # each record's first line
        if crlf:
            lines = pc.utf8_rtrim(lines, characters="\r")
        # Blank lines carry no data: skipped, but counted (``blank_lines``: lines in = rows +
        # rejected + blank) and line numbers still count them. A line of tabs in a
        # tab-separated file is no blank line: its fields are there, each empty (``void``).
        blank = pc.equal(pc.utf8_trim_whitespace(lines), "").to_numpy(zero_copy_only=False)
        void = np.zeros(len(blank), dtype=bool)
        if sep.isspace() and (at := np.flatnonzero(blank)).size:  # a few lines: no full scan
            void[at] = pc.match_substring(lines.take(at), sep).to_numpy(zero_copy_only=False)
            blank &= ~void
        # the piece after a final newline is no line
        self.blank_lines = int(blank.sum()) - int(len(lines) > 0 and lines[-1].as_py() == "")
        inner = blank[:-1].any()  # the piece after a final newline is blank: a slice drops it
        if inner or not len(blank):
            self.raw = lines.filter(pa.array(~blank))
        else:
            self.raw = lines.slice(0, len(lines) - int(blank[-1]))
        del lines
        self.line_no = numbers[~blank]
        void = void[~blank]
        if header is not None and len(self.raw):
            n_fields = self._header(header, sep, quoted)
            void = void[1:]  # the header is no line of separators: it names the fields
        parts = pc.split_pattern(self.raw, pattern=sep)
        broken: dict[int, str] = {}  # line -> why Python's csv refused it
        if quoted:  # the lines with a quote split as CSV does (few: titles holding a comma)
            at = np.flatnonzero(pc.match_substring(self.raw, '"').to_numpy(zero_copy_only=False))
            if len(at):  # only those go through Python; the others stay Arrow's split
                rows: list[list[str]] = []
                for i, r in zip(at.tolist(), self.raw.take(at).to_pylist(), strict=True):
                    got = _csv_fields(r)
                    if isinstance(got, csv.Error):
                        broken[i] = f"not a CSV line ({got})"
                        got = []
                    rows.append(got)
                parts = _patched(parts, at, rows)
        counts = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
        if rejoin and (at := np.flatnonzero(counts > n_fields)).size:  # few: Python's split
            rows = [rejoin(r.split(sep)) for r in self.raw.take(at).to_pylist()]
            parts = _patched(parts, at, rows)
            counts = pc.list_value_length(parts).to_numpy(zero_copy_only=False)
        ok = counts == n_fields
        # a separator ending each line (``...\t881250949\t``): an empty last field, not data
        extra = np.flatnonzero(counts == n_fields + 1)
        if len(extra):
            last = pc.list_element(parts.take(pa.array(extra)), n_fields)
            empty = pc.equal(pc.utf8_trim_whitespace(last), "").to_numpy(zero_copy_only=False)
            if empty.any():
                ok[extra[empty]] = True
                parts = pc.list_slice(parts, 0, n_fields)  # other wide lines stay rejected
        self.ok_idx = np.flatnonzero(ok)
        sub = parts if ok.all() else parts.filter(pa.array(ok))
        del parts
        self.fields = [pc.utf8_trim_whitespace(pc.list_element(sub, i)) for i in range(n_fields)]
        del sub
        self.bad = np.zeros(len(ok), dtype=bool)
        self.nulls: list[tuple[int, tuple[str, str]]] = []  # (sub row, (field, reason)): null
        # each check's rejected full rows, their keys, the field and the reason's maker: the
        # reasons are made as the rejects are written, not held one string a line (``rejects``)
        self.groups: list[tuple[np.ndarray, np.ndarray, str | None, Callable[[int], str]]] = []
        # each check's words (the reason without the line's value) -> the lines it rejected,
        # and the first of them (its row, key and reason's maker): the dominant reason
        self.kinds: Counter[str] = Counter()
        self.first_of: dict[str, tuple[int, int, Callable[[int], str]]] = {}
        self.n_fields = n_fields  # the header's, when it names more
        if broken:
            at = np.array(sorted(broken))
            self._mark(at, at, None, "not a CSV line", lambda i: broken[i])
        wide = f"expected {n_fields} {sep_label}-separated fields"
        short = np.flatnonzero(~ok & ~self.bad)
        rating = getattr(self, "pos", {}).get("rating", -1) if sep == "," else -1

        def miscounted(i: int) -> str:  # each line's own hint: a mixed file's head is clean
            hint = self._split_decimal(i, rating, counts[i]) or _separator_seen(
                self.raw[i].as_py(), sep, n_fields)  # fmt: skip
            return f"{wide}, got {counts[i]}{hint}"

        self._mark(short, short, None, wide, miscounted)
        if void.any():
            at = np.flatnonzero(void & ok & ~self.bad)
            what = f"every one of the {n_fields} fields is empty (a line of separators only)"
            self._mark(at, at, None, "every field empty", lambda _i: what)

    def _split_decimal(self, i: int, rating: int, count: int) -> str:
        """A hint for a line one field too wide whose rating reads as two digit runs
        (``1,31,4,5,1260759144``: ``4,5`` unquoted, a decimal comma); else nothing."""
        if rating < 0 or count != self.n_fields + 1:
            return ""
        got = str(self.raw[i].as_py()).split(",")
        whole, frac = (got[rating].strip(), got[rating + 1].strip())
        if whole.isdigit() and frac.isdigit() and len(whole) <= 2 and len(frac) <= 2:
            return f": a decimal comma in the rating ({whole},{frac})? write {whole}.{frac}"
        return ""

    def _header(self, aliases: dict[str, tuple[str, ...]], sep: str, quoted: bool) -> int:
        """Read the header line (then dropped from the rows): each field's position, found by
        name, into ``pos``; the header's own names into ``names``. Returns its field count."""
        text = self.raw[0].as_py()
        parsed = _csv_fields(text) if quoted else text.split(sep)
        got = [] if isinstance(parsed, csv.Error) else parsed
        while got and not got[-1].strip():  # `movieId,title,genres,` (Excel, a hand edit): a
            got.pop()  # trailing comma names no column; rows may end in one (``__init__``)
        found: dict[str, int] = {}
        for i, g in enumerate(got):
            found.setdefault(g.strip().lower(), i)
        pos = {n: next((found[a] for a in names if a in found), -1) for n, names in aliases.items()}
        missing = [aliases[n][0] for n, i in pos.items() if i < 0]
        if missing:
            raise ValueError(
                f"MovieLens import: {self.shown or self.path} line {self.line_no[0]}: "
                f"{text[:200]!r} is not a header naming {', '.join(missing)}"
                f"{_separator_seen(text, sep, len(aliases))} (the release's CSV files start with "
                f"one, separated by commas: {','.join(a[0] for a in aliases.values())}); nothing "
                "was landed"
            )
        self.pos, self.names = pos, tuple(g.strip() for g in got)
        self.raw, self.line_no = self.raw[1:], self.line_no[1:]
        return len(got)

    def _mark(
        self, new: np.ndarray, keys: np.ndarray, fld: str | None, kind: str,
        reason: Callable[[int], str],
    ) -> None:  # fmt: skip
        """Reject the full rows ``new`` (none rejected yet, ascending) for the check ``kind``,
        each for ``reason(key)`` (``keys``: ``new``'s keys, in its order). Refuses the file
        when this one check rejects every one of its first ``HEAD_LINES`` lines."""
        if not len(new):
            return
        if len(self.raw) >= HEAD_LINES and np.count_nonzero(new < HEAD_LINES) == HEAD_LINES:
            text = self.raw[0].as_py()  # a separator it looks split by: in its reason
            raise ValueError(
                f"MovieLens import: {self.shown or self.path}: its first {HEAD_LINES:,} lines "
                f"all fail one check, {kind} (line {self.line_no[0]}: {reason(int(keys[0]))}"
                f"; its text: {text[:200]!r}): the wrong file, separator or column order? "
                "The rest was not read; nothing was landed"
            )
        self.bad[new] = True
        self.kinds[kind] += len(new)
        self.first_of.setdefault(kind, (int(new[0]), int(keys[0]), reason))
        self.groups.append((np.asarray(new, np.int64), np.asarray(keys), fld, reason))

    def dominant(self) -> str:
        """The check that rejected the most lines, how many, and the first such line: "" when
        none was rejected."""
        if not self.kinds:
            return ""
        kind, n = self.kinds.most_common(1)[0]
        i = self.first_of[kind][0]
        text = self.raw[i].as_py()[:200]
        return f"{n:,} of them: {kind}; the first, line {self.line_no[i]}: {text!r}"

    def commonest(self) -> str:
        """For a summary, the check that rejected the most lines, how many, and the first such
        line's number and whole reason: "all for: expected 4 tab-separated fields (first at
        line 1001: ..., got 1; its fields look separated by spaces)"; "" when none was."""
        if not self.kinds:
            return ""
        kind, n = self.kinds.most_common(1)[0]
        i, key, reason = self.first_of[kind]
        most = "all" if n == sum(self.kinds.values()) else f"{n:,} of them"
        return f"{most} for: {kind} (first at line {self.line_no[i]}: {reason(key)})"

    def value(self, position: int, sub_i: int) -> str:
        return self.fields[position][sub_i].as_py()

    def reject(
        self, bad_sub: np.ndarray, fld: str | None, kind: str, reason: Callable[[int], str]
    ) -> None:
        """Mark the sub rows in ``bad_sub`` rejected (unless already) by the check ``kind``;
        ``reason(sub_i)`` says why."""
        full = np.zeros(len(self.raw), dtype=bool)
        full[self.ok_idx] = bad_sub
        new = np.flatnonzero(full & ~self.bad)
        self._mark(new, np.searchsorted(self.ok_idx, new), fld, kind, reason)

    def reject_field(self, position: int, bad_sub: np.ndarray, what: str) -> None:
        name = self.names[position]
        self.reject(
            bad_sub, name, f"field {position + 1} ({name}) {what}",
            lambda s: f"field {position + 1} ({name}): {self.value(position, s)!r} {what}",
        )  # fmt: skip

    def _name_bad(
        self, position: int, good: pa.Array, named: tuple[tuple[str, str], ...], otherwise: str
    ) -> None:
        """Reject the values not ``good``, each with the reason of the first ``named`` pattern
        it matches, else ``otherwise``. The patterns run on the bad values only: a clean
        column of 25M values costs one pass, not one per pattern."""
        ok = good.to_numpy(zero_copy_only=False)
        if ok.all():
            return
        at = np.flatnonzero(~ok)
        few = self.fields[position].take(pa.array(at))
        for pattern, what in named:
            hit = np.zeros(len(ok), dtype=bool)
            hit[at] = pc.match_substring_regex(few, pattern).to_numpy(zero_copy_only=False)
            self.reject_field(position, hit, what)
        self.reject_field(position, ~ok, otherwise)

    def integers(self, position: int, lo: int = 0, hi: int | None = None) -> np.ndarray:
        """Field ``position`` as int64 (sub length; 0 where invalid); rejects non-integers and
        values outside [lo, hi]."""
        col = self.fields[position]
        if pc.any(pc.match_substring(col, ".")).as_py():  # a literal scan: 25M values in 0.2 s
            # a whole number written as a float: what pandas writes for an integer column
            # that held a gap (964982705.0); 964982705.5 stays "not an integer"
            col = pc.replace_substring_regex(col, r"^(-?\d+)\.0+$", r"\1")
        if pc.any(pc.starts_with(col, "0")).as_py():  # `00000000000000000000001` is 1, not
            col = pc.replace_substring_regex(col, r"^0+(\d)", r"\1")  # 23 digits past int64
        # Up to 18 digits always fits int64; 19 digits do up to int64's largest (digit strings
        # of one length compare as numbers), so the cast below cannot overflow.
        digits = pc.match_substring_regex(col, r"^\d{1,19}$")
        nineteen = pc.equal(pc.utf8_length(col), 19)
        good = pc.and_(digits, pc.or_(pc.invert(nineteen), pc.less_equal(col, _INT64_MAX)))
        self._name_bad(position, good, ((r"^-\d+(\.0+)?$", "is negative"),
                                        (r"^\d+(\.0+)?$", f"is beyond int64 (at most {_INT64_MAX})")),
                       "is not an integer")  # fmt: skip
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
            self.nulls.append((sub_i, (name, f"field {position + 1} ({name}): "
                                              f"{self.value(position, sub_i)!r} {what}: landed as null")))  # fmt: skip
        return values, keep

    def text_or_null(self, position: int, max_chars: int, mask: pa.Array) -> np.ndarray:
        """Field ``position`` of the sub rows in ``mask``, as objects: empty -> None, longer
        than ``max_chars`` -> None with a note (``nulled``): the landing contract quarantines
        a whole user or item row for one over-long field (``ingest.validation.MAX_CHARS``), so
        the import lands the row and drops only the field, as it does a bad age."""
        name, col = self.names[position], self.fields[position]
        long = pc.greater(pc.utf8_length(col), max_chars).to_numpy(zero_copy_only=False)
        for sub_i in np.flatnonzero(long).tolist():
            self.nulls.append((sub_i, (name, f"field {position + 1} ({name}): "
                                             f"{len(self.value(position, sub_i)):,} characters, "
                                             f"more than {max_chars:,}: landed as null")))  # fmt: skip
        values = pc.if_else(pa.array(long), pa.scalar(None, col.type), col).filter(mask)
        return np.array([v if v else None for v in values.to_pylist()], dtype=object)

    def numbers(self, position: int, lo: float, hi: float) -> np.ndarray:
        """Field ``position`` as float64 in [lo, hi] (plain decimal notation only: ``4``,
        ``4.``, ``.5``, ``3.6666666666666665``; no exponent, sign or thousands separator)."""
        col = self.fields[position]
        plain = r"(\d{1,6}(\.\d{0,20})?|\.\d{1,20})$"
        good = pc.match_substring_regex(col, "^" + plain)
        comma = "is not a number: a decimal comma? write 4.5, not 4,5"
        named = (("^-" + plain, f"is negative (outside {lo:g}-{hi:g})"), (r"^\d+,\d+$", comma))
        self._name_bad(position, good, named, "is not a number")
        values = pc.cast(pc.if_else(good, col, "0"), pa.float64()).to_numpy()
        self.reject_field(position, (values < lo) | (values > hi), f"is outside {lo:g}-{hi:g}")
        return values

    def reject_duplicates(self, keys: dict[str, np.ndarray], fld: str, what: str) -> None:
        """Reject later lines whose ``keys`` repeat an earlier valid line's (first one wins)."""
        valid = ~self.bad[self.ok_idx]
        # only the rows whose keys' 64-bit mix another row shares can repeat one: the exact
        # comparison below runs on those (none in a clean file; pandas on 10M rows took 5.6 s)
        mix = np.zeros(int(valid.sum()), dtype=np.uint64)
        for v in keys.values():
            mix = mix * np.uint64(1_000_003) ^ v[valid].astype(np.uint64)
        order = np.argsort(mix, kind="stable")
        same = np.flatnonzero(mix[order][1:] == mix[order][:-1])
        maybe = np.zeros(len(mix), dtype=bool)
        maybe[order[same]] = maybe[order[same + 1]] = True
        if not maybe.any():
            return
        frame = pd.DataFrame({k: v[valid][maybe] for k, v in keys.items()})
        frame["sub"] = np.flatnonzero(valid)[maybe]
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
        self.reject(bad_sub, fld, f"duplicate {what}",
                    lambda s: f"duplicate {what} of line {first_line[s]}")  # fmt: skip

    def valid_sub(self) -> np.ndarray:
        """Boolean mask over sub rows: the lines that passed every check."""
        return ~self.bad[self.ok_idx]

    def rejects(self, dataset: str) -> Iterator[dict]:
        """One record per rejected line, in line order, made as it is written: a file of many
        rejects is never held as records (``_records``) nor as reasons (32 bytes a rejected
        line, where a reason string each took about 300: a 2M-line file half rejected held
        300 MB). A check's ``reason`` is therefore called here, after every check ran: it
        reads only what parsing no longer changes (the raw lines, the checked fields)."""
        if not self.groups:
            return iter(())
        rows = np.concatenate([g[0] for g in self.groups])
        which = np.concatenate([np.full(len(g[0]), j, np.int32) for j, g in enumerate(self.groups)])
        at = np.concatenate([np.arange(len(g[0])) for g in self.groups])
        order = np.argsort(rows, kind="stable")

        def made() -> Iterator[tuple[int, tuple[str | None, str]]]:
            for o in order.tolist():
                _, keys, fld, reason = self.groups[which[o]]
                yield int(rows[o]), (fld, reason(int(keys[at[o]])))

        return self._records(dataset, made())

    def nulled(self, dataset: str) -> list[dict]:
        """The fields landed as null, of the lines that landed (a rejected line is in
        ``rejects`` with its own reason)."""
        full = [(int(self.ok_idx[s]), note) for s, note in sorted(self.nulls)]
        return list(self._records(dataset, [(i, note) for i, note in full if not self.bad[i]]))

    def _records(
        self, dataset: str, rows: Iterable[tuple[int, tuple[str | None, str]]]
    ) -> Iterator[dict]:
        """Each row's record; a ``raw`` over ``RAW_MAX_CHARS`` is cut there, and ``raw_length``
        then gives its whole length."""
        source = self.shown or str(self.path.absolute())
        for i, (fld, reason) in rows:
            raw = self.raw[i].as_py()
            record = {"source_file": source, "dataset": dataset, "line": int(self.line_no[i]),
                      "field": fld, "raw": raw[:RAW_MAX_CHARS], "reason": reason}  # fmt: skip
            if len(raw) > RAW_MAX_CHARS:
                record["raw_length"] = len(raw)
            yield record

    def lines_of(self, sub_mask: np.ndarray) -> np.ndarray:
        """The 1-based line numbers of the sub rows in ``sub_mask``."""
        return self.line_no[self.ok_idx[sub_mask]]


def _patched(parts: pa.Array, at: np.ndarray, rows: list[list[str]]) -> pa.Array:
    """``parts`` with its rows at ``at`` (ascending) replaced by ``rows``."""
    order = np.arange(len(parts))
    order[at] = len(parts) + np.arange(len(at))
    return pa.concat_arrays([parts, pa.array(rows, parts.type)]).take(pa.array(order))


# What a line split by the wrong separator may be split by instead, to name it.
_SEPARATORS = (("\t", "tabs"), (",", "commas"), (";", "semicolons"), ("|", "pipes"),
               ("::", "'::'"), (" ", "spaces"))  # fmt: skip


def _separator_seen(text: str, sep: str, n_fields: int) -> str:
    """A hint, "; its fields look separated by semicolons", when another separator than
    ``sep`` splits ``text`` into ``n_fields`` fields (runs of spaces as one); else ""."""
    for other, label in _SEPARATORS:
        if other != sep and other in text:
            parts = text.split() if other == " " else text.split(other)
            if parts and not parts[-1].strip():  # a separator ending the line
                parts.pop()
            if len(parts) == n_fields:
                return f"; its fields look separated by {label}"
    return ""


# A quoted field's newlines join at most this many lines into one record: an unclosed quote
# stays one bad line, not the rest of the file swallowed.
_MAX_RECORD_LINES = 20


def _records(pieces: list[str]) -> tuple[list[str], np.ndarray]:
    """CSV records from lines: a line with an odd number of quotes opens a quoted field that
    the next such line within ``_MAX_RECORD_LINES`` closes, and the lines between are one
    record (a title holding a newline), when that record has the first line's (the header's)
    number of fields and no line between is a record of its own: two unclosed quotes apart
    are two bad lines, never one record swallowing the good ones between. Returns the records
    and each one's first line."""
    counts = pc.count_substring(pa.array(pieces, pa.large_string()), '"').to_numpy()
    odd = np.flatnonzero(counts % 2 == 1).tolist()
    first = _csv_fields(next((p for p in pieces if p.strip()), ""))
    fields = -1 if isinstance(first, csv.Error) else len(first)

    def width(text: str, strict: bool = False) -> int:
        got = _csv_fields(text, strict=strict)
        return -1 if isinstance(got, csv.Error) else len(got)

    keep = np.ones(len(pieces), dtype=bool)
    k = 0
    while k + 1 < len(odd):
        start, end = odd[k], odd[k + 1]
        record = "\n".join(pieces[start : end + 1])
        if (
            end - start >= _MAX_RECORD_LINES
            # strict: the first quote must open a field and the last close one (an inch mark
            # in each of two titles, `Heat 12" (1995)`, is no quoted field: two lines)
            or width(_CLOSE_SPACE.sub('"', record), strict=True) != fields
            or any(width(b) == fields for b in pieces[start + 1 : end])
        ):
            k += 1  # unclosed: its line alone, rejected as it is
            continue
        pieces[start] = record
        keep[start + 1 : end + 1] = False
        k += 2
    numbers = np.flatnonzero(keep) + 1
    return [p for p, kept in zip(pieces, keep.tolist(), strict=True) if kept], numbers


# spaces after a closing quote, before the comma or the end (`"Toy\nStory" ,Comedy`), which
# strict parsing refuses and the release's reader skips
_CLOSE_SPACE = re.compile(r'"[ \t]+(?=,|$)', re.MULTILINE)
# stands for a bare "\r" while Python's csv splits a line: it refuses one in an unquoted field
_CR = "\ue000"


def _csv_fields(text: str, *, strict: bool = False) -> list[str] | csv.Error:
    """One CSV record's fields (spaces after a comma skipped, also before a quoted field),
    or the error Python's csv raised for it (a line is then rejected, never a traceback). A
    stray "\r" in a title is kept; a field over csv's size limit (131,072 characters) is read
    whole, for the caller to null as over-long."""
    cr = "\r" in text and _CR not in text
    line = text.replace("\r", _CR) if cr else text
    try:
        try:
            fields = next(csv.reader([line], strict=strict, skipinitialspace=True), [])
        except csv.Error as e:
            if "field limit" not in str(e):
                raise
            before = csv.field_size_limit(len(line) + 1)
            try:
                fields = next(csv.reader([line], strict=strict, skipinitialspace=True), [])
            finally:
                csv.field_size_limit(before)
    except csv.Error as e:
        return e
    return [f.replace(_CR, "\r") for f in fields] if cr else fields


def _decode_latin1_lines(data: bytes) -> tuple[str, int]:
    """``data`` as latin-1 (``_single_byte``), line by line, except lines that decode as
    UTF-8 and hold a multi-byte character; returns the text and how many lines were read as
    UTF-8."""
    out, utf8 = [], 0
    for line in data.split(b"\n"):
        if line.isascii():
            out.append(line.decode("ascii"))
            continue
        try:
            out.append(line.decode("utf-8"))
            utf8 += 1
        except UnicodeDecodeError:
            out.append(_single_byte(line))
    return "\n".join(out), utf8


def _single_byte(line: bytes) -> str:
    """A line that is not UTF-8: Windows-1252, which is latin-1 but for 0x80-0x9F, where
    latin-1 has invisible control characters and Windows-1252 the typographic quotes and
    dashes an editor on Windows writes (a title's "Schindler\x92s" lands as "Schindler’s");
    latin-1 where a byte is undefined in Windows-1252 (0x81, 0x8D, 0x8F, 0x90, 0x9D)."""
    try:
        return line.decode("cp1252")
    except UnicodeDecodeError:
        return line.decode("latin-1")


__all__ = ["Lines"]
