"""The HTTP edge below and beside the Guard (``recassets.bento.http_limits``): the request
head's size and time, kept by the protocol uvicorn serves with (over a real socket: a uvicorn
server in a thread with a trivial app), and what the Guard refuses of a path, a POST's length
and a cohort value, and says on the open ``/readyz``."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Generator
from contextlib import contextmanager
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import Route

from recassets.bento import unrouted
from recassets.bento.guard_body import body_refusal
from recassets.bento.http_limits import (
    DEGRADED,
    HEAD_TIMEOUT_ENV,
    MAX_HEAD_ENV,
    MAX_HEADERS_ENV,
    HeadLimits,
    bad_path,
    limits_from_env,
    protocol,
    public_note,
)

from .test_guard import _client, _echo
from .test_guard_body import JSON, _call

LIMITS = HeadLimits(max_bytes=8192, max_headers=20, timeout_s=0.5)


async def _app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    size, more = 0, True
    while more:
        message = await receive()
        size += len(message.get("body", b""))
        more = message.get("more_body", False)
    body = json.dumps({"bytes": size, "path": scope["path"]}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@contextmanager
def _server(limits: HeadLimits = LIMITS) -> Generator[int]:
    """The port of a uvicorn server (the worker's settings: httptools, no websockets) serving
    ``_app`` with the head-limited protocol, until the block ends."""
    import uvicorn

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    config = uvicorn.Config(
        _app, http=protocol(limits), ws="none", lifespan="off", log_level="critical",
        timeout_keep_alive=5,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    try:
        yield listener.getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)
        listener.close()


def _responses(conn: socket.socket, want: int, timeout: float = 5.0) -> tuple[list, bool]:
    """Up to ``want`` responses read from ``conn`` ((status, headers, JSON body) each), and
    whether the server closed the connection after them (read within ``timeout``)."""
    conn.settimeout(timeout)
    data, out, closed = b"", [], False
    while True:
        while b"\r\n\r\n" in data:
            head, rest = data.split(b"\r\n\r\n", 1)
            lines = head.decode("latin-1").split("\r\n")
            headers = dict(line.lower().split(": ", 1) for line in lines[1:])
            length = int(headers.get("content-length", 0))
            if len(rest) < length:
                break
            out.append((int(lines[0].split()[1]), headers, json.loads(rest[:length] or b"null")))
            data = rest[length:]
        if len(out) >= want and not closed and want > 0:
            try:  # closed at once after the last answer?
                conn.settimeout(0.3)
                closed = conn.recv(1) == b""
            except TimeoutError:
                closed = False
            except ConnectionResetError:
                closed = True
            return out, closed
        try:
            chunk = conn.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            return out, True
        data += chunk


def _send(conn: socket.socket, data: bytes) -> bool:
    """Whether all of ``data`` was sent (False: the server had closed the connection)."""
    try:
        conn.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        return False
    return True


def _request(headers: bytes = b"", body: bytes = b"", path: bytes = b"/x") -> bytes:
    return (
        b"POST " + path + b" HTTP/1.1\r\nhost: t\r\ncontent-length: %d\r\n" % len(body)
        + headers + b"\r\n" + body
    )  # fmt: skip


def test_a_head_over_its_bytes_or_fields_is_a_431_and_the_connection_closed():
    """A 256 MiB header line was taken (78 s of the parser joining its pieces, the loop
    stalled) and so were 5,000 fields: now a 431 in the edge's shape, and closed."""
    with _server() as port:
        # passing: a head under both limits, with a body far over them, in one send
        fine = b"".join(b"x-%d: %s\r\n" % (i, b"v" * 300) for i in range(15))
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.sendall(_request(fine, b"b" * 200_000))
            (answer,), closed = _responses(conn, 1)
            assert (answer[0], answer[2]["bytes"], closed) == (200, 200_000, False)
            # the same head in pieces, with a pause: still one request, still fine
            whole = _request(fine, b"{}")
            for i in range(0, len(whole), 1000):
                conn.sendall(whole[i : i + 1000])
                time.sleep(0.01)
            (answer,), closed = _responses(conn, 1)
            assert (answer[0], closed) == (200, False)

        too_many = b"".join(b"x-%d: v\r\n" % i for i in range(30))
        too_long = b"x-long: " + b"v" * 20_000 + b"\r\n"
        for head, says in (
            (too_many, "the request has over 20 header fields"),
            (too_long, "the request head is over 8192 bytes"),
        ):
            with socket.create_connection(("127.0.0.1", port)) as conn:
                conn.sendall(_request(head, b"{}"))
                (answer,), closed = _responses(conn, 1)
                assert answer[0] == 431 and closed, head[:20]
                assert answer[2] == {"error": says, "field": "headers"}
                assert answer[1]["connection"] == "close"

        # a header line that never ends, sent in pieces: refused once past the limit, long
        # before the 10 MB is sent (the parser is fed no more than the limit past a read)
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.sendall(b"GET /x HTTP/1.1\r\nhost: t\r\nx-long: ")
            time.sleep(0.05)
            sent = 0
            while sent < 10_000_000 and _send(conn, b"v" * 4096):
                sent += 4096
                if sent % 65536 == 0:
                    time.sleep(0.001)
            (answer,), closed = _responses(conn, 1)
            assert (answer[0], answer[2]["field"], closed) == (431, "headers", True)
            assert sent < 10_000_000


def test_pipelined_requests_are_counted_each_from_its_own_start():
    """Two requests in one send: each head is its own, the second's refusal comes after the
    first's answer, and a refusal is never written into an answer being made."""
    with _server() as port:
        small = _request(b"x-a: 1\r\n", b"{}")
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.sendall(small * 3)  # three heads: none is over the limit added up
            answers, closed = _responses(conn, 3)
            assert [a[0] for a in answers] == [200, 200, 200] and not closed
        big = _request(b"x-long: " + b"v" * 9000 + b"\r\n", b"{}")
        with socket.create_connection(("127.0.0.1", port)) as conn:
            conn.sendall(small + big)
            answers, closed = _responses(conn, 2)
            assert [a[0] for a in answers] == [200, 431] and closed


def test_a_head_that_does_not_arrive_in_time_is_a_408_and_the_connection_closed():
    """2,000 connections trickling a header line every 10 s were held 40 s and more: a head
    must now be whole within the deadline of its first byte (0.5 s here)."""
    with _server() as port:
        with socket.create_connection(("127.0.0.1", port)) as conn:
            start = time.monotonic()
            conn.sendall(b"GET /x HTTP/1.1\r\nhost: t\r\n")
            for i in range(20):  # a line every 0.1 s: never a whole head
                if not _send(conn, b"x-%d: v\r\n" % i):
                    break
                time.sleep(0.1)
            (answer,), closed = _responses(conn, 1)
            assert (answer[0], closed) == (408, True)
            assert answer[2] == {
                "error": "the request head did not arrive within 0.5 s",
                "field": "headers",
            }
            assert time.monotonic() - start < 1.5
        with socket.create_connection(("127.0.0.1", port)) as conn:  # never a byte: closed
            assert _responses(conn, 1) == ([], True)
        with socket.create_connection(("127.0.0.1", port)) as conn:
            whole = _request(b"", b"{}")  # passing: in two pieces, in time
            conn.sendall(whole[:10])
            time.sleep(0.2)
            conn.sendall(whole[10:])
            (answer,), closed = _responses(conn, 1)
            assert (answer[0], closed) == (200, False)
            time.sleep(0.8)  # kept alive past the head deadline: uvicorn's keep-alive rules
            conn.sendall(whole)
            (answer,), closed = _responses(conn, 1)
            assert (answer[0], closed) == (200, False)


def test_the_limits_come_from_the_environment_within_bounds():
    assert limits_from_env({}) == HeadLimits(65536, 100, 10.0)
    assert limits_from_env(
        {MAX_HEAD_ENV: "16384", MAX_HEADERS_ENV: " 50 ", HEAD_TIMEOUT_ENV: "2.5"}
    ) == HeadLimits(16384, 50, 2.5)
    for env, name in (
        ({MAX_HEAD_ENV: "100"}, MAX_HEAD_ENV),
        ({MAX_HEAD_ENV: "1e9"}, MAX_HEAD_ENV),
        ({MAX_HEADERS_ENV: "100000"}, MAX_HEADERS_ENV),
        ({HEAD_TIMEOUT_ENV: "0"}, HEAD_TIMEOUT_ENV),
        ({HEAD_TIMEOUT_ENV: "nan"}, HEAD_TIMEOUT_ENV),
        ({HEAD_TIMEOUT_ENV: "3600"}, HEAD_TIMEOUT_ENV),
    ):
        with pytest.raises(ValueError, match=name):
            limits_from_env(env)


def test_the_worker_s_uvicorn_serves_with_the_limited_protocol():
    """``unrouted.no_websockets`` (what the service calls at import) patches uvicorn's
    ``Config.load``: "auto" and "httptools" become the limited protocol, "h11" stays."""
    import uvicorn

    unrouted.no_websockets()
    config = uvicorn.Config(_app, lifespan="off")
    config.load()
    assert config.http_protocol_class.__name__ == "HeadLimitedProtocol"
    assert config.ws_protocol_class is None
    h11 = uvicorn.Config(_app, http="h11", lifespan="off")
    h11.load()
    assert h11.http_protocol_class.__name__ == "H11Protocol"


def test_without_httptools_the_worker_refuses_rather_than_serve_unbounded(monkeypatch):
    """The bento's environment lacked httptools: uvicorn's "auto" fell back to h11 and a
    100 KB header was answered 200 while preflight said the head limits were in force. The
    patch now refuses, naming the package; with httptools it installs as before."""
    import uvicorn.config

    from recassets.bento import http_limits

    def no_httptools(limits: Any) -> type:
        raise ImportError("No module named 'httptools'")

    monkeypatch.setattr(http_limits, "protocol", no_httptools)
    monkeypatch.setattr(uvicorn.config.Config, "load", uvicorn.config.Config.load)
    monkeypatch.delattr(uvicorn.config.Config, unrouted._PATCHED, raising=False)
    with pytest.raises(RuntimeError, match="httptools"):
        unrouted.no_websockets()
    monkeypatch.undo()
    unrouted.no_websockets()  # the real protocol: installs


def test_the_serving_lock_pins_what_the_head_limits_and_the_event_loop_need():
    """deploy/serving.lock is the bento's environment: without httptools there it served
    with no head bounds (reviewed 2026-12-07); uvloop is the loop the benchmarks measured."""
    from tests.deploy.test_serving_lock import SERVING_LOCK, pins

    held = pins(SERVING_LOCK.read_text())
    assert {"httptools", "uvloop"} <= set(held), sorted(held)


def test_a_path_with_a_control_character_is_a_400_before_routing():
    """``/recommend%0A`` (the scope's path ``"/recommend\\n"``) was served, under its own
    metrics label, and ``/docs.json%0A`` passed the schema's check."""
    for path in ("/recommend\n", "/docs.json\n", "/readyz\r", "/re\x00c", "/a\u2028", "/\x85"):
        status, answer, reached = _call("POST", path, b"{}", [JSON])
        assert (status, answer["field"], reached) == (400, "path", []), repr(path)
    assert _call("POST", "/recommend", b"{}", [JSON])[0] == 200
    assert not bad_path("/recommend") and not bad_path("/caf\u00e9 x")
    assert bad_path("/recommend\n") and not bad_path("")


async def _no_receive() -> dict[str, Any]:
    return {"type": "http.disconnect"}


async def _no_send(message: Any) -> None:
    pass


def test_a_path_with_a_control_character_is_unrouted_for_the_metrics():
    """BentoML's metrics middleware (patched by ``unrouted.install``) gives such a path no
    series of its own (``^/recommend$`` routes ``"/recommend\\n"``): passed on unmeasured,
    like a made-up path, to the Guard's 400."""
    from bentoml._internal.server.http import instruments

    unrouted.install(lambda: None)  # once per process: the service's count, when imported
    reached: list[str] = []
    router = Starlette(routes=[Route("/recommend", _echo, methods=["POST"])]).router

    class Inner:  # the middlewares down to the router
        def __init__(self, app: Any) -> None:
            self.app = app

        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            reached.append(scope["path"])

    class Stub(instruments.HTTPTrafficMetricsMiddleware):
        def __init__(self, app: Any) -> None:
            self.app = app

    cls: Any = instruments.HTTPTrafficMetricsMiddleware
    original = cls.__call__.__defaults__[0]  # the method the patch wraps (measures)
    measured: list[str] = []

    async def spy(self: Any, scope: Any, receive: Any, send: Any) -> None:
        measured.append(scope["path"])
        await self.app(scope, receive, send)

    cls.__call__.__defaults__ = (spy,)
    try:
        for path in ("/recommend\n", "/recommend"):
            scope = {"type": "http", "method": "POST", "path": path, "headers": []}
            asyncio.run(cls.__call__(Stub(Inner(router)), scope, _no_receive, _no_send))
    finally:
        cls.__call__.__defaults__ = (original,)
    assert (measured, reached) == (["/recommend"], ["/recommend\n", "/recommend"])


def test_a_trailing_slash_is_a_404_not_a_redirect_to_the_client_s_host():
    """``POST /recommend/`` was a 307 to ``http://<Host>/recommend``: a client that follows
    it posts its body to the host an attacker named."""
    client = _client(token=None)
    answer = client.post(
        "/recommend/", json={"user_id": 1}, headers={"host": "evil.example"},
        follow_redirects=False,
    )  # fmt: skip
    assert answer.status_code == 404 and "location" not in answer.headers
    assert answer.json() == {"error": "no such path: /recommend/", "field": "path"}
    assert client.post("/recommend", json={"user_id": 1}).status_code == 200


def test_a_post_without_a_length_is_a_411():
    """HTTP/1.0 with a body and neither header: the server read no body, and the answer was
    the API's "user_id: Field required"."""
    status, answer, reached = _call("POST", "/recommend", b"", [JSON], framed=False)
    assert (status, answer["field"], reached) == (411, "content-length", [])
    for length in ([(b"content-length", b"2")], [(b"transfer-encoding", b"chunked")]):
        assert _call("POST", "/recommend", b"{}", [JSON, *length])[0] == 200
    assert _call("GET", "/recommend", b"", [])[0] == 200  # a GET has no body to measure


@pytest.mark.parametrize(
    "value", ["US", "GB", "18-24", "<18", "55+", "unknown", "new york", "a_b.c", ""]
)
def test_a_cohort_value_of_the_lake_s_kind_passes(value: str):
    assert body_refusal(json.dumps({"user_id": 1, "country": value}).encode()) is None
    assert body_refusal(json.dumps({"user_id": 1, "age_bucket": value}).encode()) is None


def test_a_cohort_value_of_other_characters_is_a_400_naming_where_it_is():
    """``country`` and ``age_bucket`` took NUL, LF, U+2028 and ``<script>``, and echoed them
    in ``notes``."""
    for value in ("U\x00S", "US\n", "a\u2028b", "<script>", " US", "a  b", "ü", "x;y"):
        for field in ("country", "age_bucket"):
            found = body_refusal(json.dumps({"user_id": 1, field: value}).encode())
            assert found is not None and found[0] == field, (field, value)
            assert value not in found[1]
    batch = {"requests": [{"user_id": 1, "country": "US"}, {"user_id": 2, "age_bucket": "<b>"}]}
    found = body_refusal(json.dumps(batch).encode())
    assert found is not None and found[0] == "requests[1].age_bucket"
    status, answer, _ = _call("POST", "/recommend", b'{"user_id":1,"country":"x\\n"}', [JSON])
    assert (status, answer["field"]) == (400, "country")


def test_the_open_readiness_probe_says_no_path_nor_raw_error(caplog: pytest.LogCaptureFixture):
    """``/readyz`` (no token) said ``.../artifacts/feast/online.db: the file is missing`` and
    ``database disk image is malformed``; the whole note is logged, once per change."""
    note = (
        "online store unavailable, answering from the cold-start path: "
        "/home/x/artifacts/feast/online.db: database disk image is malformed"
    )
    notes: list[str | None] = [note]
    client = _client(token="t", health=lambda: notes[0])
    with caplog.at_level("INFO", logger="recassets.bento.guard"):
        first = client.get("/readyz")
        client.get("/readyz")
    assert first.status_code == 200
    detail = first.json()["detail"]
    assert "online.db" not in detail and "malformed" not in detail and "/home" not in detail
    assert detail.startswith("online store unavailable, answering from the cold-start path")
    assert [r.getMessage() for r in caplog.records] == [f"degraded: {note}"]
    assert public_note("[Errno 2] No such file: '/a/b'") == DEGRADED
    assert public_note("/a/online.db: the file is missing") == DEGRADED
    assert public_note("no colon at all") == DEGRADED
