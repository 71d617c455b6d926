"""Which partitions each Delta commit changed, read from its actions, and the changes to a
partition that recassets did not make.

``records.DeltaLog`` knows a commit by its ``userMetadata``: recassets' writers name the days
they wrote (``day``, ``days``). A commit made by another writer (delta-rs
``write_deltalake(..., predicate="dt = '...'")``, an ``UPDATE``, a ``DELETE``, a ``MERGE``, a
``RESTORE``) names none, and was ignored: the partition stayed credited to the older recassets
commit and its manifest, and ``--verify`` passed on a rewritten day (review, 2026-12-07).
Here each later commit's ``add`` and ``remove`` actions are read from its ``_delta_log`` JSON
(their ``partitionValues``' ``dt``, or the ``dt=`` folder of their path): one whose actions
change the day (``dataChange`` true) after the recassets commit that wrote it, and that is not
itself a recassets commit of that day, changed it outside recassets. ``OPTIMIZE`` (its actions
are ``dataChange: false``) and ``VACUUM`` (no actions) change no data and do not count; a later
recassets ingestion of the day is the new writer (its manifest says so); a ``RESTORE`` counts,
except ingestion's own all-or-none undo (``recassets.ingest.writes``: it restores the table to
the version before one run's commits, and that run writes no manifest).

A checkpointed log keeps the commit files after its checkpoint, which is where the commits
after a recorded writer lie; a commit file that cannot be read is skipped (log cleanup removed
it, and ``damage.CheckedLog`` says what a record names that is gone).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from recassets.lineage.nodes import Node
from recassets.lineage.records import Commit, DeltaLog

_DT_IN_PATH = re.compile(r"(?:^|/)dt=([^/]+)/")

# (table path, version) -> the days its data-changing actions touched; None: no commit file
_TOUCHED: dict[tuple[str, int], frozenset[str] | None] = {}


def touched(table_path: str, version: int) -> frozenset[str] | None:
    """The ``dt`` partitions commit ``version`` changed (its ``add``/``remove`` actions whose
    ``dataChange`` is not false), or None when its commit file cannot be read."""
    from recassets.lake import local_path

    local = local_path(table_path)
    if local is None:  # an s3a:// lake: said by ``outside``, not read here
        return None
    log = Path(local) / "_delta_log" / f"{version:020d}.json"
    try:
        stamp = log.stat().st_mtime_ns
        text = log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    key = (f"{table_path}@{stamp}", version)  # a commit file rewritten is read again
    if key in _TOUCHED:
        return _TOUCHED[key]
    days: set[str] = set()
    for line in text.splitlines():
        try:
            action = json.loads(line)
        except ValueError:
            continue
        for kind in ("add", "remove", "cdc"):
            a = action.get(kind) if isinstance(action, dict) else None
            if not isinstance(a, dict) or a.get("dataChange", True) is False:
                continue
            values = a.get("partitionValues")
            if isinstance(values, dict) and values.get("dt") is not None:
                days.add(str(values["dt"]))
            elif (m := _DT_IN_PATH.search(str(a.get("path") or ""))) is not None:
                days.add(m.group(1))
    _TOUCHED[key] = found = frozenset(days)
    return found


def _an_undo(log: DeltaLog, table_path: str, restore: Commit) -> bool:
    """Whether ``restore`` is ingestion's all-or-none undo: it restores the version just before
    commits that are all of one recassets run (``recassets.ingest.writes._all_or_none``)."""
    assert restore.restored is not None
    undone = [c for c in log.history(table_path) if restore.restored < c.version < restore.version]
    runs = {c.meta.get("run_id") for c in undone}
    return len(undone) >= 1 and len(runs) == 1 and bool(next(iter(runs)))


def changed_outside(
    log: DeltaLog, table_path: str, day: str, at_version: int | None, *, ranges: bool
) -> list[Commit]:
    """The commits at or before ``at_version`` (None: the latest) that changed partition
    ``day`` after the recassets commit that wrote it (``DeltaLog.writer``), without being a
    recassets commit of that day: the partition's rows are not what that commit's manifest
    vouches for. A restore brings back the state of the version it restores (as ``writer``
    reads it), and is itself such a change unless it is ingestion's undo."""
    states: list[tuple[int, tuple[Commit, ...]]] = []
    outside: tuple[Commit, ...] = ()
    for c in log.history(table_path):
        if at_version is not None and c.version > at_version:
            break
        if c.restored is not None:
            prior = [s for v, s in states if v <= c.restored]
            outside = prior[-1] if prior else ()
            if not _an_undo(log, table_path, c) and day in (touched(table_path, c.version) or ()):
                outside = (*outside, c)
        elif c.covers(day, ranges=ranges):
            outside = ()
        elif day in (touched(table_path, c.version) or ()):
            outside = (*outside, c)
        states.append((c.version, outside))
    return list(outside)


def said(c: Commit, table: str, day: str) -> str:
    """One change outside recassets, in words."""
    what = c.operation or "a commit"
    if c.restored is not None:
        what += f" to version {c.restored}"
    return (f"dt={day} of {table} was changed outside recassets at version {c.version} "
            f"({what}, {c.time}): not written by recassets, so no lineage manifest "
            "vouches for its rows")  # fmt: skip


def log_file(table_path: str, version: int) -> str:
    return str(Path(table_path) / "_delta_log" / f"{version:020d}.json")


def outside(
    log: DeltaLog, node: Node, table: str, table_path: str, day: str, at_version: int | None
) -> list[Commit]:
    """Mark ``node`` (partition ``day`` of ``table`` as of ``at_version``) with each change
    outside recassets: a verify failure on that commit's log file, and a line in the tree."""
    from recassets.lake import local_path
    from recassets.lineage.targets import FEATURE_TABLES

    if local_path(table_path) is None:
        # the commits' actions are read from local log files: on an object store the check does
        # not run, and the tree says so rather than passing in silence
        node.unrecorded.append(f"changes to dt={day} by commits recassets did not make: not "
                               "checked on a lake at a URL (the Delta log is read locally)")  # fmt: skip
        return []
    found = changed_outside(log, table_path, day, at_version, ranges=table in FEATURE_TABLES)
    for c in found:
        node.problems.append((log_file(table_path, c.version), "changed", said(c, table, day)))
        node.unrecorded.append(f"its rows as changed at version {c.version} ({c.operation}): "
                               "changed outside recassets, no manifest vouches for them")  # fmt: skip
    return found


__all__ = ["changed_outside", "log_file", "outside", "said", "touched"]
