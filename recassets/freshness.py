"""The freshness loop's decisions, as plain functions: what landed and what is new to train
on. ``sensors/`` wires them into Dagster; tests call them directly.

Landing
    ``recassets.landing_scan`` lists the landing folders (a *fingerprint* per day: names, sizes
    and mtimes of its files) and says when a day has settled; ``recassets.landing_state`` keeps
    the sensor's cursor. ``plan_landing`` compares a scan with the cursor (the fingerprints
    already launched) and returns the work, grouped into *batches*: consecutive days whose
    changed datasets are the same become one range (one single-run backfill), oldest first.

    A day that changed but is not launched this tick (still settling, another ingest in flight,
    a later batch) keeps the fingerprint the cursor knew, so the next tick still sees it changed
    (``LandingPlan.cursor_after``). Before (2026-12-07) it was dropped from the cursor and then
    judged by its lineage manifest alone, which matched names and sizes only: a same-size
    correction landing while its day was being ingested was taken for what the lake held, and
    never ingested.

    A day the cursor does not know at all (first tick, a cursor lost) counts as already ingested
    when the lineage manifest of its table partition (``lineage/<table>/dt=DAY.json``) records
    exactly its files, by name, size and sha256 (``lineage_matches``): the lake itself records
    what it read, so starting the daemon over a home that ``recassets demo`` built does not
    re-ingest history. By content, not by "file older than manifest": the file's mtime is the
    landing machine's clock and the manifest's the lake's; a landing clock ahead re-ingested
    everything on a cursor rebuild. Only the days that reach this fallback are hashed, within
    ``HASH_BUDGET_S`` a tick (the rest on the next ticks, each day recorded as it is checked).

Retraining
    ``pending_training_days``: the ``training_examples`` partitions a model could train on
    (all but the last ``holdout_days``, which ``model_evaluation`` scores) that the training
    base of at least one kind (``consumed_partitions(..., base=True)``: the served checkpoint
    while a learned model serves, else the latest) has not consumed. With ``holdout_days=1`` a new day d makes
    day d-1 trainable: that is the "new partition" the retrain sensor counts.

How far a change has travelled through the loop (landed -> ingested -> features -> online ->
model -> bento) is timed from what is on disk by ``support/stopwatch.py``, with the tests and
benchmarks that need it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from recassets.landing_scan import (
    SUCCESS_MARKER,
    LandedDay,
    LandingNotSettledError,
    landed_day,
    oserror_text,
    scan_landing,
    settled,
    wait_until_settled,
)
from recassets.landing_state import CURSOR_VERSION, LandingCursor, load_cursor, state_dir
from recassets.paths import DATASETS, MAX_DAYS_AHEAD, Paths
from recassets.run_settings import env_int  # the integer settings' parser, re-exported

# RECASSETS_LANDING_SETTLE_SECONDS: how long a day's files must be unchanged before they are
# ingested, by the landing sensor (which leaves the day out of its tick meanwhile) and by a run
# launched by hand (which waits, ``wait_until_settled``). 5 s: a producer writing in place
# appends at least that often; one sensor tick. 0 turns settling off.
SETTLE_ENV = "RECASSETS_LANDING_SETTLE_SECONDS"
DEFAULT_SETTLE_S = 5
# RECASSETS_LANDING_SETTLE_TIMEOUT_SECONDS: how long a run launched by hand waits for them.
SETTLE_TIMEOUT_ENV = "RECASSETS_LANDING_SETTLE_TIMEOUT_SECONDS"
DEFAULT_SETTLE_TIMEOUT_S = 300
TABLE_OF = {"events": "raw_events", "users": "users", "items": "items"}
# Seconds of hashing a tick may spend matching unknown days against their lineage (sha256 at
# several hundred MB/s): a cursor lost over a large history is rebuilt over a few ticks instead
# of one tick running into Dagster's sensor timeout (60 s), and then again, for ever.
HASH_BUDGET_S = 20.0


# --- landing ------------------------------------------------------------------------------------


def _manifest(paths: Paths, landed: LandedDay) -> Path:
    return Path(paths.lineage) / TABLE_OF[landed.dataset] / f"dt={landed.day}.json"


def ingested(paths: Paths, landed: LandedDay) -> bool:
    """Whether the lake holds the day at all (its lineage manifest exists), these files or
    others."""
    return _manifest(paths, landed).is_file()


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def lineage_matches(paths: Paths, landed: LandedDay) -> bool:
    """Whether the table partition's lineage manifest records exactly these files: the same
    names and sizes, and each file's bytes the sha256 it recorded (so a same-size rewrite is
    told apart, and no clock is compared with another). A manifest that records no sha256 for a
    file cannot vouch for it: no match, and the day is ingested again, which replaces the
    partition with the same rows at worst (every manifest ingestion writes records each file's
    sha256). An ``OSError`` reading a landed file is raised."""
    try:
        recorded = json.loads(_manifest(paths, landed).read_text())
    except (OSError, ValueError):
        return False
    inputs = recorded.get("inputs") if isinstance(recorded, dict) else None
    if not isinstance(inputs, list) or not all(isinstance(f, dict) for f in inputs):
        return False
    # What was read and hashed. An entry without a sha256 is a folder, link or pipe in the day
    # that ingestion quarantined whole without reading it: no file of the scan either.
    hashed = [f for f in inputs if isinstance(f.get("sha256"), str)]
    by_name = {Path(str(f.get("path", ""))).name: f for f in hashed}
    if len(by_name) != len(hashed) or set(by_name) != {n for n, _, _ in landed.files}:
        return False
    for name, size, _ in landed.files:
        if str(by_name[name].get("size")) != str(size):  # sizes first: no file read
            return False
    folder = Path(paths.landing_dir(landed.dataset, landed.day))
    return all(_sha256(folder / name) == by_name[name]["sha256"] for name, _, _ in landed.files)


@dataclass(frozen=True)
class Change:
    landed: LandedDay
    reason: str  # "new day", "files changed", "files changed since the lake read them"
    lake: str = ""  # the run whose ingestion the lake holds for the day (``lake_run``)


def lake_run(paths: Paths, dataset: str, day: str) -> str:
    """The run id of the ingestion the lake holds for ``dataset``'s ``day`` (its lineage
    manifest), "" when none: what a run key must include besides the files, so that files
    coming back to a state launched before (a late file, then withdrawn) launch again."""
    manifest = Path(paths.lineage) / TABLE_OF[dataset] / f"dt={day}.json"
    try:
        recorded = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return ""
    return str(recorded.get("run_id", "")) if isinstance(recorded, dict) else ""


# A batch of more day folders than this is logged and tagged by its span and counts: a first
# tick over a 3-year history named 3,288 folders in one log line.
DESCRIBE_MAX = 6


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
        """Same files over the same lake, same key: a restarted daemon, or a cursor lost and
        rebuilt, never launches the same ingestion twice (Dagster skips a run key it has seen).
        The lake's side (``Change.lake``) is in it: files withdrawn back to a state launched
        before had that key again, the run was skipped as done, and the withdrawn file's rows
        stayed in the lake."""
        text = "\n".join(
            sorted(f"{c.landed.key}={c.landed.fingerprint}@{c.lake}" for c in self.changes)
        )
        digest = hashlib.sha256(text.encode()).hexdigest()[:12]
        span = self.first if self.first == self.last else f"{self.first}..{self.last}"
        return f"landing:{span}:{'+'.join(self.datasets)}:{digest}"

    def describe(self) -> str:
        """Each day folder and why it goes; for a long batch, its span and counts."""
        if len(self.changes) <= DESCRIBE_MAX:
            return "; ".join(f"{c.landed.key} ({c.reason})" for c in self.changes)
        reasons: dict[str, int] = {}
        for c in self.changes:
            reasons[c.reason] = reasons.get(c.reason, 0) + 1
        counted = ", ".join(f"{n} {reason}" for reason, n in reasons.items())
        return (
            f"{len(self.days)} days {self.first}..{self.last} of {'+'.join(self.datasets)} "
            f"({len(self.changes)} day folders: {counted})"
        )


@dataclass
class LandingPlan:
    batches: list[Batch]
    unchanged: dict[str, str]  # dataset/day -> fingerprint, nothing to do
    skipped: dict[str, str]  # dataset/day -> why it is not launched (e.g. not a partition)
    problem: str | None = None  # a cursor that could not be used
    # dataset/day -> why it is not settled (or not checked) yet
    waiting: dict[str, str] = field(default_factory=dict)
    # every changed day not launched yet: (fingerprint, first seen by the sensor)
    pending: dict[str, tuple[str, float]] = field(default_factory=dict)
    # what the cursor knew of days changed or unreadable this tick, kept until they go
    kept: dict[str, str] = field(default_factory=dict)
    owed: set[str] = field(default_factory=set)  # changed, nothing launched of them before
    new_skipped: list[str] = field(default_factory=list)  # skipped now, not on the last tick

    def cursor_after(self, launched: Iterable[Batch]) -> LandingCursor:
        """The cursor once ``launched`` are requested: unchanged days, those batches, and for
        every day changed but not launched what the cursor knew of it before (its previous
        fingerprint, or that it is owed), so that the next tick offers it again, and with when
        it was first seen so (``pending``)."""
        launched = list(launched)
        gone = {c.landed.key for batch in launched for c in batch.changes}
        fps = dict(self.unchanged)
        fps.update({k: fp for k, fp in self.kept.items() if k not in gone})
        for batch in launched:
            fps.update({c.landed.key: c.landed.fingerprint for c in batch.changes})
        pending = {k: v for k, v in self.pending.items() if k not in gone}
        return LandingCursor(fps, pending, self.owed - gone, set(self.skipped))


def _odd_folders(paths: Paths, dataset: str, skipped: dict[str, str]) -> None:
    try:
        odd = paths.odd_landing_folders(dataset)
    except OSError:  # the dataset's folder cannot be listed: the scan says so
        return
    for name in odd:
        skipped[f"{dataset}/{name}"] = "not a day folder (dt=YYYY-MM-DD): never read"


def _folders_only(paths: Paths, dataset: str, day: dt.date, skipped: dict[str, str]) -> None:
    """A day of folders only (hour=10/) is never read: said."""
    folder = Path(paths.landing_dir(dataset, day.isoformat()))
    try:
        subs = sorted(c.name for c in folder.iterdir() if not c.name.startswith(".") and c.is_dir())
    except OSError as e:
        skipped[f"{dataset}/{day}"] = f"cannot be read ({oserror_text(e)}): left out"
        return
    if subs:
        skipped[f"{dataset}/{day}"] = (
            f"holds folders only ({', '.join(subs[:3])}): a day's files lie in its own folder, "
            "never below it"
        )


def plan_landing(
    paths: Paths,
    raw_cursor: str | None,
    is_partition: Callable[[str], bool] = lambda day: True,
    datasets: Sequence[str] = DATASETS,
    settle_seconds: float = 0,
    now: float | None = None,
    hash_budget_s: float = HASH_BUDGET_S,
) -> LandingPlan:
    """Compare the landing folders with the cursor (``raw_cursor``: Dagster's, a reference to
    a state file under the home, or a whole state inline) and group what changed, and has
    settled (``settled``, by the sensor's clock; ``now`` defaults to it), into ingest runs."""
    now = time.time() if now is None else now
    cursor, problem = load_cursor(raw_cursor, state_dir(paths))
    errors: dict[str, str] = {}
    scan = scan_landing(paths, datasets, errors)
    marked = {landed.dataset for landed in scan.values() if landed.marker_ns is not None}
    plan = LandingPlan([], {}, {}, problem)
    changes: list[Change] = []
    known_fps = cursor.fingerprints if cursor is not None else {}
    owed = cursor.owed if cursor is not None else set()

    def change(landed: LandedDay, reason: str) -> None:
        key = landed.key
        if key in known_fps:
            plan.kept[key] = known_fps[key]
        else:
            plan.owed.add(key)
        seen = cursor.pending.get(key) if cursor is not None else None
        if seen is None or seen[0] != landed.fingerprint:
            seen = (landed.fingerprint, now)
        plan.pending[key] = seen
        why = settled(landed, settle_seconds, now, seen, landed.dataset in marked)
        if why is None:
            changes.append(Change(landed, reason, lake_run(paths, landed.dataset, landed.day)))
        else:
            plan.waiting[key] = why

    def lake_reason(landed: LandedDay) -> str:
        return "files changed since the lake read them" if ingested(paths, landed) else "new day"

    skipped = plan.skipped
    horizon = dt.datetime.fromtimestamp(now, dt.UTC).date() + dt.timedelta(days=MAX_DAYS_AHEAD)
    for dataset in datasets:
        if f"{dataset}/" in errors:  # its folder cannot be listed: said once, below
            continue
        _odd_folders(paths, dataset, skipped)
        try:
            days = paths.landed_days(dataset, errors={})
        except OSError:  # unreadable since the scan listed it: the next tick says so
            continue
        for day in days:  # a day of folders only is never read: said
            key = f"{dataset}/{day}"
            if key not in scan and key not in errors:
                _folders_only(paths, dataset, day, skipped)
    skipped.update(errors)
    # an unreadable day keeps what the cursor knew of it: when it can be read again, its files
    # are compared with that, not with the lineage (ingestion may have been owed meanwhile)
    plan.kept.update({k: known_fps[k] for k in errors if k in known_fps})
    plan.owed.update(k for k in errors if k in owed)
    deadline, hashed = time.monotonic() + hash_budget_s, 0
    for key, landed in scan.items():
        if dt.date.fromisoformat(landed.day) > horizon:
            skipped[key] = (
                f"more than {MAX_DAYS_AHEAD} days after today (UTC): not ingested (a typo, or "
                "a producer's clock?)"
            )
            continue
        if not is_partition(landed.day):
            skipped[key] = (
                "not a daily partition of the loaded definitions (before the first day, or "
                "past the last day of a history's partitions: reload the code location, e.g. "
                "Deployment > Reload in the UI, to extend them; see recassets.paths."
                "partition_window)"
            )
            continue
        known = known_fps.get(key)
        if known == landed.fingerprint:
            plan.unchanged[key] = landed.fingerprint
        elif known is not None:
            change(landed, "files changed")
        elif key in owed:  # found different from the lake on an earlier tick: not hashed again
            change(landed, lake_reason(landed))
        elif hashed and time.monotonic() > deadline:  # at least one a tick: progress
            plan.waiting[key] = (
                "its files are still to be compared with the lake's lineage manifest (sha256): "
                "on a next tick"
            )
        else:
            # A day the cursor does not know may still be in the lake (ingested by the CLI, or
            # a cursor lost): its lineage decides, by content. A day the lake read other files
            # of is "files changed since the lake read them", not "new day".
            hashed += 1
            try:
                matches = lineage_matches(paths, landed)
            except OSError as e:
                skipped[key] = f"cannot be read ({oserror_text(e)}): left out until it can be"
                continue
            if matches:
                plan.unchanged[key] = landed.fingerprint
            else:
                change(landed, lake_reason(landed))
    previous = cursor.skipped if cursor is not None else set()
    plan.new_skipped = [k for k in skipped if k not in previous]
    plan.batches = _batches(changes)
    return plan


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


def consumed_partitions(paths: Paths, kind: str, *, base: bool = False) -> list[str] | None:
    """The partitions the latest checkpoint of ``kind`` consumed; None when there is none.
    ``base``: those of the checkpoint the next training continues instead
    (``policy.training_base``: the served one while a learned model serves), whose missing days
    are what that training takes. The retrain sensor counts pending days so: the days of a
    refused candidate stay pending until a candidate with them is promoted. The latest, for
    the loop's stopwatch: how soon some checkpoint trained on a day, refused or not.

    Cached by (file, mtime): checkpoints are versioned files, never rewritten, and the sensor
    asks every 30 s, so each is loaded (with torch, weights only) once per process.
    """
    from recassets.training.policy import latest_checkpoint, training_base

    path = (training_base if base else latest_checkpoint)(paths, kind)
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


def check_run_settings(environ: Mapping[str, str]) -> None:
    """Parse now the settings runs read later, naming the variable of a bad one: the code
    location checks them (``resources.check_settings``), and so does the CLI before it launches
    a run (``RECASSETS_VOLUME_BAND=abc`` reached the run, after the JVM had started). Every
    one of them, each with the parser its run uses: ``recassets.run_settings.check``."""
    from recassets.run_settings import check

    check(environ)


__all__ = [
    "CURSOR_VERSION",
    "DEFAULT_SETTLE_S",
    "DEFAULT_SETTLE_TIMEOUT_S",
    "HASH_BUDGET_S",
    "SETTLE_ENV",
    "SETTLE_TIMEOUT_ENV",
    "SUCCESS_MARKER",
    "Batch",
    "Change",
    "LandedDay",
    "LandingCursor",
    "LandingNotSettledError",
    "LandingPlan",
    "check_run_settings",
    "consumed_partitions",
    "env_int",
    "ingested",
    "lake_run",
    "landed_day",
    "lineage_matches",
    "pending_training_days",
    "plan_landing",
    "retrain_run_key",
    "scan_landing",
    "settled",
    "wait_until_settled",
]
