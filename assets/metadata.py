"""What the UI shows of a lake table's materialization, as Dagster metadata: the schema read
from the Delta log, column lineage, paths relative to ``RECASSETS_HOME``, the lineage record
(the Delta versions read and written). The facts come from ``recassets.lineage``; this module
only turns them into Dagster's types."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from dagster import (
    AssetKey,
    MetadataValue,
    TableColumn,
    TableColumnConstraints,
    TableColumnDep,
    TableColumnLineage,
    TableSchema,
)

from assets import keys
from recassets.lineage.columns import COLUMN_LINEAGE, delta_columns
from recassets.lineage.versions import relative
from recassets.paths import Paths

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# The lake's tables by name, as asset keys (the lineage map names tables).
TABLE_KEYS: dict[str, AssetKey] = {
    key.path[-1]: key for key in (keys.RAW_EVENTS, keys.USERS, keys.ITEMS, *keys.FEATURE_TABLES)
}
TABLE_KEYS[keys.TRAINING_EXAMPLES.path[-1]] = keys.TRAINING_EXAMPLES


def column_lineage(table: str) -> TableColumnLineage:
    """``dagster/column_lineage`` of ``table`` (``recassets.lineage.columns``)."""
    return TableColumnLineage(
        deps_by_column={
            column: [TableColumnDep(asset_key=TABLE_KEYS[t], column_name=c) for t, c in deps]
            for column, deps in COLUMN_LINEAGE[table].items()
        }
    )


def delta_schema(spark: SparkSession, path: str) -> TableSchema:
    """``dagster/column_schema`` from the table's Delta schema, as written."""
    return TableSchema(
        columns=[
            TableColumn(name, type_, constraints=TableColumnConstraints(nullable=nullable))
            for name, type_, nullable in delta_columns(spark, path)
        ]
    )


def home_path(paths: Paths, path: str) -> MetadataValue:
    """A path as the UI shows it: relative to ``RECASSETS_HOME`` (where an auditor's copy of
    the home may lie anywhere)."""
    return MetadataValue.path(relative(paths, path))


def table_metadata(
    spark: SparkSession,
    paths: Paths,
    table: str,
    version: int,
    read: Mapping[str, int | None] | None = None,
) -> dict[str, Any]:
    """What every day of a run of a derived table shares: the Delta version written, the
    versions it read, its schema and its column lineage."""
    path = paths.table(table)
    out: dict[str, Any] = {
        "delta_version": version,
        "table_path": home_path(paths, path),
        "dagster/column_schema": delta_schema(spark, path),
    }
    if table in COLUMN_LINEAGE:
        out["dagster/column_lineage"] = column_lineage(table)
    if read is not None:
        out["delta_versions_read"] = MetadataValue.json(dict(read))
    return out


def lineage_record(
    table: str, day: str, version: int, data_version: str, read: Mapping[str, Any], run_id: str
) -> MetadataValue:
    """The day's lineage record: what it read (tables, their Delta versions, days), what it
    wrote and its data version."""
    return MetadataValue.json(
        {
            "table": table,
            "partition": day,
            "written": {"table": table, "delta_version": version},
            "read": dict(read),
            "data_version": data_version,
            "run_id": run_id,
        }
    )


def bento_facts(paths: Paths, tag: str, lineage: Mapping[str, Any]) -> MetadataValue:
    """The bento's lineage as a table an auditor reads on its page: each model's checkpoint
    with its full sha256 and the training partitions it consumed, the index, the Feast
    registry; ``recassets lineage TAG`` walks on down to the landing files."""
    rows = ["| part | what | sha256 |", "| --- | --- | --- |"]
    for kind in ("two_tower", "ranking"):
        if kind in lineage:
            m = lineage[kind]
            days = sorted(m.get("partitions") or [])
            span = f"{days[0]}..{days[-1]} ({len(days)} days)" if days else "none"
            rows.append(
                f"| {kind} | `{relative(paths, m['checkpoint'])}`, training_examples {span} "
                f"| `{m['sha256']}` |"
            )
    if "index" in lineage:
        rows.append(f"| index | `{relative(paths, lineage['index']['folder'])}` | |")
    feast = lineage.get("feast") or {}
    if feast.get("registry"):
        sha = feast.get("registry_sha256")
        rows.append(
            f"| feast registry | `{relative(paths, feast['registry'])}` | "
            f"{f'`{sha}`' if sha else ''} |"
        )
    rows.append("")
    rows.append(
        f"Down to the landing files: `recassets lineage {tag}`; as a report: "
        f"`recassets audit {tag} --out report.html`."
    )
    return MetadataValue.md("\n".join(rows))
