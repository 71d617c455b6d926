"""Lineage: from a bento, a model version or a table partition back to the landing files.

``graph`` walks what is recorded (manifests, checkpoints, Delta logs, the Dagster instance) into
a ``Lineage`` DAG; ``verify`` re-hashes the files whose sha256 was recorded; ``openlineage``
turns the DAG into OpenLineage run events; ``render`` prints it. ``recassets lineage`` is the
command line over them (docs/ingestion-and-lineage.md).
"""

from recassets.lineage.graph import Lineage, Target, TargetError, parse_target, trace

__all__ = ["Lineage", "Target", "TargetError", "parse_target", "trace"]
