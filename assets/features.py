"""Stage ``features``: user, item and cohort feature tables (PySpark -> Delta), daily.

The three tables read the same 28-day event window, so one multi-asset computes them together
(one read, three writes). A range of days runs as one Dagster run (single-run backfill) and, from
``RANGE_MIN_DAYS`` days on, as one pass over the range (``recassets.features.backfill``: a
constant number of Spark jobs, one commit per table); a day or two take the incremental per-day
path. Both give the same tables.
"""

from typing import TYPE_CHECKING

from dagster import (
    AssetDep,
    AssetExecutionContext,
    AssetKey,
    AssetSpec,
    BackfillPolicy,
    MetadataValue,
    TableColumn,
    TableSchema,
    TimeWindowPartitionMapping,
    multi_asset,
)

from assets import keys
from assets.beta import accept_beta
from assets.metadata import lineage_record, table_metadata
from assets.partitions import (
    DAILY,
    add_day_metadata,
    partition_days,
    results_with_data_versions,
)
from assets.pods import SPARK_DRIVER_POD
from recassets.features.pipelines import FeatureResult, build_features, undo_features
from recassets.features.schema import TABLES
from recassets.lineage.versions import VersionReader
from recassets.paths import Paths
from resources import LakeResource, SparkResource

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

GROUP = "features"
# The features of d read raw_events d-27..d (their widest counters: 28 days), and Dagster's graph
# says so: a day re-ingested with changed files, or landing late, marks the features of every
# later day whose window holds it stale (not only its own day, as an identity mapping did: the
# later days' counters were silently wrong, shown fresh), and the daemon's DAILY_EAGER rebuilds
# them (sensors/conditions.py). Days before the first partition are no dependency. Users and
# items stay one day to one day: their tables are cumulative (up to d), which no window says.
RAW_WINDOW = accept_beta(TimeWindowPartitionMapping)(
    start_offset=-27, end_offset=0, allow_nonexistent_upstream_partitions=True
)
UPSTREAM = [AssetDep(keys.RAW_EVENTS, partition_mapping=RAW_WINDOW), keys.USERS, keys.ITEMS]
KEYS = {key.path[-1]: key for key in keys.FEATURE_TABLES}  # by table name

DESCRIPTIONS = {
    "user_features": "Per user, as of the end of day d: impressions, clicks, likes, engagements "
    "and watch time over 1, 7 and 28 days; smoothed CTR; country, device, age bucket; the last "
    "50 engagements in time order (sequence of item, type, time, value) and their item ids (ID "
    "list); top categories with weights.",
    "item_features": "Per item, as of the end of day d: the same counters and smoothed CTR, age "
    "since first seen, category, creator, a trending score (1-day against 7-day rate) and a "
    "content embedding.",
    "cohort_features": "Per cohort (country x age bucket) and item category, as of the end of "
    "day d: 7- and 28-day impressions, clicks, engagements and smoothed CTR.",
}


def _schema(ddl: str) -> TableSchema:
    cols = []
    for part in _split_ddl(ddl):
        name, _, rest = part.strip().partition(" ")
        cols.append(TableColumn(name, rest.replace(" NOT NULL", "")))
    return TableSchema(columns=cols)


def _split_ddl(ddl: str) -> list[str]:
    """Split a DDL string on top-level commas (struct types hold commas of their own)."""
    parts, depth, current = [], 0, ""
    for ch in ddl:
        depth += ch == "<"
        depth -= ch == ">"
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    return [*parts, current]


@multi_asset(
    specs=[
        AssetSpec(
            KEYS[name],
            group_name=GROUP,
            deps=UPSTREAM,
            description=DESCRIPTIONS[name],
            kinds={"spark", "delta"},
            metadata={"dagster/column_schema": _schema(ddl)},
        )
        for name, ddl in TABLES.items()
    ],
    partitions_def=DAILY,
    backfill_policy=BackfillPolicy.single_run(),
    can_subset=False,
    name="feature_tables",
    code_version="1",
    op_tags=SPARK_DRIVER_POD,  # its pod under dagster-k8s (assets/pods.py)
    pool="lake_features",  # one writer of the feature tables at a time (dagster.yaml)
)
def feature_tables(context: AssetExecutionContext, spark: SparkResource, lake: LakeResource):
    session, paths = spark.session(), lake.paths()
    # The three tables and the run's metadata, all or none up to the hand-off (as ingestion:
    # assets/ingest.py): a failure or a Terminate after a table's commit, in the next table's
    # write or in the metadata read after them, restores each table to its version before the
    # run, where the tables were left out of step and Dagster recorded none of it.
    with undo_features(session, paths, progress=context.log.warning):
        result = build_features(
            session,
            paths,
            partition_days(context),
            run_id=context.run.run_id,
            progress=context.log.info,
        )
        outputs = _outputs(context.run.run_id, session, paths, result)
    for key, per_day, versions, metadata in outputs:
        add_day_metadata(context, per_day, asset_key=key)
        yield from results_with_data_versions(context, versions, metadata, asset_key=key)


def _outputs(
    run_id: str, session: "SparkSession", paths: Paths, result: FeatureResult
) -> list[tuple[AssetKey, dict, dict[str, str], dict]]:
    """Per table: its key, each day's metadata, each day's data version (a digest of the
    ingest partitions its window read) and what the run's days share."""
    reader = VersionReader(paths)
    versions = {day: reader.features(day) for day in result.inputs}
    out = []
    for name in TABLES:
        per_day = {
            day: {
                "dagster/row_count": rows,
                "inputs": MetadataValue.json(result.inputs[day]),
                "lineage": lineage_record(
                    name,
                    day,
                    result.versions[name],
                    versions[day],
                    _read(day, result.inputs[day]),
                    run_id,
                ),
            }  # fmt: skip
            for day, rows in result.rows[name].items()
        }
        metadata = {
            "run_days": len(result.days),
            **table_metadata(session, paths, name, result.versions[name]),
        }
        out.append((KEYS[name], per_day, {d: versions[d] for d in result.rows[name]}, metadata))
    return out


def _read(day: str, inputs: dict) -> dict:
    """What the feature day read, by table: its days and the Delta version."""
    return {
        "raw_events": {
            "days": [inputs["raw_events"]["from"], inputs["raw_events"]["to"]],
            "delta_version": inputs["raw_events"]["delta_version"],
        },
        "users": {"days": ["first", day], "delta_version": inputs["users_delta_version"]},
        "items": {"days": ["first", day], "delta_version": inputs["items_delta_version"]},
    }


ASSETS = [feature_tables]
