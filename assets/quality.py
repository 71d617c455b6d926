"""Stage ``quality``: Great Expectations suites as blocking asset checks on the lake tables,
and a warning on days without events.

Ordinary ``@asset_check``s over ``recassets.quality`` (not dagster-ge: op-based, with a
deprecated result type). Each quality check validates the partition(s) its run materialized
and fails with severity ERROR when an expectation fails; being blocking, a failure stops every
downstream asset of the same run (features are not built on a bad day of events, the feature
store is not fed a bad day of features).

Partitions: Dagster 1.13 accepts ``partitions_def`` on ``@asset_check`` (a preview feature),
here the assets' own ``DAILY``. A run gives the check its days in ``context.partition_keys``:
one day, or a whole range in a single-run backfill (raw_events ingests a range in one step).
The range is validated with one Great Expectations validation
(``recassets.quality.check_raw_events_range``), and the check yields one
``AssetCheckEvaluation`` per day, recorded against that day's partition with that day's own
metadata, then the step's ``Output``; a one-day run is the same with one day. Dagster fails
the step after the loop when a blocking ERROR evaluation failed, so a bad day of a range
still blocks the downstream assets of the run (all of the range's: they run as one step).

``raw_events_has_events`` is not blocking: a day without events is legitimate within a range
(ingestion writes it as an empty partition, see ``recassets.ingest.empty_days_allowed``), but
worth a WARN in the UI, naming the landing folder looked in.
"""

# No `from __future__ import annotations`: Dagster 1.13 reads the `context` annotation at
# definition time and rejects it as a string.
import warnings
from collections.abc import Callable, Iterator

from dagster import (
    AssetCheckEvaluation,
    AssetCheckExecutionContext,
    AssetCheckSeverity,
    AssetKey,
    MetadataValue,
    Output,
    PreviewWarning,
    asset_check,
)

from assets import keys
from assets.check_targets import TargetMaterialization
from assets.check_targets import latest_materialization as _latest
from assets.partitions import DAILY
from assets.pods import SPARK_DRIVER_POD
from recassets.quality import (
    DayEvents,
    Failure,
    QualityReport,
    check_feature_table_range,
    check_has_events,
    check_raw_events_range,
)
from resources import LakeResource, QualityResource, SparkResource


def report_metadata(day: str, report: QualityReport) -> dict:
    """One day's check metadata: ``failing_expectations`` (markdown: the verdict, notes, each
    failing expectation with expected and observed values, and its sample rows),
    ``sample_rows`` (JSON, by expectation), ``statistics`` (JSON, GE's counts), ``inputs``
    (JSON: the bounds' inputs such as the trailing daily counts, and the expectations left
    out with why) and ``failed_expectations`` (a count, to chart)."""
    return {
        "failing_expectations": MetadataValue.md(f"### {day}\n\n{report.to_markdown()}"),
        "sample_rows": MetadataValue.json(report.sample_rows()),
        "statistics": MetadataValue.json(report.statistics),
        "inputs": MetadataValue.json({**report.context, "notes": report.notes}),
        "failed_expectations": len(report.failures),
    }


def latest_materialization(
    context: AssetCheckExecutionContext | None, asset_key: AssetKey, day: str
) -> TargetMaterialization | None:
    """The materialization of ``day``'s partition that an evaluation of it checks (None
    without a ``context`` to look it up in): see ``assets.check_targets`` for why each
    evaluation of a range names it."""
    return (
        None if context is None else _latest(context.instance, asset_key, day, context.run.run_id)
    )


def quality_evaluations(
    asset_key: AssetKey,
    check_name: str,
    reports: dict[str, QualityReport],
    context: AssetCheckExecutionContext | None = None,
) -> Iterator[AssetCheckEvaluation]:
    """A blocking ERROR evaluation per day, recorded against the day's partition (and its
    latest materialization, when a ``context`` can look it up)."""
    for day, report in reports.items():
        yield AssetCheckEvaluation(
            asset_key=asset_key,
            check_name=check_name,
            passed=report.success,
            metadata=report_metadata(day, report),
            severity=AssetCheckSeverity.ERROR,
            blocking=True,
            partition=day,
            target_materialization_data=latest_materialization(context, asset_key, day),
        )


def has_events_evaluation(
    found: DayEvents, context: AssetCheckExecutionContext | None = None
) -> AssetCheckEvaluation:
    """A non-blocking WARN evaluation of one day: failed when it has no events."""
    return AssetCheckEvaluation(
        target_materialization_data=latest_materialization(context, keys.RAW_EVENTS, found.day),
        asset_key=keys.RAW_EVENTS,
        check_name="raw_events_has_events",
        passed=found.has_events,
        description=found.describe(),
        metadata={
            "rows": found.rows,
            "empty_partition": found.empty,
            "landing_folder": MetadataValue.path(found.landing_folder),
            "quarantined_rows": found.quarantined,
        },
        severity=AssetCheckSeverity.WARN,
        blocking=False,
        partition=found.day,
    )


def _days(context: AssetCheckExecutionContext) -> list[str]:
    # A partitioned check always runs with a partition (one key, or a single-run range).
    return list(context.partition_keys)


