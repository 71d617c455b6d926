"""Readers of what is recorded outside the manifests: the Delta logs and the Dagster instance.

Both are read, never written, and without the engines that wrote them: the Delta log through
delta-rs (no JVM), the Dagster instance's SQLite files through ``sqlite3`` opened read-only
(the library never imports Dagster; ``tests/unit/test_layering.py``). What is missing (no
instance, a table without a commit for that day) comes back as ``None`` or empty, and the
caller says so in the lineage it prints.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Commit:
    """One Delta commit: its version, time and the ``userMetadata`` the writer tagged it with
    (``run_id``, ``table``, ``day`` or ``days``, ``recipe``, ``features_day``, ``code_version``)."""

    version: int
    timestamp_ms: int
    operation: str
    meta: dict[str, Any] = field(default_factory=dict)
    restored: int | None = None  # a RESTORE commit: the version whose content it brought back

    @property
    def time(self) -> str:
        return dt.datetime.fromtimestamp(self.timestamp_ms / 1000, dt.UTC).isoformat(
            timespec="seconds"
        )

    def covers(self, day: str, *, ranges: bool) -> bool:
        """Whether this commit wrote partition ``day``. ``ranges``: the feature tables' range
        path records ``days`` as ``[first, last]`` (``recassets.features.backfill``); every
        other writer records each day."""
        if self.meta.get("day") == day:
            return True
        days = self.meta.get("days")
        if not isinstance(days, list):
            return False
        if ranges and len(days) == 2 and all(isinstance(d, str) for d in days):
            return days[0] <= day <= days[1]
        return day in days

    def days(self, *, ranges: bool) -> list[str]:
        if isinstance(self.meta.get("day"), str):
            return [self.meta["day"]]
        days = [d for d in self.meta.get("days") or [] if isinstance(d, str)]
        if ranges and len(days) == 2:
            first, last = dt.date.fromisoformat(days[0]), dt.date.fromisoformat(days[1])
            return [(first + dt.timedelta(n)).isoformat() for n in range((last - first).days + 1)]
        return days


class DeltaLog:
    """The Delta logs a lineage walk reads, each read once per walk (a new walk sees new
    commits)."""

    def __init__(self) -> None:
        self._history: dict[str, tuple[Commit, ...]] = {}
        self._partitions: dict[tuple[str, int], tuple[str, ...]] = {}

    def history(self, table_path: str) -> tuple[Commit, ...]:
        """The table's commits, oldest first (empty when there is no Delta table there)."""
        if table_path not in self._history:
            self._history[table_path] = _read_history(table_path)
        return self._history[table_path]

    def writer(
        self, table_path: str, day: str, at_version: int | None, *, ranges: bool
    ) -> Commit | None:
        """The newest commit at or before ``at_version`` (None: the latest) that wrote ``day``."""
        found = None
        for c in self.history(table_path):
            if at_version is not None and c.version > at_version:
                break
            if c.restored is not None:  # the ingest's all-or-none undo (recassets.ingest.writes)
                found = self.writer(table_path, day, c.restored, ranges=ranges)
            elif c.covers(day, ranges=ranges):
                found = c
        return found

    def commit(self, table_path: str, version: int) -> Commit | None:
        return next((c for c in self.history(table_path) if c.version == version), None)

    def not_held(self, table_path: str, version: int | None, *, exact: bool = False) -> str:
        """Why the log has no commit sought at or before ``version`` (``exact``: the table has
        no such version): none was made, or log cleanup (``delta.logRetentionDuration``)
        removed the earlier commits, of which the log can then say nothing (it said "none in
        the Delta log" of a commit removed: probe, 2026-12-06)."""
        commits = self.history(table_path)
        first = commits[0].version if commits else 0
        removed = (f"its commits before version {first} were removed (log cleanup, "
                   "delta.logRetentionDuration)")  # fmt: skip
        if exact:
            if version is not None and 0 <= version < first:
                return f"version {version} is not in its Delta log: {removed}"
            return f"has no Delta version {version}"
        at = f" at or before version {version}" if version is not None else ""
        return f"not in the Delta log{at}: {removed}" if first > 0 else f"none in the Delta log{at}"

    def version_at(self, table_path: str, timestamp_ms: int) -> int | None:
        """The table's version as of ``timestamp_ms``: what a reader starting then saw."""
        found = None
        for c in self.history(table_path):
            if c.timestamp_ms <= timestamp_ms:
                found = c.version
        return found

    def partitions(self, table_path: str, version: int) -> tuple[str, ...]:
        """The ``dt`` partitions the table holds at ``version``, sorted."""
        key = (table_path, version)
        if key not in self._partitions:
            from deltalake.exceptions import TableNotFoundError

            from recassets.lake import open_delta

            try:
                parts = open_delta(table_path, version=version).partitions()
            except TableNotFoundError:  # no table, or a version log cleanup removed
                parts = []
            except ValueError as e:  # a damaged log: said, never read as "no partition"
                # (a trace went on without the table's branch and --verify passed)
                raise RecordError(str(e)) from None
            self._partitions[key] = tuple(sorted({str(p["dt"]) for p in parts if p.get("dt")}))
        return self._partitions[key]

    def manifest_problem(
        self, table_path: str, m: dict[str, Any] | None, day: str, c: Commit
    ) -> tuple[str, str] | None:
        """Why an ingestion's lineage manifest of ``day`` cannot vouch for the partition that
        commit ``c`` wrote, as (verify status, what): ``missing`` (no manifest), ``changed`` (it
        names a version that did not write the day, or calls the day empty while ``c`` holds rows
        of it), ``superseded`` (a later ingestion of the day rewrote it: the files of ``c`` are
        not on record any more, by design), ``stale`` (it describes an earlier ingestion of the
        day: the run that made ``c`` died before writing it); None when it describes ``c``. Before, all three read
        as "not recorded", and ``--verify`` said every file on the path was ok."""
        if m is None:
            return "missing", "its lineage manifest is missing"
        recorded = m.get("delta_version")
        if recorded != c.version:
            other = self.commit(table_path, recorded) if type(recorded) is int else None
            if other is not None and other.covers(day, ranges=False) and other.version < c.version:
                # the run that made c died between its commits and its manifest: no forgery
                return "stale", f"its manifest describes version {recorded}, an earlier ingestion"
            if other is not None and other.covers(day, ranges=False):  # a later one
                return (
                    "superseded",
                    f"re-ingested at version {recorded}, which its manifest describes",
                )
            return "changed", f"its manifest names version {recorded!r}, which did not write {day}"
        if m.get("empty") and day in self.partitions(table_path, c.version):
            return (
                "changed",
                f"its manifest calls {day} empty, and version {c.version} holds rows of it",
            )
        digests = c.meta.get("manifests")  # what the commit recorded (since 2026-12-06)
        wanted = digests.get(day) if isinstance(digests, dict) else None
        if wanted is not None:
            from recassets.ingest.lineage import manifest_digest

            if manifest_digest(m) != wanted:
                return "changed", (
                    f"its files or counts are not what version {c.version}'s commit recorded "
                    f"(digest {manifest_digest(m)}, recorded {str(wanted)[:16]})"
                )
            if m.get("digest_version") is not None:  # digest 2 on: the run and quarantine too
                return self._run_problem(table_path, m, c)
        return None

    def manifest_notes(self, m: dict[str, Any], c: Commit) -> list[str]:
        """What the trace says of a manifest checked as before digest version 2 (2026-12-07):
        its run id, quarantine version and code version were not checked then."""
        if isinstance(c.meta.get("manifests"), dict) and m.get("digest_version") is None:
            return ["a check of its run_id, quarantine_version and code_version: recorded "
                    "before that check (manifest digest version 2, 2026-12-07)"]  # fmt: skip
        return []

    def _run_problem(self, table_path: str, m: dict[str, Any], c: Commit) -> tuple[str, str] | None:
        """A version-2 manifest's run id against its commit's, and its quarantine version
        against the quarantine table's log: the commit of that run with the same
        ``userMetadata`` (``ingest.writes._commit_of``), or, when the run committed none there
        (an empty quarantine replacing an empty one), the latest version before ``c``. Both are
        printed and were outside every digest: a forged one passed (review, 2026-12-07)."""
        if m.get("run_id") != c.meta.get("run_id"):
            return "changed", (f"its run_id {str(m.get('run_id'))[:40]!r} is not the run of "
                               f"version {c.version}'s commit ({c.meta.get('run_id')})")  # fmt: skip
        quarantine = sibling_table(table_path, "quarantine")
        commits = self.history(quarantine)
        if not commits:
            return None  # no quarantine table here to say: the node shows it as written
        same = [q.version for q in commits if q.meta == c.meta]
        before = [q.version for q in commits if q.timestamp_ms <= c.timestamp_ms]
        expected = max(same) if same else (max(before) if before else None)
        if expected is not None and m.get("quarantine_version") != expected:
            return "changed", (f"its quarantine_version {str(m.get('quarantine_version'))[:20]} "
                               f"is not the quarantine commit of its run ({expected})")  # fmt: skip
        return None


