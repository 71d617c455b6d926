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

    Only *settled* days are launched (``settled``): a producer that writes a file in place
    (without the dot-name-and-rename convention) must not get it ingested half-written, then
    again. A day folder holding a ``_SUCCESS`` marker (or any folder of a dataset whose producer
    writes markers) is settled when its marker is at least as new as each of its files: the
    marker decides. Otherwise a day is settled once its files have not changed for
    ``settle_seconds``: their newest mtime is that old by this machine's clock, or the sensor
    saw the same fingerprint that long ago (the cursor's ``pending``: this covers a file
    server whose clock runs ahead). A day not settled yet is left out of the batches and of
    the cursor's fingerprints, and comes back on a later tick.

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
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from recassets.paths import DATASETS, MAX_DAYS_AHEAD, Paths

CURSOR_VERSION = 1
# RECASSETS_LANDING_SETTLE_SECONDS: how long a day's files must be unchanged before they are
# ingested, by the landing sensor (which leaves the day out of its tick meanwhile) and by a run
# launched by hand (which waits, ``wait_until_settled``). 5 s: a producer writing in place
# appends at least that often; files a generator or an upload finished earlier are older than
# that by the time anything looks. 0 turns settling off.
SETTLE_ENV = "RECASSETS_LANDING_SETTLE_SECONDS"
DEFAULT_SETTLE_S = 5
# RECASSETS_LANDING_SETTLE_TIMEOUT_SECONDS: how long a run launched by hand waits for them.
SETTLE_TIMEOUT_ENV = "RECASSETS_LANDING_SETTLE_TIMEOUT_SECONDS"
DEFAULT_SETTLE_TIMEOUT_S = 300
TABLE_OF = {"events": "raw_events", "users": "users", "items": "items"}
# The producer's "this day folder is complete" file (Hadoop's and Spark's convention); its name
# starts with "_", so ingestion never reads it as data.
SUCCESS_MARKER = "_SUCCESS"


# --- landing ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LandedDay:
    """One dataset's folder of one day, as the sensor sees it."""

    dataset: str
    day: str
    files: tuple[tuple[str, int, int], ...]  # (name, size, mtime_ns), sorted by name
    marker_ns: int | None = None  # mtime of the folder's _SUCCESS marker, if it has one

    @property
    def newest_ns(self) -> int:
        return max((m for _, _, m in self.files), default=0)

    @property
    def key(self) -> str:
        return f"{self.dataset}/{self.day}"

    @property
    def fingerprint(self) -> str:
        text = "\n".join(f"{n}\t{s}\t{m}" for n, s, m in self.files)
        # a file name that is no UTF-8 (a Latin-1 "café") decodes to surrogates: kept as its
        # bytes, not raised (the raise failed every tick, and every day waited behind it)
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _ingestible(p: Path) -> bool:
    # Mirrors recassets.ingest.list_landing_files: producers write ".name.tmp" and rename.
    return p.is_file() and not p.name.startswith((".", "_"))


def landed_day(paths: Paths, dataset: str, day: str) -> LandedDay:
    folder = Path(paths.landing_dir(dataset, day))
    files = []
    marker_ns = None
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            if _ingestible(p):
                st = p.stat()
                files.append((p.name, st.st_size, st.st_mtime_ns))
            elif p.name == SUCCESS_MARKER and p.is_file():
                marker_ns = p.stat().st_mtime_ns
    return LandedDay(dataset, day, tuple(files), marker_ns)


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


def _manifest(paths: Paths, landed: LandedDay) -> Path:
    return Path(paths.lineage) / TABLE_OF[landed.dataset] / f"dt={landed.day}.json"


def ingested(paths: Paths, landed: LandedDay) -> bool:
    """Whether the lake holds the day at all (its lineage manifest exists), these files or
    others."""
    return _manifest(paths, landed).is_file()


