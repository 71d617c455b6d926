"""The contract's rules over the string rows: a verdict (``reason``, ``field``) for every row.

Owns every rule but the whole-file ones (``files._classify``): unparseable lines, missing and
mistyped fields, unknown values, a valued event without ``value``, a timestamp outside the
partition's day, a user's or item's first seen at a placeholder time (before 1970), for the
decision log a value out of its shape or items that are no list of items, and what parsing
found no text or no single value (``_unfit``: a lone surrogate, a Parquet struct)
(``_check``), and repeated rows (``Contract.duplicate_fields``: the key, or the decision log's
request id and time; ``_duplicated_keys``, ``_duplicates``, ``_mark_duplicates``): the first
holder, by file then line, lands, each later one is rejected naming where the first stands. Duplicates are apart from the other rules because
``ingest`` runs them only when some key is held twice, and locates only those rows.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from recassets.events import (
    MAX_WATCH_SECONDS,
    RATING_SCALE,
    SERVING_ITEM_DDL,
    SERVING_ITEMS_RULE,
    SERVING_LOG,
    VALUED_EVENT_TYPES,
    Contract,
)
from recassets.ingest.parsing import _located, _typed

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

# What a double field's text may be: a decimal number (JSON's, plus a sign, a bare point and
# spaces around it, as producers write them in strings), or a non-finite one, which the value's
# range rule then names. Spark's cast also reads Java's literals ("4f", "4d", the hex "0x1p2"
# as 4.0): a value no producer means, so those are quarantined as not a double.
DECIMAL = r"^\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*$"
NON_FINITE = r"(?i)^\s*[+-]?(nan|inf|infinity)\s*$"
# The longest string a field of users or items may hold (characters). One category of
# 100 KB ran the model evaluation out of memory (13.7 GB): a vocabulary looks strings up as a
# fixed-width array, each row as wide as the widest. Titles are text, not a vocabulary's key.
# Dimensions only (whose strings are the vocabularies' keys): a rule more in the events'
# generated code would push it past HotSpot's JIT limit (see ``_check``), for strings no model
# reads as keys.
MAX_CHARS = {"title": 1_000}
MAX_CHARS_DEFAULT = 256
CAPPED = ("users", "items")
# A dimension's first_seen before this instant is a placeholder (``_check``).
PLACEHOLDER_BEFORE = "1970-01-01T00:00:01Z"


# A line Spark's JSON parser (Jackson) could not read as one object. Valid JSON past its limits
# lands here too (an ignored field nested 1,500 deep, a number of 1,201 digits, a key of 60,000
# characters): said, so the producer does not look for a syntax error that is not there.
NOT_AN_OBJECT = (
    "unparseable JSON: not a JSON object, or past the JSON parser's limits (1,000 levels of "
    "nesting, numbers of 1,000 digits, names of 50,000 characters, strings of 20,000,000)"
)
# a date and a time of day, as the contract asks (ISO 8601, RFC 3339's lower-case t too; a
# space for the T as Spark writes), then Z, an offset, UTC / GMT or a region (Europe/London).
# A zone abbreviation is refused: Java reads BST as Dhaka (+6) where a UK producer (Python's
# %Z in summer) means +1, CST as Chicago where a Chinese producer means +8: events landed at
# the wrong instant, or on the wrong day, without a word.
TS_SHAPE = (
    r"^\s*[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(:[0-9]{2}([.,][0-9]+)?)?\s*"
    r"([Zz]|[+-][0-9]{2}(:?[0-9]{2})?|UTC|GMT|UT|[A-Za-z_]+(/[A-Za-z0-9_+-]+)+)?\s*$"
)


def validate(frame: DataFrame, contract: Contract, index: DataFrame) -> DataFrame:
    """Type the string frame and attach ``reason`` (null for a good row), ``field``,
    ``source_file`` and ``line``.

    ``index`` (``INDEX_DDL``) locates the frame's rows; the typed fields are ``_t_<name>``.
    Lazy: ``ingest`` runs the same steps with the checked rows persisted in between, so the
    files are parsed once, and locates only the rows that need it.
    """
    checked = _check(frame, contract)
    marked = _mark_duplicates(checked, _duplicates(checked, contract, index), contract)
    return _located(marked, index)


def _check(frame: DataFrame, contract: Contract) -> DataFrame:
    """Every rule but duplicates: ``_t_<name>`` typed fields, ``reason`` and ``field``."""
    from pyspark.sql import functions as F

    # One select, not a withColumn per field: each withColumn re-analyses the whole plan.
    df = frame.select("*", *[_typed(f.name, f.type).alias(f"_t_{f.name}") for f in contract.fields])
    checks: list[tuple[str | Column, Column, Column]] = []  # (field, fails, reason if it fails)
    # a value that is no text (a Parquet binary's bytes, a JSON line's lone surrogate escape,
    # ``parsing._lone_surrogate``) or no single value (a Parquet struct)
    if "_unfit" in frame.columns:
        unfit = F.col("_unfit")
        checks.append((F.regexp_extract(unfit, r"^field (\S+):", 1), unfit.isNotNull(), unfit))
    for f in contract.fields:
        raw = F.col(f"`{f.name}`")
        if f.required:
            checks.append((f.name, raw.isNull(), F.lit(f"missing field {f.name}")))
        if f.type != "string":
            mistyped = F.col(f"_t_{f.name}").isNull()
            if f.type == "double":  # the cast reads Java's forms too: "4f", "4d", "0x1p2"
                mistyped = mistyped | (~raw.rlike(DECIMAL) & ~raw.rlike(NON_FINITE))
            checks.append(
                (
                    f.name,
                    raw.isNotNull() & mistyped,
                    F.concat(
                        F.lit(f"field {f.name}: expected {f.type}, got "), F.substring(raw, 1, 200)
                    ),
                )
            )
    for f in contract.fields if contract.name in CAPPED else ():
        if f.type == "string":
            cap = MAX_CHARS.get(f.name, MAX_CHARS_DEFAULT)
            raw = F.col(f"`{f.name}`")
            checks.append(
                (
                    f.name,
                    F.length(raw) > cap,
                    F.concat(F.lit(f"field {f.name}: "), F.length(raw).cast("string"),
                             F.lit(f" characters, more than {cap}")),
                )
            )  # fmt: skip
    for f in contract.fields:  # a program's values in one shape (a bento tag, a model version)
        if f.pattern:
            raw = F.col(f"`{f.name}`")
            checks.append(
                (
                    f.name,
                    raw.isNotNull() & ~raw.rlike(f"^(?:{f.pattern})$"),
                    F.concat(F.lit(f"field {f.name}: "), F.substring(raw, 1, 80),
                             F.lit(f" is not of the form {f.pattern}")),
                )
            )  # fmt: skip
    if contract.name == SERVING_LOG.name:
        checks.append(
            ("items", _items_broken(F.col("`items`")), F.lit(f"field items: {SERVING_ITEMS_RULE}"))
        )
    for name, allowed in contract.allowed.items():
        value = F.col(f"`{name}`")
        checks.append(
            (
                name,
                value.isNotNull() & ~value.isin(*allowed),
                F.concat(
                    F.lit(f"field {name}: unknown value "),
                    value,
                    F.lit(f" (allowed: {', '.join(allowed)})"),
                ),
            )
        )
    if contract.name == "events":
        checks.append(
            (
                "value",
                F.col("event_type").isin(*VALUED_EVENT_TYPES) & F.col("value").isNull(),
                F.concat(
                    F.lit("missing field value (required for "), F.col("event_type"), F.lit(")")
                ),
            )
        )
        # One rule for the value's range (a rule each grew the generated method; see below):
        # NaN and infinities parse as doubles but poison every average downstream; a watch
        # lasts zero seconds to a week (MAX_WATCH_SECONDS); a rating is on RATING_SCALE.
        v = F.col("_t_value")
        lo, hi = RATING_SCALE
        off_scale = (
            F.isnan(v)
            | (F.abs(v) == float("inf"))
            | ((F.col("event_type") == "watch") & ((v < 0) | (v > MAX_WATCH_SECONDS)))
            | ((F.col("event_type") == "rating") & ((v < lo) | (v > hi)))
        )
        checks.append(
            (
                "value",
                v.isNotNull() & off_scale,
                F.concat(
                    F.lit("field value: "),
                    F.substring(F.col("`value`"), 1, 40),
                    F.lit(f" is not a finite number, a watch of 0 to {MAX_WATCH_SECONDS:,} s, or "
                          f"a rating in {lo:g}..{hi:g}"),
                ),
            )
        )  # fmt: skip
    key = next(f for f in contract.fields if f.name == contract.key)
    if key.type == "string":  # "" or spaces: a key no later row can be told apart by
        # nothing but white space, control or invisible characters ("\n", NBSP, U+200B, NUL)
        blank = F.regexp_replace(F.col(f"`{key.name}`"), r"[\s\p{Z}\p{Cc}\p{Cf}]", "") == ""
        checks.append((key.name, blank, F.lit(f"field {key.name}: empty")))
        # a control character inside a key (escaped, "\u0000"; a raw one makes its line no
        # JSON), or a Parquet string's: an id no log line, terminal or join key shows as is
        control = ~blank & F.col(f"`{key.name}`").rlike(r"\p{Cc}")
        checks.append((key.name, control, F.lit(f"field {key.name}: holds a control character")))
        # a JSON object or array where the id is (``"event_id": {"a": 1}``): the reader keeps
        # its text, spaced as written by one parser and re-printed by the other, so one event
        # would carry two ids; no id is written so
        # (JSON's own starts only: a braced GUID, {3F2504E0-4F89-...}, is an id)
        nested = ~blank & F.col(f"`{key.name}`").rlike(
            r"^\s*(\{\s*[\"}]|\[\s*([\]\"{\[]|true|false|null|-?\d+(\.\d+)?([eE][+-]?\d+)?\s*[,\]]))"
        )
        if "_unfit" in frame.columns:  # a Parquet struct or list: named once, as such
            nested = nested & F.col("_unfit").isNull()
        checks.append(
            (key.name, nested, F.lit(f"field {key.name}: a JSON object or array, not an id"))
        )
    ts = F.col(f"_t_{contract.ts_field}")
    # a cast accepts "2026", "2026-01" or "2026-01-01" (midnight), "10:00:00Z" or "T10:00"
    # (today) and "2026-01-01" padded with spaces: an altered time, not the event's, and a
    # time alone lands on whichever day the run happens (a length rule let the last ones by)
    raw_ts = F.col(f"`{contract.ts_field}`")
    checks.append(
        (
            contract.ts_field,
            ts.isNotNull() & ~raw_ts.rlike(TS_SHAPE),
            F.concat(
                F.lit(f"field {contract.ts_field}: "),
                raw_ts,
                F.lit(
                    " is not a date and a time of day (ISO 8601: 2026-01-01T10:00:00Z, or "
                    "an offset, +01:00; an abbreviation such as CST names several zones)"
                ),
            ),
        )
    )
    # An event lands on its own day. A user or item lands on the day it was first seen or
    # later: a dump of the users known so far lands in one day's folder, their sign-ups from
    # before the history began included (every such row was quarantined: the whole dump but
    # the day's own sign-ups), and a row exported after midnight lands the next day. One
    # first seen after the day it lands is still quarantined: a clock or a producer's error.
    off_day = (
        F.to_date(ts) > F.col("dt") if contract.name in DIMENSIONS else F.to_date(ts) != F.col("dt")
    )
    checks.append(
        (
            contract.ts_field,
            ts.isNotNull() & off_day,
            F.concat(
                F.lit(f"{contract.ts_field} "),
                F.date_format(ts, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'"),
                F.lit(
                    " after partition " if contract.name in DIMENSIONS else " outside partition "
                ),
                F.col("dt").cast("string"),
            ),
        )
    )
    if contract.name in DIMENSIONS:
        # Go's zero time (0001-01-01T00:00:00Z), the Unix epoch, 1582-10-10 (the Gregorian
        # calendar's first days): a producer's "unknown", not a time. Landed, an item was
        # ~739,000 days old and Python could not collect the row ("year 0 is out of range").
        # The epoch itself is the usual placeholder: the first second of 1970 is refused with
        # it, and the daily partitions start in 1970 (``paths.FIRST_DAY``). An event before
        # then lies outside its day, refused above.
        checks.append(
            (
                contract.ts_field,
                ts.isNotNull() & (ts < F.timestamp_seconds(F.lit(1))),
                F.concat(
                    F.lit(f"{contract.ts_field} "),
                    F.date_format(ts, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'"),
                    F.lit(f" reads as a placeholder, not a time (before {PLACEHOLDER_BEFORE})"),
                ),
            )
        )
    # concat_ws skips nulls, coalesce takes the first: every failed rule, joined, and the field
    # of the first. Kept small on purpose: not filter(array(...), lambda), whose higher-order
    # function is not compiled and evaluated every rule several times per row; and the joined
    # text in a column of its own, read once below, not an expression repeated in both
    # branches. The generated method then stays under HotSpot's 8000-byte limit for JIT
    # compilation; above it, the whole parse-and-check stage ran interpreted, 1.5x slower.
    corrupt = F.col("_corrupt")
    df = df.select(
        "*",
        F.concat_ws("; ", *[F.when(fails, why) for _, fails, why in checks]).alias("_reasons"),
        F.when(
            ~corrupt,
            F.coalesce(
                *[F.when(fails, F.lit(n) if isinstance(n, str) else n) for n, fails, _ in checks]
            ),
        ).alias("field"),
    )
    reasons = F.col("_reasons")
    return df.withColumn(
        "reason",
        F.when(corrupt, F.lit(NOT_AN_OBJECT)).otherwise(F.when(reasons != "", reasons)),
    ).drop("_reasons")


def _items_broken(raw: Column) -> Column:
    """Whether a decision record's ``items`` text is no list of items (``SERVING_ITEM_DDL``):
    the reader keeps any JSON value's text for a string field (``42``, ``{..}``, ``"x"``), and
    Spark's ``from_json`` reads NaN and Infinity, which no JSON reader downstream does."""
    from pyspark.sql import functions as F

    parsed = F.from_json(raw, SERVING_ITEM_DDL)
    infinite = lambda v: v.isNotNull() & (F.isnan(v) | (F.abs(v) == float("inf")))  # noqa: E731
    bad_item = lambda x: (  # noqa: E731
        x.isNull() | x["item_id"].isNull() | x["score"].isNull() | infinite(x["score"])
        | infinite(x["price"]) | infinite(x["pctr"]) | infinite(x["cost"])
    )  # fmt: skip
    return raw.isNotNull() & (~raw.rlike(r"^\s*\[") | parsed.isNull() | F.exists(parsed, bad_item))


