"""The Feast repository: entities, sources, feature views, feature services, in that order.

Imports Feast (seconds: it imports torch), so only ``store.py`` loads this module, inside the
functions that need it; ``import recassets.featurestore`` stays light.

Anchor: feast-dev/feast ``sdk/python/feast/templates/spark/feature_repo/feature_definitions.py``.
Feature names and types follow ``recassets.features.schema`` after the snapshot's flattening
(``snapshot.py``); ``tests/unit/featurestore/test_repo.py`` checks that each view's schema is
exactly its snapshot's columns.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from feast import Entity, FeatureService, FeatureView, Field, FileSource, ValueType
from feast.data_format import ParquetFormat
from feast.types import Array, Float32, Float64, Int64, String

from recassets.features.schema import WINDOWS
from recassets.featurestore.snapshot import COHORT_ID, EVENT_TIMESTAMP

# -- Entities -------------------------------------------------------------------------------
# Singular nouns whose join keys are the lake's id columns, so an entity row is the id as the
# lake and the request carry it. Value types are declared, not inferred: inference reads the
# source, which need not exist yet at the first apply.

user = Entity(
    name="user",
    join_keys=["user_id"],
    value_type=ValueType.INT64,
    description="A user (users.user_id).",
)
item = Entity(
    name="item",
    join_keys=["item_id"],
    value_type=ValueType.INT64,
    description="An item (items.item_id).",
)
# cohort_features is keyed by (country, age_bucket, category). Three entities would put join
# keys named country and category into requests that also fetch the user's country and the
# item's category features; one composite string key avoids the clash. Build it with
# snapshot.cohort_id(country, age_bucket, category).
cohort = Entity(
    name="cohort",
    join_keys=[COHORT_ID],
    value_type=ValueType.STRING,
    description="A (country, age bucket, item category) cohort: cohort_id = 'country|age_bucket|category'.",
)

# -- Sources ---------------------------------------------------------------------------------
# The Parquet snapshots written by export_offline_snapshot, one file per day, never the Delta
# folders (tombstoned files of replaced partitions live there until VACUUM). Read by Feast's
# DuckDB offline store: materializing day d reads only the row groups whose event_timestamp
# range meets d (Parquet statistics), where the file store's Dask read and sorted every daily
# snapshot (143 s against 2.5 s for the last day of a 215-day history). DuckDB resolves a
# relative path against the process's working folder, not the repository's, so the path here
# is a placeholder that ``locate`` makes absolute before every apply: the registry then names
# the home it was applied from. No created_timestamp column: a snapshot has one row per entity.
SNAPSHOT_GLOB = "*.parquet"


def _source(table: str) -> FileSource:
    return FileSource(
        name=f"{table}_snapshots",
        path=f"offline/{table}/{SNAPSHOT_GLOB}",
        file_format=ParquetFormat(),
        timestamp_field=EVENT_TIMESTAMP,
        description=f"Daily snapshots of lake/{table}: event_timestamp = last microsecond of dt (UTC).",
    )


user_features_source = _source("user_features")
item_features_source = _source("item_features")
cohort_features_source = _source("cohort_features")

# -- Feature views --------------------------------------------------------------------------
# One view per feature table, daily grain. TTL 90 days: longer than the longest window (28d),
# so a user who has been away for weeks still gets their last sequence and categories in a
# point-in-time join, while a row older than a quarter no longer describes anyone.
TTL = timedelta(days=90)


def _counters() -> list[Field]:
    fields = []
    for w in WINDOWS:
        fields += [
            Field(name=f"impressions_{w}d", dtype=Int64),
            Field(name=f"clicks_{w}d", dtype=Int64),
            Field(name=f"likes_{w}d", dtype=Int64),
            Field(name=f"engagements_{w}d", dtype=Int64),
            Field(name=f"watch_time_{w}d", dtype=Float64),
        ]
    return fields


user_daily_features = FeatureView(
    name="user_daily_features",
    entities=[user],
    ttl=TTL,
    schema=[
        *_counters(),
        Field(name="ctr_7d", dtype=Float64),
        Field(name="ctr_28d", dtype=Float64),
        Field(name="country", dtype=String),
        Field(name="device", dtype=String),
        Field(name="age_bucket", dtype=String),
        # last_engagements, oldest first, as parallel arrays (Feast lists hold primitives)
        Field(name="last_engagement_item_ids", dtype=Array(Int64)),
        Field(name="last_engagement_types", dtype=Array(String)),
        Field(name="last_engagement_ts", dtype=Array(Int64)),  # epoch seconds, UTC
        Field(
            name="last_engagement_values", dtype=Array(Float64)
        ),  # NaN: none (click, like, share)
        Field(name="history_item_ids", dtype=Array(Int64)),
        # every engaged item (the newest 500 by first engagement): excluded, and EASE's input
        Field(name="seen_item_ids", dtype=Array(Int64)),
        Field(name="top_category_names", dtype=Array(String)),
        Field(name="top_category_weights", dtype=Array(Float64)),
    ],
    online=True,
    source=user_features_source,
    description="lake/user_features of day d, as of the end of d (UTC).",
)

item_daily_features = FeatureView(
    name="item_daily_features",
    entities=[item],
    ttl=TTL,
    schema=[
        *_counters(),
        Field(name="ctr_7d", dtype=Float64),
        Field(name="ctr_28d", dtype=Float64),
        Field(name="age_days", dtype=Float64),
        Field(name="category", dtype=String),
        Field(name="creator", dtype=String),
        Field(name="trending", dtype=Float64),
        Field(name="embedding", dtype=Array(Float32)),
    ],
    online=True,
    source=item_features_source,
    description="lake/item_features of day d, as of the end of d (UTC).",
)

cohort_daily_features = FeatureView(
    name="cohort_daily_features",
    entities=[cohort],
    ttl=TTL,
    # country, age_bucket and category are the key (cohort_id), not features: as features
    # they would collide with the user's and item's own columns of the same names.
    schema=[
        Field(name="impressions_7d", dtype=Int64),
        Field(name="clicks_7d", dtype=Int64),
        Field(name="engagements_7d", dtype=Int64),
        Field(name="impressions_28d", dtype=Int64),
        Field(name="clicks_28d", dtype=Int64),
        Field(name="engagements_28d", dtype=Int64),
        Field(name="ctr_28d", dtype=Float64),
    ],
    online=True,
    source=cohort_features_source,
    description="lake/cohort_features of day d (country x age bucket x category), as of the end of d.",
)

# -- Feature services -----------------------------------------------------------------------
# What each model reads, versioned by name: a model records the service it was trained with,
# and changing what it reads means a new service, never an edit of this one. Views of
# different entities share feature names (impressions_7d...): read a service per entity
# (store.online_features does), or with full_feature_names=True.

retrieval_v1 = FeatureService(
    name="retrieval_v1",
    description="Two-tower retrieval: ids, counters, categoricals and the history id list.",
    # Feast's view[[names]] (a projection) is untyped, and its base class's __copy__ stub makes
    # the checker infer None for it.
    features=[  # pyright: ignore[reportArgumentType]
        user_daily_features[
            [
                "country",
                "device",
                "age_bucket",
                "history_item_ids",
                "seen_item_ids",
                "impressions_7d",
                "clicks_7d",
                "engagements_7d",
                "engagements_28d",
                "watch_time_7d",
            ]
        ],
        item_daily_features[
            [
                "category",
                "creator",
                "age_days",
                "impressions_7d",
                "clicks_7d",
                "engagements_7d",
                "engagements_28d",
            ]
        ],
    ],
)

ranking_v1 = FeatureService(
    name="ranking_v1",
    description="Ranking: every counter window, CTRs, trending, the content embedding, the "
    "engagement sequence and the cohort's rates.",
    features=[user_daily_features, item_daily_features, cohort_daily_features],
)

ENTITIES = [user, item, cohort]
SOURCES = [user_features_source, item_features_source, cohort_features_source]
FEATURE_VIEWS = [user_daily_features, item_daily_features, cohort_daily_features]
FEATURE_SERVICES = [retrieval_v1, ranking_v1]
OBJECTS: list[Any] = [*ENTITIES, *SOURCES, *FEATURE_VIEWS, *FEATURE_SERVICES]

# Feature table of the lake -> its view.
VIEW_OF_TABLE = {
    "user_features": user_daily_features,
    "item_features": item_daily_features,
    "cohort_features": cohort_daily_features,
}


def locate(feast_dir: Path) -> None:
    """Point each source at the snapshots under ``feast_dir`` (absolute: see Sources). The
    views hold these same source objects, so the registry written by the next apply names the
    home it was applied from. Called by ``store.apply`` only."""
    for table, view in VIEW_OF_TABLE.items():
        source = view.batch_source
        assert isinstance(source, FileSource)
        source.file_options.uri = str(feast_dir / "offline" / table / SNAPSHOT_GLOB)


def catalog() -> dict:
    """What a reader without Feast needs (``online.py``): per view its entity, join key and
    features with their Feast value types; per service the features it takes of each view."""
    views = {}
    for table, view in VIEW_OF_TABLE.items():
        (entity_name,) = view.entities
        entity = next(e for e in ENTITIES if e.name == entity_name)
        views[view.name] = {
            "table": table,
            "entity": entity.name,
            "join_key": entity.join_key,
            "join_key_type": entity.value_type.name,
            "features": {f.name: f.dtype.to_value_type().name for f in view.features},
        }
    services = {
        s.name: {p.name: [f.name for f in p.features] for p in s.feature_view_projections}
        for s in FEATURE_SERVICES
    }
    return {"views": views, "services": services}
