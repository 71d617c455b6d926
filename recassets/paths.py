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


def partition_start_date(paths: Paths | None = None) -> dt.date:
    """First daily partition: ``RECASSETS_START_DATE``, else the earliest landed day, else
    2026-01-01 (the synthetic generator's default start).

    Why not a constant: a MovieLens import lands 1997-1998, and the partition set must cover it
    without configuration.
    """
    env = os.environ.get("RECASSETS_START_DATE")
    if env:
        return dt.date.fromisoformat(env)
    days = (paths or Paths.from_env()).landed_days("events")
    return min(days[0], DEFAULT_START_DATE) if days else DEFAULT_START_DATE
