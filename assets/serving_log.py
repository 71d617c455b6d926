"""``lake/serving_log``: the serving decision log, landed by the service, ingested like events.

The BentoML service appends one record per ``/recommend`` and ``/rank`` answer to JSON Lines
files under ``RECASSETS_HOME/landing/serving_log/dt=YYYY-MM-DD/`` (``recassets.bento.decisions``);
this asset ingests a day of them into the Delta table ``serving_log`` with the events' rules
(``recassets.ingest.ingest``: bad lines to the quarantine with file, line and field; a repeated
request id kept once) and writes the day's lineage manifest (each file with its sha256).

Partitioned by its own days (``assets.partitions.SERVING_DAYS``: the days answers were served,
not the data's days), and not in the demo's selection (nothing has been served when the demo
materializes): ``recassets materialize --select lake/serving_log``, or the UI.

Once a day is ingested, the table is the log's record and its landing files may be cleaned up
(at the defaults a worker writes up to 17,280 files a day) or compressed. A day whose landing
lost files its last ingestion read (``landing_losses``) is therefore kept as the table has it,
not re-ingested from what is left: that would replace its rows with fewer, as emptying an
events day withdraws it. The run says which days it kept and why. A day that lost files and
gained others fails the run, naming both: ingesting it would lose the first's rows, skipping
it the second's, and which is right needs a person (restore the lost files next to the new).

A day already ingested by this code version from exactly the files it holds (names and sizes:
``landing_changes``), whose rows are in the table, is not read again: the default run
(``recassets materialize --select lake/serving_log``) covers every day the log landed, and
re-reading a long log's old days cost most of it (2,000 files of one day: 41 s, against 10 s
for the same records in one file). ``reingest: true`` in the run's config reads them anyway.
"""

# No `from __future__ import annotations`: Dagster reads the context annotation.
import datetime as dt
from typing import TYPE_CHECKING

from dagster import (
    AssetExecutionContext,
    AssetSpec,
    BackfillPolicy,
    Config,
    MaterializeResult,
    asset,
)
from pydantic import Field

from assets import keys
from assets.beta import accept_beta
from assets.ingest import day_metadata, ingest_metadata
from assets.partitions import SERVING_DAYS, add_day_metadata, partition_days
from assets.pods import SPARK_DRIVER_POD
from recassets.events import SERVING_LOG
from recassets.ingest import ingest
from recassets.ingest.lineage import landing_changes
from recassets.lake import days_with_rows
from recassets.paths import Paths
from resources import LakeResource, SparkResource

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

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


class ServingLogConfig(Config):
    reingest: bool = Field(
        default=False,
        description="Read again the days already ingested by this code version from exactly "
        "the files they hold (skipped by default: the table has them).",
    )


@accept_beta(asset)(  # backfill_policy is beta in Dagster 1.13 (assets/beta.py)
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
    op_tags=SPARK_DRIVER_POD,  # its pod under dagster-k8s (assets/pods.py)
)
def serving_log(
    context: AssetExecutionContext,
    config: ServingLogConfig,
    spark: SparkResource,
    lake: LakeResource,
) -> MaterializeResult:
    session, paths = spark.session(), lake.paths()
    days, kept, unchanged = _days_to_ingest(paths, partition_days(context))
    if unchanged and not config.reingest:
        absent = _not_in_table(session, paths, unchanged)
        days = sorted({*days, *absent})
        unchanged = {d: rows for d, rows in unchanged.items() if d not in absent}
        for day in unchanged:
            context.add_asset_metadata(
                {"unchanged": "ingested from these files"}, partition_key=day
            )
        if unchanged:
            context.log.info(
                f"serving_log: {len(unchanged)} day(s) already ingested from the files they hold, "
                f"not read again ({_names(sorted(unchanged))}); `reingest: true` reads them"
            )
    else:
        days = sorted({*days, *unchanged})
        unchanged = {}
    for day, lost in kept.items():
        context.log.warning(
            f"serving_log {day} kept as the table has it: its landing lost {len(lost)} file(s) "
            f"its ingestion read ({_names(lost)}); re-ingesting would replace its rows with fewer"
        )
        context.add_asset_metadata(
            {"kept": f"landing lost {len(lost)} file(s) since ingestion: {_names(lost)}"},
            partition_key=day,
        )
    counts = {"kept_days": len(kept), "unchanged_days": len(unchanged)}
    if not days:
        return MaterializeResult(metadata={"run_days": 0, **counts})
    result = ingest(
        session,
        paths,
        SERVING_LOG.name,
        days,
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
    metadata = ingest_metadata(session, paths, result, SERVING_LOG)
    return MaterializeResult(metadata={**metadata, **counts})


def _days_to_ingest(
    paths: Paths, days: list[str]
) -> tuple[list[str], dict[str, list[str]], dict[str, int]]:
    """The run's days to ingest, those kept as the table has them (day -> lost files) and
    those unchanged since their ingestion (day -> the rows it vouched for); ``ValueError``
    naming every day that lost files and gained others (the module docstring)."""
    todo, kept, unchanged, mixed = [], {}, {}, []
    for day in days:
        change = landing_changes(
            paths, SERVING_LOG.name, day, paths.landing_dir(SERVING_LOG.name, day)
        )
        if change.lost and change.new:
            mixed.append(f"{day} lost {_names(change.lost)} and gained {_names(change.new)}")
        elif change.lost:
            kept[day] = change.lost
        elif change.unchanged:
            unchanged[day] = change.rows
        else:
            todo.append(day)
    if mixed:
        raise ValueError(
            "decision log day(s) whose landing lost files its ingestion read and gained others: "
            + "; ".join(mixed)
            + ". Ingesting would drop the lost files' rows from the table, skipping would leave "
            "the new ones out: restore the lost files (or move the new ones to a later day's "
            "folder), then run again"
        )
    return todo, kept, unchanged


def _not_in_table(session: "SparkSession", paths: Paths, unchanged: dict[str, int]) -> set[str]:
    """The unchanged days whose manifest vouches for rows the table does not hold (a table
    deleted or restored to an older version since): they are ingested again."""
    vouched = [dt.date.fromisoformat(d) for d, rows in unchanged.items() if rows > 0]
    held = days_with_rows(session, paths.table(SERVING_LOG.name), vouched)
    return {d.isoformat() for d in vouched if d not in held}


def _names(names: list[str], shown: int = 5) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


ASSETS = [serving_log_files, serving_log]
