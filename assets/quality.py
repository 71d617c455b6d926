"""Stage ``quality``: Great Expectations suites as blocking asset checks on the lake tables.

Ordinary ``@asset_check``s over ``recassets.quality`` (not dagster-ge: op-based, with a
deprecated result type). Each check validates the partition(s) its run materialized and
fails with severity ERROR when an expectation fails; being blocking, a failure stops every
downstream asset of the same run (features are not built on a bad day of events, the feature
store is not fed a bad day of features).

Partitions: Dagster 1.13 accepts ``partitions_def`` on ``@asset_check`` (a preview feature).
With the asset's own ``DAILY``, a one-day run gives the check that day as
``context.partition_key`` and the evaluation is recorded against that partition. A
single-run backfill (raw_events ingests a range in one step) gives the check the whole range
in ``context.partition_keys``: each day is validated, the check passes only if all do, and
Dagster records that evaluation without a partition (it does so for any range step).
"""

# No `from __future__ import annotations`: Dagster 1.13 reads the `context` annotation at
# definition time and rejects it as a string.
import warnings
from collections.abc import Callable

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    PreviewWarning,
    asset_check,
)

from assets.partitions import DAILY
from recassets.quality import QualityReport, check_feature_table, check_raw_events
from resources import LakeResource, SparkResource

RAW_EVENTS = AssetKey(["lake", "raw_events"])
FEATURE_TABLES = ("user_features", "item_features", "cohort_features")


def check_result(reports: dict[str, QualityReport]) -> AssetCheckResult:
    """One check result for the reports of the run's days: passed only if every day passed.

    Metadata: ``failing_expectations`` (markdown: per day the verdict, notes, each failing
    expectation with expected and observed values, and its sample rows), ``sample_rows``
    (JSON, by day and expectation), ``statistics`` (JSON, GE's counts by day),
    ``inputs`` (JSON, by day: the bounds' inputs such as the trailing daily counts, and the
    expectations left out with why) and ``failed_expectations`` (a count, to chart).
    """
    return AssetCheckResult(
        passed=all(r.success for r in reports.values()),
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "failing_expectations": MetadataValue.md(
                "\n\n".join(f"### {day}\n\n{r.to_markdown()}" for day, r in reports.items())
            ),
            "sample_rows": MetadataValue.json({day: r.sample_rows() for day, r in reports.items()}),
            "statistics": MetadataValue.json({day: r.statistics for day, r in reports.items()}),
            "inputs": MetadataValue.json(
                {day: {**r.context, "notes": r.notes} for day, r in reports.items()}
            ),
            "failed_expectations": sum(len(r.failures) for r in reports.values()),
        },
    )


def _days(context: AssetCheckExecutionContext) -> list[str]:
    # A partitioned check always runs with a partition (one key, or a single-run range).
    return list(context.partition_keys)


# partitions_def on an asset check is a Dagster 1.13 preview: used knowingly, so its import-
# time PreviewWarning is silenced here only.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=PreviewWarning)

    @asset_check(asset=RAW_EVENTS, blocking=True, partitions_def=DAILY)
    def raw_events_quality(
        context: AssetCheckExecutionContext, spark: SparkResource, lake: LakeResource
    ) -> AssetCheckResult:
        """raw_events partition: ids, event_type and ts present; event_type known; ts inside
        the UTC day; event_id unique; daily volume within ±50 % of the trailing 7-day mean
        (from 3 trailing days on). See recassets.quality.raw_events_suite."""
        session, paths = spark.session(), lake.paths()
        return check_result({day: check_raw_events(session, paths, day) for day in _days(context)})

    def _feature_check(table: str) -> Callable:
        @asset_check(
            asset=AssetKey(["lake", table]),
            name=f"{table}_quality",
            blocking=True,
            partitions_def=DAILY,
            description=f"{table} partition: counters non-negative, CTRs in [0, 1], keys set, "
            "row count within ±50 % of the previous partition's. See "
            "recassets.quality.feature_suite.",
        )
        def _check(
            context: AssetCheckExecutionContext, spark: SparkResource, lake: LakeResource
        ) -> AssetCheckResult:
            session, paths = spark.session(), lake.paths()
            return check_result(
                {day: check_feature_table(session, paths, table, day) for day in _days(context)}
            )

        return _check

    user_features_quality = _feature_check("user_features")
    item_features_quality = _feature_check("item_features")
    cohort_features_quality = _feature_check("cohort_features")

CHECKS = [raw_events_quality, user_features_quality, item_features_quality, cohort_features_quality]
