"""What the serving benchmarks share: one timer for every side of a comparison, the same
percentiles, the summary table, and the setup that finds a built bento and its known users.

``serve_http``, ``serve_ranking`` and ``serve_index`` import it (``python -m`` from the repo
root). The rule it serves: a figure is printed beside a baseline measured in the same run,
with the same timer, on the same calls, in the same number of repetitions.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any


def machine_line() -> str:
    """One line naming the machine and its load, printed first by every script."""
    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f} (shared machine: "
        f"absolute figures are noisy, the ratios within this run are what count)"
    )


# --- timing -------------------------------------------------------------------------------------


def timed_blocks(
    sides: Mapping[str, Callable[[Any], Any]],
    calls: Sequence[Any],
    rounds: int = 3,
    setup: Mapping[str, Callable[[], Any]] | None = None,
) -> dict[str, list[float]]:
    """ms per call of every side on the same ``calls``, one ``perf_counter`` pair per call.

    The calls are dealt into ``rounds`` blocks; every side runs every block, sides in rotating
    order (drift in the machine's load is shared rather than landing on one side). Before each
    block, untimed: ``setup[side]()`` when given, then a full GC. Every side thus gets exactly
    the same calls, the same number of times, timed the same way."""
    names = list(sides)
    times: dict[str, list[float]] = {n: [] for n in names}
    rounds = max(1, min(rounds, len(calls)))
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


def forget_ranking(ranking: Any) -> None:
    """Clear a ``funnel.ranking.Ranking``'s memos (the last call's logits and its user half).

    A call for the same user, row object and block is otherwise answered from them
    (``Ranking._scored``, ``Ranking.user_half``) without running the ranker: a benchmark that
    repeats a call, or times a stage that serving would run on its own, clears them first."""
    if ranking is not None:
        ranking._last_scores = None
        ranking._last_user = None


def percentile(samples: Sequence[float], q: float) -> float:
    import numpy as np

    return (
        float(np.percentile(np.asarray(samples, dtype=np.float64), q))
        if len(samples)
        else float("nan")
    )


def latency_line(name: str, samples: Sequence[float], width: int = 11) -> str:
    """``name  p50 .. p99 .. mean .. ms (n calls)`` for a side's per-call times."""
    mean = sum(samples) / len(samples) if samples else float("nan")
    return (
        f"    {name:{width}s} p50 {percentile(samples, 50):8.3f}  "
        f"p99 {percentile(samples, 99):8.3f}"
        f"  mean {mean:8.3f} ms  ({len(samples)} calls)"
    )


def frame_differences(x: Any, y: Any) -> int:
    """Rows of Spark DataFrame ``x`` not in ``y`` plus rows of ``y`` not in ``x`` (multisets),
    doubles (and arrays of doubles, element by element) compared to 9 significant digits (Spark sums in no fixed order): 0 when the two
    sides of a comparison produced the same table."""
    from pyspark.sql import functions as F

    def column(f: Any) -> Any:
        kind = f.dataType
        if kind.typeName() == "double":
            return F.expr(f"format_string('%.9g', `{f.name}`)").alias(f.name)
        if kind.typeName() == "array" and kind.elementType.typeName() == "double":
            # arrays of doubles (weights, values) are sums too: each element to 9 digits
            return F.expr(f"transform(`{f.name}`, x -> format_string('%.9g', x))").alias(f.name)
        return F.col(f"`{f.name}`")

    def rounded(df: Any) -> Any:
        return df.select(*[column(f) for f in df.schema.fields])

    a, b = rounded(x), rounded(y.select(*x.columns))
    return a.exceptAll(b).count() + b.exceptAll(a).count()


# --- the summary --------------------------------------------------------------------------------

SUMMARY_HEADER = (
    f"{'figure':50s} {'ours':>9s} {'baseline':>9s} {'ratio':>8s}  {'target':24s} verdict"
)


def row(
    figure: str,
    ours: float,
    base: float | None,
    ratio: float | None,
    target: str,
    ok: bool | None,
    fmt: str = "9.2f",
) -> str:
    """One summary line: the figure, its same-run baseline, the ratio, the target and PASS,
    FAIL or info (no target). Benchmarks report; they do not gate (the exit status is 0)."""
    b = f"{base:{fmt}}" if base is not None else f"{'-':>9}"
    r = f"{ratio:7.2f}x" if ratio is not None else f"{'-':>8}"
    verdict = "PASS" if ok else ("FAIL" if ok is not None else "info")
    return f"{figure:50s} {ours:{fmt}} {b} {r}  {target:24s} {verdict}"


def print_summary(lines: Sequence[str]) -> None:
    print(f"\nSUMMARY (load average {os.getloadavg()[0]:.1f})")
    print(SUMMARY_HEADER)
    print("\n".join(lines))


# --- setup: a home's bento and its known users --------------------------------------------------


def bento_parser(doc: str | None) -> argparse.ArgumentParser:
    """The arguments every benchmark of a built bento takes: its home, its tag, the candidates
    N it retrieves and ranks, the k it returns."""
    ap = argparse.ArgumentParser(
        description=doc, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--home", default=None, help="RECASSETS_HOME (default: env, else .recassets)")
    ap.add_argument("--bento", default=None, help="bento tag (default: the newest in the home)")
    ap.add_argument("--candidates", type=int, default=500, help="N retrieved and ranked")
    ap.add_argument("--k", type=int, default=20, help="items a recommendation returns")
    return ap


def resolve_bento(paths: Any, tag: str | None) -> tuple[str | None, Path | None]:
    """The bento tag (``tag``, else the newest of the home's store; ``:latest`` resolved) and
    its bundle folder, or (None, None) when the home has no built recommender."""
    from recassets.bento import bundle as B

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


def require_bento(home: str | None, tag: str | None) -> tuple[Any, str, Path]:
    """(paths, tag, bundle folder) of the home's recommender; exits 2 with the commands that
    build one when there is none."""
    import sys

    from recassets.bento import bundle as B
    from recassets.paths import Paths

    paths = Paths.from_env(home)
    tag, bundle_dir = resolve_bento(paths, tag)
    if tag is None or bundle_dir is None:
        print(f"no recommender bento in {B.bentoml_home(paths)} (home {paths.home}). Build one "
              f"first, either everything from synthetic data:\n"
              f"  RECASSETS_HOME={paths.home} .venv/bin/recassets demo\n"
              f"or, on a home with promoted models and a materialized feature store:\n"
              f"  RECASSETS_HOME={paths.home} .venv/bin/recassets materialize "
              f"--select retrieval/item_embeddings,retrieval/item_index,serving/recommender_bento")  # fmt: skip
        sys.exit(2)
    return paths, tag, bundle_dir


def blend_models(home: str | None) -> tuple[Any, str, str]:
    """(paths, the latest two-tower, the latest item similarity) of ``home``, the machine line
    printed first; exits naming the artifacts folder when either is missing."""
    from recassets.paths import Paths
    from recassets.training import policy as P
    from recassets.training import similarity as S

    print(machine_line())
    paths = Paths.from_env(home)
    tt, sims = P.latest_checkpoint(paths, "two_tower"), S.versions(paths)
    if tt is None or not sims:
        raise SystemExit(f"no two-tower or item similarity under {paths.artifacts}: run a demo")
    return paths, str(tt), str(sims[-1])


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


# --- HTTP/1.1 over raw sockets (serve_http, soak) ------------------------------------------------


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
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
