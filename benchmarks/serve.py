"""Serving: ``/recommend`` over HTTP against BentoML's floor, broadcast ranking against
replicated, thread pinning, and FAISS against exact search, in one run.

    .venv/bin/python -m benchmarks.serve                    # RECASSETS_HOME (or .recassets)
    .venv/bin/python -m benchmarks.serve --home /tmp/srv/home --quick
    .venv/bin/python -m benchmarks.serve --items 200000 --skip-http

Needs a home whose Bento store holds a built recommender (``recassets demo``, or materialize
``serving/recommender_bento``); the FAISS part needs nothing but CPU and memory (about 1 GB at
1M items).

1. HTTP. ``bentoml serve`` of the newest bento (``--bento`` to pick one) and of
   ``benchmarks/floor_service.py`` (the same ``/recommend`` signature and ``async def``
   handler, a constant response of the same shape: the framework's own cost), both real
   processes on 127.0.0.1 with the same
   ``RECASSETS_SERVE_WORKERS``, N = ``--candidates`` (500) retrieved and ranked, k = 20.
   A load generator in another process (asyncio, a hand-written HTTP/1.1 client, one
   keep-alive connection per concurrent caller, closed loop) posts ``{user_id, k}`` for
   users drawn from ``user_features`` of the day the online store serves (known users only:
   every answer is checked once to be the model policy, not cold start). Per concurrency
   level (1, 8, 32), ``--rounds`` segments alternate ours and the floor so that drift in the
   machine's load is shared; each segment starts with ``--warmup`` untimed seconds on the
   same connections. Latency is the client's, send to last body byte; an error is a non-200
   answer or a broken connection.
2. In process, on the bento's own bundle and the home's online store: the ranking step over
   the same N retrieved candidates in broadcast form (``Recommender.rank``) against N
   replicated user rows (``rank_replicated``), torch and FAISS pinned to one thread
   (``pin_threads(1)``, as the service does); then the whole funnel
   (``Recommender.recommend``) pinned against the process's default thread count.
3. FAISS: ``build_index`` over ``--items`` synthetic unit vectors (its size-based choice:
   IVF2048,Flat at 1M, nprobe tuned to recall 0.97 on 1,000 tuning queries) against exact
   inner-product search, measured on ``--queries`` held-out queries (``measure_recall``:
   recall@100 and both queries/s, batched). The exact side's queries/s is also taken with the
   flat index built outside the timing (search only); the speedup uses that, the stricter
   baseline. One query at a time on one thread (the serving shape) is printed beside it.

   The generator (``clustered_vectors``): trained item embeddings are not uniform on the
   sphere but clumped by topic, with topics of very unequal size. Here: ``--clusters``
   (1,000) centres uniform on the unit sphere, cluster sizes Zipf-like (weight 1 / rank^0.8),
   each item its centre plus isotropic Gaussian noise of total norm about ``--spread`` (1.0:
   two items of one cluster have a cosine of about 0.5), then normalised. Queries (users) are
   drawn from the same mixture, independently of the items.

Targets (issue 5): /recommend p99 < 10 ms at concurrency 1; at concurrency 8 p99 within
1.5x the floor's and requests/s at least 0.6x the floor's; no errors; broadcast ranking
>= 2x faster than replicated; the index at recall@100 >= 0.95 and >= 10x exact queries/s at
1M items. The summary prints each with its baseline and PASS/FAIL; the exit status is 0
either way (2 when the home has no bento): benchmarks report, they do not gate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import platform
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

LEVELS = (1, 8, 32)


def percentile(samples: Any, q: float) -> float:
    import numpy as np

    return (
        float(np.percentile(np.asarray(samples, dtype=np.float64), q))
        if len(samples)
        else float("nan")
    )


# --- the load generator (runs in a spawned process) --------------------------------------------


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Status and whether the server keeps the connection open; reads the body entirely."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)  # the chunk and its CRLF
            if size == 0:
                break
    return status, headers.get("connection") != "close"


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
            status, keep = await _read_response(reader)  # type: ignore[arg-type]
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


# --- HTTP: ours against the floor ---------------------------------------------------------------


def known_users(paths: Any, n: int, seed: int) -> list[int]:
    """Up to ``n`` user ids (seeded) of ``user_features`` on the day the online store serves."""
    import datetime as dt

    import numpy as np
    import pyarrow.compute as pc
    from deltalake import DeltaTable

    from recassets.featurestore.store import served_day

    day = served_day(paths)
    if day is None:
        raise SystemExit("the online store serves no day: materialize featurestore/feature_store")
    table = (
        DeltaTable(paths.table("user_features"))
        .to_pyarrow_dataset()
        .to_table(columns=["user_id"], filter=pc.field("dt") == dt.date.fromisoformat(day))
    )
    ids = np.unique(table["user_id"].to_numpy())
    if len(ids) == 0:
        raise SystemExit(f"user_features has no rows for {day}, the day the online store serves")
    rng = np.random.default_rng(seed)
    return [int(u) for u in rng.choice(ids, min(n, len(ids)), replace=False)]


def http_stage(args: argparse.Namespace, paths: Any, tag: str, users: list[int]) -> dict:
    """Per level and service: latencies, errors, req/s (rounds pooled)."""
    import json

    from recassets.serving import server

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
        print(f"servers ready in {time.perf_counter() - t0:.1f} s: ours {servers['ours'].url} "
              f"({tag}), floor {servers['floor'].url}; logs {servers['ours'].log.parent}")  # fmt: skip
        for u in users[:20]:  # known users get the model's answer, k items
            status, body = servers["ours"].post("/recommend", {"user_id": u, "k": args.k})
            if status != 200 or body.get("policy") != "model" or len(body["items"]) != args.k:
                print(f"WARNING: user {u} answered {status}: "
                      f"{body if status != 200 else (body['policy'], len(body['items']), body['notes'])}")  # fmt: skip
                break
        results: dict[int, dict[str, dict]] = {}
        seg = args.seconds / args.rounds
        with ProcessPoolExecutor(1, mp_context=spawn) as loadgen:
            for c in args.levels:
                pooled = {
                    name: {
                        "latencies": [],
                        "errors": 0,
                        "requests": 0,
                        "seconds": 0.0,
                        "messages": [],
                    }
                    for name in servers
                }
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


def print_level(name: str, c: int, p: dict) -> None:
    lat = p["latencies"]
    rps = p["requests"] / max(p["seconds"], 1e-9)
    print(f"  {name:6s} c={c:<3d} p50 {percentile(lat, 50):7.2f}  p95 {percentile(lat, 95):7.2f}  "
          f"p99 {percentile(lat, 99):7.2f} ms  {rps:8.1f} req/s  {p['requests']:6d} requests  "
          f"{p['errors']} errors" + (f"  ({'; '.join(p['messages'][:3])})" if p["errors"] else ""))  # fmt: skip


# --- in process: broadcast vs replicated ranking, pinned vs default threads ---------------------


def timed_blocks(
    sides: dict[str, Any],
    calls: list[Any],
    rounds: int = 3,
    setup: dict[str, Any] | None = None,
) -> dict[str, list[float]]:
    """ms per call of each side over ``calls``, in ``rounds`` blocks, sides in rotating order
    (drift in machine load is shared); ``setup[side]()`` and a full GC before each block,
    untimed."""
    import gc

    names = list(sides)
    times: dict[str, list[float]] = {n: [] for n in names}
    blocks = [calls[i::rounds] for i in range(rounds)]
    for r, block in enumerate(blocks):
        for name in names[r % len(names) :] + names[: r % len(names)]:
            if setup and name in setup:
                setup[name]()
            gc.collect()
            fn = sides[name]
            for call in block:
                t = time.perf_counter()
                fn(call)
                times[name].append((time.perf_counter() - t) * 1000)
    return times


def inprocess_stage(
    args: argparse.Namespace, paths: Any, bundle_dir: Path, users: list[int]
) -> dict:
    import numpy as np
    import torch

    from recassets.serving.funnel import Bundle, FunnelConfig, Recommender, pin_threads

    default_threads = torch.get_num_threads()  # before anything pins
    rec = Recommender(Bundle.load(bundle_dir), paths, FunnelConfig(candidates=args.candidates))
    out: dict[str, Any] = {"default_threads": default_threads}
    if not rec.model:
        print("  the bundle serves the popularity policy: no ranker to time")
        return out
    size = rec.index.size  # type: ignore[union-attr]
    n = min(args.candidates, size)
    out["n"] = n
    if n < args.candidates:
        print(
            f"  the catalog holds {size} items (< N = {args.candidates}): ranking all {n} of them"
        )
    pin_threads(1)
    prepared = []
    for u in users[: args.rank_users]:
        values = rec.user_row(u)
        if values is None:
            continue
        ids, _ = rec.retrieve(u, values, n)
        prepared.append((u, values, ids))
    u, values, ids = prepared[0]
    a, _ = rec.rank(u, values, ids)
    b = rec.rank_replicated(u, values, ids)
    out["max_abs_diff"] = float(np.max(np.abs(a - b)))
    # x0 (N, X) as the cross layers receive it: the interaction network (cross + deep + head,
    # ``DCNv2.interact``) on it is the part both forms share, the floor under either
    captured: list[Any] = []
    finish = rec.ranker._finish  # type: ignore[union-attr]
    rec.ranker._finish = lambda x0, *a: (captured.append(x0), finish(x0, *a))[1]  # type: ignore[union-attr]
    rec.rank(u, values, ids)
    del rec.ranker._finish  # type: ignore[union-attr]
    x0 = captured[0]

    def interact(_: Any) -> None:
        with torch.inference_mode():
            rec.ranker.interact(x0)  # type: ignore[union-attr]

    for call in prepared[:5]:  # warm-up
        rec.rank(*call)
        rec.rank_replicated(*call)
        interact(call)
    t = timed_blocks(
        {
            "broadcast": lambda c: rec.rank(*c),
            "replicated": lambda c: rec.rank_replicated(*c),
            "shared": interact,
        },
        prepared,
    )
    out["rank"] = t
    print(f"  ranking {n} candidates, {len(prepared)} users x 1 call each, torch/FAISS 1 thread; "
          f"max |broadcast - replicated| logit = {out['max_abs_diff']:.2e}; shared = the "
          f"interaction network alone on x0 {tuple(x0.shape)} (cross {rec.ranker.config.cross_layers} "
          f"layers + deep {rec.ranker.config.deep}), in both forms")  # type: ignore[union-attr]  # fmt: skip
    for name, samples in t.items():
        print(f"    {name:11s} p50 {percentile(samples, 50):7.3f}  p99 {percentile(samples, 99):7.3f}  "
              f"mean {float(np.mean(samples)):7.3f} ms")  # fmt: skip

    calls = [p[0] for p in prepared]
    for user in calls[:5]:
        rec.recommend(user, args.k)
    pinned, default = "pinned (1)", f"default ({default_threads})"
    sides = {name: lambda user: rec.recommend(user, args.k) for name in (pinned, default)}
    setup = {pinned: lambda: pin_threads(1), default: lambda: pin_threads(default_threads)}
    t = timed_blocks(sides, calls, setup=setup)
    out["funnel"] = t
    print(f"  whole funnel in process (recommend, N = {n}, k = {args.k}), {len(calls)} users:")
    for name, samples in t.items():
        print(f"    {name:11s} p50 {percentile(samples, 50):7.3f}  p99 {percentile(samples, 99):7.3f}  "
              f"mean {float(np.mean(samples)):7.3f} ms")  # fmt: skip
    pin_threads(default_threads)
    return out


# --- FAISS: IVF against exact search ------------------------------------------------------------


def clustered_vectors(n: int, centres: Any, weights: Any, spread: float, rng: Any) -> Any:
    """(n, D) unit vectors from the mixture: a centre drawn by ``weights``, plus isotropic
    Gaussian noise of expected norm about ``spread``, normalised (see the module docstring)."""
    import numpy as np

    dim = centres.shape[1]
    out = np.empty((n, dim), np.float32)
    for s in range(0, n, 200_000):  # in chunks: the float64 noise of 1M rows is 0.5 GB
        m = min(200_000, n - s)
        pick = rng.choice(len(centres), m, p=weights)
        v = centres[pick] + rng.standard_normal((m, dim)) * (spread / np.sqrt(dim))
        out[s : s + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def faiss_stage(args: argparse.Namespace) -> dict:
    import faiss
    import numpy as np

    from recassets.serving.index import ItemIndex, build_index, measure_recall

    rng = np.random.default_rng(args.seed)
    centres = rng.standard_normal((args.clusters, args.dim))
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    weights = 1.0 / np.arange(1, args.clusters + 1) ** 0.8
    weights /= weights.sum()
    t0 = time.perf_counter()
    items = clustered_vectors(args.items, centres, weights, args.spread, rng)
    tune = clustered_vectors(1000, centres, weights, args.spread, rng)
    held = clustered_vectors(args.queries, centres, weights, args.spread, rng)
    t1 = time.perf_counter()
    index, info = build_index(items, queries=tune, k=100, target_recall=0.97, seed=args.seed)
    t2 = time.perf_counter()
    print(f"  {args.items} x {args.dim} vectors, {args.clusters} clusters, spread {args.spread} "
          f"(generated in {t1 - t0:.1f} s); {info.factory} nprobe={info.nprobe} "
          f"(build recall@100 {info.build_recall or 1.0:.4f}) built on {info.device} in {t2 - t1:.1f} s, "
          f"FAISS threads {faiss.omp_get_max_threads()}")  # fmt: skip
    item_index = ItemIndex(index, np.arange(args.items, dtype=np.int64), info)
    m = measure_recall(item_index, items, held, 100)
    flat = faiss.IndexFlatIP(args.dim)
    flat.add(items)
    t = time.perf_counter()
    _, exact = flat.search(held, 100)
    exact_search_only = len(held) / (time.perf_counter() - t)
    t = time.perf_counter()
    index.search(held, 100)
    index_again = len(held) / (time.perf_counter() - t)
    # one query at a time on one thread: a serving worker's shape
    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    single = held[: args.single_queries]
    try:
        t = time.perf_counter()
        for q in single:
            flat.search(q[None, :], 100)
        exact_one = len(single) / (time.perf_counter() - t)
        t = time.perf_counter()
        for q in single:
            index.search(q[None, :], 100)
        index_one = len(single) / (time.perf_counter() - t)
    finally:
        faiss.omp_set_num_threads(threads)
    out = {
        "factory": info.factory,
        "nprobe": info.nprobe,
        "recall": m["recall@100"],
        "index_qps": max(m["index_qps"], index_again),
        "exact_qps_measure_recall": m["exact_qps"],
        "exact_qps": exact_search_only,
        "index_one": index_one,
        "exact_one": exact_one,
    }
    print(f"  recall@100 on {len(held)} held-out queries: {m['recall@100']:.4f}")
    print(f"  batched ({len(held)} queries, {threads} threads): {info.factory} "
          f"{out['index_qps']:10.0f} q/s | exact {exact_search_only:8.0f} q/s search only, "
          f"{m['exact_qps']:8.0f} q/s with the flat index's build (measure_recall)")  # fmt: skip
    print(f"  one query at a time, 1 thread ({len(single)} queries): {info.factory} "
          f"{index_one:10.0f} q/s | exact {exact_one:8.0f} q/s  ({index_one / exact_one:.0f}x)")  # fmt: skip
    return out


# --- main ---------------------------------------------------------------------------------------


def resolve_bento(paths: Any, tag: str | None) -> tuple[str | None, Path | None]:
    from recassets.serving import bundle as B

    tag = tag or B.latest_bento(paths)
    if tag is None:
        return None, None
    name, _, version = tag.partition(":")
    if version in ("", "latest"):
        marker = Path(B.bentoml_home(paths)) / "bentos" / name / "latest"
        version = marker.read_text().strip() if marker.exists() else ""
        tag = f"{name}:{version}"
    folder = B.bento_folder(paths, tag) / "src" / "bundle"
    return (tag, folder) if (folder / "manifest.json").exists() else (None, None)


def row(
    figure: str,
    ours: float,
    base: float | None,
    ratio: float | None,
    target: str,
    ok: bool | None,
    fmt: str = "8.2f",
) -> str:
    b = f"{base:{fmt}}" if base is not None else f"{'-':>8}"
    r = f"{ratio:7.2f}x" if ratio is not None else f"{'-':>8}"
    verdict = "PASS" if ok else ("FAIL" if ok is not None else "info")
    return f"{figure:46s} {ours:{fmt}} {b} {r}  {target:24s} {verdict}"


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--home", default=None, help="RECASSETS_HOME (default: env, else .recassets)")
    ap.add_argument("--bento", default=None, help="bento tag (default: the newest in the home)")
    ap.add_argument("--candidates", type=int, default=500, help="N retrieved and ranked")
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--workers", type=int, default=int(os.environ.get("RECASSETS_SERVE_WORKERS", "1")),
                    help="bentoml workers of both services (RECASSETS_SERVE_WORKERS)")  # fmt: skip
    ap.add_argument("--levels", type=int, nargs="+", default=list(LEVELS))
    ap.add_argument(
        "--seconds", type=float, default=12.0, help="timed seconds per level and service"
    )
    ap.add_argument("--rounds", type=int, default=2, help="alternating segments per level")
    ap.add_argument("--warmup", type=float, default=1.5, help="untimed seconds per segment")
    ap.add_argument("--users", type=int, default=1000, help="distinct users in the requests")
    ap.add_argument("--rank-users", type=int, default=300, help="users timed in process")
    ap.add_argument("--items", type=int, default=1_000_000, help="synthetic FAISS vectors")
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--spread", type=float, default=1.0)
    ap.add_argument("--queries", type=int, default=1000, help="held-out FAISS queries")
    ap.add_argument("--single-queries", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--skip-http", action="store_true")
    ap.add_argument("--skip-inprocess", action="store_true")
    ap.add_argument("--skip-faiss", action="store_true")
    ap.add_argument("--quick", action="store_true",
                    help="smoke run: 3 s per level, 60 users in process, 200k FAISS vectors")  # fmt: skip
    a = ap.parse_args()
    if a.quick:
        a.seconds, a.rounds, a.warmup, a.rank_users = 3.0, 1, 0.5, 60
        a.items, a.queries, a.single_queries = 200_000, 300, 50

    from recassets.paths import Paths

    paths = Paths.from_env(a.home)
    tag, bundle_dir = resolve_bento(paths, a.bento)
    if tag is None or bundle_dir is None:
        from recassets.serving import bundle as B

        print(f"no recommender bento in {B.bentoml_home(paths)} (home {paths.home}). Build one "
              f"first, either everything from synthetic data:\n"
              f"  RECASSETS_HOME={paths.home} .venv/bin/recassets demo\n"
              f"or, on a home with promoted models and a materialized feature store:\n"
              f"  RECASSETS_HOME={paths.home} .venv/bin/recassets materialize "
              f"--select retrieval/item_embeddings,retrieval/item_index,serving/recommender_bento")  # fmt: skip
        sys.exit(2)

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
          f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f} (shared machine: "
          f"absolute figures are noisy, the ratios within this run are what count)")  # fmt: skip
    print(f"home {paths.home}, bento {tag}, N = {a.candidates}, k = {a.k}, workers = {a.workers}")
    users = known_users(paths, a.users, a.seed)
    http = inproc = faiss_ = None
    if not a.skip_http:
        print(f"\n[1] HTTP /recommend vs the floor: {len(users)} users, {a.seconds:g} s per level "
              f"and service in {a.rounds} segment(s), {a.warmup:g} s warm-up each")  # fmt: skip
        http = http_stage(a, paths, tag, users)
    if not a.skip_inprocess:
        print("\n[2] in process")
        inproc = inprocess_stage(a, paths, bundle_dir, users)
    if not a.skip_faiss:
        print("\n[3] FAISS vs exact search")
        faiss_ = faiss_stage(a)

    print(f"\nSUMMARY (load average {os.getloadavg()[0]:.1f})")
    print(f"{'figure':46s} {'ours':>8s} {'baseline':>8s} {'ratio':>8s}  {'target':24s} verdict")
    lines = []
    if http:

        def p99(c: int, s: str) -> float:
            return percentile(http[c][s]["latencies"], 99)

        def rps(c: int, s: str) -> float:
            return http[c][s]["requests"] / max(http[c][s]["seconds"], 1e-9)

        if 1 in http:
            lines.append(row("/recommend p99 ms, c=1 (baseline: floor)", p99(1, "ours"), p99(1, "floor"),
                             p99(1, "ours") / p99(1, "floor"), "ours < 10 ms", p99(1, "ours") < 10))  # fmt: skip
        if 8 in http:
            r = p99(8, "ours") / p99(8, "floor")
            lines.append(row("/recommend p99 ms, c=8 (baseline: floor)", p99(8, "ours"), p99(8, "floor"),
                             r, "ratio <= 1.5x", r <= 1.5))  # fmt: skip
            r = rps(8, "ours") / rps(8, "floor")
            lines.append(row("/recommend req/s, c=8 (baseline: floor)", rps(8, "ours"), rps(8, "floor"),
                             r, "ratio >= 0.6x", r >= 0.6, "8.1f"))  # fmt: skip
        for c in http:
            if c not in (1, 8):
                lines.append(row(f"/recommend p99 ms, c={c} (baseline: floor)", p99(c, "ours"), p99(c, "floor"),
                                 p99(c, "ours") / p99(c, "floor"), "-", None))  # fmt: skip
                lines.append(row(f"/recommend req/s, c={c} (baseline: floor)", rps(c, "ours"), rps(c, "floor"),
                                 rps(c, "ours") / rps(c, "floor"), "-", None, "8.1f"))  # fmt: skip
        errors = sum(http[c]["ours"]["errors"] for c in http)
        floor_errors = sum(http[c]["floor"]["errors"] for c in http)
        lines.append(row("errors, all levels (baseline: floor)", errors, floor_errors, None,
                         "0", errors == 0, "8d"))  # fmt: skip
    if inproc and "rank" in inproc:
        b, r = (
            percentile(inproc["rank"]["broadcast"], 50),
            percentile(inproc["rank"]["replicated"], 50),
        )
        lines.append(row(f"rank {inproc['n']} p50 ms, 1 thread (vs replicated)", b, r, r / b,
                         "speedup >= 2x", r / b >= 2, "8.3f"))  # fmt: skip
        names = list(inproc["funnel"])
        p, d = (
            percentile(inproc["funnel"][names[0]], 50),
            percentile(inproc["funnel"][names[1]], 50),
        )
        lines.append(row(f"funnel p50 ms, 1 thread (vs {inproc['default_threads']} threads)", p, d, d / p,
                         "(documents pinning)", None, "8.3f"))  # fmt: skip
    if faiss_:
        lines.append(row(f"recall@100, {faiss_['factory']} nprobe={faiss_['nprobe']} (vs exact)",
                         faiss_["recall"], 1.0, None, ">= 0.95", faiss_["recall"] >= 0.95, "8.4f"))  # fmt: skip
        s = faiss_["index_qps"] / faiss_["exact_qps"]
        lines.append(row(f"queries/s batched, {a.items} items (vs exact)", faiss_["index_qps"],
                         faiss_["exact_qps"], s, "speedup >= 10x", s >= 10, "8.0f"))  # fmt: skip
        s1 = faiss_["index_one"] / faiss_["exact_one"]
        lines.append(row("queries/s one at a time, 1 thread (vs exact)", faiss_["index_one"],
                         faiss_["exact_one"], s1, "-", None, "8.0f"))  # fmt: skip
    print("\n".join(lines))


if __name__ == "__main__":
    main()
