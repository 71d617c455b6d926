"""Delta feature partitions -> Feast-friendly Parquet snapshots (no JVM, no Feast import).

Why a snapshot instead of pointing Feast at the Delta folder: a Delta folder is not a Parquet
dataset. ``replaceWhere`` leaves the replaced files on disk (tombstoned in the log until
VACUUM), so a plain Parquet reader would return every version of a re-materialized day.
``deltalake`` (delta-rs) reads exactly the files of the current table version.

What changes on the way (``flatten``):

- ``event_timestamp`` is added: the last microsecond of day d (UTC), since the row describes
  the state *as of the end of d* (see ``recassets.features.schema``). It falls inside day d,
  so materializing the window of day d picks exactly that partition.
- Feast value types hold primitive lists only, so each list-of-struct column becomes parallel
  primitive arrays of the same length (``SEQUENCES``). Protobuf lists hold no nulls, hence the
  per-field null policy.
- ``cohort_features`` gets a single string key, ``cohort_id`` = ``country|age_bucket|category``
  (Feast joins online rows on one entity per view here; see ``repo.py``).
- Timestamps are written as microseconds: pandas-style nanosecond Parquet is rejected by
  Spark 4 (which Feast's Spark offline store would use) and reported only as a missing source.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from recassets import atomic
from recassets.features.schema import KEYS, TABLES
from recassets.featurestore.config import snapshot_path
from recassets.paths import Paths

EVENT_TIMESTAMP = "event_timestamp"
COHORT_ID = "cohort_id"
COHORT_SEPARATOR = "|"
# Null policy for struct fields inside lists: protobuf lists cannot hold a null.
ERROR, NAN = "error", "nan"


@dataclass(frozen=True)
class SequenceField:
    source: str  # field of the struct
    column: str  # the parallel array it becomes
    on_null: str  # ERROR, NAN, or a replacement string


# list<struct> column -> parallel primitive arrays. Struct timestamps become int64 epoch
# seconds (UTC): the sequence's order and recency matter to models, not sub-second precision.
SEQUENCES: dict[str, tuple[SequenceField, ...]] = {
    "last_engagements": (
        SequenceField("item_id", "last_engagement_item_ids", ERROR),
        SequenceField("event_type", "last_engagement_types", ERROR),
        SequenceField("ts", "last_engagement_ts", ERROR),
        # click, like and share carry no value: NaN, not 0.0 (a 0-second watch is a value)
        SequenceField("value", "last_engagement_values", NAN),
    ),
    "top_categories": (
        # 'unknown' is the lake's convention for a missing category (see cohort_features)
        SequenceField("category", "top_category_names", "unknown"),
        SequenceField("weight", "top_category_weights", NAN),
    ),
}


def end_of_day(day: dt.date | str) -> dt.datetime:
    """The last microsecond of ``day`` in UTC: the event time of that day's feature rows."""
    d = dt.date.fromisoformat(day) if isinstance(day, str) else day
    return dt.datetime.combine(d, dt.time.max, tzinfo=dt.UTC)


def cohort_id(country: str, age_bucket: str, category: str) -> str:
    """The cohort entity's key, as the snapshot writes it."""
    return COHORT_SEPARATOR.join((country, age_bucket, category))


def join_key(table: str) -> str:
    """The column Feast joins ``table``'s snapshot on."""
    keys = KEYS[table]
    return keys[0] if len(keys) == 1 else COHORT_ID


@dataclass(frozen=True)
class PartitionRead:
    table: str
    day: str
    rows: pa.Table  # the Delta partition, columns as in the DDL (dt included)
    delta_version: int
    table_path: str


# Tables whose partition may be empty: a cohort has a row only while it has events in the
# 28-day window, so a quiet month (an outage, a paused product) leaves the day without
# cohorts. Its snapshot is then written empty; materializing it loads nothing, so the online
# store keeps the cohort rates it last had, within the view's TTL (where training_examples
# reads 0 for the day: a known, bounded skew until events come back). User and item rows come
# from dimensions as well, so an empty day of theirs means a write that did not happen.
EMPTY_DAY_TABLES = frozenset({"cohort_features"})


def read_partition(paths: Paths, table: str, day: dt.date | str) -> PartitionRead:
    """One day of a Delta feature table, read with delta-rs at its current version.

    A missing table or an empty partition fails loudly: the feature store must never serve
    "no features" because an upstream write did not happen.
    """
    return read_partitions(paths, table, [day])[_iso(day)]