def lineage_matches(paths: Paths, landed: LandedDay) -> bool:
    """Whether the table partition's lineage manifest records exactly these files (names and
    sizes) and was written after each of them, i.e. the lake already holds this landing."""
    manifest = _manifest(paths, landed)
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
    JSON with a version, so a cursor from another release is recognized, not misread.

    ``pending``: days seen changed but not settled yet, ``dataset/day`` -> (fingerprint, when
    the sensor first saw it, epoch seconds): the clock ``settled`` measures quiet time with when
    the files' own mtimes cannot be trusted. Optional in the JSON (older cursors lack it)."""

    fingerprints: dict[str, str] = field(default_factory=dict)
    pending: dict[str, tuple[str, float]] = field(default_factory=dict)

    def to_json(self) -> str:
        data: dict = {
            "version": CURSOR_VERSION,
            "fingerprints": dict(sorted(self.fingerprints.items())),
        }
        if self.pending:
            data["pending"] = {k: [fp, seen] for k, (fp, seen) in sorted(self.pending.items())}
        return json.dumps(data, separators=(",", ":"))

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
        pending: dict[str, tuple[str, float]] = {}
        raw_pending = data.get("pending", {})
        if isinstance(raw_pending, dict):  # anything else: forgotten, days wait anew
            for k, v in raw_pending.items():
                if (
                    isinstance(v, list)
                    and len(v) == 2
                    and isinstance(v[0], str)
                    and isinstance(v[1], int | float)
                ):
                    pending[k] = (v[0], float(v[1]))
        return cls(dict(fps), pending), None


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
        return "; ".join(f"{c.landed.key} ({c.reason})" for c in self.changes)


@dataclass
class LandingPlan:
    batches: list[Batch]
    unchanged: dict[str, str]  # dataset/day -> fingerprint, nothing to do
    skipped: dict[str, str]  # dataset/day -> why it is not launched (e.g. not a partition)
    problem: str | None = None  # a cursor that could not be used
    # dataset/day -> why it is not settled yet (``settled``), and what the cursor keeps of it
    waiting: dict[str, str] = field(default_factory=dict)
    pending: dict[str, tuple[str, float]] = field(default_factory=dict)

    def cursor_after(self, launched: Iterable[Batch]) -> LandingCursor:
        """The cursor once ``launched`` are requested: unchanged days plus those batches.
        Batches not launched this tick stay out, so the next tick offers them again; days
        still settling stay out too, with when they were first seen so (``pending``)."""
        fps = dict(self.unchanged)
        for batch in launched:
            fps.update({c.landed.key: c.landed.fingerprint for c in batch.changes})
        return LandingCursor(fps, dict(self.pending))


def settled(
    landed: LandedDay,
    settle_seconds: float,
    now: float,
    seen: tuple[str, float] | None,
    uses_marker: bool,
) -> str | None:
    """None when the day may be ingested, else why it waits.

    * Marker (``uses_marker``: the folder has a ``_SUCCESS``, or its dataset's producer writes
      them): the marker must exist and be at least as new as every file; a file written after
      it (a late file still being written) waits for the producer to write the marker again.
    * Otherwise the files must have been quiet for ``settle_seconds``: every mtime that old
      (a write in place moves the mtime), or the same fingerprint seen by the sensor that long
      ago (``seen``: fingerprint, epoch seconds), for a clock that disagrees with the files'.
    """
    if uses_marker:
        if landed.marker_ns is None:
            return f"waiting for its {SUCCESS_MARKER} marker"
        if landed.marker_ns < landed.newest_ns:
            return f"a file is newer than its {SUCCESS_MARKER} marker"
        return None
    if settle_seconds <= 0 or landed.newest_ns <= (now - settle_seconds) * 1e9:
        return None
    if seen is not None and seen[0] == landed.fingerprint and now - seen[1] >= settle_seconds:
        return None
    return f"files changed less than {settle_seconds:g} s ago (still being written?)"


