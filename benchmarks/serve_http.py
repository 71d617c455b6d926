"""``/recommend`` over HTTP against BentoML's floor: two real ``bentoml serve`` processes on
127.0.0.1, the same requests from the same load generator, in alternating segments.

    .venv/bin/python -m benchmarks.serve_http                    # RECASSETS_HOME (or .recassets)
    .venv/bin/python -m benchmarks.serve_http --home /tmp/srv/home --quick
    .venv/bin/python -m benchmarks.serve_http --levels 1 8 --seconds 20 --workers 1

Needs a home whose Bento store holds a built recommender (``recassets demo``, or materialize
``serving/recommender_bento``); exits 2 when it has none. ``--bento`` picks a tag (default:
the newest).

Sides. Ours: ``bentoml serve`` of the bento. The floor: ``benchmarks/floor_service.py``, the
same ``/recommend`` signature and validation and the same ``async def`` handler, answering a
constant response of the same shape and size for the k asked (checked before timing): what
BentoML itself costs per request, which ours pays too, so ours / floor is the funnel's cost
on top of the framework. Both with the same
``RECASSETS_SERVE_WORKERS`` (``--workers``, default 1) and ``RECASSETS_SERVE_CANDIDATES``
(``--candidates``, N = 500), k = ``--k`` (20).

Load. A generator in another process (asyncio, a hand-written HTTP/1.1 client, one keep-alive
connection per concurrent caller, closed loop) posts ``{user_id, k}`` for ``--users`` (1,000)
users drawn (``--seed``) from ``user_features`` of the day the online store serves (known
users only: the first 20 answers are checked to be the model policy with k items, not cold
start). Both servers get the same request bodies in the same order.

Timing. Per concurrency level (``--levels``, 1 8 32), ``--seconds`` (12) timed seconds per
server, split into ``--rounds`` (2) segments that alternate ours and the floor so that drift
in the machine's load is shared; each segment first runs ``--warmup`` (1.5) untimed seconds
on the same connections. Latency is the client's, send to last body byte; requests/s are the
timed requests over the timed span; an error is a non-200 answer or a broken connection.

Targets (issue 19, which restated issue 5's 1.5x and 0.6x): p99 < 10 ms at concurrency 1; at
concurrency 8 p99 within 2x the floor's and requests/s at least 0.5x the floor's; no errors.
The exit status is 0 either way (2 when the home has no bento): benchmarks report, they do
not gate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from benchmarks._common import (
    bento_parser,
    known_users,
    machine_line,
    percentile,
    print_summary,
    read_response,
    require_bento,
)
from benchmarks._common import row as summary_row

ROOT = Path(__file__).resolve().parents[1]
LEVELS = (1, 8, 32)


# --- the load generator (runs in a spawned process) --------------------------------------------


async def _caller(
    host: str,
    port: int,
    requests: list[bytes],
    offset: int,
    warm_until: float,
    end: float,
    out: dict[str, Any],
) -> None:
    """One keep-alive connection in a closed loop: send, read the whole answer, repeat."""
    reader = writer = None
    i = offset
    while time.perf_counter() < end:
        request = requests[i % len(requests)]
        i += 1
        started = time.perf_counter()
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection(host, port)
            writer.write(request)
            status, keep = await read_response(reader)  # type: ignore[arg-type]
        except (OSError, asyncio.IncompleteReadError, ValueError) as e:
            status, keep = 0, False
            out["messages"].append(f"{type(e).__name__}: {e}")
        done = time.perf_counter()
        if started >= warm_until:
            if status == 200:
                out["latencies"].append((done - started) * 1000)
            else:
                out["errors"] += 1
                if status:
                    out["messages"].append(f"HTTP {status}")
            out["last"] = max(out["last"], done)
        if not keep and writer is not None:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()
            reader = writer = None
    if writer is not None:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def run_load(
    url: str, bodies: list[bytes], concurrency: int, seconds: float, warmup: float
) -> dict[str, Any]:
    """``concurrency`` callers on ``url`` (``http://host:port/route``) for ``warmup`` untimed
    then ``seconds`` timed seconds: latencies (ms) of the timed successes, errors, req/s."""
    hostport, _, route = url.removeprefix("http://").partition("/")
    host, _, port = hostport.partition(":")
    requests = [
        (
            f"POST /{route} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(b)}\r\n\r\n"
        ).encode()
        + b
        for b in bodies
    ]
    out: dict[str, Any] = {"latencies": [], "errors": 0, "messages": [], "last": 0.0}

    async def main() -> None:
        start = time.perf_counter()
        warm_until, end = start + warmup, start + warmup + seconds
        out["start"] = warm_until
        step = max(1, len(requests) // concurrency)
        await asyncio.gather(
            *(
                _caller(host, int(port), requests, c * step, warm_until, end, out)
                for c in range(concurrency)
            )
        )

    asyncio.run(main())
    elapsed = max(out["last"] - out["start"], 1e-9)
    n = len(out["latencies"]) + out["errors"]
    return {
        "latencies": out["latencies"],
        "errors": out["errors"],
        "requests": n,
        "seconds": elapsed,
        "messages": out["messages"][:5],
    }


# --- ours against the floor ---------------------------------------------------------------------


def run(args: argparse.Namespace, paths: Any, tag: str, users: list[int]) -> dict:
    """Per level and server: latencies, errors, requests and timed seconds (rounds pooled)."""
    import json

    from recassets.bento import server

    env = {
        "RECASSETS_SERVE_WORKERS": str(args.workers),
        "RECASSETS_SERVE_CANDIDATES": str(args.candidates),
    }
    bodies = [json.dumps({"user_id": u, "k": args.k}).encode() for u in users]
    servers: dict[str, server.Server] = {}
    spawn = multiprocessing.get_context("spawn")
    try:
        t0 = time.perf_counter()
        servers["ours"] = server.start(paths, tag, env=env, ready_timeout_s=300)
        servers["floor"] = server.start(
            paths, "floor_service:Floor", env=env, cwd=ROOT / "benchmarks", ready_timeout_s=300
        )
        print(f"  servers ready in {time.perf_counter() - t0:.1f} s: ours {servers['ours'].url} "
              f"({tag}), floor {servers['floor'].url}; logs {servers['ours'].log.parent}")  # fmt: skip
        for u in users[:20]:  # known users get the model's answer, k items
            status, body = servers["ours"].post("/recommend", {"user_id": u, "k": args.k})
            if status != 200 or body.get("policy") != "model" or len(body["items"]) != args.k:
                print(f"  WARNING: user {u} answered {status}: "
                      f"{body if status != 200 else (body['policy'], len(body['items']), body['notes'])}")  # fmt: skip
                break
        # the floor answers the same shape and size for the same k (checked, not assumed)
        status, floor_body = servers["floor"].post("/recommend", {"user_id": users[0], "k": args.k})
        if status != 200 or len(floor_body["items"]) != args.k:
            raise SystemExit(f"the floor answered {status} with {len(floor_body.get('items', []))} "
                             f"items for k = {args.k}: the comparison is void")  # fmt: skip
        results: dict[int, dict[str, dict]] = {}
        seg = args.seconds / args.rounds
        with ProcessPoolExecutor(1, mp_context=spawn) as loadgen:
            for c in args.levels:
                pooled = {
                    name: {"latencies": [], "errors": 0, "requests": 0, "seconds": 0.0,
                           "messages": []}
                    for name in servers
                }  # fmt: skip
                for r in range(args.rounds):
                    order = ["ours", "floor"] if r % 2 == 0 else ["floor", "ours"]
                    for name in order:
                        got = loadgen.submit(
                            run_load, servers[name].url + "/recommend", bodies, c, seg, args.warmup
                        ).result()
                        p = pooled[name]
                        p["latencies"] += got["latencies"]
                        for key in ("errors", "requests", "seconds"):
                            p[key] += got[key]
                        p["messages"] += got["messages"]
                results[c] = pooled
                for name in servers:
                    print_level(name, c, pooled[name])
    finally:
        for s in servers.values():
            s.stop()
    return results


def rps(p: dict) -> float:
    return p["requests"] / max(p["seconds"], 1e-9)


def print_level(name: str, c: int, p: dict) -> None:
    lat = p["latencies"]
    print(f"  {name:6s} c={c:<3d} p50 {percentile(lat, 50):7.2f}  p95 {percentile(lat, 95):7.2f}  "
          f"p99 {percentile(lat, 99):7.2f} ms  {rps(p):8.1f} req/s  {p['requests']:6d} requests  "
          f"{p['errors']} errors" + (f"  ({'; '.join(p['messages'][:3])})" if p["errors"] else ""))  # fmt: skip


def summary(http: dict) -> list[str]:
    """Ratios are ours / floor: above 1 for latency and below 1 for req/s mean ours is slower."""
    lines = []
    for c in http:
        ours, floor = http[c]["ours"], http[c]["floor"]
        p99, fp99 = percentile(ours["latencies"], 99), percentile(floor["latencies"], 99)
        r = p99 / fp99
        target, ok = {1: ("ours < 10 ms", p99 < 10), 8: ("ratio <= 2x", r <= 2.0)}.get(
            c, ("-", None)
        )
        lines.append(summary_row(f"/recommend p99 ms, c={c} (baseline: floor)", p99, fp99, r,
                                 target, ok))  # fmt: skip
        r = rps(ours) / rps(floor)
        target, ok = ("ratio >= 0.5x", r >= 0.5) if c == 8 else ("-", None)
        lines.append(summary_row(f"/recommend req/s, c={c} (baseline: floor)", rps(ours),
                                 rps(floor), r, target, ok, "9.1f"))  # fmt: skip
    errors = sum(http[c]["ours"]["errors"] for c in http)
    floor_errors = sum(http[c]["floor"]["errors"] for c in http)
    lines.append(summary_row("errors, all levels (baseline: floor)", errors, floor_errors, None,
                             "0", errors == 0, "9d"))  # fmt: skip
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = bento_parser(__doc__)
    ap.add_argument("--workers", type=int, default=int(os.environ.get("RECASSETS_SERVE_WORKERS", "1")),
                    help="bentoml workers of both services (RECASSETS_SERVE_WORKERS)")  # fmt: skip
    ap.add_argument("--levels", type=int, nargs="+", default=list(LEVELS),
                    help="concurrent callers, one keep-alive connection each")  # fmt: skip
    ap.add_argument("--seconds", type=float, default=12.0,
                    help="timed seconds per level and server")  # fmt: skip
    ap.add_argument("--rounds", type=int, default=2, help="alternating segments per level")
    ap.add_argument("--warmup", type=float, default=1.5, help="untimed seconds per segment")
    ap.add_argument("--users", type=int, default=1000, help="distinct users in the requests")
    ap.add_argument("--seed", type=int, default=0, help="which users")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 4 s per level and server in 2 segments, 0.5 s warm-up")  # fmt: skip
    a = ap.parse_args(argv)
    if a.quick:
        a.seconds, a.rounds, a.warmup = 4.0, 2, 0.5

    paths, tag, _ = require_bento(a.home, a.bento)
    print(machine_line())
    print(f"home {paths.home}, bento {tag}, N = {a.candidates}, k = {a.k}, workers = {a.workers}")
    users = known_users(paths, a.users, a.seed)
    print(f"/recommend vs the floor: {len(users)} users, {a.seconds:g} s per level and server in "
          f"{a.rounds} segment(s), {a.warmup:g} s warm-up each")  # fmt: skip
    print_summary(summary(run(a, paths, tag, users)))


if __name__ == "__main__":
    main()
