"""Landed rows as strings, each with the place it came from: the parse half of ingestion.

Owns how files become rows (``_string_frame``): JSON Lines through Spark's JSON reader where
``_LineScan`` found only plain lines, else as text lines parsed with ``from_json``; Parquet
rows as they are. Every field stays a string here so that validation can name each problem
with the raw value; ``_typed`` is the one cast it applies after.

Rows are located lazily. Each carries ``(_uri, _block, _id)`` (``_positioned``), and an index
of splits (``INDEX_DDL``: ``_line_index``, ``_split_counts``, ``_split_offsets``) turns that
into ``source_file`` and ``line`` for the few rows that need it (``_located``): a join per row
cost more. Both JSON Lines reads share one reader (``_jsonl_reader``) so that they plan the same
splits, and lines are read less a trailing CR (``_without_cr``), so CRLF files parse alike.
The two parsers land the same values from the same line: the text parser quotes numbers as
the JSON reader keeps them, as written (``_numbers_as_written``), and a lone surrogate escape,
which both would land as "?", is found in the line's text by either (``_lone_surrogate``), as
is a JSON object or array given to a text field, which each would print differently
(``_nested_in_text``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from recassets.events import Contract
from recassets.ingest.files import LandedFile, _LineScan
from recassets.spark import local_frame

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, DataFrameReader, SparkSession
    from pyspark.sql.types import DataType

# Where rows come from: the index's schema. A row is ``(_uri, _block, _id)``: its file as Spark
# names it (a URI), the byte offset of the split it was read in, and an id that counts up by one
# per row within the split (Parquet rows: the landed path, 0 and the row number). Its index entry
# gives ``source_file`` (the landed path) and ``line = _id + _offset``.
INDEX_DDL = "_uri string, _block bigint, source_file string, _offset bigint"


@dataclass
class _Parsed:
    """A run's readable files as strings, and how to locate their rows and find the text of a
    JSON Lines line again."""

    frame: DataFrame  # _uri, _block, _id, dt, raw, _corrupt, _jsonl, then each field as a string
    lines: DataFrame | None  # _uri, _block, _id, raw of every JSON Lines line (None: no such file)
    index: list[tuple]  # INDEX_DDL rows known before the rows are read
    # JSON reader: the lines of each file (absolute path; empty files left out), which the rows
    # must match, their splits to be indexed from the rows themselves. None: ``index`` is whole.
    expected: dict[str, int] | None
    parser: str  # "json": Spark's JSON reader; "text": lines, then from_json


def _string_frame(
    spark: SparkSession,
    contract: Contract,
    files: list[LandedFile],
    scans: dict[str, _LineScan],
    parser: str = "json",
) -> _Parsed:
    """One row per landed line, each contract field as a string (typing comes later, so every
    problem can be named), with its partition day and where it comes from.

    JSON Lines rows carry no ``raw`` (null): it is the bulk of a row and only rejected rows
    need it, so ``ingest`` joins it back from ``lines`` for those alone
    (``pipeline._quarantine_rows``). Parquet rows carry theirs (the row as JSON). ``dt`` is
    the day of the ``dt=YYYY-MM-DD`` folder: for JSON Lines Spark's partition discovery gives
    it, a constant per file (a regex over each row's file name cost 0.5 to 1 CPU second per
    million events).

    ``parser="json"`` parses with Spark's JSON reader, about twice as fast as ``from_json``
    (which decodes each string through a ``Reader``). That reader makes one row per line
    except for blank lines (none) and top-level arrays (one per element), so it is used only
    when the sha256 pass found no line that could be either (``_LineScan``): then a row's line
    is its split's first line plus its rank in the split, and ``ingest`` takes both from the
    parsed rows, checking each file's row count against its lines (``pipeline._row_index``).
    Otherwise, or with ``parser="text"``, lines are read as text, numbered by a first pass
    over them (``_line_index``), and parsed with ``from_json``.
    """
    from pyspark.sql import functions as F

    names = contract.names
    fields = ", ".join(f"`{n}` string" for n in names) + ", _corrupt_record string"
    frames = []
    lines = None
    index: list[tuple] = []
    expected = None
    jsonl = [f.path for f in files if f.format == "jsonl"]
    if jsonl:
        if not all(scans[p].plain for p in jsonl):
            parser = "text"
        nested = any(scans[p].nested for p in jsonl)
        text = _positioned(_jsonl_reader(spark, jsonl).text(_literal(jsonl)))
        lines = text.select("_uri", "_block", "_id", _without_cr("value").alias("raw"))
        if parser == "json":
            rows = _positioned(
                _jsonl_reader(spark, jsonl)
                .schema(f"{fields}, dt date")
                .options(**JSON_OPTIONS)  # the same options as from_json's below
                .json(_literal(jsonl))
            )
            expected = {os.path.abspath(p): scans[p].lines for p in jsonl if scans[p].lines}
            # The reader has turned a lone surrogate into "?" by now: found in the lines' text
            # (a filter, no parse, but for the rare line with one), joined back by position;
            # only where a file holds a surrogate's escape at all (``files._LineScan``), so a
            # run without one reads its files once (``benchmarks.ingest``, 1M events: 27.8 s
            # against 28.0 s for the code before either, in the same session)
            # so are a plain string field's object or array values (``_nested_in_text``)
            if any(scans[p].surrogate or scans[p].nested for p in jsonl):
                lone = lines.select(
                    "_uri", "_block", "_id", _unfit_in_text(F.col("raw"), contract, nested)
                ).where(F.col("_unfit").isNotNull())
                rows = rows.join(F.broadcast(lone), ["_uri", "_block", "_id"], "left")
            else:
                rows = rows.withColumn("_unfit", F.lit(None).cast("string"))
        else:
            index = _line_index(text)
            raw = F.col("raw")
            rows = (
                text.select("_uri", "_block", "_id", "dt", _without_cr("value").alias("raw"))
                # blank: spaces and tabs only (Spark's trim() alone trims spaces)
                .where(F.expr("trim(BOTH ' \\t' FROM raw)") != "")
                .withColumn(
                    "_p",
                    F.from_json(_numbers_as_written(raw, contract), fields, JSON_OPTIONS),
                )
                .select(
                    "_uri", "_block", "_id", "dt", "_p.*", _unfit_in_text(raw, contract, nested)
                )
            )
        frames.append(
            rows.select(
                "_uri",
                "_block",
                "_id",
                F.col("dt").cast("date").alias("dt"),
                F.lit(None).cast("string").alias("raw"),
                F.col("_corrupt_record").isNotNull().alias("_corrupt"),
                F.lit(True).alias("_jsonl"),
                *[F.col(f"`{n}`") for n in names],
                "_unfit",
            )
        )
    for f in files:
        if f.format != "parquet":
            continue
        pdf = spark.read.parquet(*_literal([f.path]))
        types = {c.name: c.dataType for c in pdf.schema.fields}
        index.append((f.path, 0, f.path, 1))
        read = {n: _parquet_field(n, types.get(n)) for n in names}
        problems = [unfit for _, unfit in read.values() if unfit is not None]
        frames.append(
            pdf.select(
                F.lit(f.path).alias("_uri"),
                F.lit(0).cast("bigint").alias("_block"),
                F.col("_metadata.row_index").cast("bigint").alias("_id"),
                F.lit(f.day).cast("date").alias("dt"),
                F.to_json(F.struct(*[F.col(f"`{c}`") for c in pdf.columns])).alias("raw"),
                F.lit(False).alias("_corrupt"),
                F.lit(False).alias("_jsonl"),
                *[field.alias(n) for n, (field, _) in read.items()],
                (F.coalesce(*problems) if problems else F.lit(None).cast("string")).alias("_unfit"),
            )
        )
    if not frames:
        empty = local_frame(
            spark,
            [],
            "_uri string, _block bigint, _id bigint, dt date, raw string, _corrupt boolean, "
            "_jsonl boolean, " + ", ".join(f"`{n}` string" for n in names),
        )
        return _Parsed(empty, None, [], None, parser)
    out = frames[0]
    for other in frames[1:]:
        out = out.unionByName(other, allowMissingColumns=True)
    return _Parsed(out, lines, index, expected, parser)


def _parquet_field(name: str, kind: DataType | None) -> tuple[Column, Column | None]:
    """A Parquet column as the string the rules read, and why a row's value cannot be one
    (None: it always can). Binary (BYTE_ARRAY without a string annotation, as Hive and Impala
    write strings) is read as UTF-8 text, a row whose bytes are not UTF-8 named (it landed as
    given, and the lake's readers then failed on the table: probe, 2026-12-06). A struct, list
    or map is no single value: the row is named (a struct had landed as "{1}", two different
    structs as one key)."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import ArrayType, BinaryType, MapType, StructType

    col = F.col(f"`{name}`")
    if kind is None:
        return F.lit(None).cast("string"), None
    if isinstance(kind, (StructType, ArrayType, MapType)):
        what = {StructType: "a struct", ArrayType: "a list", MapType: "a map"}[type(kind)]
        return F.to_json(col), F.when(
            col.isNotNull(), F.lit(f"field {name}: {what}, not a single value")
        )
    if isinstance(kind, BinaryType):
        text = col.cast("string")
        return F.make_valid_utf8(text), F.when(
            col.isNotNull() & ~F.is_valid_utf8(text), F.lit(f"field {name}: not UTF-8 text")
        )
    return col.cast("string"), None


# What Hadoop's glob reads as a pattern in a path given to Spark: `part-0000[0].jsonl` read
# `part-00000.jsonl` instead (the file itself silently never), `events [1].jsonl` failed the
# run with PATH_NOT_FOUND. A backslash makes each one literal.
_GLOB = re.compile(r"([\\{}\[\]*?])")


def _literal(paths: list[str]) -> list[str]:
    """``paths`` as Spark must be given them to read exactly those files (``_GLOB``)."""
    return [_GLOB.sub(r"\\\1", p) for p in paths]


# Jackson reads {'a': 1} (allowSingleQuotes, on by default) where JSON and Python do not:
# a line of two single-quoted records, {'a': 1}{'a': 2} (a producer's str(dict) without a
# newline), passed the one-line-one-record check (Python could not parse it) and Spark kept
# the first record, the second lost without a word. Off, such a line is a quarantined row.
JSON_OPTIONS = {
    "mode": "PERMISSIVE",
    "columnNameOfCorruptRecord": "_corrupt_record",
    "allowSingleQuotes": "false",
}


# A number as JSON writes it, whole, and the non-numbers Jackson reads besides (Spark's
# allowNonNumericNumbers, on by default).
_NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?|NaN|[+-]?(?:Infinity|INF)"


def _numbers_as_written(raw: Column, contract: Contract) -> Column:
    """``raw`` with the number given to each field (every one is read as a string) quoted as
    written, so that the text parser lands what the JSON reader does: the JSON token's text.

    ``from_json`` re-prints a number it reads into a string field through a double, where the
    JSON reader keeps its text: one line in any file of a run that sends it to the text parser
    (a blank one) changed what landed from every file. Ids: ``4.9999999999999999`` became
    ``5.0`` and landed as user 5 (the ids rule, ``_typed``, judges the fraction as written);
    string fields: ``"event_id": 7e2`` landed as "700.0", ``1.10`` as "1.1", the events
    ``0.30000000000000001`` and ``0.3`` collided as one id (the second quarantined as its
    duplicate), ``"request_id": 1e2`` (which joins the serving log) as "100.0"; ``value``:
    ``NaN`` became the string ``"NaN"`` with its quotes, refused as no double rather than as
    no finite number. Kept as written rather than refused: a number is a valid id or code
    (``"country": 250`` for ISO 3166's numeric code), the JSON reader, twice as fast and the
    usual parser, has always landed it so, and its text is the one value both parsers can
    give alike (a double cannot tell ``0.3`` from ``0.30000000000000001``).

    A key follows ``{`` or ``,``; inside a string its quote would be escaped, so a value that
    looks like a key is left alone. Quoted, the value reads as it would unquoted (a string id
    is read the same way), but for a key of the contract inside a nested object: in a text
    field a row reject (``_nested_in_text``), elsewhere not landed.
    """
    from pyspark.sql import functions as F

    keys = "|".join(re.escape(n) for n in contract.names)
    pattern = rf'([{{,]\s*"(?:{keys})"\s*:\s*)({_NUMBER})(?=\s*[,}}])'
    return F.regexp_replace(raw, pattern, '$1"$2"')


# A \u escape of a UTF-16 surrogate not in a valid pair (high, d800-dbff, then low,
# dc00-dfff), in JSON text whose escaped backslashes are out of the way (``_lone_surrogate``).
_LONE = (
    r"\\u[dD][89abAB][0-9a-fA-F]{2}(?!\\u[dD][c-fC-F][0-9a-fA-F]{2})"
    r"|(?<!\\u[dD][89abAB][0-9a-fA-F]{2})\\u[dD][c-fC-F][0-9a-fA-F]{2}"
)
LONE_SURROGATE = (
    "a lone surrogate escape (\\ud800-\\udfff without its pair: text cut mid-character)"
)


def _lone_surrogate(raw: Column, names: list[str]) -> Column:
    """``_unfit``: ``field F: <LONE_SURROGATE>`` where the line ``raw`` gives the field ``F``
    (the first of ``names`` to) a lone surrogate escape, else null.

    Such an escape (``"\\ud83d"``: JavaScript's slice of a string cut mid-emoji) is no text:
    both parsers land it as "?", so a title read "cut emoji ?" and the event ids ``s\\ud83d``
    and ``s\\ud83e`` both became ``s?``, the second quarantined as a duplicate of an id it is
    not. Only the line's text shows it, hence here, with the line, and not in ``_check``. The
    field is found by parsing the rare line that has one again with each lone escape made
    U+FFFF; a lone escape in a field outside the contract is no landed value, and is left.
    """
    from pyspark.sql import functions as F

    # every backslash left after escaped ones ("\\\\") is out of the way starts an escape
    escapes = F.regexp_replace(raw, r"\\\\", "  ")
    marked = F.regexp_replace(escapes, _LONE, r"\\uffff")
    parsed = F.from_json(marked, ", ".join(f"`{n}` string" for n in names), JSON_OPTIONS)
    field = F.coalesce(*[F.when(F.instr(parsed[n], "\uffff") > 0, F.lit(n)) for n in names])
    maybe = (raw.contains("\\ud") | raw.contains("\\uD")) & escapes.rlike(_LONE)
    return F.when(maybe, F.concat(F.lit("field "), field, F.lit(f": {LONE_SURROGATE}"))).alias(
        "_unfit"
    )


NESTED_IN_TEXT = "a JSON object or array, not text"


def _nested_in_text(raw: Column, names: list[str]) -> Column:
    """``field F: <NESTED_IN_TEXT>`` where the line ``raw`` gives the plain string field ``F``
    (``Contract.plain_strings``, the first of them to) a JSON object or array, else null.

    Both parsers would land its JSON text, each differently: Spark's JSON reader as written,
    spaces included, ``from_json`` re-printed (``{"en" :  "X", "n": 1.50}`` against
    ``{"en":"X","n":1.5}``), and which parser reads a run is chosen by one odd line anywhere in
    it; a title, a country or a request id (which joins the serving log) then differed from
    run to run. A row reject, as a Parquet struct in such a field is: no producer means to send
    an object as a title, and a string that holds JSON text (``"{\"en\": ..}"``) still
    lands as written. Told apart by the value's type as ``from_json`` reads it into a variant,
    only on a line whose text shows such a key followed by ``{`` or ``[``.
    """
    from pyspark.sql import functions as F

    keys = "|".join(re.escape(n) for n in names)
    maybe = raw.rlike(rf'"(?:{keys})"\s*:\s*[\[{{]')
    parsed = F.from_json(raw, ", ".join(f"`{n}` variant" for n in names), JSON_OPTIONS)
    field = F.coalesce(
        *[F.when(F.schema_of_variant(parsed[n]).rlike("^(OBJECT|ARRAY)"), F.lit(n)) for n in names]
    )
    return F.when(maybe, F.concat(F.lit("field "), field, F.lit(f": {NESTED_IN_TEXT}")))


def _unfit_in_text(raw: Column, contract: Contract, nested: bool) -> Column:
    """``_unfit`` of a JSON Lines line from its text: a lone surrogate escape
    (``_lone_surrogate``), else, where the scan saw one (``nested``), a plain string field
    given an object or array (``_nested_in_text``)."""
    from pyspark.sql import functions as F

    lone = _lone_surrogate(raw, contract.names)
    if not nested or not contract.plain_strings:
        return lone
    return F.coalesce(lone, _nested_in_text(raw, contract.plain_strings)).alias("_unfit")


def _jsonl_reader(spark: SparkSession, paths: list[str]) -> DataFrameReader:
    """The reader of both JSON Lines reads (text and JSON), alike in every option that could
    plan other splits: rows of the one are matched to lines of the other by position.

    ``basePath``: the dataset's landing folder, so that partition discovery adds ``dt`` from
    the ``dt=YYYY-MM-DD`` folder of each file.
    """
    bases = {os.path.dirname(os.path.dirname(p)) for p in paths}
    folders = {os.path.basename(os.path.dirname(p)) for p in paths}
    if len(bases) != 1 or not all(f.startswith("dt=") for f in folders):
        raise ValueError(f"JSON Lines files outside one dataset's dt= folders: {paths[:3]}...")
    return spark.read.option("lineSep", "\n").option("basePath", bases.pop())


def _line_index(text: DataFrame) -> list[tuple]:
    """The ``INDEX_DDL`` rows of the text files read as ``text`` (``_positioned`` lines).

    Spark reads a big file in splits, one task each, and does not number lines. This first,
    cheap pass (no JSON parsing) counts the lines of each split (file, byte offset); the line
    of a row is then its split's first line plus its position in the split, which
    ``monotonically_increasing_id`` gives: one task reads one split in order, its ids
    consecutive, and every later read of the same files plans the same splits in the same
    tasks. (Reading each file as one value and exploding it ran one file per core, with the
    whole file in memory.) Only the text parser needs it: where the JSON reader makes one row
    per line, its own rows give the same counts (``pipeline._row_index``).
    """
    return _split_offsets(_split_counts(text))[0]


def _split_counts(rows: DataFrame) -> list:
    """``_uri, _block, n, first_id`` of each split ``rows`` (``_positioned``) were read in."""
    from pyspark.sql import functions as F

    return (
        rows.groupBy("_uri", "_block")
        .agg(F.count("*").alias("n"), F.min("_id").alias("first_id"))
        .collect()
    )


def _split_offsets(splits: list) -> tuple[list[tuple], dict[str, int]]:
    """The ``INDEX_DDL`` rows of the splits (``_split_counts``), and the rows of each file."""
    seen: dict[str, int] = {}
    index = []
    for r in sorted(splits, key=lambda r: (r["_uri"], r["_block"])):
        # Spark names files by URI (file:/a%20b/...); lineage and reasons use the landed paths.
        path = _uri_to_path(r["_uri"])
        before = seen.get(path, 0)
        seen[path] = before + r["n"]
        index.append((r["_uri"], r["_block"], path, 1 + before - r["first_id"]))
    return index, seen


def _positioned(df: DataFrame) -> DataFrame:
    from pyspark.sql import functions as F

    return df.select(
        "*",
        F.col("_metadata.file_path").alias("_uri"),
        F.col("_metadata.file_block_start").alias("_block"),
        F.monotonically_increasing_id().alias("_id"),
    )


def _located(df: DataFrame, index: DataFrame) -> DataFrame:
    """``df`` (rows of ``_string_frame``) with ``source_file`` and ``line``. For the few rows that
    need them (rejected ones, holders of a repeated key), not all: a join per row cost more."""
    from pyspark.sql import functions as F

    return (
        df.join(F.broadcast(index), ["_uri", "_block"])
        .withColumn("line", F.col("_id") + F.col("_offset"))
        .drop("_offset")
    )


def _without_cr(name: str) -> Column:
    """The text less one trailing CR (CRLF files). Not a regex: this runs on every line."""
    from pyspark.sql import functions as F

    value = F.col(name)
    return F.when(
        value.endswith("\r"), F.expr(f"substring({name}, 1, length({name}) - 1)")
    ).otherwise(value)


def _uri_to_path(uri: str) -> str:
    from urllib.parse import unquote, urlparse

    parsed = urlparse(uri)
    return unquote(parsed.path) if parsed.scheme in ("", "file") else uri


def _typed(name: str, type_: str) -> Column:
    from pyspark.sql import functions as F

    if type_ == "string":
        return F.col(name)
    if type_ == "timestamp":
        return iso_timestamp(F.col(name)).try_cast("timestamp")
    if type_ == "bigint":
        # a whole number written as a float ("5.0", "1.2345678E7"): what pandas writes for an
        # id column with a missing value in it (float64), in JSON or in Parquet; every such
        # row was rejected. Judged by its value, not its text (Spark's JSON reader keeps a
        # number as written, from_json and a Parquet double re-print it in E-notation), and
        # below 10^15 only: a float holds 15 digits exactly, a longer one may be another id.
        # 20 decimals: at 10 "4.99999999999" rounded to 5 and landed as another user's id.
        raw = F.col(f"`{name}`")
        d = raw.try_cast("decimal(38,20)")
        # (and no digit past the 20th decimal, which the cast would round away)
        exact = ~raw.rlike(r"\.\d{21}")
        whole = F.when(exact & (d == F.floor(d)) & (F.abs(d) < F.lit(10**15)), d.cast("bigint"))
        return F.when(raw.rlike("[.eE]"), whole).otherwise(raw.try_cast("bigint"))
    return F.expr(f"try_cast(`{name}` as {type_})")


_DATE = r"^(\s*[0-9]{4}-[0-9]{2}-[0-9]{2})"


def iso_timestamp(raw: Column) -> Column:
    """``raw`` in the ISO 8601 forms Spark's cast reads: RFC 3339's lower-case ``t`` and
    ``z`` upper-cased, and a time of hours and minutes given a zone gets its seconds
    (``2024-02-29T10:00Z`` -> ``10:00:00Z``). Spark read ``10:00`` but not ``10:00Z`` or
    ``10:00+01:00``: what ``java.time.OffsetDateTime.toString()`` writes whenever the seconds
    are zero, so a Java producer lost one event in 60 to quarantine. Anything else is left
    as it is, for the cast to read or refuse."""
    from pyspark.sql import functions as F

    iso = F.regexp_replace(raw, _DATE + "t", "$1T")
    iso = F.regexp_replace(iso, r"z(\s*)$", "Z$1")
    return F.regexp_replace(iso, _DATE + r"([T ][0-9]{2}:[0-9]{2})(?=\s*$|[Z+-])", "$1$2:00")
