"""A lineage tree as OpenLineage run events, built with the ``openlineage-python`` model.

One ``COMPLETE`` ``RunEvent`` per node that made something (a bento, a model, an index, a
table partition or commit, the feature store): its job is the Dagster asset key (namespace
``recassets``), its inputs the datasets of the nodes it read (a landed file is a dataset in the
``file`` namespace), its output its own dataset with the Delta version as a
``DatasetVersionDatasetFacet``. Checks travel as a ``TestRunFacet``. The Dagster run that made
it, when recorded, is the ``ParentRunFacet``; the event's own run id is a UUID derived from
the node, so two exports of the same lineage give the same events and a lineage server
(Marquez) merges them instead of duplicating.
"""

from __future__ import annotations

import uuid
from typing import Any

from openlineage.client.event_v2 import (
    InputDataset,
    Job,
    OutputDataset,
    Run,
    RunEvent,
    RunState,
)
from openlineage.client.facet_v2 import (
    RunFacet,
    dataset_version_dataset,
    parent_run,
    test_run,
)
from openlineage.client.serde import Serde

from recassets import __version__
from recassets.lineage.graph import Lineage, Node

NAMESPACE = "recassets"
# No public home page to point at: a URN naming the producer and its version.
PRODUCER = f"urn:recassets:lineage:{__version__}"
_IDS = uuid.UUID("5b0f3c1e-8f2a-4f4e-9d4a-7b1c2e3d4f50")  # namespace of the derived run ids


def _dataset(lineage: Lineage, node: Node) -> tuple[str, str]:
    """(namespace, name) of what ``node`` wrote."""
    if node.kind == "landing":
        return "file", lineage.relative(node.dataset or node.id)
    day = node.facts.get("day")
    name = node.job + (f"/dt={day}" if day else "")
    return NAMESPACE, name


def _version(node: Node) -> str | None:
    v = node.facts.get("written_at_version", node.facts.get("delta_version"))
    if v is not None:
        return str(v)
    if node.kind == "landing":
        return next((a.sha256 for a in node.artifacts if a.sha256), None)
    return None


def _event_time(node: Node) -> str:
    for key in ("committed_at", "created_at", "served_at"):
        value = node.facts.get(key)
        if isinstance(value, str) and "T" in value:
            return value
    return "1970-01-01T00:00:00+00:00"  # nothing recorded: a fixed time, not "now"


def events(lineage: Lineage) -> list[RunEvent]:
    """The run events of every node but the landed files (they are inputs, not runs), in
    the order of the walk (the target first)."""
    out: list[RunEvent] = []
    done: set[str] = set()
    for _, node, _seen in lineage.walk():
        if node.kind == "landing" or node.id in done:
            continue
        done.add(node.id)
        inputs = []
        for child_id in node.inputs:
            child = lineage.nodes[child_id]
            ns, name = _dataset(lineage, child)
            facets: dict[str, Any] = {}
            if (v := _version(child)) is not None:
                facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(v)
            inputs.append(InputDataset(ns, name, facets=facets))
        ns, name = _dataset(lineage, node)
        out_facets: dict[str, Any] = {}
        if (v := _version(node)) is not None:
            out_facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(v)
        run_facets: dict[str, RunFacet] = {}
        if node.checks:
            run_facets["test"] = test_run.TestRunFacet(
                tests=[
                    test_run.TestExecution(
                        name=c.name, status=c.status, severity=c.severity,
                        type=c.source or None,
                        params={k: str(v) for k, v in c.figures.items()},
                    )
                    for c in node.checks
                ]
            )  # fmt: skip
        if node.run_id and _is_uuid(node.run_id):
            run_facets["parent"] = parent_run.ParentRunFacet(
                run=parent_run.Run(runId=node.run_id),
                job=parent_run.Job(namespace="dagster", name="__ASSET_JOB"),
            )
        out.append(
            RunEvent(
                eventType=RunState.COMPLETE,
                eventTime=_event_time(node),
                run=Run(runId=str(uuid.uuid5(_IDS, node.id)), facets=run_facets),
                job=Job(namespace=NAMESPACE, name=node.job),
                inputs=inputs,
                outputs=[OutputDataset(ns, name, facets=out_facets)],
                producer=PRODUCER,
            )
        )
    return out


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def to_json_lines(lineage: Lineage) -> str:
    """The events as JSON Lines (what Marquez's ``/api/v1/lineage`` takes one by one)."""
    return "".join(Serde.to_json(e) + "\n" for e in events(lineage))


__all__ = ["NAMESPACE", "events", "to_json_lines"]
