"""Stage ``ingest``: landing files -> ``raw_events``, ``users`` and ``items`` Delta tables.

The landing folders are declared as external assets, so the lineage graph starts at the files.
Each table asset ingests the days of its run in one Spark job (single-run backfill policy), so
importing months of history is one run, not hundreds.
"""

from collections.abc import Iterator

from dagster import (
    AssetExecutionContext,
    AssetMaterialization,
    AssetSpec,
    BackfillPolicy,
    MaterializeResult,
    MetadataValue,
    TableColumn,
    TableColumnConstraints,
    TableSchema,
    asset,
)

from assets import keys
from assets.beta import accept_beta
from assets.metadata import home_path
from assets.partitions import (
    DAILY,
    add_day_metadata,
    partition_days,
    results_with_data_versions,
)
from assets.pods import SPARK_DRIVER_POD
from assets.training import observe_training_data
from recassets.events import CONTRACTS, Contract
from recassets.freshness import (
    DEFAULT_SETTLE_S,
    DEFAULT_SETTLE_TIMEOUT_S,
    SETTLE_ENV,
    SETTLE_TIMEOUT_ENV,
    env_int,
    wait_until_settled,
)
from recassets.ingest import INGESTED_TABLES, TABLE_NAMES, IngestResult, ingest, lineage_path
from recassets.ingest.writes import undo_ingest
from recassets.lineage.versions import ingest_version, relative
from recassets.paths import Paths
from recassets.preload import preload
from resources import LakeResource, SparkResource

GROUP = "ingest"
# Assets whose blocking checks run Great Expectations (assets/quality.py).
CHECKED = {keys.RAW_EVENTS, *keys.FEATURE_TABLES}

LANDING = {
    name: AssetSpec(
        key=keys.LANDING[name],
        group_name=GROUP,
        # Backticks: the UI renders descriptions as Markdown, where the two `*` would italicize.
        description=f"{name} files as they land: `RECASSETS_HOME/landing/{name}/dt=YYYY-MM-DD/"
        "*.jsonl|*.parquet`. External: written by producers, the generator or an importer.",
        kinds={"file"},
    )
    for name in CONTRACTS
}


def table_schema(contract: Contract) -> TableSchema:
    cols = [
        TableColumn(
            f.name,
            f.type,
            description=f.doc,
            constraints=TableColumnConstraints(nullable=not f.required),
        )
        for f in contract.fields
    ]
    cols.append(TableColumn("dt", "date", description="partition: UTC day of the timestamp"))
    return TableSchema(columns=cols)


def _preview(spark, result: IngestResult, limit: int = 10) -> str:
    from pyspark.sql import functions as F

    days = list(result.partitions)
    table = spark.read.format("delta").load(result.table_path).where(F.col("dt").isin(days))
    # as text: pandas' nanosecond times end at 2262-04-11, and a later day's preview failed
    # the step after both tables had committed (the rows landed, Dagster recorded nothing)
    rows = table.select([F.col(c).cast("string").alias(c) for c in table.columns])
    rows = rows.limit(limit).toPandas()
    return rows.to_markdown(index=False) if len(rows) else "(no rows)"


def ingest_metadata(spark, paths: Paths, result: IngestResult, contract: Contract) -> dict:
    """What every day of the run shares: the Delta versions written, the schema, a preview."""
    return {
        "delta_version": result.delta_version,
        "quarantine_version": result.quarantine_version,
        "table_path": home_path(paths, result.table_path),
        "dagster/column_schema": table_schema(contract),
        "run_days": len(result.partitions),
        "preview": MetadataValue.md(_preview(spark, result)),
    }


def data_versions(paths: Paths, result: IngestResult) -> dict[str, str]:
    """Each day's Dagster data version: a digest of its landing files (path, sha256), so a day
    re-ingested from changed files has a new one and from the same files the same one."""
    table = INGESTED_TABLES[result.dataset]
    return {
        day: ingest_version(paths, table, ((f.path, f.sha256) for f in p.files))
        for day, p in result.partitions.items()
    }