# The dimensions: each key lands once, in the partition of the day first seen or a later day,
# so that a table is the union of its partitions and every reader's join on the key finds one
# row.
DIMENSIONS = ("users", "items")


def _resent(checked: DataFrame, contract: Contract, held: DataFrame | None) -> DataFrame:
    """Reject each good row of a dimension whose key is already landed: in another partition
    of the table (``held``: ``_t_<key>, _held``, the first such day; None: no table yet), or
    on an earlier day of this run. Without this a re-sent user (a producer sending its
    profiles again on a later day) landed twice, and each day's features and training
    examples that join users doubled that user's rows. A change of attributes travels on the
    events (``country``, ``device``), which are as of the event's time."""
    from pyspark.sql import functions as F

    key = f"_t_{contract.key}"
    good = F.col("reason").isNull()
    first = checked.where(good).groupBy(key).agg(F.min("dt").alias("_run_first"))
    out = checked.join(first, key, "left")
    if held is not None:
        out = out.join(held, key, "left")
    else:
        out = out.withColumn("_held", F.lit(None).cast("date"))
    earlier = F.when(F.col("_held").isNotNull(), F.col("_held")).when(
        F.col("_run_first") < F.col("dt"), F.col("_run_first")
    )
    again = good & earlier.isNotNull()
    # A later day holds the key when an earlier day lands late (the landing sensor's path):
    # that row stays, and this one is quarantined; one run over both days keeps the earlier.
    later = F.concat(
        F.lit(", a later day: that row stays; to keep this earlier one, ingest both days in one "
              "run (recassets materialize --select lake/"), F.lit(contract.name),
        F.lit(" --first "), F.col("dt").cast("string"), F.lit(" --last "), earlier.cast("string"),
        F.lit(")"),
    )  # fmt: skip
    why = F.concat(
        F.lit(f"{contract.key} "), F.col(key).cast("string"), F.lit(" already landed on "),
        earlier.cast("string"),
        F.when(earlier > F.col("dt"), later).otherwise(
            F.lit(f" ({contract.name} land once; changes travel on events)")
        ),
    )  # fmt: skip
    out = out.withColumn("_again", again)  # judged once: the reason changes below
    again = F.col("_again")
    return (
        out.withColumn("reason", F.when(again, why).otherwise(F.col("reason")))
        .withColumn("field", F.when(again, F.lit(contract.key)).otherwise(F.col("field")))
        .drop("_run_first", "_held", "_again")
    )