def sibling_table(table_path: str, name: str) -> str:
    """The lake's table ``name`` beside ``table_path``, joined as ``Paths.table`` joins (a
    string with ``/``): ``Path`` collapses a URL's ``//``, and ``s3a://bkt/lake/raw_events``
    gave ``s3a:/bkt/lake/quarantine``, a path no reader opens (review, 2026-12-07)."""
    parent = table_path.rstrip("/").rsplit("/", 1)[0]
    return f"{parent}/{name}"


def _read_history(table_path: str) -> tuple[Commit, ...]:
    from deltalake.exceptions import TableNotFoundError

    from recassets.lake import open_delta

    try:
        raw = open_delta(table_path).history()
    except TableNotFoundError:
        return ()
    commits = []
    for entry in raw:
        meta: Any = entry.get("userMetadata")
        try:
            meta = json.loads(meta) if isinstance(meta, str) else (meta or {})
        except ValueError:
            meta = {"raw": meta}
        operation = str(entry.get("operation") or "")
        params = entry.get("operationParameters") or {}
        raw_version = str(params.get("version")) if isinstance(params, dict) else ""
        # restored by timestamp: no version recorded
        restored = (
            int(raw_version)
            if operation == "RESTORE" and raw_version.isascii() and raw_version.isdigit()
            else None
        )
        commits.append(
            Commit(
                version=int(entry["version"]),
                timestamp_ms=int(entry.get("timestamp") or 0),
                operation=operation,
                meta=meta if isinstance(meta, dict) else {"raw": meta},
                restored=restored,
            )
        )
    return tuple(sorted(commits, key=lambda c: c.version))