def day_metadata(paths: Paths, result: IngestResult) -> dict[str, dict]:
    """Each day's own figures: rows, quarantined rows, its files (path relative to the home,
    full sha256) and its lineage manifest."""
    table = INGESTED_TABLES[result.dataset]
    out = {}
    for day, p in result.partitions.items():
        files = ["| file | bytes | sha256 |", "| --- | ---: | --- |"] + [
            f"| {relative(paths, f.path)} | {f.size} | `{f.sha256}` |" for f in p.files
        ]
        out[day] = {
            "dagster/row_count": p.rows,
            "quarantined_rows": p.quarantined,
            "empty_day": p.empty,
            "files": MetadataValue.md(
                "\n".join(files) if p.files else f"no landing files in {p.empty_folder}"
            ),
            "lineage_manifest": home_path(paths, lineage_path(paths, table, day)),
        }
    return out


def _ingest_asset(dataset: str, description: str):
    contract = CONTRACTS[dataset]

    @accept_beta(asset)(  # backfill_policy is beta in Dagster 1.13 (assets/beta.py)
        key=keys.INGESTED[dataset],
        group_name=GROUP,
        partitions_def=DAILY,
        backfill_policy=BackfillPolicy.single_run(),
        deps=[LANDING[dataset]],
        kinds={"spark", "delta"},
        description=description,
        code_version="1",
        pool="lake_ingest",  # all three write the quarantine: one writer at a time (dagster.yaml)
        op_tags=SPARK_DRIVER_POD,  # its pod under dagster-k8s (assets/pods.py)
    )
    def _asset(
        context: AssetExecutionContext, spark: SparkResource, lake: LakeResource
    ) -> Iterator[MaterializeResult | AssetMaterialization]:
        # Before the JVM starts: this run's quality checks import Great Expectations and a
        # landing run's feature_store step Feast; meanwhile, in the background.
        selection = context.run.asset_selection  # None: the whole job
        preload(
            *(["great_expectations"] if not selection or selection & CHECKED else []),
            *(["feast"] if not selection or keys.FEATURE_STORE in selection else []),
        )
        paths, days = lake.paths(), partition_days(context)
        if not context.run.tags.get("dagster/sensor_name"):
            # A run launched by hand (UI, CLI) waits for files still being written, as the
            # landing sensor does before it launches one (recassets.freshness.SETTLE_ENV).
            waited = wait_until_settled(
                paths,
                [dataset],
                days,
                env_int(SETTLE_ENV, DEFAULT_SETTLE_S),
                env_int(SETTLE_TIMEOUT_ENV, DEFAULT_SETTLE_TIMEOUT_S),
                progress=context.log.info,
            )
            if waited:
                context.log.info(f"{dataset}: landing files settled after {waited:.1f} s")
        session = spark.session()
        # All or none up to the hand-off: the preview, the metadata and the data versions are
        # read after the commits and the manifests, and a failure or a Terminate there (about
        # 5 s of a 40 s run) left rows and manifests Dagster never recorded, which the landing
        # sensor then trusted. Inside the undo, the previous version comes back; once the
        # result is yielded, Dagster stores it before it raises an interrupt (it holds them
        # while its own code runs), so the commit is recorded.
        with undo_ingest(session, paths, dataset, days, progress=context.log.warning):
            result = ingest(
                session,
                paths,
                dataset,
                days,
                run_id=context.run.run_id,
                progress=context.log.info,
                allow_missing_days=dataset != "events",
            )
            per_day = day_metadata(paths, result)
            versions = data_versions(paths, result)
            metadata = ingest_metadata(session, paths, result, contract)
        if result.quarantined:
            context.log.warning(
                f"{result.quarantined} {dataset} row(s) quarantined: see the quarantine table "
                f"(dataset = '{dataset}') for file, line and reason"
            )
        add_day_metadata(context, per_day)
        yield from results_with_data_versions(context, versions, metadata)
        # A day the examples already hold may have changed under them: the models' staleness.
        observe_training_data(context, paths)

    _asset.__name__ = TABLE_NAMES[dataset]
    return _asset


raw_events = _ingest_asset(
    "events",
    "Raw interaction events (impressions, clicks, likes, shares, watches, ratings) validated "
    "against the event contract, one Delta partition per UTC day. Bad rows go to the "
    "quarantine table with file, line and reason; re-materializing a day replaces it exactly.",
)
users = _ingest_asset(
    "users",
    "User dimension: one row per user, in the partition of the day it landed (on or after the "
    "day first seen), with country, device and age bucket.",
)
items = _ingest_asset(
    "items",
    "Item dimension: one row per item, in the partition of the day it landed (on or after the "
    "day first published), with category, creator and title.",
)

ASSETS = [*LANDING.values(), raw_events, users, items]
