"""``lake/serving_log``: the serving decision log, landed by the service, ingested like events.

The BentoML service appends one record per ``/recommend`` and ``/rank`` answer to JSON Lines
files under ``RECASSETS_HOME/landing/serving_log/dt=YYYY-MM-DD/`` (``recassets.bento.decisions``);
this asset ingests a day of them into the Delta table ``serving_log`` with the events' rules
(``recassets.ingest.ingest``: bad lines to the quarantine with file, line and field; a repeated
request id kept once) and writes the day's lineage manifest (each file with its sha256).

Partitioned by its own days (``assets.partitions.SERVING_DAYS``: the days answers were served,
not the data's days), and not in the demo's selection (nothing has been served when the demo
materializes): ``recassets materialize --select lake/serving_log``, or the UI.
"""

# No `from __future__ import annotations`: Dagster reads the context annotation.
from dagster import (
    AssetExecutionContext,
    AssetSpec,
    BackfillPolicy,
    MaterializeResult,
    asset,
)

from assets import keys
from assets.ingest import day_metadata, ingest_metadata
from assets.partitions import SERVING_DAYS, add_day_metadata, partition_days
from recassets.events import SERVING_LOG
from recassets.ingest import ingest
from resources import LakeResource, SparkResource

GROUP = "serving"

serving_log_files = AssetSpec(
    key=keys.SERVING_LOG_FILES,
    group_name=GROUP,
    deps=[keys.RECOMMENDER_BENTO],
    description="The decision log as the service lands it: "
    "`RECASSETS_HOME/landing/serving_log/dt=YYYY-MM-DD/*.jsonl`, one JSON object per answer "
    "(sampled at `RECASSETS_DECISION_LOG_RATE`). External: written by `bentoml serve`.",
    kinds={"file"},
)


@asset(
    key=keys.SERVING_LOG,
    group_name=GROUP,
    partitions_def=SERVING_DAYS,
    backfill_policy=BackfillPolicy.single_run(),
    deps=[serving_log_files],
    kinds={"spark", "delta"},
    description="What was served: one row per `/recommend` or `/rank` answer (request id, time, "
    "user, the items with scores, stages and sources, the policy, the model versions, the "
    "features day, the bento tag), one Delta partition per UTC day served. Bad lines go to the "
    "quarantine with file, line and reason. `recassets lineage REQUEST_ID` starts here.",
    code_version="1",
    pool="lake_ingest",  # it writes the quarantine, as the other ingest assets do
)
def serving_log(
    context: AssetExecutionContext, spark: SparkResource, lake: LakeResource
) -> MaterializeResult:
    session, paths = spark.session(), lake.paths()
    result = ingest(
        session,
        paths,
        SERVING_LOG.name,
        partition_days(context),
        run_id=context.run.run_id,
        progress=context.log.info,
        allow_missing_days=True,  # a day nothing was served (or logged: rate 0) is normal
    )
    if result.quarantined:
        context.log.warning(
            f"{result.quarantined} decision log line(s) quarantined: see the quarantine table "
            f"(dataset = '{SERVING_LOG.name}') for file, line and reason"
        )
    add_day_metadata(context, day_metadata(paths, result))
    return MaterializeResult(metadata=ingest_metadata(session, paths, result, SERVING_LOG))


ASSETS = [serving_log_files, serving_log]
