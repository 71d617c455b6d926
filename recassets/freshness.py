"""The freshness loop's decisions, as plain functions: what landed and what is new to train
on. ``sensors/`` wires them into Dagster; tests call them directly.

Landing
    A day of a dataset (``landing/<dataset>/dt=DAY/``) is summarized by a *fingerprint*: a
    digest of the sorted (file name, size, mtime in ns) of the files ingestion would read
    (the same rule as ``recassets.ingest.list_landing_files``: not dot- or underscore-named).
    Why not a content hash: hashing every landed byte on every sensor tick (30 s) costs
    seconds per GB; name/size/mtime catches every write, and a file rewritten with identical
    bytes is only re-ingested, which replaces the partition with the same rows.

    ``plan_landing`` compares a scan with the sensor's cursor (the fingerprints it already
    launched) and returns the work, grouped into *batches*: consecutive days whose changed
    datasets are the same become one range (one single-run backfill), oldest first.

    Without a usable cursor (first tick, a cursor lost or written by an older version), a day
    counts as already ingested when the lineage manifest of its table partition
    (``lineage/<table>/dt=DAY.json``) lists exactly its files (by name and size) and is newer
    than each of them: the lake itself records what it read, so starting the daemon over a
    home that ``recassets demo`` already built does not re-ingest history.

Retraining
    ``pending_training_days``: the ``training_examples`` partitions a model could train on
    (all but the last ``holdout_days``, which ``model_evaluation`` scores) that the latest
    checkpoint of at least one kind has not consumed. With ``holdout_days=1`` a new day d makes
    day d-1 trainable: that is the "new partition" the retrain sensor counts.

How far a change has travelled through the loop (landed -> ingested -> features -> online ->
model -> bento) is timed from what is on disk by ``support/stopwatch.py``, with the tests and
benchmarks that need it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from recassets.paths import DATASETS, Paths

CURSOR_VERSION = 1
TABLE_OF = {"events": "raw_events", "users": "users", "items": "items"}


# --- landing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LandedDay:
    """One dataset's folder of one day, as the sensor sees it."""

    dataset: str
    day: str
    files: tuple[tuple[str, int, int], ...]  # (name, size, mtime_ns), sorted by name

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.day}"

    @property
    def fingerprint(self) -> str:
        text = "\n".join(f"{n}\t{s}\t{m}" for n, s, m in self.files)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _ingestible(p: Path) -> bool:
    # Mirrors recassets.ingest.list_landing_files: producers write ".name.tmp" and rename.
    return p.is_file() and not p.name.startswith((".", "_"))


def landed_day(paths: Paths, dataset: str, day: str) -> LandedDay:
    folder = Path(paths.landing_dir(dataset, day))
    files = []
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            if _ingestible(p):
                st = p.stat()
                files.append((p.name, st.st_size, st.st_mtime_ns))
    return LandedDay(dataset, day, tuple(files))


def scan_landing(paths: Paths, datasets: Sequence[str] = DATASETS) -> dict[str, LandedDay]:
    """Every non-empty day folder of ``datasets``, by ``dataset/day``. Empty folders are left
    out: a folder created before its first file is not a day yet."""
    out = {}
    for dataset in datasets:
        for day in paths.landed_days(dataset):
            landed = landed_day(paths, dataset, day.isoformat())
            if landed.files:
                out[landed.key] = landed
    return out


def lineage_matches(paths: Paths, landed: LandedDay) -> bool:
    """Whether the table partition's lineage manifest records exactly these files (names and
    sizes) and was written after each of them, i.e. the lake already holds this landing."""
    manifest = Path(paths.lineage) / TABLE_OF[landed.dataset] / f"dt={landed.day}.json"
    try:
        recorded = json.loads(manifest.read_text())
        written_ns = manifest.stat().st_mtime_ns
    except (OSError, ValueError):
        return False
    inputs = {(Path(f["path"]).name, int(f["size"])) for f in recorded.get("inputs", [])}
    current = {(n, s) for n, s, _ in landed.files}
    return inputs == current and all(m <= written_ns for _, _, m in landed.files)


@dataclass
class LandingCursor:
    """What the landing sensor has launched: ``dataset/day`` -> fingerprint. Serialized as
    JSON with a version, so a cursor from another release is recognized, not misread."""

    fingerprints: dict[str, str] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {"version": CURSOR_VERSION, "fingerprints": dict(sorted(self.fingerprints.items()))},
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, raw: str | None) -> tuple[LandingCursor | None, str | None]:
        """(cursor, problem). No cursor at all is not a problem (first tick); an unreadable
        or foreign one is, and the caller says so before falling back on the lineage."""
        if not raw:
            return None, None
        try:
            data = json.loads(raw)
        except ValueError:
            return None, f"cursor is not JSON ({raw[:40]!r}...)"
        if not isinstance(data, dict) or data.get("version") != CURSOR_VERSION:
            version = data.get("version") if isinstance(data, dict) else None
            return None, f"cursor version {version!r} is not {CURSOR_VERSION}"
        fps = data.get("fingerprints")
        if not isinstance(fps, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in fps.items()
        ):
            return None, "cursor has no fingerprints mapping"
        return cls(dict(fps)), None


@dataclass(frozen=True)
class Change:
    landed: LandedDay
    reason: str  # "new day", "files changed", "not in the lake (lineage)"


