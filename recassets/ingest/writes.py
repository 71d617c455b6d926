"""Replacing a run's partitions of a Delta table in one commit, and checking what it wrote.

Writes are atomic per table: a partition range is replaced with Delta's ``replaceWhere`` in one
commit, so a failed run leaves the previous version in place and a re-run yields the same rows.
Each commit carries the run's ``userMetadata`` (run, dataset, days), by which its version and
row count are found again (``_commit_of``); the count must equal what validation tallied
(``_check_written``), else a landing file changed between the reads and the run fails.

Delta has no transaction over two tables, and a commit's row count is known only once it is
made; so a run's writes of the table and the quarantine go inside ``_all_or_none``
(``recassets.undo.all_or_none``): when one of them fails or wrote other than the count, each
table is restored to its version before the run (a ``RESTORE`` commit) before the error is
raised, and no wrong row stays behind. The asset wraps the whole run in the same undo, the
day's manifests included (``undo_ingest``), up to its hand-off to Dagster: a run failing or
terminated after its commits (the manifests, the preview, the metadata) leaves the previous
version, not rows Dagster never recorded. A run killed outright (no Python left to restore)
leaves the lake ahead of Dagster until the day is materialized again; Dagster's run retries
do it for a run that failed (``dagster.yaml``), not for one cancelled from the UI.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from recassets.ingest.lineage import lineage_path
from recassets.ingest.results import INGESTED_TABLES
from recassets.lake import recent_commits, replace_partitions
from recassets.paths import Paths
from recassets.undo import all_or_none

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


class WrittenCountError(RuntimeError):
    """A commit wrote other than the rows validation counted."""


# Ingestion's table and quarantine writes, all or none (the module docstring).
_all_or_none = all_or_none


def undo_ingest(
    spark: SparkSession,
    paths: Paths,
    dataset: str,
    days: Sequence[str],
    progress: Callable[[str], None] | None = None,
) -> contextlib.AbstractContextManager[None]:
    """``all_or_none`` over what ``ingest(dataset, days)`` writes: the dataset's table, the
    quarantine and each day's lineage manifest. For a caller whose work goes on after
    ``ingest`` returns (the asset's preview and metadata), so that a failure or an interrupt
    there also leaves the previous version, the manifests included."""
    from recassets.ingest.pipeline import QUARANTINE_TABLE  # it imports this module

    table = INGESTED_TABLES[dataset]
    manifests = [lineage_path(paths, table, day) for day in days]
    tables = [paths.table(QUARANTINE_TABLE), paths.table(table)]
    return all_or_none(spark, tables, manifests, progress=progress)


def _replace_partitions(
    spark: SparkSession,
    rows: DataFrame,
    path: str,
    where: str,
    meta: str,
    what: str,
    expected: int,
) -> int:
    """Replace the partitions of the Delta table at ``path`` that ``where`` selects with
    ``rows``, in one commit tagged ``meta``; check that it wrote ``expected`` rows (``what``
    names the table in the error). The commit's version."""
    replace_partitions(rows, path, where, meta)
    version, metrics = _commit_of(spark, path, meta)
    _check_written(what, metrics, expected)
    return version


def _commit_of(spark: SparkSession, path: str, meta: str) -> tuple[int, dict[str, str] | None]:
    """(version, operation metrics) of this write's commit: the latest whose userMetadata is
    ``meta`` (run, dataset, days), not assumed to be the newest (another writer may have
    followed) nor any commit of the run (one Dagster run ingests several datasets, and they
    share the quarantine).

    Delta commits nothing for a write that neither adds nor removes a file (an empty
    quarantine replacing an empty one): then the table's latest version and no metrics.
    """
    wanted = json.loads(meta)
    commits = recent_commits(spark, path)
    for version, user_metadata, metrics in commits:
        try:
            found = json.loads(user_metadata or "null")
        except ValueError:
            continue
        if found == wanted:
            return version, dict(metrics or {})
    return max(version for version, _, _ in commits), None


def _check_written(what: str, metrics: dict[str, str] | None, expected: int) -> None:
    """Fail unless the commit's metrics (``_commit_of``) say it wrote ``expected`` rows."""
    written = 0 if metrics is None else metrics.get("numOutputRows")
    if written is not None and int(written) != expected:
        raise WrittenCountError(
            f"{what}: wrote {written} rows, expected {expected}; did a landing file change while "
            "it was read? Re-run the partition."
        )


def _ddl_names(ddl: str) -> list[str]:
    """The column names of a DDL string, in order: the columns a write selects."""
    return [part.strip().split()[0] for part in ddl.split(",")]
