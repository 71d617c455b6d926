"""Content versions of the lake's daily partitions: what Dagster records as each partition's
data version, so that the UI marks a day's downstream stale when, and only when, what that day
grew from changed.

A version is a sha256 over what a partition was computed from, never over the Delta commit:
re-ingesting unchanged files writes a new commit (a new Delta version) of the same rows, and
must leave everything downstream fresh; one changed landing file must not.

* ``raw_events``, ``users``, ``items``: the partition's landing files, each as (its name in
  the landing, ``landing/<dataset>/dt=<day>/<file>``: ``landing_key``, sha256), or "empty"
  (``ingest_version``). The landing files and their sha256 are those of the lineage manifest,
  so the version can be recomputed from it (``manifest_version``).
* the feature tables of day d: the ingest partitions their window read (raw_events d-27..d,
  users and items up to d), by their versions (``feature_version``).
* ``training_examples`` of day d: raw_events d, users and items up to d, the features of d-1
  (``examples_version``).
* the training data as a whole, what the unpartitioned models read (``training_data_version``):
  the days ``training_examples`` holds, and the ingest partitions all of them grew from.

The code is not in the version: Dagster compares each asset's ``code_version`` on its own and
says "has a new code version" when it changes.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from recassets.ingest.lineage import lineage_path, read_lineage
from recassets.paths import Paths

# The window the feature tables read (recassets.features.schema.WINDOWS' longest); spelled
# here so that this module does not import pyspark through recassets.features.
FEATURE_WINDOW_DAYS = 28
DIMENSIONS = ("users", "items")
# A landing day's folder (``Paths.landing_dir``).
DAY_FOLDER = re.compile(r"dt=[0-9]{4}-[0-9]{2}-[0-9]{2}")


def digest(parts: object) -> str:
    """The sha256 (hex) of ``parts`` as canonical JSON."""
    text = json.dumps(parts, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def relative(paths: Paths, path: str) -> str:
    """``path`` relative to ``RECASSETS_HOME`` when it lies under it (else unchanged): how the
    assets' metadata shows a path. Only this home is stripped; versions name landing files by
    ``landing_key`` instead."""
    try:
        return str(Path(path).resolve().relative_to(Path(paths.home).resolve()))
    except ValueError:
        return path


def landing_key(paths: Paths, path: str) -> str:
    """How a version names a landing file: ``landing/<dataset>/dt=<day>/<file>``, read from the
    path's own last three parts, whatever folder the home (or ``RECASSETS_LANDING``) lay in.

    Not ``relative``: a manifest records absolute paths, by the home that wrote it, and
    ``relative`` strips only this home. A home copied, moved or restored (a laptop's onto a
    cluster volume, a backup) gave every partition a new version from the same files, and the
    UI showed features, examples, all five models and ``model_evaluation`` stale until they
    were rebuilt or retrained for nothing. Every landing entry an ingestion records lies
    directly in its day's folder (``recassets.ingest.files``: a folder inside it is recorded,
    not walked), so the layout names it without a home written in the manifest, and older
    manifests keep working. In the default layout this is exactly what ``relative`` gave, so
    a home built before keeps its versions. A path of another shape (none is written) falls
    back to ``relative``."""
    parts = PurePosixPath(path).parts
    if len(parts) >= 3 and DAY_FOLDER.fullmatch(parts[-2]):
        return "/".join(("landing", *parts[-3:]))
    return relative(paths, path)


def ingest_version(paths: Paths, table: str, files: Iterable[tuple[str, str]]) -> str:
    """The version of an ingest partition grown from ``files``, (path, sha256) pairs; a day
    without files has the version of the empty set. Each file by ``landing_key``: the same
    files give the same version wherever the home lies."""
    named = sorted((landing_key(paths, p), sha) for p, sha in files)
    return digest({"table": table, "files": named})


def manifest_version(paths: Paths, table: str, day: str) -> str | None:
    """``ingest_version`` from the partition's lineage manifest; None when it has none (never
    ingested, or ingested before manifests existed)."""
    try:
        manifest = read_lineage(paths, table, day)
    except (FileNotFoundError, ValueError):
        return None
    return ingest_version(paths, table, ((f["path"], f["sha256"]) for f in manifest["inputs"]))


class VersionReader:
    """Reads manifests once per (table, day): a range of feature days shares most inputs."""

    def __init__(self, paths: Paths):
        self.paths = paths
        self._cache: dict[tuple[str, str], str | None] = {}
        self._days: dict[str, list[str]] = {}

    def ingest(self, table: str, day: str) -> str | None:
        if (table, day) not in self._cache:
            self._cache[table, day] = manifest_version(self.paths, table, day)
        return self._cache[table, day]

    def days(self, table: str) -> list[str]:
        """The days of ``table`` that have a manifest, sorted."""
        if table not in self._days:
            folder = Path(lineage_path(self.paths, table, "2000-01-01")).parent
            found = [p.stem.removeprefix("dt=") for p in folder.glob("dt=*.json")]
            self._days[table] = sorted(found)
        return self._days[table]

    def dimensions_up_to(self, day: str) -> dict[str, dict[str, str | None]]:
        return {t: {d: self.ingest(t, d) for d in self.days(t) if d <= day} for t in DIMENSIONS}

    def features(self, day: str) -> str:
        """The version of the feature tables' partition ``day``."""
        d = dt.date.fromisoformat(day)
        window = [(d - dt.timedelta(days=i)).isoformat() for i in range(FEATURE_WINDOW_DAYS)]
        events = {w: self.ingest("raw_events", w) for w in window}
        return digest(
            {
                "recipe": "features",
                "raw_events": {w: v for w, v in events.items() if v is not None},
                **self.dimensions_up_to(day),
            }
        )

    def examples(self, day: str) -> str:
        """The version of ``training_examples``' partition ``day``."""
        prev = (dt.date.fromisoformat(day) - dt.timedelta(days=1)).isoformat()
        return digest(
            {
                "recipe": "training_examples",
                "raw_events": self.ingest("raw_events", day),
                "features_of_previous_day": self.features(prev),
                **self.dimensions_up_to(day),
            }
        )

    def training_data(self, days: Iterable[str]) -> str | None:
        """The version of ``training_examples`` over ``days`` taken whole; None for no day.

        Linear in the days, not a digest of each day's ``examples`` (whose dimension part grows
        with the day: quadratic over a long history): every day's version is a function of the
        ingest partitions in [first day - 27, last day] (raw_events) and up to the last day
        (users, items), so those partitions' versions and the list of days determine them all.
        A day added, or one of those partitions re-ingested with other content, changes it."""
        days = sorted(set(days))
        if not days:
            return None
        first = dt.date.fromisoformat(days[0]) - dt.timedelta(days=FEATURE_WINDOW_DAYS - 1)
        span = (dt.date.fromisoformat(days[-1]) - first).days + 1
        window = [(first + dt.timedelta(days=i)).isoformat() for i in range(span)]
        events = {w: self.ingest("raw_events", w) for w in window}
        return digest(
            {
                "recipe": "training_data",
                "days": days,
                "raw_events": {w: v for w, v in events.items() if v is not None},
                **self.dimensions_up_to(days[-1]),
            }
        )


def feature_version(paths: Paths, day: str) -> str:
    return VersionReader(paths).features(day)


def examples_version(paths: Paths, day: str) -> str:
    return VersionReader(paths).examples(day)


def training_data_version(paths: Paths, days: Iterable[str]) -> str | None:
    return VersionReader(paths).training_data(days)


__all__ = [
    "VersionReader",
    "digest",
    "examples_version",
    "feature_version",
    "ingest_version",
    "landing_key",
    "manifest_version",
    "relative",
    "training_data_version",
]
