"""The feature tables' contracts: one Spark DDL per table, shared by the pipelines
(``recassets.features.pipelines``), the quality suites (``recassets.quality``), the Feast
repository (``recassets.featurestore``) and the trainer.

Partition ``dt`` = the day d the row describes: every value is computed from events with
``ts`` before the end of d (UTC), nothing later. Windows: ``_1d`` is day d alone, ``_7d`` the
days d-6..d, ``_28d`` d-27..d.

Feature variety (the talk's list): counters (``*_Nd``), categorical (country, device,
age_bucket, category, creator), ID (user_id, item_id), ID list (``history_item_ids``),
embedding (``embedding``), sequence of objects (``last_engagements``). Aggregation
dimensions: entity (user, item), cohort (country x age bucket) and category.
"""

from __future__ import annotations

WINDOWS = (1, 7, 28)
SEQUENCE_LENGTH = 50  # last engagements kept per user
SEEN_LIMIT = 500  # distinct engaged items kept per user (seen_item_ids, recassets.features.seen)
TOP_CATEGORIES = 5
EMBEDDING_DIM = 16
# Engagements: what counts as a positive interaction for sequences, top categories and labels.
ENGAGEMENT_TYPES = ("click", "like", "share", "watch", "rating")
# Smoothed CTR = (clicks + PRIOR_STRENGTH * prior) / (impressions + PRIOR_STRENGTH), the prior
# being the global CTR of the same window: a Beta prior worth PRIOR_STRENGTH impressions.
PRIOR_STRENGTH = 20.0


def _counters(prefix: str = "") -> list[str]:
    cols = []
    for w in WINDOWS:
        cols += [
            f"{prefix}impressions_{w}d bigint NOT NULL",
            f"{prefix}clicks_{w}d bigint NOT NULL",
            f"{prefix}likes_{w}d bigint NOT NULL",
            f"{prefix}engagements_{w}d bigint NOT NULL",
            f"{prefix}watch_time_{w}d double NOT NULL",
        ]
    return cols


USER_FEATURES_DDL = ", ".join(
    ["user_id bigint NOT NULL"]
    + _counters()
    + [
        "ctr_7d double NOT NULL",
        "ctr_28d double NOT NULL",
        "country string",
        "device string",
        "age_bucket string",
        # sequence feature: the last SEQUENCE_LENGTH engagements, oldest first
        "last_engagements array<struct<item_id: bigint, event_type: string, ts: timestamp, value: double>> NOT NULL",
        "history_item_ids array<bigint> NOT NULL",  # the same item ids as an ID list
        # every engaged item once, by first engagement, oldest first: the newest SEEN_LIMIT
        "seen_item_ids array<bigint> NOT NULL",
        "top_categories array<struct<category: string, weight: double>> NOT NULL",
        "dt date NOT NULL",
    ]
)

ITEM_FEATURES_DDL = ", ".join(
    ["item_id bigint NOT NULL"]
    + _counters()
    + [
        "ctr_7d double NOT NULL",
        "ctr_28d double NOT NULL",
        "age_days double NOT NULL",  # since first_seen, at the end of d
        "category string",
        "creator string",
        "trending double NOT NULL",  # 1-day engagement rate against the 7-day daily mean
        "embedding array<float> NOT NULL",  # content embedding (EMBEDDING_DIM), see pipelines
        "dt date NOT NULL",
    ]
)

COHORT_FEATURES_DDL = ", ".join(
    [
        "country string NOT NULL",  # 'unknown' where the source has no country (MovieLens)
        "age_bucket string NOT NULL",
        "category string NOT NULL",
        "impressions_7d bigint NOT NULL",
        "clicks_7d bigint NOT NULL",
        "engagements_7d bigint NOT NULL",
        "impressions_28d bigint NOT NULL",
        "clicks_28d bigint NOT NULL",
        "engagements_28d bigint NOT NULL",
        "ctr_28d double NOT NULL",
        "dt date NOT NULL",
    ]
)

TABLES = {
    "user_features": USER_FEATURES_DDL,
    "item_features": ITEM_FEATURES_DDL,
    "cohort_features": COHORT_FEATURES_DDL,
}
KEYS = {
    "user_features": ("user_id",),
    "item_features": ("item_id",),
    "cohort_features": ("country", "age_bucket", "category"),
}
