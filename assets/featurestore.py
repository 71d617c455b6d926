"""Stage ``features``: the Feast feature store, fed one day at a time from the feature tables.

``feature_store`` exports the day's Delta partitions of user, item and cohort features as
Feast-friendly Parquet snapshots, applies the Feast repository (``recassets.featurestore.repo``)
and materializes that day into the online store the ``FeatureStoreResource`` names (SQLite by
default, Redis when ``RECASSETS_REDIS_URL`` is set). The blocking check compares what Feast serves online with the
lake's rows of the day, value for value, so nothing downstream (bentos) is built on a skewed
store.
"""

# No `from __future__ import annotations`: Dagster reads the context and resource annotations.
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    asset,
    asset_check,
)

from assets import keys
from assets.beta import accept_beta
from assets.partitions import DAILY, add_day_metadata, partition_days
from recassets.featurestore.store import materialize_days, served_day, skew_check
from resources import FeatureStoreResource, LakeResource

GROUP = "features"
SKEW_SAMPLE = 200  # entities per view compared by the skew check


@accept_beta(asset)(  # backfill_policy is beta in Dagster 1.13 (assets/beta.py)
    key=keys.FEATURE_STORE,
    group_name=GROUP,
    partitions_def=DAILY,
    # A range is one run, days in order: parallel runs of single days would only queue on
    # materialize_day's lock, and the online store must end on the latest day.
    backfill_policy=BackfillPolicy.single_run(),
    deps=keys.FEATURE_TABLES,
    kinds={"feast"},
    # Backticks: the UI renders descriptions as Markdown, where `*_daily` would italicize.
    description="Feast feature store: the day's user, item and cohort features exported from "
    "Delta as Parquet snapshots (offline store), registered (entities user, item, cohort; views "
    "`*_daily_features`; services retrieval_v1, ranking_v1) and materialized into the online "
    "store (SQLite, or Redis with `RECASSETS_REDIS_URL`). A backfill of a day older than the "
    "one served writes its snapshots but never rolls the online store back.",
    code_version="1",
    pool="feast_online_store",  # one writer of the snapshots and online store (dagster.yaml)
)
def feature_store(
    context: AssetExecutionContext, lake: LakeResource, feature_store: FeatureStoreResource
) -> MaterializeResult:
    paths = lake.paths()
    # Snapshots for every day; only the last one is loaded online.
    summaries = materialize_days(
        paths, partition_days(context), redis_url=feature_store.redis_url, progress=context.log.info
    )
    last = summaries[-1]
    if not last.wrote_online:
        context.log.warning(
            f"online store serves {last.served_day}, later than {last.day}: "
            "wrote the offline snapshots only"
        )
    add_day_metadata(
        context,
        {
            s.day: {
                "entities_materialized": MetadataValue.json(s.counts),
                "dagster/row_count": sum(s.counts.values()),
                "wrote_online": s.wrote_online,
                "delta_versions": MetadataValue.json(s.delta_versions),
                "snapshots": MetadataValue.json(s.snapshots),
                "lineage_manifest": MetadataValue.path(s.lineage),
            }
            for s in summaries
        },
    )
    return MaterializeResult(
        metadata={
            "run_days": len(summaries),
            "online_store": last.online_store,
            "registry": MetadataValue.path(last.registry),
            "served_day": last.served_day,
        }
    )


@asset_check(
    asset=feature_store,
    name="feature_store_training_serving_skew",
    blocking=True,
    description=f"Up to {SKEW_SAMPLE} entities per view fetched through Feast online must equal, "
    "every feature and the event time, the Delta rows of the day the online store serves "
    "(the latest materialized partition).",
)
def feature_store_training_serving_skew(
    lake: LakeResource, feature_store: FeatureStoreResource
) -> AssetCheckResult:
    # Not partitioned: the online store holds one day, the latest materialized (a backfill of
    # an older partition leaves it alone), so that day is what serving reads and what must
    # equal the lake, whichever partition's run this check follows.
    paths = lake.paths()
    day = served_day(paths)
    if day is None:
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            description="the online store serves nothing: no day has been materialized",
        )
    # seed by day: a re-run of the check looks at the same sample
    report = skew_check(
        paths,
        day,
        sample=SKEW_SAMPLE,
        seed=int(day.replace("-", "")),
        redis_url=feature_store.redis_url,
    )
    return AssetCheckResult(
        passed=report.passed,
        severity=AssetCheckSeverity.ERROR,
        metadata={
            "checked_day": day,
            "online_store": report.online_store,
            "entities_checked": MetadataValue.json(report.checked),
            "mismatches": len(report.mismatches),
            "mismatched_entities": MetadataValue.json(report.mismatched_entities()),
            "first_mismatches": MetadataValue.md(report.markdown()),
        },
    )


ASSETS = [feature_store]
CHECKS = [feature_store_training_serving_skew]
