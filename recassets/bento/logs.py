"""The serving log: a client's mistake is one line, a server fault keeps its traceback.

BentoML logs every exception of a request, a validation error included, at ERROR with its
traceback (``log_exception``: ``"Exception on /recommend [POST]"`` and some 25 lines of
pydantic's). A bad request is the client's fault, already answered with a 400 naming the
field; logged that way, a hostile client floods the log and trips every alert set on ERROR.
``ClientErrors`` turns such a record into one WARNING line (path, method, status and what
was wrong: the fields and pydantic's error types, never the input), and passes every other
record as it is: a real server error stays at ERROR with its traceback.

``install`` puts it on BentoML's logger (the service does, when a worker builds it).
"""

from __future__ import annotations

import logging
from typing import Any

# the logger of BentoML's ``log_exception`` (bentoml/_internal/server/http_app.py)
BENTOML_LOGGER = "bentoml._internal.server.http_app"
MAX_DETAIL_CHARS = 300  # a hostile field name is cut, not copied into the log whole
MAX_ERRORS_SHOWN = 3


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


def install(logger_name: str = BENTOML_LOGGER) -> ClientErrors:
    """Put ``ClientErrors`` on the logger (once: a second call returns the first filter)."""
    logger = logging.getLogger(logger_name)
    for existing in logger.filters:
        if isinstance(existing, ClientErrors):
            return existing
    installed = ClientErrors()
    logger.addFilter(installed)
    return installed


__all__ = ["BENTOML_LOGGER", "ClientErrors", "client_status", "install"]