def plan_landing(
    paths: Paths,
    raw_cursor: str | None,
    is_partition: Callable[[str], bool] = lambda day: True,
    datasets: Sequence[str] = DATASETS,
    settle_seconds: float = 0,
    now: float | None = None,
) -> LandingPlan:
    """Compare the landing folders with the cursor and group what changed, and has settled
    (``settled``; ``now`` defaults to the clock), into ingest runs."""
    now = time.time() if now is None else now
    cursor, problem = LandingCursor.from_json(raw_cursor)
    scan = scan_landing(paths, datasets)
    marked = {landed.dataset for landed in scan.values() if landed.marker_ns is not None}
    changes: list[Change] = []
    unchanged: dict[str, str] = {}
    skipped: dict[str, str] = {}
    waiting: dict[str, str] = {}
    pending: dict[str, tuple[str, float]] = {}

    def change(landed: LandedDay, reason: str) -> None:
        seen = cursor.pending.get(landed.key) if cursor is not None else None
        why = settled(landed, settle_seconds, now, seen, landed.dataset in marked)
        if why is None:
            changes.append(Change(landed, reason, lake_run(paths, landed.dataset, landed.day)))
            return
        waiting[landed.key] = why
        same = seen is not None and seen[0] == landed.fingerprint
        pending[landed.key] = seen if same and seen is not None else (landed.fingerprint, now)

    horizon = dt.datetime.fromtimestamp(now, dt.UTC).date() + dt.timedelta(days=MAX_DAYS_AHEAD)
    for dataset in datasets:
        for name in paths.odd_landing_folders(dataset):
            skipped[f"{dataset}/{name}"] = "not a day folder (dt=YYYY-MM-DD): never read"
        for day in paths.landed_days(dataset):  # a day of folders only (hour=10/): not read
            folder = Path(paths.landing_dir(dataset, day.isoformat()))
            subs = [] if f"{dataset}/{day}" in scan else sorted(
                c.name for c in folder.iterdir() if c.is_dir() and not c.name.startswith(".")
            )  # fmt: skip
            if subs:
                skipped[f"{dataset}/{day}"] = (
                    f"holds folders only ({', '.join(subs[:3])}): a day's files lie in its "
                    "own folder, never below it"
                )
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
        # A day the cursor does not know may still be in the lake (ingested by the CLI while
        # the daemon ran): its lineage decides, and a day the lake read other files of is
        # "files changed", not "new day" (the sensor's own word for a rewritten day was wrong)
        known = cursor.fingerprints.get(key) if cursor is not None else None
        if known == landed.fingerprint or (known is None and lineage_matches(paths, landed)):
            unchanged[key] = landed.fingerprint
        elif known is not None:
            change(landed, "files changed")
        else:
            change(landed, "files changed since the lake read them"
                   if ingested(paths, landed) else "new day")  # fmt: skip
    return LandingPlan(_batches(changes), unchanged, skipped, problem, waiting, pending)


class LandingNotSettledError(RuntimeError):
    """Landing files still changing when a run launched by hand stopped waiting for them."""


def wait_until_settled(
    paths: Paths,
    datasets: Sequence[str],
    days: Iterable[str],
    settle_seconds: float,
    timeout_s: float,
    *,
    progress: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Wait until every landing folder of ``datasets`` x ``days`` has settled (``settled``,
    the sensor's rule), and return the seconds waited; ``LandingNotSettledError`` naming each
    folder still changing, and why, after ``timeout_s``.

    For runs the sensor did not launch (the UI's materialize dialog, ``recassets
    materialize``): the sensor waits by leaving a day out of its tick; a run asked for by hand
    reads the folders when it starts, so it waits here instead, before anything is read. The
    quiet time the wait itself observes counts as the sensor's does (a fingerprint unchanged for
    ``settle_seconds``), for a file server whose clock runs ahead."""
    if settle_seconds <= 0:
        return 0.0
    wanted, start = set(days), clock()
    seen: dict[str, tuple[str, float]] = {}
    while True:
        now = clock()
        scan = {k: v for k, v in scan_landing(paths, datasets).items() if v.day in wanted}
        marked = {landed.dataset for landed in scan.values() if landed.marker_ns is not None}
        waiting = {}
        for key, landed in scan.items():
            if key not in seen or seen[key][0] != landed.fingerprint:
                seen[key] = (landed.fingerprint, now)
            why = settled(landed, settle_seconds, now, seen[key], landed.dataset in marked)
            if why is not None:
                waiting[key] = why
        if not waiting:
            return now - start
        named = "; ".join(
            f"{paths.landing_dir(*key.split('/'))}: {why}" for key, why in sorted(waiting.items())
        )
        if now - start >= timeout_s:
            raise LandingNotSettledError(
                f"{len(waiting)} landing folder(s) still changing after {timeout_s:g} s: {named}"
            )
        if progress is not None:
            progress(f"waiting for landing files to settle ({now - start:.0f} s): {named[:500]}")
        sleep(min(1.0, settle_seconds / 5))


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


def env_int(name: str, default: int, minimum: int = 0, env: Mapping[str, str] | None = None) -> int:
    """An integer setting from the environment (or ``env``), with a message naming it when it
    is wrong."""
    raw = (os.environ if env is None else env).get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}={raw!r}: expected an integer") from None
    if value < minimum:
        raise ValueError(f"{name}={value}: expected at least {minimum}")
    return value


def check_run_settings(environ: Mapping[str, str]) -> None:
    """Parse now the settings runs read later, naming the variable of a bad one: the code
    location checks them (``resources.check_settings``), and so does the CLI before it launches
    a run (``RECASSETS_VOLUME_BAND=abc`` reached the run, after the JVM had started)."""
    from recassets.quality.checks import parse_volume_band

    parse_volume_band(environ.get("RECASSETS_VOLUME_BAND"))
    env_int(SETTLE_ENV, DEFAULT_SETTLE_S, env=environ)
    env_int(SETTLE_TIMEOUT_ENV, DEFAULT_SETTLE_TIMEOUT_S, env=environ)