def _duplicated_keys(checked: DataFrame, contract: Contract) -> DataFrame:
    """``dt, _h, _n``: the 64-bit hash of each key held by more than one good row of a day.

    Only good rows count, so a rejected row never claims its key: a good row that follows a
    rejected one with the same key still lands (a window over all rows ranked the rejected
    one first, and neither landed). A count by hashed key (hash aggregation of fixed-width
    values), not a window over whole rows (a wide shuffle and a sort) nor
    ``min(struct(file, line))`` over every row (a sort aggregation: strings in the buffer).
    Usually it finds nothing; a hash collision only adds a candidate that ``_duplicates``
    drops.
    """
    from pyspark.sql import functions as F

    return (
        checked.where(F.col("reason").isNull())
        .groupBy("dt", duplicate_hash(contract).alias("_h"))
        .agg(F.count("*").alias("_n"))
        .where(F.col("_n") > 1)
    )


def duplicate_hash(contract: Contract) -> Column:
    """The 64-bit hash of what makes a row a duplicate (``Contract.duplicate_fields``)."""
    from pyspark.sql import functions as F

    return F.xxhash64(*[f"_t_{n}" for n in contract.duplicate_fields])


def _duplicates(
    checked: DataFrame,
    contract: Contract,
    index: DataFrame,
    candidates: DataFrame | None = None,
    broadcast: bool = False,
) -> DataFrame:
    """``dt, _t_<key>, _n, _first``: each key held by more than one good row of a day, how many
    hold it and where the first stands (``struct(source_file, line, _uri, _block, _id)``, the
    least), looked up among the rows of the candidate keys only, which alone are located."""
    from pyspark.sql import functions as F

    keys = [f"_t_{n}" for n in contract.duplicate_fields]
    candidates = (_duplicated_keys(checked, contract) if candidates is None else candidates).select(
        "dt", "_h"
    )
    holders = (
        checked.where(F.col("reason").isNull())
        .withColumn("_h", duplicate_hash(contract))
        .join(F.broadcast(candidates) if broadcast else candidates, ["dt", "_h"])
    )
    first = F.min(F.struct("source_file", "line", "_uri", "_block", "_id"))
    return (
        _located(holders, index)
        .groupBy("dt", *keys)
        .agg(F.count("*").alias("_n"), first.alias("_first"))
        .where(F.col("_n") > 1)
    )