def read_partitions(
    paths: Paths, table: str, days: Sequence[dt.date | str]
) -> dict[str, PartitionRead]:
    """Several days of a Delta feature table in one read (one log replay, one scan pruned to
    the days' files), split by day: a range export opens the table once, not once a day
    (215 days x 3 tables took 1.5 min one by one). Fails as ``read_partition`` does, naming
    the first day with no rows."""
    from deltalake.exceptions import DeltaProtocolError, TableNotFoundError

    from recassets.lake import open_delta

    if table not in TABLES:
        raise ValueError(f"unknown feature table {table!r}; expected one of {sorted(TABLES)}")
    isos = sorted({_iso(d) for d in days})
    path = paths.table(table)
    try:
        delta = open_delta(_delta_uri(path))
    except TableNotFoundError as exc:
        raise FileNotFoundError(f"no Delta table {table} at {path}") from exc
    dates = pa.array([dt.date.fromisoformat(i) for i in isos], pa.date32())
    try:
        rows = delta.to_pyarrow_dataset(file_pruning_predicate=[("dt", "in", isos)]).to_table(
            filter=pc.field("dt").isin(dates)
        )
    except DeltaProtocolError:
        # Tables with deletion vectors or column mapping cannot be read as a pyarrow dataset;
        # delta-rs' DataFusion reader applies them. (isos are ISO dates, parsed above.)
        from deltalake import QueryBuilder

        listed = ", ".join(f"DATE '{i}'" for i in isos)
        reader = (
            QueryBuilder().register("t", delta).execute(f"SELECT * FROM t WHERE dt IN ({listed})")
        )
        rows = pa.table(reader.read_all())
    rows = rows.take(pc.sort_indices(rows, [("dt", "ascending")]))
    day_numbers = rows.column("dt").cast(pa.int32()).to_numpy()
    bounds = np.searchsorted(day_numbers, dates.cast(pa.int32()).to_numpy(), side="left")
    ends = np.searchsorted(day_numbers, dates.cast(pa.int32()).to_numpy(), side="right")
    out: dict[str, PartitionRead] = {}
    for iso, lo, hi in zip(isos, bounds, ends, strict=True):
        if hi == lo and table not in EMPTY_DAY_TABLES:
            raise ValueError(
                f"{table} has no rows for dt={iso} (Delta version {delta.version()} at {path})"
            )
        # take, not slice: a sliced list column keeps its parent's offsets and values, which
        # flatten's unzipping reads whole
        day_rows = rows.take(pa.array(np.arange(lo, hi)))
        out[iso] = PartitionRead(table, iso, day_rows, delta.version(), path)
    return out


def flatten(table: str, rows: pa.Table, day: dt.date | str) -> pa.Table:
    """The Feast-friendly form of one partition (see the module docstring), rows sorted by
    the join key so that a snapshot is byte-for-byte reproducible."""
    columns: dict[str, pa.Array] = {}
    if table == "cohort_features":
        columns[COHORT_ID] = pc.binary_join_element_wise(
            *(_plain(rows.column(k)) for k in KEYS[table]), COHORT_SEPARATOR
        )
    for name in rows.column_names:
        if name == "dt":
            continue
        column = _plain(rows.column(name))
        if name in SEQUENCES:
            for field, values in _unzip(table, name, column, rows).items():
                columns[field] = values
        else:
            columns[name] = column
    n = rows.num_rows
    ts = pa.array([end_of_day(day)] * n, pa.timestamp("us", tz="UTC"))
    columns[EVENT_TIMESTAMP] = ts
    out = pa.table(columns)
    return out.sort_by(join_key(table))


def offline_rows(paths: Paths, table: str, day: dt.date | str) -> pa.Table:
    """The rows the feature store must serve for ``day``, straight from Delta."""
    part = read_partition(paths, table, day)
    return flatten(table, part.rows, day)


@dataclass(frozen=True)
class Snapshot:
    table: str
    day: str
    path: str
    rows: int
    delta_version: int
    table_path: str


def export_offline_snapshot(paths: Paths, table: str, day: dt.date | str) -> Snapshot:
    """Write ``<artifacts>/feast/offline/<table>/dt=<day>.parquet`` from the Delta partition.

    Idempotent: re-exporting a day replaces its file atomically (written beside it under a
    ``.``-prefixed name, which Parquet dataset readers skip, then renamed).
    """
    return export_offline_snapshots(paths, table, [day])[_iso(day)]


