"""Soak: a real ``bentoml serve`` of the bento driven for ``--duration`` (10 minutes) at
``--concurrency`` 8, with a mix of valid and invalid requests (issue 15).

    .venv/bin/python -m benchmarks.soak                          # RECASSETS_HOME (or .recassets)
    .venv/bin/python -m benchmarks.soak --home /tmp/srv/home --duration 180

Needs a home whose Bento store holds a built recommender (``recassets demo``, or materialize
``serving/recommender_bento``); exits 2 when it has none.

Load. A generator in another process (asyncio, one keep-alive HTTP/1.1 connection per
caller, closed loop) sends, in a seeded random order: ``/recommend`` for users of the served
day (60 %), for unknown users naming a cohort (10 %), ``/rank`` (5 %), ``/recommend_batch`` of
four (5 %), and invalid requests (20 %): wrong types, k out of range, ids beyond int64, a
200-character country, broken JSON, a text/plain body, a batch over its limit, an empty
``item_ids``, an unknown route and a body over the size limit (sent on a connection of its
own, which the server may close). A valid request must get 200, an invalid one a 4xx.

Figures. Every answer's status and latency (send to last body byte) by second; the worker
processes' resident memory (RSS, summed over the server's worker processes) sampled every
``--sample`` (5) seconds. The "second minute" is seconds 60-120 (the first is warm-up: caches,
allocator arenas), the "last minute" the final 60 seconds, both on the load generator's clock:
the RSS samples are stamped on the wall clock and counted from the moment the load began in
its own process (after its spawn), so a minute's RSS and its latencies cover the same seconds.

Targets: 0 answers 5xx; worker RSS growing under 5 % from the second minute to the last
(median of each minute's samples); p99 of the last minute within 1.5x the second minute's
(valid requests). The exit status is 0 either way (2 when the home has no bento): benchmarks
report, they do not gate.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import multiprocessing
import os
import random
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
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

MINUTE = 60.0
INT64_OVER = 2**63


# --- the requests ------------------------------------------------------------------------------


def request_mix(users: list[int], k: int, n: int, seed: int) -> list[tuple[str, str, bytes, bool]]:
    """``n`` requests (kind, route, raw HTTP/1.1 request without Host, valid?) in a seeded
    random order of the mix in the module docstring."""
    rng = random.Random(seed)

    def body(route: str, payload: Any, content_type: str = "application/json") -> bytes:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        return (
            (
                f"POST {route} HTTP/1.1\r\nContent-Type: {content_type}\r\n"
                f"Content-Length: {len(data)}\r\n"
            ).encode()
            + b"%AUTH%\r\n"
            + data
        )

    def valid() -> tuple[str, str, bytes]:
        roll = rng.random() * 80
        u = rng.choice(users)
        if roll < 60:
            return "recommend", "/recommend", body("/recommend", {"user_id": u, "k": k})
        if roll < 70:
            payload = {"user_id": 10_000_000 + rng.randrange(10**6), "k": k,
                       "country": rng.choice(["fr", "de", "us", "br"]), "age_bucket": "25-34"}  # fmt: skip
            return "cold_start", "/recommend", body("/recommend", payload)
        if roll < 75:
            ids = rng.sample(range(1, 200), 20)
            return "rank", "/rank", body("/rank", {"user_id": u, "item_ids": ids})
        batch = [{"user_id": rng.choice(users), "k": k} for _ in range(4)]
        return "batch", "/recommend_batch", body("/recommend_batch", {"requests": batch})

    invalid = [
        ("bad_type", "/recommend", body("/recommend", {"user_id": "abc"})),
        ("bad_k", "/recommend", body("/recommend", {"user_id": 1, "k": 0})),
        ("int64", "/recommend", body("/recommend", {"user_id": INT64_OVER})),
        ("int64_item", "/rank", body("/rank", {"user_id": 1, "item_ids": [INT64_OVER]})),
        ("long_country", "/recommend", body("/recommend", {"user_id": 1, "country": "x" * 200})),
        ("broken_json", "/recommend", body("/recommend", b'{"user_id": 1, "k":')),
        ("text_plain", "/recommend", body("/recommend", b"user_id=1", "text/plain")),
        ("batch_over", "/recommend_batch",
         body("/recommend_batch", {"requests": [{"user_id": 1}] * 65})),
        ("empty_items", "/rank", body("/rank", {"user_id": 1, "item_ids": []})),
        ("no_route", "/nope", body("/nope", {"user_id": 1})),
        ("bad_batch_item", "/recommend_batch",
         body("/recommend_batch", {"requests": [{"user_id": 1}, {"user_id": -5}]})),
    ]  # fmt: skip
    too_big = ("too_big", "/rank", body("/rank", {"user_id": 1, "item_ids": [1] * 100_000}))
    out = []
    for _ in range(n):
        if rng.random() < 0.8:
            out.append((*valid(), True))
        elif rng.random() < 0.02:
            out.append((*too_big, False))
        else:
            out.append((*rng.choice(invalid), False))
    return out


# --- the load generator (runs in a spawned process) --------------------------------------------


def run_soak(
    host: str, port: int, requests: list[tuple[str, str, bytes, bool]], concurrency: int,
    duration: float, token: str | None,
) -> tuple[float, list[tuple[float, str, int, float, bool]]]:  # fmt: skip
    """``concurrency`` closed-loop callers for ``duration`` seconds: the load's start on the
    wall clock (``time.time``, shared with the parent's RSS samples) and one record per answer,
    (seconds since start, kind, status or 0 for a broken connection, ms, valid?)."""
    auth = f"Authorization: Bearer {token}\r\n".encode() if token else b""
    host_line = f"Host: {host}:{port}\r\n".encode()
    raw = [(kind, r.replace(b"%AUTH%", host_line + auth), ok) for kind, _, r, ok in requests]
    records: list[tuple[float, str, int, float, bool]] = []
    began: list[float] = []

    async def caller(offset: int, start: float, end: float) -> None:
        reader = writer = None
        i = offset
        while time.perf_counter() < end:
            kind, request, ok = raw[i % len(raw)]
            i += 1
            own = kind == "too_big"  # a connection of its own: the server may close it
            w = None
            t = time.perf_counter()
            try:
                if own:
                    r, w = await asyncio.open_connection(host, port)
                else:
                    if writer is None:
                        reader, writer = await asyncio.open_connection(host, port)
                    r, w = reader, writer
                w.write(request)
                status, keep = await read_response(r)  # type: ignore[arg-type]
            except (OSError, asyncio.IncompleteReadError, ValueError):
                status, keep = 0, False
            done = time.perf_counter()
            records.append((t - start, kind, status, (done - t) * 1000, ok))
            if own:
                if w is not None:
                    w.close()
            elif not keep and writer is not None:
                writer.close()
                reader = writer = None

    async def main() -> None:
        began.append(time.time())
        start = time.perf_counter()
        step = max(1, len(raw) // concurrency)
        await asyncio.gather(
            *(caller(c * step, start, start + duration) for c in range(concurrency))
        )

    asyncio.run(main())
    return began[0], records


# --- the server's memory -----------------------------------------------------------------------


def worker_rss(pid: int) -> int:
    """Bytes resident in the server's worker processes (its descendants that serve the
    service; every descendant when none says so)."""
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return 0
    workers = []
    for p in children:
        with contextlib.suppress(psutil.Error):
            if any("worker" in part for part in p.cmdline()):
                workers.append(p)
    total = 0
    for p in workers or children:
        with contextlib.suppress(psutil.Error):
            total += p.memory_info().rss
    return total


# --- the run -----------------------------------------------------------------------------------


def run(args: Any, paths: Any, tag: str, users: list[int]) -> dict[str, Any]:
    from recassets.bento import server

    env = {
        "RECASSETS_SERVE_WORKERS": str(args.workers),
        "RECASSETS_SERVE_CANDIDATES": str(args.candidates),
    }
    requests = request_mix(users, args.k, 20_000, args.seed)
    srv = server.start(paths, tag, env=env, ready_timeout_s=300)
    samples: list[tuple[float, int]] = []  # (wall clock, bytes), then seconds since the load
    try:
        host, _, port = srv.url.removeprefix("http://").partition(":")
        print(f"  server ready: {srv.url} ({tag}), log {srv.log}", flush=True)
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=spawn) as loadgen:
            submitted = time.time()
            future = loadgen.submit(
                run_soak, host, int(port), requests, args.concurrency, args.duration, srv.token
            )
            next_print = MINUTE
            while not future.done():
                # stamped on the wall clock: the load generator's clock starts in its own
                # process, after the spawn and its imports, not at the submit
                samples.append((time.time(), worker_rss(srv.process.pid)))
                now = samples[-1][0] - submitted
                if now >= next_print:
                    print(
                        f"  {now / MINUTE:4.1f} min: worker RSS {samples[-1][1] / 2**20:7.1f} MiB"
                    )
                    next_print += MINUTE
                time.sleep(args.sample)
            began, records = future.result()
    finally:
        srv.stop()
    # RSS on the load's clock: a sample before the load began (the child starting) has t < 0
    # and falls in no minute's window
    print(f"  the load began {began - submitted:.1f} s after it was submitted")
    return {"records": records, "rss": [(t - began, b) for t, b in samples]}


def figures(result: dict[str, Any], duration: float) -> dict[str, Any]:
    records, rss = result["records"], result["rss"]
    second = (MINUTE, 2 * MINUTE)
    last = (duration - MINUTE, duration)

    def in_window(t: float, w: tuple[float, float]) -> bool:
        return w[0] <= t < w[1]

    def pct(w: tuple[float, float], q: float) -> float:
        return percentile([ms for t, _, s, ms, ok in records if ok and s == 200 and in_window(t, w)], q)  # fmt: skip

    def rss_median(w: tuple[float, float]) -> float:
        got = [b for t, b in rss if in_window(t, w) and b > 0]
        return statistics.median(got) if got else float("nan")

    by_kind: dict[str, dict[int, int]] = {}
    for _, kind, status, _, _ in records:
        by_kind.setdefault(kind, {}).setdefault(status, 0)
        by_kind[kind][status] += 1
    unexpected = sum(
        1 for _, _, s, _, ok in records if (ok and s != 200) or (not ok and not 400 <= s < 500)
    )
    return {
        "requests": len(records),
        "rps": len(records) / duration,
        "5xx": sum(1 for r in records if r[2] >= 500),
        "broken": sum(1 for r in records if r[2] == 0),
        "unexpected": unexpected,
        "by_kind": by_kind,
        "p99_second": pct(second, 99),
        "p99_last": pct(last, 99),
        "p50_second": pct(second, 50),
        "p50_last": pct(last, 50),
        "rss_second": rss_median(second),
        "rss_last": rss_median(last),
    }


def summary(f: dict[str, Any]) -> list[str]:
    growth = f["rss_last"] / f["rss_second"] - 1
    ratio = f["p99_last"] / f["p99_second"]
    return [
        summary_row("answers 5xx (all requests)", f["5xx"], None, None, "0", f["5xx"] == 0, "9d"),
        summary_row(
            "answers not as expected (valid!=200, invalid!=4xx)",
            f["unexpected"],
            None,
            None,
            "0",
            f["unexpected"] == 0,
            "9d",
        ),  # fmt: skip
        summary_row(
            "worker RSS MiB, last min (baseline: 2nd min)",
            f["rss_last"] / 2**20,
            f["rss_second"] / 2**20,
            1 + growth,
            "growth < 5%",
            growth < 0.05,
        ),  # fmt: skip
        summary_row(
            "p99 ms valid, last min (baseline: 2nd min)",
            f["p99_last"],
            f["p99_second"],
            ratio,
            "ratio <= 1.5x",
            ratio <= 1.5,
        ),  # fmt: skip
        summary_row(
            "p50 ms valid, last min (baseline: 2nd min)",
            f["p50_last"],
            f["p50_second"],
            f["p50_last"] / f["p50_second"],
            "-",
            None,
        ),  # fmt: skip
        summary_row("requests/s (all kinds)", f["rps"], None, None, "-", None, "9.1f"),
    ]


def main(argv: list[str] | None = None) -> None:
    ap = bento_parser(__doc__)
    ap.add_argument("--duration", type=float, default=600.0, help="seconds of load (>= 180)")
    ap.add_argument("--concurrency", type=int, default=8, help="closed-loop callers")
    ap.add_argument("--workers", type=int, default=int(os.environ.get("RECASSETS_SERVE_WORKERS", "1")),
                    help="bentoml workers (RECASSETS_SERVE_WORKERS)")  # fmt: skip
    ap.add_argument("--users", type=int, default=1000, help="distinct known users")
    ap.add_argument("--seed", type=int, default=0, help="which users, which order")
    ap.add_argument("--sample", type=float, default=5.0, help="seconds between RSS samples")
    a = ap.parse_args(argv)
    if a.duration < 3 * MINUTE:
        ap.error("--duration must be at least 180 s: the 2nd minute and a last minute after it")

    paths, tag, _ = require_bento(a.home, a.bento)
    print(machine_line())
    print(f"home {paths.home}, bento {tag}, N = {a.candidates}, k = {a.k}, workers = {a.workers}, "
          f"concurrency {a.concurrency}, {a.duration:g} s")  # fmt: skip
    users = known_users(paths, a.users, a.seed)
    f = figures(run(a, paths, tag, users), a.duration)
    print(f"\n{f['requests']} answers ({f['broken']} broken connections); status by kind:")
    for kind, statuses in sorted(f["by_kind"].items()):
        print(f"  {kind:15s} " + "  ".join(f"{s}: {n}" for s, n in sorted(statuses.items())))
    print_summary(summary(f))


if __name__ == "__main__":
    main()
