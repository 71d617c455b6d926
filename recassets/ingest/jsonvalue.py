"""Where the first JSON value of a line ends, read as Spark's JSON reader (Jackson) reads it:
what ``files._trailing_content`` falls back on where Python's json refuses a line (Jackson's
numbers beyond JSON, a depth or a length past Python's limits), to find a second record on
the line that Spark would lose."""

from __future__ import annotations

import re

# One token of JSON as Spark's JSON reader (Jackson) reads it: punctuation (group 1), a string,
# a number, a literal, or one of the numbers beyond JSON that allowNonNumericNumbers (on by
# default) admits: NaN, Infinity, +INF, -INF, +Infinity, -Infinity. Spark 4.2 made a corrupt
# record of INF, +NaN, nan, inf, 01, +1 and .5 (probe, 2026-12-07), as this does.
_JSON_TOKEN = re.compile(
    r'[ \t\r\n]*+(?:([{}\[\]:,])|"(?:[^"\\\x00-\x1f]++|\\["\\/bfnrt]|\\u[0-9a-fA-F]{4})*+"'
    r"|-?(?:0|[1-9][0-9]*+)(?:\.[0-9]++)?(?:[eE][+-]?[0-9]++)?"
    r"|true|false|null|NaN|Infinity|[+-]INF|[+-]Infinity)"
)


def first_value_end(line: str) -> int | None:
    """Where the first JSON value of ``line`` ends, read as Spark's JSON reader reads it
    (``_JSON_TOKEN``), or None where it is no value: Jackson makes such a line a corrupt
    record, quarantined as a row with its text whole, and reads nothing after it.

    Iterative, with no limit of depth or length: Python's json failed on a value nested 5,000
    deep or a number of 5,000 digits, the run with it. Jackson refuses a line past its limits
    (docs/ingestion-and-lineage.md), so a line taken here beyond them is at worst a file
    quarantined whole where a row would have been: never a record lost."""
    closers: list[str] = []  # of the open objects and arrays, innermost last
    state = "value"  # value, key, colon, or next (',' or the closer)
    opened = False  # the token before opened an object or an array: it may close at once
    pos = 0
    while True:
        m = _JSON_TOKEN.match(line, pos)
        if m is None:
            return None
        pos, punct = m.end(), m.group(1)
        if opened and punct == closers[-1]:  # {} or []
            closers.pop()
            state = "next"
        elif state == "value":
            if punct in ("{", "["):
                closers.append("}" if punct == "{" else "]")
                state, opened = ("key" if punct == "{" else "value"), True
                continue
            if punct:
                return None
            state = "next"
        elif state == "key":
            if punct or not m.group(0).lstrip(" \t\r\n").startswith('"'):
                return None
            state = "colon"
        elif state == "colon":
            if punct != ":":
                return None
            state = "value"
        elif punct == ",":
            state = "key" if closers[-1] == "}" else "value"
        elif punct == closers[-1]:
            closers.pop()
        else:
            return None
        opened = False
        if state == "next" and not closers:
            return pos


__all__ = ["first_value_end"]