@dataclass(frozen=True)
class Batch:
    """One ingest run: the datasets to ingest over the days ``first..last`` (consecutive)."""

    datasets: tuple[str, ...]
    days: tuple[str, ...]
    changes: tuple[Change, ...]

    @property
    def first(self) -> str:
        return self.days[0]

    @property
    def last(self) -> str:
        return self.days[-1]

    @property
    def run_key(self) -> str:
        """Same files, same key: a restarted daemon, or a cursor lost and rebuilt, never
        launches the same ingestion twice (Dagster skips a run key it has seen)."""
        text = "\n".join(sorted(f"{c.landed.key}={c.landed.fingerprint}" for c in self.changes))
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        span = self.first if self.first == self.last else f"{self.first}..{self.last}"
        return f"landing:{span}:{'+'.join(self.datasets)}:{digest}"

    def describe(self) -> str:
        return "; ".join(f"{c.landed.key} ({c.reason})" for c in self.changes)


@dataclass
class LandingPlan:
    batches: list[Batch]
    unchanged: dict[str, str]  # dataset/day -> fingerprint, nothing to do
    skipped: dict[str, str]  # dataset/day -> why it is not launched (e.g. not a partition)
    problem: str | None = None  # a cursor that could not be used

    def cursor_after(self, launched: Iterable[Batch]) -> LandingCursor:
        """The cursor once ``launched`` are requested: unchanged days plus those batches.
        Batches not launched this tick stay out, so the next tick offers them again."""
        fps = dict(self.unchanged)
        for batch in launched:
            fps.update({c.landed.key: c.landed.fingerprint for c in batch.changes})
        return LandingCursor(fps)


def plan_landing(
    paths: Paths,
    raw_cursor: str | None,
    is_partition: Callable[[str], bool] = lambda day: True,
    datasets: Sequence[str] = DATASETS,
) -> LandingPlan:
    """Compare the landing folders with the cursor and group what changed into ingest runs."""
    cursor, problem = LandingCursor.from_json(raw_cursor)
    scan = scan_landing(paths, datasets)
    changes: list[Change] = []
    unchanged: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for key, landed in scan.items():
        if not is_partition(landed.day):
            skipped[key] = (
                "not a daily partition of the loaded definitions (before the first day, or "
                "past the last day of a history's partitions: reload the code location, e.g. "
                "Deployment > Reload in the UI, to extend them; see recassets.paths."
                "partition_window)"
            )
            continue
        if cursor is not None:
            known = cursor.fingerprints.get(key)
            if known == landed.fingerprint:
                unchanged[key] = landed.fingerprint
            else:
                changes.append(Change(landed, "new day" if known is None else "files changed"))
        elif lineage_matches(paths, landed):
            unchanged[key] = landed.fingerprint
        else:
            changes.append(Change(landed, "not in the lake (lineage)"))
    return LandingPlan(_batches(changes), unchanged, skipped, problem)


def _batches(changes: Sequence[Change]) -> list[Batch]:
    by_day: dict[str, list[Change]] = {}
    for c in changes:
        by_day.setdefault(c.landed.day, []).append(c)
    batches: list[Batch] = []
    for day in sorted(by_day):
        day_changes = sorted(by_day[day], key=lambda c: DATASETS.index(c.landed.dataset))
        datasets = tuple(c.landed.dataset for c in day_changes)
        prev = batches[-1] if batches else None
        consecutive = prev is not None and _next_day(prev.last) == day
        if prev is not None and consecutive and prev.datasets == datasets:
            batches[-1] = Batch(datasets, (*prev.days, day), (*prev.changes, *day_changes))
        else:
            batches.append(Batch(datasets, (day,), tuple(day_changes)))
    return batches


def _next_day(day: str) -> str:
    return (dt.date.fromisoformat(day) + dt.timedelta(days=1)).isoformat()


# --- retraining ---------------------------------------------------------------------------------

_CONSUMED_CACHE: dict[tuple[str, int], list[str]] = {}


def consumed_partitions(paths: Paths, kind: str) -> list[str] | None:
    """The partitions the latest checkpoint of ``kind`` consumed; None when there is none.

    Cached by (file, mtime): checkpoints are versioned files, never rewritten, and the sensor
    asks every 30 s, so each is loaded (with torch, weights only) once per process.
    """
    from recassets.training.policy import latest_checkpoint

    path = latest_checkpoint(paths, kind)
    if path is None:
        return None
    key = (str(path), path.stat().st_mtime_ns)
    if key not in _CONSUMED_CACHE:
        from recassets.training.checkpoint import Checkpoint

        _CONSUMED_CACHE[key] = sorted(Checkpoint.load(path).partitions)
    return list(_CONSUMED_CACHE[key])


def pending_training_days(
    available: Sequence[str],
    consumed: Mapping[str, Sequence[str] | None],
    holdout_days: int,
) -> list[str]:
    """Trainable days (``available`` minus the last ``holdout_days``) that some model kind has
    not consumed; a kind without a checkpoint (None) has consumed nothing. Sorted.

    The same split as ``recassets.training.policy.train_next``, so "pending" here is exactly
    what the next incremental run will train on.
    """
    days = sorted(available)
    trainable = days[: len(days) - holdout_days] if holdout_days else days
    seen = [set(c) if c is not None else set() for c in consumed.values()]
    return [d for d in trainable if any(d not in s for s in seen)]


def retrain_run_key(days: Sequence[str]) -> str:
    """One retraining per set of new partitions: the run key is the set itself."""
    days = sorted(days)
    digest = hashlib.sha256(",".join(days).encode()).hexdigest()[:12]
    return f"retrain:{days[0]}..{days[-1]}:{len(days)}:{digest}"


def env_int(name: str, default: int, minimum: int = 0) -> int:
    """An integer setting from the environment, with a message naming it when it is wrong."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected an integer") from None
    if value < minimum:
        raise ValueError(f"{name}={value}: expected at least {minimum}")
    return value