def _log_failures(context: AssetCheckExecutionContext, reports: dict[str, QualityReport]) -> None:
    bad = [day for day, r in reports.items() if not r.success]
    if bad:
        # each day with what failed (the expectation, its column, what was seen): the day
        # alone sent the operator to the UI's check page to learn which rule it was
        said = [f"{d} ({'; '.join(f.line() for f in reports[d].failures[:3])})" for d in bad[:5]]
        more = f" and {len(bad) - 5} more" if len(bad) > 5 else ""
        context.log.error(f"{len(bad)} of {len(reports)} day(s) failed: {', '.join(said)}{more}")


def errored(days: list[str], suite: str, error: BaseException) -> dict[str, QualityReport]:
    """Each of ``days`` reported failed with ``error``: a check that raised is a failed check.

    Dagster records a check that raised as EXECUTION_FAILED, which the automation's
    ``check_failed`` does not match (sensors/conditions.py): the run's own downstream steps
    were skipped, but the daemon's next tick built the day's features on the unvalidated data.
    A lineage manifest cut short, a column missing from the table or Great Expectations failing
    to load all raised so. Each day now fails with the error named, as any failed check does.
    """
    text = f"{type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}"
    failure = Failure(
        expectation="check_ran",
        column=None,
        description="the check itself failed before it could judge the day",
        kwargs={},
        observed={"error": text[:400]},
    )
    return {
        day: QualityReport(
            suite=suite,
            success=False,
            statistics={"evaluated_expectations": 0, "successful_expectations": 0},
            failures=[failure],
            notes=["the check raised; fix the cause and re-run the check (or the day)"],
        )
        for day in days
    }


def guarded(
    context: AssetCheckExecutionContext, suite: str, judge: Callable[[list[str]], dict]
) -> dict[str, QualityReport]:
    """``judge(days)`` over the run's days, or each day failed with the error it raised."""
    days = _days(context)
    try:
        return judge(days)
    except Exception as error:  # noqa: BLE001 - any error is the check's failure, named
        context.log.exception(f"{suite}: the check raised; each of its {len(days)} day(s) failed")
        return errored(days, suite, error)


def _done() -> Output:
    # Without it the step fails with DagsterStepOutputNotFoundError: a check that yields its
    # evaluations must still yield its (empty) output.
    return Output(None, output_name="result")


# partitions_def on an asset check is a Dagster 1.13 preview: used knowingly, so its import-
# time PreviewWarning is silenced here only.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", category=PreviewWarning)

    # Each check reads its table with Spark: under dagster-k8s its step pod is a Spark
    # driver, sized as the ingest and feature steps are (assets/pods.py).
    @asset_check(
        asset=keys.RAW_EVENTS, blocking=True, partitions_def=DAILY, op_tags=SPARK_DRIVER_POD
    )
    def raw_events_quality(
        context: AssetCheckExecutionContext,
        spark: SparkResource,
        lake: LakeResource,
        quality: QualityResource,
    ) -> Iterator:
        """raw_events partition: ids, event_type and ts present; event_type known; ts inside
        the UTC day; event_id unique within the day; daily volume within ±50 % of the trailing
        7-day mean (from 3 trailing days on; not on a day without landing files). See
        recassets.quality.raw_events_suite."""
        # The band: QualityResource.volume_band (RECASSETS_VOLUME_BAND; "off" for imports).
        reports = guarded(
            context,
            "raw_events",
            lambda days: check_raw_events_range(
                spark.session(), lake.paths(), days, band=quality.band()
            ),
        )
        _log_failures(context, reports)
        yield from quality_evaluations(keys.RAW_EVENTS, "raw_events_quality", reports, context)
        yield _done()

    @asset_check(
        asset=keys.RAW_EVENTS, blocking=False, partitions_def=DAILY, op_tags=SPARK_DRIVER_POD
    )
    def raw_events_has_events(
        context: AssetCheckExecutionContext, spark: SparkResource, lake: LakeResource
    ) -> Iterator:
        """raw_events partition has events: WARN on a day whose landing folder held no file
        (ingestion wrote an empty partition) or whose rows were all quarantined, naming the
        folder looked in. Not blocking: such days are legitimate within a history."""
        for found in check_has_events(spark.session(), lake.paths(), _days(context)).values():
            yield has_events_evaluation(found, context)
        yield _done()

    def _feature_check(key: AssetKey) -> Callable:
        table = key.path[-1]
        name = f"{table}_quality"

        @asset_check(
            asset=key,
            name=name,
            blocking=True,
            partitions_def=DAILY,
            description=f"{table} partition: counters non-negative, CTRs in [0, 1], keys set, "
            "row count at least 50 % of the previous partition's (not for cohorts, which "
            "exist only with events in their window). See "
            "recassets.quality.feature_suite.",
            op_tags=SPARK_DRIVER_POD,
        )
        def _check(
            context: AssetCheckExecutionContext, spark: SparkResource, lake: LakeResource
        ) -> Iterator:
            reports = guarded(
                context,
                table,
                lambda days: check_feature_table_range(spark.session(), lake.paths(), table, days),
            )
            _log_failures(context, reports)
            yield from quality_evaluations(key, name, reports, context)
            yield _done()

        return _check

    user_features_quality = _feature_check(keys.USER_FEATURES)
    item_features_quality = _feature_check(keys.ITEM_FEATURES)
    cohort_features_quality = _feature_check(keys.COHORT_FEATURES)

CHECKS = [
    raw_events_quality,
    raw_events_has_events,
    user_features_quality,
    item_features_quality,
    cohort_features_quality,
]
