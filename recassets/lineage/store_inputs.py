"""The feature tables a feature store's day read, from its lineage manifest
(``lineage/feature_store/dt=DAY.json``), checked against what its writer always records.

The manifest carries no digest (its writer, ``recassets.featurestore.store._write_lineage``,
records none), so before 2026-12-07 its inputs were taken as written: cutting them from three
to one passed ``--verify`` while the other feature tables dropped out of the tree, and an
input's ``delta_version`` set to 0 showed "(no commit)" and passed (review, 2026-12-07). The
writer exports one snapshot of each feature table (``recassets.features.schema.TABLES``, the
list it iterates) for the day it materializes; here a manifest that does not name each of them
for that day, at a version of that table holding a recassets commit of that day, fails
naming what is missing or wrong.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from recassets.lineage.nodes import Node

if TYPE_CHECKING:
    from recassets.lineage.graph import _Walker


def written_tables() -> tuple[str, ...]:
    """The feature tables the feature store exports a snapshot of each day: the writer's own
    list (``recassets.featurestore.store`` iterates ``recassets.features.schema.TABLES``)."""
    from recassets.features.schema import TABLES

    return tuple(TABLES)


def feature_inputs(
    walker: _Walker, node: Node, m: dict[str, Any], day: str, manifest_path: str
) -> None:
    """Trace each feature partition the manifest ``m`` of ``day`` names, and fail the manifest
    (``node.problems``) for each feature table it does not name for that day, or names at a
    version whose log holds no recassets commit of that day."""
    from recassets.lineage.targets import FEATURE_TABLES, TABLES

    node.unrecorded.append("sha256 of the offline snapshots it exported")
    named: dict[str, Any] = {}
    wrong: list[str] = []
    for snap in m.get("inputs", []):
        table = snap.get("table")
        if table in TABLES:
            node.inputs.append(walker.partition(table, snap["day"], int(snap["delta_version"])))
        if table in named:
            wrong.append(f"it names {table} twice")
        named[table] = snap
    for table in written_tables():
        snap = named.get(table)
        if snap is None:
            why = f"it does not name {table}, which every feature-store run reads"
        elif snap.get("day") != day:
            why = f"it names {table} of {snap.get('day')}, not of its own day {day}"
        elif (
            walker.log.writer(walker.paths.table(table), day, int(snap["delta_version"]),
                              ranges=table in FEATURE_TABLES) is None
        ):  # fmt: skip
            why = (f"it names {table} at version {snap['delta_version']}, at which no "
                   f"recassets commit had written {day}")  # fmt: skip
        else:
            continue
        wrong.append(why)
    if wrong:  # one line: verify keeps one result per file
        node.problems.append((manifest_path, "changed",
                              "the feature store's manifest: " + "; ".join(wrong)))  # fmt: skip


__all__ = ["feature_inputs", "written_tables"]
