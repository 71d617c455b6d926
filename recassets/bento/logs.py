"""The serving log: a client's mistake is one line, a server fault keeps its traceback.

BentoML logs every exception of a request, a validation error included, at ERROR with its
traceback (``log_exception``: ``"Exception on /recommend [POST]"`` and some 25 lines of
pydantic's). A bad request is the client's fault, already answered with a 400 naming the
field; logged that way, a hostile client floods the log and trips every alert set on ERROR.
``ClientErrors`` turns such a record into one WARNING line (path, method, status and what
was wrong: the fields and pydantic's error types, never the input), and passes every other
record as it is: a real server error stays at ERROR with its traceback.

``AccessLines`` does the same for BentoML's access log (``bentoml.access``), which copies the
request's path (percent-decoded: ``%0d%0a`` in a URL forged a whole log line) and its
Content-Type (a 2 MB header made a 2 MB line) as sent: each record becomes one line, control
characters escaped, at most ``MAX_ACCESS_CHARS`` long.

It also decodes the request's Content-Type and Content-Length as UTF-8 before it writes the
line: one byte that is not (``Content-Type: text/\xe9``) raised there, outside the service's
edge, so the client got its status line and then a dropped connection, and the log two ERROR
tracebacks for a 100-byte request. ``install`` escapes such a value in the request itself
(``text/\\xe9``) before that middleware runs, and the edge then answers it as any other
(a 415 naming the type).

``install`` puts both on their loggers (the service does, when a worker builds it).
"""

from __future__ import annotations

import logging
from typing import Any

# the logger of BentoML's ``log_exception`` (bentoml/_internal/server/http_app.py)
BENTOML_LOGGER = "bentoml._internal.server.http_app"
MAX_DETAIL_CHARS = 300  # a hostile field name is cut, not copied into the log whole
MAX_ERRORS_SHOWN = 3
ACCESS_LOGGER = "bentoml.access"  # bentoml/_internal/server/http/access.py
MAX_ACCESS_CHARS = 1_000


def client_status(exc: BaseException | None) -> int | None:
    """The 4xx status ``exc`` is answered with (pydantic's ``ValidationError``: 400; a
    BentoML exception with a 4xx ``error_code``), or None for anything else (a server error)."""
    if exc is None:
        return None
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return 400
    code = getattr(exc, "error_code", None)  # BentoMLException's HTTPStatus
    try:
        status = int(code) if code is not None else None
    except (TypeError, ValueError):
        return None
    return status if status is not None and 400 <= status < 500 else None


def _detail(exc: BaseException) -> str:
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        errors = exc.errors(include_context=False, include_input=False, include_url=False)
        shown = "; ".join(
            f"{'.'.join(str(p)[:40] for p in e['loc']) or '(body)'}: {e['type']}"
            for e in errors[:MAX_ERRORS_SHOWN]
        )
        more = (
            f" (+{len(errors) - MAX_ERRORS_SHOWN} more)" if len(errors) > MAX_ERRORS_SHOWN else ""
        )
        text = f"{len(errors)} validation error(s): {shown}{more}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    # one line whatever the client sent: control characters escaped, the length bounded
    return text.encode("unicode_escape").decode("ascii")[:MAX_DETAIL_CHARS]


class ClientErrors(logging.Filter):
    """Rewrites a record whose exception is a client error (``client_status``) into one
    WARNING line without the traceback; lets every record through."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        status = client_status(exc)
        if status is None or exc is None:
            return True
        args: Any = record.args
        path, method = args if isinstance(args, tuple) and len(args) == 2 else ("?", "?")
        record.msg = "client error on %s [%s]: %d %s"
        record.args = (path, method, status, _detail(exc))
        record.levelno, record.levelname = logging.WARNING, logging.getLevelName(logging.WARNING)
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


def one_line(text: str, limit: int = MAX_ACCESS_CHARS) -> str:
    """``text`` with every control or line-breaking character escaped (``\\r``, ``\\n``,
    ``\\x1b``, ``\\u2028``...), cut at ``limit`` characters (the cut said)."""
    out = "".join(
        ch.encode("unicode_escape").decode("ascii")
        if ord(ch) < 0x20 or 0x7F <= ord(ch) < 0xA0 or ch in "\u2028\u2029"
        else ch
        for ch in text[: limit + 1]
    )
    return out if len(out) <= limit and len(text) <= limit else out[:limit] + " ...(cut)"


class AccessLines(logging.Filter):
    """Makes each access-log record one bounded line (``one_line``); lets every record
    through."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            text = record.getMessage()
        except Exception:  # a record that cannot format is left for the handler to report
            return True
        record.msg, record.args = one_line(text), None
        return True


class NoWebsocketAdvice(logging.Filter):
    """Drops uvicorn's "No supported WebSocket library detected. Please use pip install..."
    after its "Unsupported upgrade request." line: the worker serves no websocket on purpose
    (``unrouted.no_websockets``), and the advice would change nothing."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("No supported WebSocket library detected")


_DECODED = (b"content-type", b"content-length")  # what the access line decodes, as UTF-8
_PATCHED = "_recassets_ascii_headers"


def ascii_headers(headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """``headers`` with each Content-Type or Content-Length value that is not ASCII escaped
    (``\\xe9``); the list itself when none is."""
    if all(v.isascii() or k.lower() not in _DECODED for k, v in headers):
        return headers
    return [
        (k, v.decode("latin-1").encode("ascii", "backslashreplace"))
        if k.lower() in _DECODED and not v.isascii()
        else (k, v)
        for k, v in headers
    ]


def _patch_access_middleware() -> None:
    """Make BentoML's access-log middleware see ``ascii_headers`` of each request."""
    from bentoml._internal.server.http.access import AccessLogMiddleware

    if getattr(AccessLogMiddleware, _PATCHED, False):
        return
    original = AccessLogMiddleware.__call__

    async def __call__(self: Any, scope: Any, receive: Any, send: Any, _o: Any = original) -> None:
        if scope.get("type") == "http" and scope.get("headers"):
            scope["headers"] = ascii_headers(scope["headers"])
        await _o(self, scope, receive, send)

    AccessLogMiddleware.__call__ = __call__
    setattr(AccessLogMiddleware, _PATCHED, True)


def install(logger_name: str = BENTOML_LOGGER) -> ClientErrors:
    """Put ``ClientErrors`` on the logger and ``AccessLines`` on BentoML's access logger
    (once: a second call returns the first filter), and escape the request headers the
    access line decodes (``ascii_headers``)."""
    _patch_access_middleware()
    uvicorn_log = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, NoWebsocketAdvice) for f in uvicorn_log.filters):
        uvicorn_log.addFilter(NoWebsocketAdvice())
    access = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, AccessLines) for f in access.filters):
        access.addFilter(AccessLines())
    logger = logging.getLogger(logger_name)
    for existing in logger.filters:
        if isinstance(existing, ClientErrors):
            return existing
    installed = ClientErrors()
    logger.addFilter(installed)
    return installed


__all__ = [
    "ACCESS_LOGGER",
    "BENTOML_LOGGER",
    "AccessLines",
    "ClientErrors",
    "NoWebsocketAdvice",
    "ascii_headers",
    "client_status",
    "install",
    "one_line",
]
