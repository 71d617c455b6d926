"""Stage ``training``: the labelled examples models train on (models themselves: later)."""

from collections.abc import Iterator, Mapping

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetMaterialization,
    BackfillPolicy,
    MaterializeResult,
    TimeWindowPartitionMapping,
    asset,
)

from assets import keys
from assets.metadata import lineage_record, table_metadata
from assets.partitions import (
    DAILY,
    add_day_metadata,
    partition_days,
    results_with_data_versions,
)
from assets.pods import SPARK_DRIVER_POD
from recassets.lineage.versions import VersionReader
from recassets.training.examples import READS, TABLE, build_training_examples
from resources import LakeResource, SparkResource

GROUP = "training"
# Examples of day d join the features of d-1; they also depend on the features of d, so that
# a failing blocking quality check on d's features stops d's training data in the same run.
FEATURES_D_MINUS_1_AND_D = TimeWindowPartitionMapping(
    start_offset=-1, end_offset=0, allow_nonexistent_upstream_partitions=True
)


@asset(
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
    result = build_training_examples(
        session,
        paths,
        partition_days(context),
        run_id=context.run.run_id,
        progress=context.log.info,
    )
    reader = VersionReader(paths)
    versions = {d: reader.examples(d) for d in result.rows}
    add_day_metadata(
        context,
        {
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
        },
    )
    metadata = {
        "run_days": len(result.rows),
        **table_metadata(session, paths, TABLE, result.version, result.read),
    }
    yield from results_with_data_versions(context, versions, metadata)


def _read(day: str, features_day: str | None, versions: Mapping[str, int | None]) -> dict:
    """What the example day read, by table: its days and the Delta version."""
    spans = {"raw_events": [day, day], "users": ["first", day], "items": ["first", day]}
    for t in READS[3:]:
        spans[t] = [features_day, features_day] if features_day else []
    return {t: {"days": spans[t], "delta_version": versions.get(t)} for t in READS}


ASSETS = [training_examples]
