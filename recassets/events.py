"""The data contracts: events, users and items, and the serving decision log, as explicit
schemas.

One ``Contract`` per landed dataset names its fields, their types and which are required.
Landing files (JSON Lines or Parquet) are validated against it on ingestion; rows that break
it go to the quarantine table with the reason (see ``recassets.ingest``).

Types are written once, as Spark DDL type names; ``pyarrow_schema`` and ``spark_schema``
derive the two physical schemas from them so the generator, the importer, Spark and the
trainer can never disagree.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pyarrow as pa

EVENT_TYPES = ("impression", "click", "like", "share", "watch", "rating")
# Event types whose ``value`` carries the measurement (dwell seconds, rating): required there.
VALUED_EVENT_TYPES = ("watch", "rating")
# A rating's value: stars on MovieLens' scale (1-5, half stars in its later sets, 0 for "no
# stars" in some exports). Training reads ratings >= 4 as positives, which means this scale;
# a rating outside it is quarantined rather than read on the wrong scale.
RATING_SCALE = (0.0, 5.0)
# One watch's dwell seconds at most: a week. Beyond it the value is not seconds (milliseconds
# sent as seconds) or not one view, and a day's sum of such values overflowed the features'
# doubles to inf (two watches of 1e308 s, each finite, passed the contract before).
MAX_WATCH_SECONDS = 7 * 86_400
AGE_BUCKETS = ("<18", "18-24", "25-34", "35-44", "45-54", "55+")

_ARROW_TYPES = {
    "string": pa.string(),
    "bigint": pa.int64(),
    "double": pa.float64(),
    "timestamp": pa.timestamp("us", tz="UTC"),  # microseconds: Spark 4 rejects nanoseconds
    "date": pa.date32(),
}


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # Spark DDL type name: string, bigint, double, timestamp
    required: bool = False
    doc: str = ""
    # the whole text a value must match (a regex read alike by Java and Python), "" for any:
    # for fields whose values a program writes in one shape (a bento tag, a model version)
    pattern: str = ""


@dataclass(frozen=True)
class Contract:
    """A landed dataset: its fields, its unique key and the timestamp that places a row in a
    daily partition (``dt`` = UTC date of that timestamp)."""

    name: str
    fields: tuple[Field, ...]
    key: str
    ts_field: str
    allowed: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # What makes a row a duplicate of an earlier one of its day: the same values of these
    # fields (default: the key's). The decision log's key is the client's request id, which a
    # retry sends again and which then names two answers, each served and charged: only the
    # same answer twice (the same id at the same microsecond) is a duplicate.
    same_row: tuple[str, ...] = ()
    # String fields whose value is JSON by design (the decision log's ``items`` array): the only
    # ones a JSON object or array may be given to (``plain_strings``).
    json_fields: tuple[str, ...] = ()

    @property
    def duplicate_fields(self) -> tuple[str, ...]:
        return self.same_row or (self.key,)

    @property
    def plain_strings(self) -> list[str]:
        """The string fields but the key (its own rule, ``validation._check``) and the JSON
        ones: text, which a JSON object or array given to them is not
        (``parsing._nested_in_text``)."""
        return [f.name for f in self.fields
                if f.type == "string" and f.name != self.key and f.name not in self.json_fields]  # fmt: skip

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def spark_ddl(self, with_partition: bool = True) -> str:
        cols = [f"{f.name} {f.type}{' NOT NULL' if f.required else ''}" for f in self.fields]
        if with_partition:
            cols.append("dt date NOT NULL")
        return ", ".join(cols)

    def spark_schema(self, with_partition: bool = True):
        from pyspark.sql.types import StructType

        return StructType.fromDDL(self.spark_ddl(with_partition))

    def pyarrow_schema(self, with_partition: bool = False) -> pa.Schema:
        cols = [
            pa.field(f.name, _ARROW_TYPES[f.type], nullable=not f.required) for f in self.fields
        ]
        if with_partition:
            cols.append(pa.field("dt", pa.date32(), nullable=False))
        return pa.schema(cols)


EVENTS = Contract(
    name="events",
    key="event_id",
    ts_field="ts",
    fields=(
        Field("event_id", "string", True, "unique id of the event"),
        Field("ts", "timestamp", True, "when it happened, UTC"),
        Field("user_id", "bigint", True, "who"),
        Field("item_id", "bigint", True, "what"),
        Field("event_type", "string", True, "one of " + ", ".join(EVENT_TYPES)),
        Field(
            "value",
            "double",
            False,
            "dwell seconds for watch (0 or more), the rating for rating (0 to 5); finite",
        ),
        Field("surface", "string", False, "where it was shown: home, explore, search..."),
        Field("request_id", "string", False, "the recommendation request that served it"),
        Field("country", "string", False, "ISO country of the user at the time"),
        Field("device", "string", False, "ios, android, web..."),
    ),
    allowed={"event_type": EVENT_TYPES},
)

USERS = Contract(
    name="users",
    key="user_id",
    ts_field="first_seen",
    fields=(
        Field("user_id", "bigint", True, "user id"),
        Field("first_seen", "timestamp", True, "when the user first appeared, UTC"),
        Field("country", "string", False, "ISO country"),
        Field("device", "string", False, "main device"),
        Field("age_bucket", "string", False, "one of " + ", ".join(AGE_BUCKETS)),
        Field("gender", "string", False, "as reported, when the source has it"),
        Field("occupation", "string", False, "as reported, when the source has it"),
    ),
    allowed={"age_bucket": AGE_BUCKETS},
)

ITEMS = Contract(
    name="items",
    key="item_id",
    ts_field="first_seen",
    fields=(
        Field("item_id", "bigint", True, "item id"),
        Field("first_seen", "timestamp", True, "when the item was first published, UTC"),
        Field("category", "string", False, "content category (MovieLens: first genre)"),
        Field("creator", "string", False, "who made it (absent in MovieLens)"),
        Field("title", "string", False, "display title"),
    ),
)

# The landing datasets of the pipeline: what the landing sensor watches and lake/raw_events,
# lake/users and lake/items ingest.
CONTRACTS = {c.name: c for c in (EVENTS, USERS, ITEMS)}

SERVING_ENDPOINTS = ("recommend", "rank")

# The decision log's values as the service writes them: a bento tag (``name:version``, lower
# case), a model version (its store folder and checkpoint: ``two_tower/0003``).
BENTO_TAG = r"[a-z0-9_.-]{1,120}:[a-z0-9_.-]{1,120}"
MODEL_VERSION = r"[A-Za-z0-9_.-]{1,120}/[A-Za-z0-9_.-]{1,120}"
SERVING_POLICIES = ("model", "popularity", "cold_start")

# The serving decision log (recassets.bento.decisions writes it): one row per answer served.
# Landed by the service, not by a producer of the pipeline's data, and ingested by its own asset
# (lake/serving_log) with the same rules and quarantine; the landing sensor leaves it alone.
SERVING_LOG = Contract(
    name="serving_log",
    key="request_id",
    ts_field="ts",
    fields=(
        Field("request_id", "string", True, "the answer's request id (X-Request-Id or uuid4 hex)"),
        Field("ts", "timestamp", True, "when it was answered, UTC"),
        Field("endpoint", "string", True, "one of " + ", ".join(SERVING_ENDPOINTS)),
        Field("user_id", "bigint", True, "for whom"),
        Field("items", "string", True,
              "the items served, in order, as JSON: [{item_id, score, stages, source}]; an ad "
              "(source campaigns) also carries ad, campaign_id, advertiser, price (per click), "
              "pctr, pctr_source, slot (its position) and cost (charged for the impression)"),
        Field("bento", "string", False, "the bento tag that answered", BENTO_TAG),
        Field("policy", "string", False, "model, popularity or cold_start"),
        Field("features_day", "string", False, "the feature day the answer read",
              r"[0-9]{4}-[0-9]{2}-[0-9]{2}"),
        Field("two_tower", "string", False, "the two-tower version served (two_tower/0003)",
              MODEL_VERSION),
        Field("ranking", "string", False, "the ranker version served (ranking/0002)",
              MODEL_VERSION),
    ),
    allowed={"endpoint": SERVING_ENDPOINTS, "policy": SERVING_POLICIES},
    same_row=("request_id", "ts"),
    json_fields=("items",),
)  # fmt: skip
# What each of a decision record's ``items`` must hold, as Spark types it (the rest, stages,
# sources, ad and advertiser, is kept as written): an integer item id and a finite score, and
# for an ad finite billing figures. ``recassets.lineage.requests`` checks a landed line alike.
SERVING_ITEM_DDL = (
    "array<struct<item_id:bigint,score:double,price:double,pctr:double,cost:double,slot:bigint>>"
)
SERVING_ITEMS_RULE = (
    "not a JSON array of items, each an object with an integer item_id and a finite score "
    "(an ad's price, pctr and cost finite numbers, its slot an integer)"
)
SERVING_ITEM_NUMBERS = {"item_id": int, "score": float, "price": float, "pctr": float,
                        "cost": float, "slot": int}  # fmt: skip

# Every contract ingestion knows, by landing dataset.
INGESTED_CONTRACTS = {**CONTRACTS, SERVING_LOG.name: SERVING_LOG}

# The quarantine table: one row per rejected line (or per wholly unreadable file, line null).
QUARANTINE_DDL = (
    "dataset string NOT NULL, source_file string NOT NULL, line bigint, raw string, "
    "reason string NOT NULL, field string, run_id string, quarantined_at timestamp NOT NULL, "
    "dt date NOT NULL"
)
