"""The serving log's filter (``recassets.bento.logs``) on the records BentoML's
``log_exception`` makes: a client's validation error becomes one WARNING line, a server error
keeps ERROR and its traceback."""

from __future__ import annotations

import io
import logging
import sys
from http import HTTPStatus

import pytest
from pydantic import BaseModel, ConfigDict, ValidationError

from recassets.bento import logs


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: int


def _record(exc: BaseException) -> logging.LogRecord:
    """What ``log_exception`` logs inside the ``except`` of a request that raised ``exc``."""
    try:
        raise exc
    except BaseException:  # noqa: BLE001 - the record carries whatever was raised
        return logging.LogRecord(
            logs.BENTOML_LOGGER, logging.ERROR, __file__, 1, "Exception on %s [%s]",
            ("/recommend", "POST"), sys.exc_info(),
        )  # fmt: skip


def _formatted(record: logging.LogRecord) -> str:
    return logging.Formatter("%(levelname)s %(message)s").format(record)


def _validation_error(body: str) -> ValidationError:
    with pytest.raises(ValidationError) as refused:
        _Body.model_validate_json(body)
    return refused.value


def test_a_validation_error_becomes_one_warning_line_without_the_traceback():
    record = _record(_validation_error('{"user_id": "x", "kk\\nFAKE ERROR line": 5}'))
    assert logs.ClientErrors().filter(record) is True
    line = _formatted(record)
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "\n" not in line and "Traceback" not in line
    assert line.startswith("WARNING client error on /recommend [POST]: 400 2 validation error(s)")
    assert "user_id: int_parsing" in line and "extra_forbidden" in line
    assert '"x"' not in line  # the input is not echoed, only where it was wrong


def test_a_bentoml_client_error_is_one_line_too():
    from bentoml.exceptions import BadInput, BentoMLException

    record = _record(BadInput("the body is not JSON"))
    logs.ClientErrors().filter(record)
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "400 BadInput: the body is not JSON" in _formatted(record)
    unavailable = _record(BentoMLException("down", error_code=HTTPStatus.SERVICE_UNAVAILABLE))
    logs.ClientErrors().filter(unavailable)
    assert unavailable.levelno == logging.ERROR and unavailable.exc_info is not None


def test_a_server_error_keeps_error_and_its_traceback():
    record = _record(RuntimeError("the index is damaged"))
    assert logs.ClientErrors().filter(record) is True
    line = _formatted(record)
    assert record.levelno == logging.ERROR and record.exc_info is not None
    assert line.startswith("ERROR Exception on /recommend [POST]")
    assert "Traceback" in line and "RuntimeError: the index is damaged" in line


def test_install_puts_the_filter_on_bentomls_logger_once():
    logger = logging.getLogger(logs.BENTOML_LOGGER)
    before = list(logger.filters)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger.addHandler(handler)
    try:
        first = logs.install()
        assert logs.install() is first and logger.filters.count(first) == 1
        try:
            _Body.model_validate_json("{}")
        except ValidationError:
            logger.error("Exception on %s [%s]", "/rank", "POST", exc_info=True)
        try:
            raise KeyError("boom")
        except KeyError:
            logger.error("Exception on %s [%s]", "/rank", "POST", exc_info=True)
    finally:
        logger.removeHandler(handler)
        logger.filters[:] = before
    out = stream.getvalue().splitlines()
    assert (
        out[0]
        == "WARNING client error on /rank [POST]: 400 1 validation error(s): user_id: missing"
    )
    assert out[1] == "ERROR Exception on /rank [POST]" and "KeyError: 'boom'" in out[-1]


def _access(path: str, content_type: str) -> logging.LogRecord:
    """The record BentoML's access middleware logs for one request."""
    return logging.LogRecord(
        logs.ACCESS_LOGGER, logging.INFO, __file__, 1, "%s (%s) (%s) %.3fms",
        ("127.0.0.1:5000", f"scheme=http,method=GET,path={path},type={content_type}",
         "status=404", 1.5), None,
    )  # fmt: skip


def test_an_access_line_is_one_bounded_line_whatever_the_client_sent():
    forged = "/a\r\n2026-12-05T19:00:00+0000 [ERROR] FORGED LINE"
    record = _access(forged, "application/json")
    assert logs.AccessLines().filter(record) is True
    line = record.getMessage()
    assert "\n" not in line and "\r" not in line and "/a\\r\\n2026-12-05" in line
    huge = _access("/recommend", "application/json; x=" + "a" * 2_000_000)
    logs.AccessLines().filter(huge)
    got = huge.getMessage()
    assert len(got) <= logs.MAX_ACCESS_CHARS + 10 and got.endswith(" ...(cut)")
    plain = _access("/recommend", "application/json")
    want = plain.getMessage()
    logs.AccessLines().filter(plain)
    assert plain.getMessage() == want  # an ordinary line is left as it is
    assert logs.one_line("caf\u00e9 \u2028 \x1b") == "caf\u00e9 \\u2028 \\x1b"


def test_install_puts_the_access_filter_on_once():
    logs.install()
    logs.install()
    access = logging.getLogger(logs.ACCESS_LOGGER)
    assert sum(isinstance(f, logs.AccessLines) for f in access.filters) == 1


def test_a_content_type_that_is_no_utf8_is_escaped_before_the_access_line():
    """BentoML's access middleware decodes the request's Content-Type as UTF-8 when it writes
    its line, outside the service's edge: ``text/\\xe9`` raised there, the client got a status
    line and a dropped connection, the log two ERROR tracebacks. ``install`` escapes it in the
    request first: the app sees ``text/\\\\xe9`` and the line is written."""
    import asyncio

    from bentoml._internal.server.http.access import AccessLogMiddleware

    assert logs.ascii_headers([(b"content-type", b"application/json")]) == [
        (b"content-type", b"application/json")
    ]
    seen: dict[bytes, bytes] = {}
    sent: list[dict] = []

    async def app(scope, receive, send):
        seen.update(scope["headers"])
        await send({"type": "http.response.start", "status": 415,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b"{}"})

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    def call(method=None) -> None:
        scope = {"type": "http", "scheme": "http", "method": "POST", "path": "/recommend",
                 "client": ("127.0.0.1", 1), "headers": [(b"content-type", b"text/\xe9"),
                                                          (b"x-other", b"\xe9")]}  # fmt: skip
        middleware = AccessLogMiddleware(app, has_request_content_type=True)
        asyncio.run((method or type(middleware).__call__)(middleware, scope, receive, send))

    logs.install()
    shipped = AccessLogMiddleware.__call__.__defaults__[0]  # the method the patch wraps
    with pytest.raises(UnicodeDecodeError):  # BentoML as it ships raises on the byte
        call(shipped)
    sent.clear()
    call()
    assert seen[b"content-type"] == b"text/\\xe9" and seen[b"x-other"] == b"\xe9"
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [415]
    assert sent[-1]["body"] == b"{}"


def test_uvicorns_websocket_advice_is_dropped_its_warning_kept():
    """The worker serves no websocket on purpose: "pip install 'uvicorn[standard]'" after an
    Upgrade request would send an operator after a fix that changes nothing."""
    f = logs.NoWebsocketAdvice()

    def rec(msg: str) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.error", logging.WARNING, __file__, 1, msg, None, None)

    assert not f.filter(rec("No supported WebSocket library detected. Please use ..."))
    assert f.filter(rec("Unsupported upgrade request."))
