"""The materialization a per-partition check evaluation targets: the one private Dagster import.

Dagster shows a partition's check status only while the evaluation targets that partition's
latest materialization (an older or missing target reads as outdated: no status, or "skipped",
in the UI). ``AssetCheckResult`` looks the target up itself, but only for a one-partition step;
a check that records one ``AssetCheckEvaluation`` per day of a range names it itself, as
Dagster does internally (``AssetCheckResult._get_partitioned_target_materialization_data``).

The record that names it, ``AssetCheckEvaluationTargetMaterializationData``, is the type of a
parameter of the public ``AssetCheckEvaluation`` but is not exported by ``dagster``, and no
public API builds one (checked against Dagster 1.13.27). Hence the private import, here and
nowhere else; ``tests/dagster/test_dagster_private.py`` fails when it moves or changes shape.
"""

from dagster import AssetKey, AssetRecordsFilter, DagsterInstance

# Private: see the module docstring (Dagster 1.13.27).
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData as TargetMaterialization,
)

__all__ = ["TargetMaterialization", "latest_materialization"]


def latest_materialization(
    instance: DagsterInstance, asset_key: AssetKey, partition: str, run_id: str | None = None
) -> TargetMaterialization | None:
    """The latest materialization of ``asset_key``'s ``partition`` made by ``run_id`` (the
    check's own run, whose data it judged), else the latest of any run, as the target of a
    check evaluation of that partition; None when it was never materialized. Without the run,
    a run that wrote the same day while this check ran took this run's verdict."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=asset_key, asset_partitions=[partition]),
        limit=10 if run_id else 1,
    ).records
    own = [r for r in records if r.event_log_entry.run_id == run_id]
    chosen = (own or records[:1])[0] if records else None
    if chosen is None:
        return None
    return TargetMaterialization(
        run_id=chosen.event_log_entry.run_id,
        storage_id=chosen.storage_id,
        timestamp=chosen.timestamp,
    )
