"""Bounds on a request's head, kept by the HTTP server itself, and what the open edge may say.

uvicorn's httptools protocol bounds neither the size of a request's head (its request line and
header fields) nor the time it takes to arrive, and both are spent before the app, and so the
Guard and its token, sees the request (a review, 2026-12-07):

- **Size.** httptools gathers a header value by joining each piece the socket delivers to
  what it has (quadratic): a 256 MiB header line was answered 200 after 78 s, the event loop
  stalled (``/livez`` took 4.8 s) and the worker grew by 0.5 GB; 5,000 header fields were
  taken too. ``HeadLimitedProtocol`` answers a head over ``RECASSETS_SERVE_MAX_HEAD_BYTES``
  (64 KiB in all) or of more than ``RECASSETS_SERVE_MAX_HEADERS`` (100) fields with a 431 and
  closes the connection. The parser reports a field only once it has all of it, so a head is
  bounded by what arrives: once it has begun in a read and not ended, later reads are fed to
  the parser up to the limit and no more, so httptools never holds more of a head than the
  read it began in (at most 256 KiB) and the limit; at its end it is counted exactly (its
  URL and the fields uvicorn kept) when it may be over (it came in more than one read, or in
  one larger than the limit), and its fields are counted always.
- **Time.** 2,000 connections that each sent a header line every 10 s were held 40 s and more
  (the Guard's body deadline starts after the head). A head must be whole within
  ``RECASSETS_SERVE_HEAD_TIMEOUT_S`` (10 s) of its first byte, the first request's of the
  connection being made, else a 408 and the connection is closed (one that has sent nothing
  is closed without an answer). The time a kept-alive connection waits between requests stays
  uvicorn's own ``timeout_keep_alive``.

A head that is whole in the read it began in, as nearly every one is, costs a few attribute
tests per request (no per-field callback is wrapped: a wrapped ``on_header`` cost 3.7 us a
request, 18 % of the protocol's 20 us) and one timer per connection (made when it opens,
cancelled at its first head), not one per request. A refusal while an earlier answer on the connection is still being made
(pipelining) is written after the last of them, and ends the connection.

``no_websockets`` in ``recassets.bento.unrouted`` (the patch of uvicorn's ``Config.load`` the
service already makes) has the worker's uvicorn serve with this protocol, the limits read from
the environment when the service is imported: a bad setting stops the worker at start.

Also here, for the Guard: ``bad_path`` (a path that holds a control character: Starlette's
``^/recommend$`` matches ``"/recommend\\n"``, so ``/recommend%0A`` was served under a second
metrics label, and ``/docs.json%0A`` passed the schema's check) and ``public_note`` (what the
unauthenticated ``/readyz`` may say of a degraded store: not the store's absolute path nor its
raw error).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from recassets.run_settings import env_int

MAX_HEAD_ENV = "RECASSETS_SERVE_MAX_HEAD_BYTES"
MAX_HEAD_BYTES = 64 * 1024  # nginx's large_client_header_buffers: 4 x 8 KiB; a real head < 2 KiB
MAX_HEADERS_ENV = "RECASSETS_SERVE_MAX_HEADERS"
MAX_HEADERS = 100  # h11's and most proxies' bound; a client sends about 10
HEAD_TIMEOUT_ENV = "RECASSETS_SERVE_HEAD_TIMEOUT_S"
HEAD_TIMEOUT_S = 10.0  # a head of a few KiB; nginx's client_header_timeout is 60 s
HEAD_TIMEOUT_MAX_S = 600.0

# C0, DEL, C1, and the Unicode line and paragraph separators (lines of a log, as LF is)
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


@dataclass(frozen=True)
class HeadLimits:
    max_bytes: int = MAX_HEAD_BYTES
    max_headers: int = MAX_HEADERS
    timeout_s: float = HEAD_TIMEOUT_S


def limits_from_env(env: Mapping[str, str]) -> HeadLimits:
    """The limits the environment sets (a blank or unset variable: the default); a value out of
    its bounds is a ``ValueError`` naming the variable."""
    text = (env.get(HEAD_TIMEOUT_ENV) or "").strip()
    seconds = HEAD_TIMEOUT_S
    if text:
        try:
            seconds = float(text)
        except ValueError:
            seconds = math.nan
        if not (math.isfinite(seconds) and 0 < seconds <= HEAD_TIMEOUT_MAX_S):
            raise ValueError(
                f"{HEAD_TIMEOUT_ENV}={text[:40]!r}: expected seconds, more than 0 and at most "
                f"{HEAD_TIMEOUT_MAX_S:g}"
            )
    return HeadLimits(
        # at least a browser's head (cookies included); at most 16 MiB, where the parser's
        # joins cost seconds
        max_bytes=env_int(MAX_HEAD_ENV, MAX_HEAD_BYTES, minimum=4096, env=env, maximum=1 << 24),
        max_headers=env_int(MAX_HEADERS_ENV, MAX_HEADERS, minimum=16, env=env, maximum=10_000),
        timeout_s=seconds,
    )


class _Refused(Exception):
    """Raised from a parser callback: the head is refused (the parser wraps it in its error,
    which uvicorn answers with ``send_400_response``: answered here instead)."""


def protocol(limits: HeadLimits) -> type:
    """uvicorn's httptools protocol with ``limits`` kept: a class to give ``Config(http=...)``."""
    from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

    class HeadLimitedProtocol(HttpToolsProtocol):
        """``HttpToolsProtocol`` that refuses a head over ``limits`` (431) or late (408)."""

        head_limits = limits

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._in_head = False  # a message has begun and its head has not ended
            self._head_left: int | None = None  # its bytes yet allowed, once past a read
            self._count = False  # whether a head ended in this read is counted
            self._head_timer: Any = None
            self._refusal: tuple[int, str] | None = None  # (status, why), once refused
            self._over: tuple[int, str] | None = None  # what a parser callback refused
            self._unsent: tuple[int, str] | None = None  # a refusal after the answers due

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            # the first request's deadline runs from the connection: nothing arrived is late
            self._head_timer = self.loop.call_later(limits.timeout_s, self._head_late)

        def connection_lost(self, exc: Exception | None) -> None:
            self._cancel_head_timer()
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refusal is not None:  # refused: nothing more is read as a request
                return
            left = self._head_left
            # a head ended in this read is counted when it may be over: when it began in an
            # earlier read, or this read is larger than the limit (else it cannot be)
            self._count = left is not None or len(data) > limits.max_bytes
            if left is not None:  # a head that began in an earlier read and has not ended
                if len(data) > left:
                    super().data_received(data[:left])  # its budget, and no more
                    if self._refusal is not None or self.transport.is_closing():
                        return
                    if self._head_left is not None:  # still that head (not a next one)
                        self._refuse(431, f"the request head is over {limits.max_bytes} bytes")
                        return
                    data = data[left:]  # the head ended within it: a body, a next request
                else:
                    self._head_left = left - len(data)
            super().data_received(data)
            if self._in_head and self._head_left is None and self._refusal is None:
                # a head begun in this read and not ended in it (rare: the slow path)
                self._head_left = limits.max_bytes
                if self._head_timer is None:
                    self._head_timer = self.loop.call_later(limits.timeout_s, self._head_late)

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._in_head = True

        def on_headers_complete(self) -> None:
            # the fields, and (when it may be over) the bytes, counted from what uvicorn kept
            # of the head: no callback of the parser's per field is wrapped (the normal path)
            if len(self.headers) > limits.max_headers:
                self._refused_in_parser(f"the request has over {limits.max_headers} header fields")
            if self._count:
                size = len(self.url) + sum(len(n) + len(v) + 4 for n, v in self.headers)
                if size > limits.max_bytes:
                    self._refused_in_parser(f"the request head is over {limits.max_bytes} bytes")
            self._in_head, self._head_left = False, None
            if self._head_timer is not None:
                self._cancel_head_timer()
            super().on_headers_complete()

        def _refused_in_parser(self, why: str) -> None:
            self._over = (431, why)
            raise _Refused(why)  # the parser stops, and raises its error to data_received

        def send_400_response(self, msg: str) -> None:
            # uvicorn's answer to the parser's error: a refusal of a callback's is answered so
            if self._over is None:
                super().send_400_response(msg)
            elif self._refusal is None:
                self._refuse(*self._over)

        def _cancel_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_late(self) -> None:
            self._head_timer = None
            if self.transport.is_closing() or self._refusal is not None:
                return
            if not self._in_head:  # nothing of a request sent since the connection was made
                self._refusal = (408, "")
                self.transport.close()
                return
            self._refuse(408, f"the request head did not arrive within {limits.timeout_s:g} s")

        def on_response_complete(self) -> None:
            if self._unsent is not None and not self.pipeline:
                # the last answer before the refused head is made: the refusal follows it
                self.server_state.total_requests += 1
                self._answer(*self._unsent)
                return
            super().on_response_complete()

        def _refuse(self, status: int, why: str) -> None:
            """Answer ``status`` (the edge's JSON) and close; while earlier answers of the
            connection are still to be made (pipelined requests), after the last of them."""
            self._refusal = (status, why)
            self._cancel_head_timer()
            self.logger.warning("Request head refused (%d): %s.", status, why)
            cycle: Any = self.cycle  # None before the connection's first head
            if cycle is not None and not cycle.response_complete:
                self._unsent = (status, why)
                return
            self._answer(status, why)

        def _answer(self, status: int, why: str) -> None:
            self._unsent = None
            if self.transport.is_closing():
                return
            body = json.dumps({"error": why, "field": "headers"}).encode()
            head = [STATUS_LINE[status]]
            for name, value in self.server_state.default_headers:
                head += [name, b": ", value, b"\r\n"]
            head += [
                b"content-type: application/json\r\n",
                b"content-length: %d\r\n" % len(body),
                b"connection: close\r\n\r\n",
                body,
            ]
            self.transport.write(b"".join(head))
            self.transport.close()

    return HeadLimitedProtocol