def export_offline_snapshots(
    paths: Paths, table: str, days: Sequence[dt.date | str]
) -> dict[str, Snapshot]:
    """``export_offline_snapshot`` for several days from one read of the table
    (``read_partitions``); the files are the same as day by day."""
    out: dict[str, Snapshot] = {}
    for iso, part in read_partitions(paths, table, days).items():
        rows = flatten(table, part.rows, iso)
        provenance = {
            "table": table,
            "day": part.day,
            "delta_version": part.delta_version,
            "table_path": part.table_path,
        }
        rows = rows.replace_schema_metadata({b"recassets": json.dumps(provenance).encode()})
        target = snapshot_path(paths, table, iso)
        with atomic.atomic_path(target) as tmp:
            pq.write_table(rows, tmp, coerce_timestamps="us", allow_truncated_timestamps=False)
        out[iso] = Snapshot(
            table, part.day, str(target), rows.num_rows, part.delta_version, part.table_path
        )
    return out


def refresh_stale(paths: Paths, table: str, current: Snapshot) -> dict[str, str]:
    """Bring every other snapshot of ``table`` to ``current``'s schema: DuckDB reads the
    snapshot glob with the first file's schema, so one day exported before a column existed
    (an older release) failed every later materialization ("Column 'seen_item_ids' is not
    found"), naming no file. A stale day is exported again from the lake; one the lake no longer
    holds is moved to ``stale/`` beside them (out of the glob). Returns day -> what was done."""
    want = pq.read_schema(current.path).remove_metadata()
    folder = Path(current.path).parent
    stale = {}
    for f in sorted(folder.glob("dt=*.parquet")):
        if f.name != Path(current.path).name and pq.read_schema(f).remove_metadata() != want:
            stale[f.name[3:-8]] = f
    done: dict[str, str] = {}
    for day, f in stale.items():
        try:
            export_offline_snapshots(paths, table, [day])
            done[day] = "exported again from the lake"
        except (FileNotFoundError, ValueError) as e:
            aside = folder / "stale" / f.name
            aside.parent.mkdir(exist_ok=True)
            f.replace(aside)
            done[day] = f"moved to {aside} ({e})"
    return done


def read_snapshot(path: str | Path) -> pa.Table:
    return pq.read_table(path)


# -- helpers -------------------------------------------------------------------------------


def _plain(column: pa.ChunkedArray) -> pa.Array:
    """One chunk, with delta-rs' view/large types turned into the plain Arrow types Feast's
    readers (pandas, dask) expect."""
    array = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return array.cast(_plain_type(array.type))


def _plain_type(t: pa.DataType) -> pa.DataType:
    if pa.types.is_string_view(t) or pa.types.is_large_string(t):
        return pa.string()
    if pa.types.is_timestamp(t):
        return pa.timestamp("us", tz="UTC")
    if pa.types.is_list(t) or pa.types.is_large_list(t) or pa.types.is_list_view(t):
        return pa.list_(_plain_type(t.value_type))
    if pa.types.is_struct(t):
        return pa.struct([f.with_type(_plain_type(f.type)) for f in t])
    return t


def _unzip(table: str, name: str, column: pa.Array, rows: pa.Table) -> dict[str, pa.Array]:
    """list<struct<a, b>> -> {a_column: list<a>, b_column: list<b>}, same offsets."""
    lists = column
    offsets, null_lists = lists.offsets, lists.is_null()
    children = dict(
        zip([f.name for f in lists.type.value_type], lists.values.flatten(), strict=True)
    )
    out = {}
    for spec in SEQUENCES[name]:
        child = children[spec.source]
        if pa.types.is_timestamp(child.type):
            micros = pc.fill_null(child.cast(pa.int64()), 0).to_numpy()
            # floor, not truncation toward zero: a pre-1970 instant keeps its second
            seconds = np.floor_divide(micros, 1_000_000)
            child = pa.array(
                seconds, pa.int64(), mask=child.is_null().to_numpy(zero_copy_only=False)
            )
        if child.null_count:
            if spec.on_null == ERROR:
                bad = _owner_of_first_null(table, rows, offsets, child)
                raise ValueError(f"{table}.{name}: null {spec.source} inside the list of {bad}")
            fill = float("nan") if spec.on_null == NAN else spec.on_null
            child = pc.fill_null(child, pa.scalar(fill, child.type))
        out[spec.column] = pa.ListArray.from_arrays(offsets, child, mask=null_lists)
    return out


def _owner_of_first_null(table: str, rows: pa.Table, offsets: pa.Array, child: pa.Array) -> str:
    position = pc.index(pc.is_null(child), True).as_py()
    row = int(np.searchsorted(offsets.to_numpy(), position, side="right")) - 1
    keys = {k: rows.column(k)[row].as_py() for k in KEYS[table]}
    return ", ".join(f"{k}={v}" for k, v in keys.items())


def _delta_uri(path: str) -> str:
    # Spark's Hadoop scheme s3a:// is delta-rs' s3://
    return "s3://" + path[len("s3a://") :] if path.startswith("s3a://") else path


def _iso(day: Any) -> str:
    return day if isinstance(day, str) else day.isoformat()
