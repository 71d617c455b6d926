"""The serving edge (``recassets.bento.guard.Guard``) around a stand-in ASGI app: the bearer
token, the body-size limit and the degraded readiness line. The wiring into the real service
is tested over HTTP in tests/integration/test_serving.py."""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from recassets.bento.guard import SCHEMA_PATH, TOKEN_ENV, TOKEN_FILE_ENV, Guard, token_from_env

TOKEN = "s3cret-token"


async def _echo(request: Request) -> JSONResponse:
    return JSONResponse({"bytes": len(await request.body())})


async def _ok(request: Request) -> PlainTextResponse:
    return PlainTextResponse("\n")


def _client(**options) -> TestClient:
    app = Starlette(
        routes=[
            Route("/recommend", _echo, methods=["POST"]),
            Route("/metrics", _ok),
            Route("/livez", _ok),
            Route("/readyz", _ok),
        ]
    )
    app.add_middleware(Guard, **options)
    return TestClient(app)


def test_without_a_token_configured_everything_is_open():
    client = _client(token=None)
    assert client.post("/recommend", json={"user_id": 1}).status_code == 200
    assert client.get("/metrics").status_code == 200


def test_a_configured_token_is_required_on_every_path_but_the_probes():
    client = _client(token=TOKEN)
    for path in ("/recommend", "/metrics"):
        method = client.post if path == "/recommend" else client.get
        denied = method(path)
        assert denied.status_code == 401 and denied.json()["field"] == "authorization"
        assert denied.headers["www-authenticate"] == "Bearer"
        assert method(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert method(path, headers={"Authorization": f"Basic {TOKEN}"}).status_code == 401
        assert method(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/livez").status_code == 200
    assert client.get("/readyz").status_code == 200


def test_the_token_comes_from_the_environment_or_a_mounted_file(tmp_path):
    assert token_from_env({}) is None
    assert token_from_env({TOKEN_ENV: TOKEN}) == TOKEN
    assert token_from_env({TOKEN_ENV: f" {TOKEN}\n"}) == TOKEN  # as clients send it: stripped
    secret = tmp_path / "token"
    secret.write_text(TOKEN + "\n")
    assert token_from_env({TOKEN_FILE_ENV: str(secret), TOKEN_ENV: "other"}) == TOKEN
    # a secret that is configured but missing or empty fails closed, never open
    with pytest.raises(RuntimeError, match="cannot read"):
        token_from_env({TOKEN_FILE_ENV: str(tmp_path / "absent")})
    secret.write_text("\n")
    with pytest.raises(RuntimeError, match="empty"):
        token_from_env({TOKEN_FILE_ENV: str(secret)})
    # a variable set but blank (a Helm value left empty) fails closed too
    for blank in ("", "  "):
        with pytest.raises(RuntimeError, match=f"{TOKEN_FILE_ENV} is set but blank"):
            token_from_env({TOKEN_FILE_ENV: blank})
        with pytest.raises(RuntimeError, match=f"{TOKEN_ENV} is set but blank"):
            token_from_env({TOKEN_ENV: blank})


def test_the_body_size_is_bounded_announced_or_streamed():
    client = _client(token=None, max_body_bytes=1000)
    assert client.post("/recommend", content=b"x" * 1000).json() == {"bytes": 1000}
    too_big = client.post("/recommend", content=b"x" * 1001)
    assert too_big.status_code == 413 and too_big.json()["field"] == "body"

    def chunks():  # no Content-Length: the limit holds on what actually arrives
        for _ in range(30):
            yield b"x" * 100

    streamed = client.post("/recommend", content=chunks())
    assert streamed.status_code == 413
    small = client.post("/recommend", content=iter([b"x" * 100] * 3))
    assert small.status_code == 200 and small.json() == {"bytes": 300}


def test_readiness_reports_a_degraded_store_and_stays_200():
    note: list[str | None] = [None]
    client = _client(token=TOKEN, health=lambda: note[0])
    assert client.get("/readyz").text == "\n"
    note[0] = "online store unavailable: Redis down"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {  # its public phrase only: the rest is logged (test_http_limits)
        "status": "degraded",
        "detail": "online store unavailable (the reason is in the service's log)",
    }
    note[0] = None  # the store is back
    assert client.get("/readyz").text == "\n"


def _post_stalled(guard: Guard, chunks: list[bytes]) -> tuple[int, dict, dict]:
    """``guard`` called directly with a client that sends ``chunks`` and then nothing more
    (a body shorter than its Content-Length): (status, headers, JSON body) of the answer."""
    import asyncio
    import json

    sent: list[MutableMapping[str, Any]] = []
    queue = [{"type": "http.request", "body": c, "more_body": True} for c in chunks]
    stalled = asyncio.Event()  # never set: the rest of the body never comes

    async def receive() -> MutableMapping[str, Any]:
        if queue:
            return queue.pop(0)
        await stalled.wait()
        raise AssertionError("unreachable")

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/recommend",
             "headers": [(b"content-type", b"application/json"), (b"content-length", b"100")]}  # fmt: skip
    asyncio.run(guard(scope, receive, send))
    start, body = sent
    headers = {k.decode(): v.decode() for k, v in start["headers"]}
    return start["status"], headers, json.loads(body["body"])


def test_a_body_that_does_not_arrive_in_time_is_a_408_naming_the_body():
    async def never(scope: object, receive: object, send: object) -> None:  # never reached
        raise AssertionError("the app got a partial body")

    guard = Guard(never, token=None, body_timeout_s=0.05)
    status, headers, body = _post_stalled(guard, [b'{"user_id":', b" 1"])
    assert status == 408 and body["field"] == "body" and "0.05 s" in body["error"]
    assert headers["connection"] == "close"
    # a whole body within the deadline is handed on whole (the passing case)
    client = _client(token=None, body_timeout_s=0.05)
    assert client.post("/recommend", content=iter([b"x" * 100] * 3)).json() == {"bytes": 300}


def test_the_body_deadline_comes_from_the_environment():
    from recassets.bento.guard import BODY_TIMEOUT_ENV, BODY_TIMEOUT_S, body_timeout_from_env

    assert body_timeout_from_env({}) == BODY_TIMEOUT_S == 5.0
    assert body_timeout_from_env({BODY_TIMEOUT_ENV: "2.5"}) == 2.5
    for bad in ("0", "-1", "soon", "nan", "inf"):
        with pytest.raises(ValueError, match=BODY_TIMEOUT_ENV):
            body_timeout_from_env({BODY_TIMEOUT_ENV: bad})


def _validation_400(request: Request) -> JSONResponse:
    """BentoML's answer to a body its pydantic model refuses (the shape BentoML 1.4 sends)."""
    return JSONResponse(
        {
            "error": "2 validation errors for RecommendRequestIODescriptor",
            "detail": [
                {
                    "type": "int_type",
                    "loc": ["requests", 2, "k"],
                    "msg": "Input should be a valid integer",
                    "input": "20",
                    "url": "https://errors.pydantic.dev/2/v/int_type",
                },
                {
                    "type": "extra_forbidden",
                    "loc": ["x" * 200_000],
                    "msg": "Extra inputs are not permitted",
                    "input": 1,
                },
            ],
        },  # fmt: skip
        status_code=400,
    )


def _own_400(request: Request) -> JSONResponse:
    return JSONResponse({"error": "no such user", "field": "user_id"}, status_code=400)


def test_a_validation_400_is_rewritten_to_the_edges_error_shape():
    """The field named as the service names it, no internal class, no echoed input, no 200 KB
    key sent back; a 400 already in the edge's shape and any other answer pass unchanged."""
    app = Starlette(
        routes=[
            Route("/recommend", _validation_400, methods=["POST"]),
            Route("/rank", _own_400, methods=["POST"]),
            Route("/recommend_batch", _echo, methods=["POST"]),
        ]
    )
    app.add_middleware(Guard, token=None)
    client = TestClient(app)
    refused = client.post("/recommend", json={})
    body = refused.json()
    assert refused.status_code == 400
    assert body["field"] == "requests[2].k"
    assert body["error"] == "requests[2].k: Input should be a valid integer (and 1 more)"
    assert body["detail"][0] == {
        "loc": ["requests", 2, "k"], "msg": "Input should be a valid integer", "type": "int_type"
    }  # fmt: skip
    assert body["detail"][1]["loc"] == ["x" * 64]
    assert "IODescriptor" not in refused.text and '"input"' not in refused.text
    assert int(refused.headers["content-length"]) == len(refused.content) < 1000
    own = client.post("/rank", json={})
    assert (own.status_code, own.json()) == (400, {"error": "no such user", "field": "user_id"})
    ok = client.post("/recommend_batch", json={"a": 1})
    assert (ok.status_code, ok.json()) == (200, {"bytes": 7})


def test_an_unknown_path_or_method_is_the_edges_json_too():
    """Starlette answers them in plain text; the allowed methods stay in the header."""
    client = _client(token=None)
    missing = client.post("/nowhere", json={})
    assert (missing.status_code, missing.json()) == (
        404, {"error": "no such path: /nowhere", "field": "path"}
    )  # fmt: skip
    wrong = client.get("/recommend")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "POST"
    assert wrong.json() == {"error": "method GET not allowed on /recommend", "field": "method"}
    assert wrong.headers["content-type"] == "application/json"
    assert client.get("/metrics").text == "\n"  # a 200 goes through as it was


@pytest.mark.parametrize(
    ("headers", "field", "says"),
    [
        ({"content-type": "application/json; charset=latin-1"}, "content-type", "charset 'latin-1'"),
        ({"content-type": "application/json", "content-encoding": "gzip"}, "content-encoding", "'gzip'"),
    ],
)  # fmt: skip
def test_a_body_in_another_charset_or_compressed_is_a_415(headers, field, says):
    client = _client(token=None)
    refused = client.post("/recommend", content=b'{"user_id": 1}', headers=headers)
    assert refused.status_code == 415 and refused.json()["field"] == field
    assert says in refused.json()["error"]
    for fine in ({"content-type": "application/json; charset=UTF-8"},
                 {"content-type": "application/json", "content-encoding": "identity"}):  # fmt: skip
        assert client.post("/recommend", content=b'{"user_id": 1}', headers=fine).status_code == 200


def test_an_upgrade_request_is_a_400_naming_the_header():
    """uvicorn takes an Upgrade request's body for the new protocol's: the API saw none and
    answered a valid request "user_id: Field required"."""
    client = _client(token=None)
    headers = {"content-type": "application/json", "upgrade": "h2c", "connection": "Upgrade"}
    refused = client.post("/recommend", content=b'{"user_id": 1}', headers=headers)
    assert refused.status_code == 400 and refused.json()["field"] == "upgrade"
    plain = {"content-type": "application/json"}
    assert client.post("/recommend", content=b'{"user_id": 1}', headers=plain).status_code == 200


def test_a_repeated_header_or_json_key_is_a_400_naming_it():
    """The edge checked the last Content-Type and BentoML parsed the first: a form body got
    past "JSON only" behind a second one, and a malformed multipart one was a 500. A key given
    twice was answered for its last value, where a proxy reading the first sees another user."""
    client = _client(token=None)
    two = [("content-type", "application/x-www-form-urlencoded"),
           ("content-type", "application/json")]  # fmt: skip
    refused = client.post("/recommend", content=b"user_id=5&k=3", headers=two)
    assert (refused.status_code, refused.json()) == (
        400, {"error": "content-type is given more than once", "field": "content-type"}
    )  # fmt: skip
    plain = {"content-type": "application/json"}
    twice = client.post(
        "/recommend", content=b'{"user_id": 5, "k": 2, "user_id": 6}', headers=plain
    )
    assert (twice.status_code, twice.json()["field"]) == (400, "user_id")
    nested = b'{"requests": [{"user_id": 1}, {"k": 1, "k": 2}]}'
    assert client.post("/recommend", content=nested, headers=plain).json()["field"] == "k"
    for fine in (b'{"user_id": 5, "k": 2}', b'{"requests": [{"k": 1}, {"k": 2}]}', b"", b"{",
                 b'"k"'):  # fmt: skip
        assert client.post("/recommend", content=fine, headers=plain).status_code == 200
    spaced = client.post(  # white space around a Content-Length is no part of it
        "/recommend", content=b'{"user_id": 5}', headers={**plain, "content-length": "14 "}
    )
    assert spaced.status_code == 200
    bad = client.post(
        "/recommend", content=b'{"user_id": 5}', headers={**plain, "content-length": "1 4"}
    )
    assert bad.status_code == 400


def test_a_post_to_a_probe_is_the_edges_405():
    wrong = _client(token=None).post("/readyz")
    assert wrong.status_code == 405
    assert wrong.json() == {"error": "method POST not allowed on /readyz", "field": "method"}


def test_a_post_to_the_schema_is_the_edges_405_and_a_get_still_reads_it():
    """BentoML serves /docs.json to GET and HEAD; a POST got Starlette's plain-text 405."""

    async def schema(request: Request) -> JSONResponse:
        return JSONResponse({"openapi": "3.0.2", "paths": {}})

    app = Starlette(routes=[Route(SCHEMA_PATH, schema, methods=["GET", "HEAD"])])
    app.add_middleware(Guard, token=None)
    client = TestClient(app)
    wrong = client.post(SCHEMA_PATH, json={})
    assert wrong.status_code == 405
    assert wrong.json() == {"error": f"method POST not allowed on {SCHEMA_PATH}", "field": "method"}
    assert client.get(SCHEMA_PATH).json()["openapi"] == "3.0.2"


def test_a_token_past_ascii_matches_as_utf8_on_the_wire():
    """The header's bytes were read as latin-1 and encoded again as UTF-8: a token with an
    accent was matched only when a client sent it in latin-1, never as UTF-8."""
    token = "s3cr\u00e9t-\u20ac"
    client = _client(token=token)
    sent = {"Authorization": b"Bearer " + token.encode()}
    assert client.post("/recommend", json={"user_id": 1}, headers=sent).status_code == 200
    mangled = {"Authorization": b"Bearer " + token.encode().decode("latin-1").encode()}
    assert client.post("/recommend", json={"user_id": 1}, headers=mangled).status_code == 401


def test_a_closed_client_is_seen_at_once_by_a_peek_at_its_socket():
    """``client_closed_check``: uvicorn's ``receive`` is a method of its request cycle, whose
    transport holds the socket; an empty peek is the connection's end."""
    import functools
    import socket
    from types import SimpleNamespace

    from recassets.bento.guard import client_closed_check

    server_side, client_side = socket.socketpair()
    transport = SimpleNamespace(
        get_extra_info=lambda name: server_side if name == "socket" else None
    )
    cycle = SimpleNamespace(transport=transport)

    async def receive():  # bound below to the cycle, as uvicorn's is
        return {}

    bound = receive.__get__(cycle)

    @functools.wraps(bound)
    async def wrapped():  # a middleware's wrapper outside the guard (OpenTelemetry's)
        return await bound()

    def access_log(receive):  # one that calls it from its closure (BentoML's access log)
        async def wrapped_receive():
            return await receive()

        return wrapped_receive

    check = client_closed_check(access_log(wrapped))
    assert check is not None and check() is False  # open, nothing waiting
    client_side.sendall(b"GET / HTTP/1.1\r\n\r\n")  # a pipelined next request: still open
    assert check() is False
    client_side.close()
    server_side.recv(100)  # the pipelined bytes read: what is left is the end
    assert check() is True
    server_side.close()
    assert client_closed_check(lambda: None) is None  # another server: nothing to check


def test_the_schema_documents_every_status_the_edge_and_its_server_answer():
    """``patch_openapi``: 408, 413 and 415 were documented, not the 411 of a POST without a
    length nor the HTTP server's 431 for a head over its bounds (a client generated from the
    schema had no case for them)."""
    from recassets.bento.guard import patch_openapi

    post = {"requestBody": {"content": {"application/json": {"schema": {}}}}, "responses": {}}
    spec = {"paths": {"/recommend": {"post": post}, "/metrics": {"get": {"responses": {}}},
                      "/livez": {"get": {"responses": {}}}}}  # fmt: skip
    paths = patch_openapi(spec, token=True)["paths"]
    edge = {"401", "408", "413", "415", "431"}
    assert set(paths["/recommend"]["post"]["responses"]) == edge | {"411"}
    assert set(paths["/metrics"]["get"]["responses"]) == edge  # a GET has no body to measure
    assert paths["/livez"]["get"]["responses"] == {}  # the probes are the server's own
    answer = paths["/recommend"]["post"]["responses"]["411"]["content"]["application/json"]
    assert answer["schema"] == {"$ref": "#/components/schemas/EdgeError"}
    unauthenticated = patch_openapi({"paths": {"/recommend": {"post": {}}}}, token=False)
    assert "401" not in unauthenticated["paths"]["/recommend"]["post"]["responses"]