def bad_path(path: str) -> bool:
    """Whether a request's path (percent-decoded, as the ASGI scope holds it) has a control
    character or a line separator in it (the test of printable first: a C loop, no regex for
    the paths that are)."""
    return not path.isprintable() and _CONTROL.search(path) is not None


# The public part of a readiness note: its words before the first ": " (the service's own
# phrase, "online store unavailable, answering from the cold-start path"), when they are
# only words; what follows (a path, a driver's error) is not said to whoever asks.
_PHRASE = re.compile(r"[A-Za-z][A-Za-z0-9 ,.()_-]{0,119}")
DEGRADED = "degraded: the reason is in the service's log"


def public_note(note: str) -> str:
    """What the open ``/readyz`` says of ``note`` (the full note is logged at WARNING when it
    changes; ``/info``, behind the token, shows an unavailable online store's error only, not a
    marker's, an unfinished materialization's or the embedding store's)."""
    head, sep, _ = note.partition(": ")
    head = head.strip()
    if sep and _PHRASE.fullmatch(head):
        return f"{head} (the reason is in the service's log)"
    return DEGRADED


__all__ = [
    "DEGRADED",
    "HEAD_TIMEOUT_ENV",
    "HEAD_TIMEOUT_S",
    "MAX_HEADERS",
    "MAX_HEADERS_ENV",
    "MAX_HEAD_BYTES",
    "MAX_HEAD_ENV",
    "HeadLimits",
    "bad_path",
    "limits_from_env",
    "protocol",
    "public_note",
]
