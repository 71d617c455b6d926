"""A stopwatch for the freshness loop: how long a landed day takes to reach each stage
(ingested -> features -> training examples -> online -> model -> bento), read from what is on
disk, not from Dagster. Shared by ``tests/integration/test_freshness_loop.py`` and
``benchmarks/freshness.py``; the loop's decisions themselves are ``recassets.freshness``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from recassets.freshness import consumed_partitions


@dataclass
class Stage:
    """One step of the loop, done when ``done()`` is true (read from disk, not from Dagster)."""

    name: str
    done: Callable[[], bool]
    reached_at: float | None = None


def watch(
    stages: Sequence[Stage],
    *,
    started: float,
    timeout_s: float,
    poll_s: float = 2.0,
    alive: Callable[[], str | None] = lambda: None,
) -> dict[str, float]:
    """Poll until every stage is done; returns seconds from ``started`` to each stage.

    Stages are checked in order but each records its own time, so a later stage seen before
    an earlier one is not misreported. ``alive`` returns a reason to stop early (a server
    died). Raises TimeoutError naming the stages still pending and the ones reached.
    """
    deadline = started + timeout_s
    while True:
        now = time.time()
        for s in stages:
            if s.reached_at is None and s.done():
                s.reached_at = now
        if all(s.reached_at is not None for s in stages):
            return {s.name: round(s.reached_at - started, 1) for s in stages}  # type: ignore[operator]
        reason = alive()
        if reason or now > deadline:
            reached = {s.name: round(s.reached_at - started, 1) for s in stages if s.reached_at}
            pending = [s.name for s in stages if s.reached_at is None]
            raise TimeoutError(
                f"{reason or f'not done after {timeout_s:.0f} s'}: pending {pending}, "
                f"reached (s) {reached}"
            )
        time.sleep(poll_s)


def lake_days(paths: Any, table: str) -> list[str]:
    """Partitions (``dt``) of a Delta table, via delta-rs (no JVM); empty when no table."""
    from deltalake import DeltaTable

    try:
        return sorted({p["dt"] for p in DeltaTable(paths.table(table)).partitions()})
    except Exception:  # no table yet
        return []


def loop_stages(paths: Any, new_day: str, trainable_day: str) -> list[Stage]:
    """What the loop must produce once ``new_day`` has landed, in order, read from disk: the
    day ingested, its features, its training examples, the online store serving it, and both
    models having consumed ``trainable_day`` (the day before: one day is held out), and a bento
    built against the online features of ``new_day``. A later stage of the loop joins here."""
    from recassets.featurestore.store import served_day

    def has(*tables: str) -> Callable[[], bool]:
        return lambda: all(new_day in lake_days(paths, t) for t in tables)

    def trained() -> bool:
        return all(
            trainable_day in (consumed_partitions(paths, kind) or [])
            for kind in ("two_tower", "ranking")
        )

    return [
        Stage("ingested", has("raw_events", "users", "items")),
        Stage("features", has("user_features", "item_features", "cohort_features")),
        Stage("training_examples", has("training_examples")),
        Stage("online", lambda: served_day(paths) == new_day),
        Stage("model", trained),
        Stage("bento", lambda: bento_features_day(paths) == new_day),
    ]


def bento_features_day(paths: Any) -> str | None:
    """The online day the newest bento was built against (its bundle's lineage), or None."""
    from recassets.bento.bundle import bento_folder, latest_bento

    tag = latest_bento(paths)
    if tag is None:
        return None
    manifest = bento_folder(paths, tag) / "src" / "bundle" / "manifest.json"
    try:
        online = json.loads(manifest.read_text())["lineage"]["feast"]["online"] or {}
    except (OSError, ValueError, KeyError):
        return None
    return online.get("day")