def _mark_duplicates(
    checked: DataFrame, duplicates: DataFrame, contract: Contract, broadcast: bool = False
) -> DataFrame:
    """Reject each good row whose key an earlier good row of the day holds, naming where the
    first stands (``duplicate <key> (first at <file>:<line>)``). Rows are told apart by
    ``(_uri, _block, _id)``, so that only the first needs locating."""
    from pyspark.sql import functions as F

    keys = [f"_t_{n}" for n in contract.duplicate_fields]
    dups = duplicates.select("dt", *keys, "_first")
    out = checked.join(F.broadcast(dups) if broadcast else dups, ["dt", *keys], "left")
    first = F.col("_first")
    out = out.withColumn(
        "_later",
        first.isNotNull()
        & F.col("reason").isNull()
        & (
            (F.col("_uri") != first["_uri"])
            | (F.col("_block") != first["_block"])
            | (F.col("_id") != first["_id"])
        ),
    )
    later = F.col("_later")
    return (
        out.withColumn(
            "reason",
            F.when(
                later,
                F.concat(
                    F.lit(f"duplicate {' and '.join(contract.duplicate_fields)} (first at "),
                    first["source_file"],
                    F.lit(":"),
                    first["line"].cast("string"),
                    F.lit(")"),
                ),
            ).otherwise(F.col("reason")),
        )
        .withColumn("field", F.when(later, F.lit(contract.key)).otherwise(F.col("field")))
        .drop("_first", "_later")
    )
