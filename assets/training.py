"""Stage ``training``: the labelled examples models train on (models themselves: later)."""

from collections.abc import Iterable, Iterator, Mapping

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetMaterialization,
    AssetObservation,
    AssetSpec,
    BackfillPolicy,
    DagsterInstance,
    DataVersion,
    MaterializeResult,
    ObserveResult,
    TimeWindowPartitionMapping,
    asset,
    multi_observable_source_asset,
)

from assets import keys
from assets.beta import accept_beta
from assets.metadata import lineage_record, table_metadata
from assets.partitions import (
    DAILY,
    DATA_VERSION_IS_USER_PROVIDED_TAG,
    DATA_VERSION_TAG,
    add_day_metadata,
    partition_days,
    results_with_data_versions,
)
from assets.pods import SPARK_DRIVER_POD
from recassets.lineage.versions import VersionReader
from recassets.paths import Paths
from recassets.training.examples import READS, TABLE, build_training_examples
from recassets.undo import all_or_none
from resources import LakeResource, SparkResource

GROUP = "training"
# Examples of day d join the features of d-1; they also depend on the features of d, so that
# a failing blocking quality check on d's features stops d's training data in the same run.
FEATURES_D_MINUS_1_AND_D = accept_beta(TimeWindowPartitionMapping)(
    start_offset=-1, end_offset=0, allow_nonexistent_upstream_partitions=True
)


# Why an asset of its own: the models read training_examples whole, and Dagster 1.13 computes
# no staleness of an unpartitioned asset from a time-partitioned parent read whole
# (CachingStaleStatusResolver._get_partition_dependencies skips AllPartitionMapping), so a
# re-ingested day could never mark a model stale through that edge. This unpartitioned
# external asset carries the version of the whole (recassets.lineage.versions
# .training_data_version), observed by every run that can change it (the ingest tables and
# training_examples, `observe_training_data`); the models depend on it, record its version in
# their provenance, and show "has a new dependency data version" when it moves. So does the
# bento (what is served), whose eager condition ignores this dependency's updates
# (sensors/conditions.py: an observation is no reason to rebuild it from unchanged models).
def _training_data_now(
    instance: DagsterInstance, paths: Paths, days: Iterable[str] = ()
) -> tuple[str, dict[str, int | str]]:
    """The training data's version as it now stands, and what it covers (``days``: examples
    days a run is writing, besides those already materialized)."""
    every = sorted(set(instance.get_materialized_partitions(keys.TRAINING_EXAMPLES)) | set(days))
    version = VersionReader(paths).training_data(every) or "no examples"
    metadata: dict[str, int | str] = {"days": len(every)}
    if every:
        metadata |= {"first_day": every[0], "last_day": every[-1]}
    return version, metadata


@accept_beta(multi_observable_source_asset)(
    specs=[
        AssetSpec(
            key=keys.TRAINING_DATA,
            group_name=GROUP,
            description="The version of `lake/training_examples` taken whole, as the models "
            "read it: a sha256 over the days it holds and the landing files of every ingest "
            "partition they grew from. Observed by the runs of `lake/raw_events`, `lake/users`, "
            "`lake/items` and `lake/training_examples` (and by the Observe button). A "
            "re-ingested day with other content, or a new day of examples, gives it a new "
            "version, and the models and the bento show stale.",
            kinds={"delta"},
        )
    ],
    name="training__examples_version",
)
def training_data(context: AssetExecutionContext, lake: LakeResource) -> ObserveResult:
    version, metadata = _training_data_now(context.instance, lake.paths())
    return ObserveResult(
        asset_key=keys.TRAINING_DATA, data_version=DataVersion(version), metadata=metadata
    )


def observe_training_data(
    context: AssetExecutionContext, paths: Paths, days: Iterable[str] = ()
) -> None:
    """Record the training data's version from a run that may have changed it."""
    version, metadata = _training_data_now(context.instance, paths, days)
    context.log_event(
        AssetObservation(
            asset_key=keys.TRAINING_DATA,
            metadata=metadata,
            tags={DATA_VERSION_TAG: version, DATA_VERSION_IS_USER_PROVIDED_TAG: "true"},
        )
    )


@accept_beta(asset)(  # backfill_policy (assets/beta.py)
    key=keys.TRAINING_EXAMPLES,
    group_name=GROUP,
    partitions_def=DAILY,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[
        keys.RAW_EVENTS,
        keys.USERS,
        keys.ITEMS,
        *[AssetDep(key, partition_mapping=FEATURES_D_MINUS_1_AND_D) for key in keys.FEATURE_TABLES],
    ],
    kinds={"spark", "delta"},
    description="For each impression of day d, a label (click, like, share, or a watch of at "
    "least 10 s in the same request) with the user, item and cohort features of day d-1 joined "
    "point-in-time. Ratings-only sources (MovieLens): rating >= 4 is positive, plus 4 hashed "
    "negative samples per positive. Retrieval trains on the positives.",
    code_version="1",
    op_tags=SPARK_DRIVER_POD,  # its pod under dagster-k8s (assets/pods.py)
    pool="lake_training_examples",  # one writer of the table at a time (dagster.yaml)
)
def training_examples(
    context: AssetExecutionContext, spark: SparkResource, lake: LakeResource
) -> Iterator[MaterializeResult | AssetMaterialization]:
    session, paths = spark.session(), lake.paths()
    # All or none up to the hand-off (as ingestion: assets/ingest.py): the metadata is read
    # after the commit, and a failure or a Terminate there left examples Dagster never recorded.
    with all_or_none(session, [paths.table(TABLE)], progress=context.log.warning):
        result = build_training_examples(
            session,
            paths,
            partition_days(context),
            run_id=context.run.run_id,
            progress=context.log.info,
            # the partitions' first day, RECASSETS_START_DATE included: no features before it
            first_day=DAILY.start.date(),
        )
        reader = VersionReader(paths)
        versions = {d: reader.examples(d) for d in result.rows}
        per_day = {
            d: {
                "dagster/row_count": result.rows[d],
                "positives": result.positives[d],
                "recipe": result.recipe[d],
                "features_day": result.features_day[d] or "none (first day: zeros)",
                "lineage": lineage_record(
                    TABLE,
                    d,
                    result.version,
                    versions[d],
                    _read(d, result.features_day[d], result.read),  # as its commit records
                    context.run.run_id,
                ),
            }  # fmt: skip
            for d in result.rows
        }
        metadata = {
            "run_days": len(result.rows),
            **table_metadata(session, paths, TABLE, result.version, result.read),
        }
    add_day_metadata(context, per_day)
    yield from results_with_data_versions(context, versions, metadata)
    observe_training_data(context, paths, result.rows)


def _read(day: str, features_day: str | None, versions: Mapping[str, int | None]) -> dict:
    """What the example day read, by table: its days and the Delta version."""
    spans = {"raw_events": [day, day], "users": ["first", day], "items": ["first", day]}
    for t in READS[3:]:
        spans[t] = [features_day, features_day] if features_day else []
    return {t: {"days": spans[t], "delta_version": versions.get(t)} for t in READS}


ASSETS = [training_data, training_examples]
