"""What the lineage says of a Delta log it cannot trust: one that cannot be read at all, or
one that no longer holds a version a record names.

``records.DeltaLog`` reads the logs; ``CheckedLog`` keeps its reading and adds what a walk
needs to go on past a damaged log: the error remembered per table (each node of the table then
says it, rather than one table's log stopping the trace with no page), and a recorded version
the log does not hold told apart from one that log cleanup removed. Before, a log whose commit
file was deleted (its ``.crc`` left) stopped ``lineage`` and ``audit`` with "cannot be read",
and one whose last commit was deleted with its ``.crc`` read as "(no commit)": ``--verify``
said "ok" of a model whose training days the log no longer held (review, 2026-12-06).
"""

from __future__ import annotations

from pathlib import Path

from recassets.lineage.nodes import Node
from recassets.lineage.records import Commit, DeltaLog


class CheckedLog(DeltaLog):
    """A ``DeltaLog`` whose unreadable logs are remembered, never raised: ``history`` is then
    empty, and ``damage`` says why for every node of that table."""

    def __init__(self) -> None:
        super().__init__()
        self.unreadable: dict[str, str] = {}  # table path -> delta-rs's word, in one line

    def history(self, table_path: str) -> tuple[Commit, ...]:
        """The table's commits, oldest first; none, its error kept, when its log is unreadable."""
        try:
            return super().history(table_path)
        except ValueError as e:  # recassets.lake.open_delta: a log delta-rs cannot read
            self.unreadable[table_path] = str(e)
            self._history[table_path] = ()  # read once per walk, as a readable log is
            return ()

    def damage(self, table_path: str, version: int | None) -> str | None:
        """Why the log of ``table_path`` cannot say what ``version`` (None: the latest) held:
        it cannot be read, or it holds no such version while it holds others above or below
        it (a commit file deleted, or the table re-created); None when it can, when there is
        no table, and when log cleanup removed it (below the first commit kept: said by
        ``not_held`` as removed, by design no damage)."""
        commits = self.history(table_path)
        log = Path(table_path) / "_delta_log"
        if table_path in self.unreadable:  # "the Delta table at ... cannot be read (...)"
            return self.unreadable[table_path]
        if version is None or not commits or version < commits[0].version:
            return None
        if any(c.version == version for c in commits):
            return None
        return (f"version {version}, which a record names, is not in {log} (removed, or never "
                f"written: it holds versions {commits[0].version} to {commits[-1].version})")  # fmt: skip


def damaged(table: str, job: str, path: str, version: int | None, why: str,
            day: str | None = None) -> Node:  # fmt: skip
    """The node of a partition (or, without ``day``, a commit) whose table's log cannot vouch
    for it, marked ``damaged`` on ``<table>/_delta_log`` (``--verify`` and ``audit`` fail
    naming it); its inputs are not traced, the rest of the path is."""
    name = f"{table}@{version}" if version is not None else table
    name += f" dt={day}" if day is not None else ""
    node = Node(f"{name} (Delta log damaged)", "partition" if day else "commit", job, dataset=path)
    node.facts = {"read_at_version": version}
    node.manifest = (str(Path(path) / "_delta_log"), "damaged", why)
    node.unrecorded.append(f"the commit that wrote it: {why}")
    return node


__all__ = ["CheckedLog", "damaged"]
