"""The lineage graph's data: the nodes ``recassets.lineage.graph`` builds from the records, the
files and checks each carries, and the DAG they form (``Lineage``)."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recassets.lineage.targets import TABLES

# Each node's Dagster asset key: the OpenLineage job name, and where its check results lie.
ASSET_KEYS = {
    **{t: f"lake/{t}" for t in TABLES},
    "two_tower": "models/two_tower_model",
    "ranking": "models/ranking_model",
    "sequence_ranking": "models/sequence_ranking_model",
    "embeddings": "retrieval/item_embeddings",
    "index": "retrieval/item_index",
    "feature_store": "featurestore/feature_store",
    "bento": "serving/recommender_bento",
}


def floats(d: Mapping[str, Any] | None, *, nested: bool = True) -> dict[str, Any]:
    """The scalar figures of a metrics dict (nested dicts flattened with dots, or left out)."""
    out: dict[str, Any] = {}
    for k, v in (d or {}).items():
        if isinstance(v, Mapping):
            if nested:
                out.update({f"{k}.{kk}": vv for kk, vv in floats(v).items()})
        elif isinstance(v, int | float | str | bool) or v is None:
            out[k] = v
    return out


@dataclass
class Artifact:
    """A file on the path; ``sha256``: its digest recorded when made (None: ``--verify`` can't)."""

    path: str
    sha256: str | None
    what: str
    size: int | None = None
    # a shared file later runs rewrite by design (the Feast registry): a difference is said,
    # never a failure (``verify``: ``rewritten``)
    mutable: bool = False


@dataclass
class Check:
    name: str
    status: str  # passed | failed | recorded (figures kept, no verdict recorded)
    figures: dict[str, Any] = field(default_factory=dict)
    severity: str | None = None
    source: str = ""  # where it was read: dagster, the index manifest, the checkpoint, ...


@dataclass
class Node:
    id: str
    kind: str  # bento | model | index | embeddings | feature_store | commit | partition | landing
    job: str  # the Dagster asset key (the OpenLineage job); "landing" for a landed file
    facts: dict[str, Any] = field(default_factory=dict)
    run_id: str | None = None
    run_status: str | None = None
    launched_by: str | None = None
    checks: list[Check] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)
    unrecorded: list[str] = field(default_factory=list)
    manifest: tuple[str, str, str] | None = None  # a record's (path, status, detail) for verify
    # more (path, status, detail) for verify: a Delta commit that changed the partition outside
    # recassets, an answer served before its bento was built (``changes``, ``walk_requests``)
    problems: list[tuple[str, str, str]] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    dataset: str | None = None  # the dataset it wrote (a table path, a folder, a file)


@dataclass
class Lineage:
    root: str
    nodes: dict[str, Node]
    home: str
    roots: tuple[str, ...] = ()  # this home's folders: a file outside is another home's
    # said once above the tree: a whole source of facts missing (the Dagster instance)
    notes: tuple[str, ...] = ()

    def walk(self) -> Iterator[tuple[int, Node, bool]]:
        """Depth-first from the root: ``(depth, node, seen)``; ``seen``: printed above, its
        inputs not repeated."""
        seen: set[str] = set()
        stack = [(self.root, 0)]  # a stack, not recursion: a day-by-day chain can be long
        while stack:
            node_id, depth = stack.pop()
            node = self.nodes[node_id]
            yield depth, node, node_id in seen
            if node_id in seen:
                continue
            seen.add(node_id)
            stack.extend((child, depth + 1) for child in reversed(node.inputs))

    def landing_files(self) -> list[Node]:
        return sorted((n for n in self.nodes.values() if n.kind == "landing"), key=lambda n: n.id)

    def artifacts(self) -> list[tuple[Node, Artifact]]:
        return [(n, a) for n in self.nodes.values() for a in n.artifacts]

    def relative(self, path: str) -> str:
        """``path`` relative to RECASSETS_HOME when it lies under it."""
        try:
            return str(Path(path).relative_to(self.home))
        except ValueError:
            return path


__all__ = ["ASSET_KEYS", "Artifact", "Check", "Lineage", "Node", "floats"]
