"""Where things live. The embedded default needs no configuration at all.

``RECASSETS_HOME`` (default ``.recassets/`` in the current working directory, which is the
repo root for ``make`` targets and the Dagster code location) holds::

    landing/<dataset>/dt=YYYY-MM-DD/*.jsonl|*.parquet   files as they arrive
    lake/<table>/                                       Delta tables
    artifacts/                                          checkpoints, indexes, bentos
    lineage/                                            per-partition manifests
    dagster/                                            the Dagster instance (SQLite)

Each location can be moved on its own with ``RECASSETS_LANDING``, ``RECASSETS_LAKE``,
``RECASSETS_ARTIFACTS``; the lake may be a URL (``s3a://bucket/lake``) that Spark understands.
"""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path

DATASETS = ("events", "users", "items")


def _env_path(name: str, default: Path) -> str:
    value = os.environ.get(name)
    return value if value else str(default)


@dataclass(frozen=True)
class Paths:
    """Resolved storage locations. Strings, so that the lake can be a URL."""

    home: str
    landing: str
    lake: str
    artifacts: str
    lineage: str
    dagster_home: str

    @classmethod
    def from_env(cls, home: str | None = None) -> Paths:
        root = Path(home or os.environ.get("RECASSETS_HOME") or ".recassets").absolute()
        return cls(
            home=str(root),
            landing=_env_path("RECASSETS_LANDING", root / "landing"),
            lake=_env_path("RECASSETS_LAKE", root / "lake"),
            artifacts=_env_path("RECASSETS_ARTIFACTS", root / "artifacts"),
            lineage=_env_path("RECASSETS_LINEAGE", root / "lineage"),
            dagster_home=os.environ.get("DAGSTER_HOME") or str(root / "dagster"),
        )

    def landing_dir(self, dataset: str, day: dt.date | str) -> str:
        """The folder one day's files of ``dataset`` land in."""
        return f"{self.landing}/{dataset}/dt={_iso(day)}"

    def table(self, name: str) -> str:
        return f"{self.lake}/{name}"

    def landed_days(self, dataset: str = "events") -> list[dt.date]:
        """Days with a landing folder for ``dataset``, sorted (empty folders included)."""
        root = Path(self.landing) / dataset
        if not root.is_dir():
            return []
        days = []
        for child in root.iterdir():
            if child.is_dir() and child.name.startswith("dt="):
                try:
                    days.append(dt.date.fromisoformat(child.name[3:]))
                except ValueError:
                    continue
        return sorted(days)


def _iso(day: dt.date | str) -> str:
    return day if isinstance(day, str) else day.isoformat()


DEFAULT_START_DATE = dt.date(2026, 1, 1)
# Data whose last landed day is at most this many days before today is live: its partitions
# run up to today, so the landing sensor can launch tomorrow's day without a reload.
LIVE_WITHIN_DAYS = 2


@dataclass(frozen=True)
class PartitionWindow:
    """The daily partitions the data covers: ``first`` .. ``last`` (inclusive); ``last`` None
    means open, up to today (UTC) or the latest landed day if that lies ahead."""

    first: dt.date
    last: dt.date | None
    days_ahead: int = 0  # open windows: landed days after today (clock skew, a test's future day)

    @property
    def is_open(self) -> bool:
        return self.last is None


def partition_window(paths: Paths | None = None, today: dt.date | None = None) -> PartitionWindow:
    """The days a user sees as partitions: the days the data covers, growing as new days land.

    * ``first``: ``RECASSETS_START_DATE``, else the first landed day of events, else 2026-01-01.
    * ``last``: ``RECASSETS_END_DATE`` (a day, or ``open``), else, for a history (the last landed
      day more than ``LIVE_WITHIN_DAYS`` before today: an import, the synthetic default), that
      last landed day; for live data (or nothing landed yet), open: up to today.

    Why not always up to today: a 1997 MovieLens import would show over 10,000 partitions,
    nearly all grey, "filled" would mean nothing, and the materialize dialog would open on 90
    days without data. Why not always closed: live data lands a new day every day, and the
    partitions are read once, when a process loads the definitions (the code server, the
    daemon, each run). A closed window therefore grows when the code location reloads (``make
    dev`` restarted, or Reload in the UI's Deployment page); the landing sensor names a landed
    day past it in its log instead of launching a run Dagster would refuse.
    """
    today = today or dt.datetime.now(dt.UTC).date()
    days = (paths or Paths.from_env()).landed_days("events")
    env_first = os.environ.get("RECASSETS_START_DATE", "").strip()
    first = (
        dt.date.fromisoformat(env_first) if env_first else (days[0] if days else DEFAULT_START_DATE)
    )
    env_last = os.environ.get("RECASSETS_END_DATE", "").strip().lower()
    if env_last and env_last != "open":
        return PartitionWindow(first, max(first, dt.date.fromisoformat(env_last)))
    if days and not env_last and days[-1] < today - dt.timedelta(days=LIVE_WITHIN_DAYS):
        return PartitionWindow(first, max(first, days[-1]))
    ahead = max(0, (days[-1] - today).days) if days else 0
    return PartitionWindow(first, None, days_ahead=ahead)


def partition_start_date(paths: Paths | None = None) -> dt.date:
    """First daily partition (see ``partition_window``)."""
    return partition_window(paths).first
