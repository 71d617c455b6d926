"""What the serving edge (``recassets.bento.guard.Guard``) refuses of a request body before
the API parses it: a declared charset or coding the API would misread, and a JSON body whose
objects repeat a key or hold more keys than any endpoint takes.

- **Codings.** A JSON body declared in another charset than UTF-8 (it was read as UTF-8
  regardless), sent compressed (``Content-Encoding: gzip`` was answered "Invalid JSON"), or
  sent with a transfer coding other than ``chunked`` (``Transfer-Encoding: gzip, chunked``:
  the HTTP server takes the chunks off and hands on the gzip bytes, answered "Invalid JSON"
  too) is a 415 naming the header.
- **Repeated keys.** ``{"user_id": 5, "user_id": 6}`` was answered for 6: a proxy or a log
  that reads the first key sees another request than the one served. A 400 naming the key.
- **Crowded objects.** An object of more than ``MAX_KEYS`` keys is a 400 naming where it is
  (``body``, ``requests[3]``): no endpoint takes more than 6 fields, and a 260 KB body of
  25,000 unknown keys cost 261 ms to refuse further in (25,000 pydantic errors, a 4.3 MB
  error body made by BentoML and parsed again by the edge), against a few ms here.
- **Cohort values.** ``country`` and ``age_bucket`` are free text to the API's model (at most
  32 characters), and came back in ``notes``: NUL, LF, U+2028 and ``<script>`` were taken. A
  value of other characters than ASCII letters, digits, single spaces and ``_ + - . <`` (the
  lake's values: ``US``, ``18-24``, ``<18``, ``55+``, ``unknown``) is a 400 naming where it
  is (``country``, ``requests[2].age_bucket``), the value not echoed.
"""

from __future__ import annotations

import json
import re
from typing import Any

# Keys in one JSON object at most: the widest request (/recommend's, a batch's requests) has
# 6 fields, so 32 leaves room for fields yet to come, and a body refused for unknown keys is
# refused with at most 32 pydantic errors per object, not one per key the client made up.
MAX_KEYS = 32
MAX_FIELD_CHARS = 64  # a name the client made up, as the edge's error bodies cut it
MAX_PATH_CHARS = 200
COHORT_FIELDS = ("country", "age_bucket")
# "" too (no cohort). The API's model declares the same pattern (``serving/service.py``), so
# the schema says it and a schema-valid request is never refused here.
COHORT_PATTERN = r"^(?:[A-Za-z0-9_+.<-]+(?: [A-Za-z0-9_+.<-]+)*)?$"
_COHORT = re.compile(COHORT_PATTERN.strip("^$"))


def refused_encoding(
    params: str, content_encoding: str, transfer_encoding: str = ""
) -> tuple[str, str] | None:
    """(header, why) when a JSON body is declared in a charset other than UTF-8, compressed
    (``Content-Encoding``) or sent in a transfer coding other than ``chunked`` (every
    ``Transfer-Encoding`` value of the request, joined with commas); None for a body this API
    reads as sent."""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            return "content-type", f"the API reads JSON in UTF-8, not charset {charset[:40]!r}"
    coding = content_encoding.strip().lower()
    if coding not in ("", "identity"):
        return "content-encoding", f"the API takes uncompressed bodies, not {coding[:40]!r}"
    codings = [c.strip().lower() for c in transfer_encoding.split(",") if c.strip()]
    other = [c for c in codings if c != "chunked"]
    if other:  # "identity" too: no transfer coding since RFC 7230, and never one of ours
        return "transfer-encoding", f"the API takes uncompressed bodies, not {other[0][:40]!r}"
    return None


class _Repeated(Exception):
    pass


class _Crowded:
    """What the parser makes of an object of more than ``MAX_KEYS`` keys (found afterwards,
    with its path, by ``_crowded_path``)."""

    __slots__ = ("keys",)

    def __init__(self, keys: int) -> None:
        self.keys = keys


class _BadCohort:
    """What the parser makes of a cohort value outside ``_COHORT`` (found like ``_Crowded``)."""

    __slots__ = ()


def _object(pairs: list[tuple[str, Any]], crowded: list[int]) -> Any:
    if len(pairs) > MAX_KEYS:
        crowded.append(len(pairs))  # the walk for its path runs only then
        return _Crowded(len(pairs))  # no dict built: refused whatever its keys are
    out = dict(pairs)
    if len(out) != len(pairs):  # one pass: a count per key was quadratic (26,700 keys: 13 s)
        seen: set[str] = set()
        for k, _ in pairs:
            if k in seen:
                raise _Repeated(k)
            seen.add(k)
    for field in COHORT_FIELDS:
        value = out.get(field)
        if isinstance(value, str) and not _COHORT.fullmatch(value):
            crowded.append(0)
            out[field] = _BadCohort()
    return out


def body_refusal(body: bytes) -> tuple[str, str] | None:
    """(field, why) for a JSON body whose objects (at any depth) repeat a key, hold more
    than ``MAX_KEYS`` keys or a cohort value outside ``_COHORT``, or None: also for a body that is no JSON, which the API's own
    parser refuses with its reason."""
    if body.count(b'"') < 4:  # fewer than two keys: nothing can repeat (an empty body, {})
        return None
    crowded: list[int] = []
    try:
        parsed = json.loads(body, object_pairs_hook=lambda pairs: _object(pairs, crowded))
    except _Repeated as e:
        key = str(e.args[0])[:MAX_FIELD_CHARS]
        return key, f"the field {key!r} is given more than once"
    except (ValueError, RecursionError):
        return None
    if not crowded:  # every request but a refused one: no walk over a /rank's 1,000 ids
        return None
    found = _crowded_path(parsed)
    if found is None:
        return None
    path, keys = found
    if keys < 0:
        return path, (
            f"{path}: expected letters, digits, single spaces and _ + - . < only "
            "(a country code, an age bucket such as 18-24)"
        )
    return path, f"{path}: an object of {keys} keys; the API takes at most {MAX_KEYS} in one"


def _crowded_path(node: Any) -> tuple[str, int] | None:
    """The path (``body``, ``requests[2].x``) and key count of the first ``_Crowded`` in
    ``node`` (-1: a ``_BadCohort``), in document order, or None. No recursion (the depth is the client's), and each
    step's path is a link to its parent's, made into text for the one found only."""
    # each entry: (a value, its crumb: None at the top, else (the parent's crumb, key or index))
    stack: list[tuple[Any, Any]] = [(node, None)]
    while stack:
        item, crumb = stack.pop()
        if isinstance(item, _Crowded):
            return _path(crumb), item.keys
        if isinstance(item, _BadCohort):
            return _path(crumb), -1
        if isinstance(item, dict):
            stack.extend((v, (crumb, str(k))) for k, v in reversed(item.items()))
        elif isinstance(item, list):
            stack.extend((item[i], (crumb, i)) for i in range(len(item) - 1, -1, -1))
    return None


def _path(crumb: Any) -> str:
    steps: list[str | int] = []
    while crumb is not None:
        crumb, step = crumb
        steps.append(step)
    text = "".join(
        f"[{s}]" if isinstance(s, int) else f".{s[:MAX_FIELD_CHARS]}" for s in reversed(steps)
    )
    return (text.removeprefix(".") or "body")[:MAX_PATH_CHARS]


__all__ = ["MAX_KEYS", "body_refusal", "refused_encoding"]