# --- the Dagster instance -------------------------------------------------------------------


@dataclass
class RunRecord:
    run_id: str
    status: str | None
    launched_by: str | None
    tags: dict[str, str]


# Tags that say what started a run: ours (assets/launch.py), then Dagster's own.
_TRIGGER_TAGS = (
    ("recassets/launched_by", "{}"),
    ("dagster/sensor_name", "sensor {}"),
    ("dagster/schedule_name", "schedule {}"),
    ("dagster/backfill", "backfill {}"),
    ("dagster/auto_materialize", "automation"),
    ("dagster/from_automation_condition", "automation"),
    ("dagster/parent_run_id", "retry of run {}"),
)


def _connect(path: Path) -> sqlite3.Connection | None:
    if not path.is_file():
        return None
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


class DagsterRecords:
    """The runs and asset-check results an embedded Dagster instance keeps under
    ``DAGSTER_HOME/history`` (SQLite run storage ``runs.db``, event-log index ``runs/index.db``:
    Dagster 1.13's default layout, which ``recassets init`` configures)."""

    def __init__(self, dagster_home: str) -> None:
        self.home = Path(dagster_home)
        self._runs = _connect(self.home / "history" / "runs.db")
        self._index = _connect(self.home / "history" / "runs" / "index.db")
        self._run_cache: dict[str, RunRecord | None] = {}

    def close(self) -> None:
        for conn in (self._runs, self._index):
            if conn is not None:
                conn.close()

    @property
    def available(self) -> bool:
        return self._runs is not None

    def lost(self) -> str:
        """Said once for the whole trace when the run storage is missing (each node says it
        too): the audit page had no banner of its own for it."""
        return (f"no Dagster run storage at {self.home / 'history' / 'runs.db'}: the runs that "
                "made these and their asset checks cannot be shown (the instance lost or reset, "
                "or kept elsewhere: Postgres); the records and files below are traced all the "
                "same")  # fmt: skip

    def no_run(self, run_id: str | None, what: str) -> str:
        """What the lineage says of a run it cannot show. Without the instance's run storage
        it said "no run id recorded" (the ids of runs that built a bento or model are read from
        the instance) and "no Dagster instance has no record" (probe, 2026-12-06)."""
        run = f"run {run_id} and what launched it" if run_id else f"the run that {what}"
        if not self.available:
            return (f"{run}: no Dagster run storage at {self.home / 'history' / 'runs.db'} to "
                    "look it up (the instance lost or reset, or kept elsewhere: Postgres)")  # fmt: skip
        if run_id:
            return f"{run} (the Dagster instance has no record of it: reset since?)"
        return f"{run} (no run id in its record, and no materialization of it in the instance)"

    def run(self, run_id: str) -> RunRecord | None:
        if run_id not in self._run_cache:
            self._run_cache[run_id] = self._read_run(run_id)
        return self._run_cache[run_id]

    def _read_run(self, run_id: str) -> RunRecord | None:
        if self._runs is None or not run_id:
            return None
        try:
            row = self._runs.execute(
                "SELECT status FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone()
            tags = dict(
                self._runs.execute("SELECT key, value FROM run_tags WHERE run_id = ?", (run_id,))
            )
        except sqlite3.Error:
            return None
        if row is None:
            return None
        launched = next(
            (fmt.format(tags[k]) for k, fmt in _TRIGGER_TAGS if tags.get(k)), None
        )  # fmt: skip
        return RunRecord(run_id, row[0], launched, tags)

    def materialization_run(
        self, asset_key: str, label: str | None, value: str, partition: str | None = None
    ) -> str | None:
        """The run of the first materialization of ``asset_key`` whose metadata entry
        ``label`` is ``value`` (a checkpoint path, an index folder, a bento tag; compared
        case-insensitively): the run that wrote it, since a later run that found it up to date
        names it again; or, with ``label`` None, the newest of partition ``partition``."""
        if self._index is None:
            return None
        key = json.dumps(asset_key.split("/"))
        try:
            rows = self._index.execute(
                "SELECT run_id, event FROM event_logs WHERE dagster_event_type = "
                "'ASSET_MATERIALIZATION' AND asset_key = ? AND (? IS NULL OR partition = ?) "
                "ORDER BY id DESC",
                (key, partition, partition),
            ).fetchall()
        except sqlite3.Error:
            return None
        if label is None:
            return rows[0][0] if rows else None
        for run_id, event in reversed(rows):  # oldest first
            if str(_entry(event, label)).lower() == value.lower():
                return run_id
        return None

    def checks(
        self, asset_key: str, partition: str | None, run_id: str | None
    ) -> list[dict[str, Any]]:
        """The check results recorded for ``asset_key`` (``lake/raw_events``) on ``partition``:
        those of ``run_id`` when it ran any, else the newest of each check."""
        if self._index is None:
            return []
        key = json.dumps(asset_key.split("/"))
        try:
            rows = self._index.execute(
                "SELECT check_name, partition, run_id, execution_status, evaluation_event "
                "FROM asset_check_executions WHERE asset_key = ? AND execution_status != "
                "'PLANNED' AND (partition IS ? OR partition IS NULL) ORDER BY id",
                (key, partition),
            ).fetchall()
        except sqlite3.Error:
            return []
        of_run = [r for r in rows if run_id and r[2] == run_id]
        newest: dict[str, tuple] = {}
        for r in of_run or rows:
            newest[r[0]] = r
        return [_check(*r) for r in newest.values()]


def _check(name: str, partition: str | None, run_id: str, status: str, event: str) -> dict:
    data: dict[str, Any] = {}
    try:
        data = json.loads(event)["dagster_event"]["event_specific_data"]
    except (ValueError, KeyError, TypeError):
        pass
    severity = (data.get("severity") or {}).get("__enum__", "").rpartition(".")[2] or None
    figures = {}
    for k, v in (data.get("metadata") or {}).items():
        if isinstance(v, dict):
            value = next((v[f] for f in ("value", "data", "text") if f in v), None)
            if value is not None and not isinstance(value, dict | list):
                figures[k] = value
    passed = data.get("success")
    verdict = "passed" if passed is True else "failed" if passed is False else status.lower()
    return {
        "name": name,
        "status": verdict,
        "severity": severity,
        "figures": figures,
        "run_id": run_id,
        "partition": partition,
        "source": "dagster",
    }


def _entry(event: str, label: str) -> Any:
    """The value of the metadata entry ``label`` of a serialized materialization event."""
    try:
        mat = json.loads(event)["dagster_event"]["event_specific_data"]["materialization"]
    except (ValueError, KeyError, TypeError):
        return None
    for entry in mat.get("metadata_entries") or []:
        if entry.get("label") == label:
            data = entry.get("entry_data") or {}
            return next((data[f] for f in ("path", "text", "value") if f in data), None)
    return None


def read_version(read: Mapping[str, Any], table: str) -> int | None:
    """The Delta version of ``table`` a commit's ``userMetadata["read"]`` recorded, or None."""
    value = read.get(table)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class RecordError(ValueError):
    """A lineage record (a manifest) that is not the JSON object it should be: named, since
    an auditor must know which record to distrust."""


@contextlib.contextmanager
def shaped() -> Generator[None, None, None]:
    """Turn a record edited into another shape (``inputs: null``, a number written as a
    word) into one line, not a traceback (``RECASSETS_DEBUG=1`` keeps the traceback)."""
    try:
        yield
    except (AttributeError, TypeError) as e:
        raise RecordError(
            "a lineage record on the path is not in the shape recassets writes "
            f"({type(e).__name__}: {e})"
        ) from e


# The fields the trace reads of each kind of record, and the type recassets writes for each
# (null passes: the field is then not recorded); a list's entries as ``{field: type}``.
Kind = type | tuple[type, ...]
Shape = Mapping[str, "Kind | Mapping[str, Kind]"]
INGEST_SHAPE: Shape = {"delta_version": int, "inputs": {"path": str, "sha256": str, "size": int}}
EMBEDDINGS_SHAPE: Shape = {"two_tower": str, "features_day": str, "item_features_version": int}
FEATURE_STORE_SHAPE: Shape = {"inputs": {"table": str, "day": str, "delta_version": int}}


def read_record(path: Path | str, shape: Shape | None = None) -> dict[str, Any]:
    """A lineage record read whole; ``RecordError`` naming the file when it is cut short, not
    UTF-8, or not a JSON object (before, a bare JSONDecodeError or a traceback), and, given its
    ``shape``, naming the first field the trace reads that holds another type than recassets
    writes (``inputs: null``, a version written as a word: before, one line naming no file, and
    no audit page)."""
    try:
        data = json.loads(Path(path).read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise RecordError(f"lineage record {path} is damaged: {e}") from e
    if not isinstance(data, dict):
        raise RecordError(f"lineage record {path} holds a {type(data).__name__}, not an object")
    if shape and (wrong := _misshapen(data, shape)):
        raise RecordError(f"lineage record {path} is not in the shape recassets writes: {wrong}")
    return data


def _misshapen(data: Mapping[str, Any], shape: Shape, at: str = "") -> str | None:
    """The first field of ``data`` whose value is not of its type in ``shape``, said, or None."""
    for key, kind in shape.items():
        value = data.get(key)
        if value is None and (key not in data or not isinstance(kind, Mapping)):
            continue  # not recorded; a list is never null (``inputs: null`` hid every file)
        if isinstance(kind, Mapping):  # a list of entries
            if not isinstance(value, list):
                return f"{at}{key} is {json.dumps(value)[:80]}, not a list"
            for i, entry in enumerate(value):
                if not isinstance(entry, Mapping):
                    return f"{at}{key}[{i}] is {type(entry).__name__}, not an object"
                if wrong := _misshapen(entry, kind, f"{at}{key}[{i}]."):
                    return wrong
        elif not isinstance(value, kind) or (isinstance(value, bool) and kind is int):
            return f"{at}{key} is {json.dumps(value)[:80]}, not {getattr(kind, '__name__', kind)}"
    return None
