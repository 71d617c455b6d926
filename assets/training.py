"""Stage ``training``: the labelled examples models train on (models themselves: later)."""

from dagster import (
    AssetDep,
    AssetExecutionContext,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    TimeWindowPartitionMapping,
    asset,
)

from assets import keys
from assets.partitions import DAILY, add_day_metadata, partition_days
from assets.pods import SPARK_DRIVER_POD
from recassets.training.examples import TABLE, build_training_examples
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
) -> MaterializeResult:
    paths = lake.paths()
    result = build_training_examples(
        spark.session(),
        paths,
        partition_days(context),
        run_id=context.run.run_id,
        progress=context.log.info,
    )
    add_day_metadata(
        context,
        {
            d: {
                "dagster/row_count": result.rows[d],
                "positives": result.positives[d],
                "recipe": result.recipe[d],
                "features_day": result.features_day[d] or "none (first day: zeros)",
            }
            for d in result.rows
        },
    )
    return MaterializeResult(
        metadata={
            "run_days": len(result.rows),
            "delta_version": result.version,
            "table_path": MetadataValue.path(paths.table(TABLE)),
        }
    )


ASSETS = [training_examples]
