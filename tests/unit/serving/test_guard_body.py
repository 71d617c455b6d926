"""What the serving edge (``recassets.bento.guard.Guard``) refuses of a body before the API
parses it (``recassets.bento.guard_body``): a transfer coding other than chunked, an object of
more keys than any endpoint takes; and the method its 405 names. Driven at the ASGI level, so
the headers and the method are exactly what a server hands on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from typing import Any

from recassets.bento.guard import Guard
from recassets.bento.guard_body import MAX_KEYS, body_refusal

from .test_guard import _client


def _call(
    method: str, path: str, body: bytes, headers: list[tuple[bytes, bytes]], framed: bool = True
) -> tuple[int, dict[str, Any], list[str]]:
    """(status, JSON body, what reached the app) of one request through the Guard; a POST's
    ``Content-Length`` added, as a client sends it, where the headers give no framing (unless
    not ``framed``: the Guard's 411)."""
    reached: list[str] = []
    names = {k.lower() for k, _ in headers}
    if framed and method == "POST" and not names & {b"content-length", b"transfer-encoding"}:
        headers = [*headers, (b"content-length", b"%d" % len(body))]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        reached.append(scope["method"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path, "headers": headers}
    asyncio.run(Guard(app, token=None)(scope, receive, send))
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], json.loads(payload), reached


JSON = (b"content-type", b"application/json")


async def _run(call: Awaitable[None]) -> None:
    await call


def test_a_transfer_coding_other_than_chunked_is_a_415_like_a_content_encoding():
    """``Transfer-Encoding: gzip, chunked``: the server takes the chunks off and hands on the
    gzip bytes, which were answered "Invalid JSON" where ``Content-Encoding: gzip`` is a 415."""
    body = b'{"user_id": 1}'
    for coding in (b"gzip, chunked", b"GZIP,chunked", b"deflate", b"identity, chunked"):
        status, answer, reached = _call(
            "POST", "/recommend", body, [JSON, (b"transfer-encoding", coding)]
        )
        first = coding.split(b",")[0].strip().lower().decode()
        assert (status, answer) == (
            415, {"error": f"the API takes uncompressed bodies, not {first!r}",
                  "field": "transfer-encoding"},
        ), coding  # fmt: skip
        assert reached == []
    split = [JSON, (b"transfer-encoding", b"gzip"), (b"transfer-encoding", b"chunked")]
    assert _call("POST", "/recommend", body, split)[0] == 415  # every header, not the last
    for fine in (b"chunked", b"Chunked", b" chunked "):
        assert _call("POST", "/recommend", body, [JSON, (b"transfer-encoding", fine)])[0] == 200


def test_an_object_of_more_keys_than_any_endpoint_takes_is_a_400_naming_where_it_is():
    """A 260 KB body of 25,000 unknown keys cost 261 ms to refuse behind the edge (25,000
    pydantic errors, a 4.3 MB error body parsed again); the edge refuses it from its own parse,
    in the shape of its repeated-key 400, before the API sees it."""
    keys = b"{" + b",".join(b'"k%d":1' % i for i in range(25_000)) + b"}"
    keys = keys[:260_000].rsplit(b",", 1)[0] + b"}"  # the review's body, under the 256 KiB
    status, answer, reached = _call("POST", "/recommend", keys, [JSON])
    assert (status, answer["field"], reached) == (400, "body", [])
    assert answer == {
        "error": f"body: an object of 24646 keys; the API takes at most {MAX_KEYS} in one",
        "field": "body",
    }
    crowded = {f"x{i}": 1 for i in range(MAX_KEYS + 1)}
    nested = json.dumps({"requests": [{"user_id": 1}, {"user_id": 2, "x": crowded}]}).encode()
    status, answer, _ = _call("POST", "/recommend_batch", nested, [JSON])
    assert (status, answer["field"]) == (400, "requests[1].x")
    widest = json.dumps({f"x{i}": 1 for i in range(MAX_KEYS)}).encode()
    assert _call("POST", "/recommend", widest, [JSON])[0] == 200  # refused by the API, if at all
    # a repeated key is still named as such, and a crowded object's path is bounded
    assert body_refusal(b'{"k": 1, "k": 2}') == ("k", "the field 'k' is given more than once")
    deep = b'{"a":' * 500 + json.dumps(crowded).encode() + b"}" * 500
    field, _ = body_refusal(deep) or ("", "")
    assert field.startswith("a.a.a") and len(field) <= 200


def test_a_head_on_a_post_route_names_head_in_its_405():
    """The review saw "method GET not allowed" for a HEAD; the Guard's 405 names the method of
    the scope it was called with, which the server gives as sent (its access log had 69 bytes
    for HEAD /recommend, the HEAD body, against 68 for GET)."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Any) -> None:
        sent.append(message)

    app = _client(token=None).app
    scope = {"type": "http", "method": "HEAD", "path": "/recommend", "headers": [JSON],
             "query_string": b"", "root_path": ""}  # fmt: skip
    asyncio.run(_run(app(scope, receive, send)))
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    assert sent[0]["status"] == 405 and (b"allow", b"POST") in sent[0]["headers"]
    assert json.loads(body) == {"error": "method HEAD not allowed on /recommend", "field": "method"}
