"""The ``training_examples`` contract: one row per labelled (user, item) pair of day d, with the
features of day d-1 joined point-in-time (a model trained on day d never sees day d's
features, exactly as serving on day d only has features up to d-1).

Rows come from impressions: ``label`` = 1 when the user engaged with the item in the same
request on day d (click, like, share, or a watch of at least ``WATCH_THRESHOLD_S``), else 0.
Sources without impressions (MovieLens: ratings only) get positives from ratings at or above
``RATING_THRESHOLD`` and up to ``NEGATIVES_PER_POSITIVE`` sampled negatives per positive
(drawn uniformly from the catalog known at d-1, seeded by day; a draw of an item the user rated
that day or engaged with before it, by user_features of d-1, is dropped, not redrawn): the
standard implicit-feedback recipe. ``source`` says which recipe made the row.

Retrieval trains on the positives (``label`` = 1) alone: in-batch softmax supplies the
negatives. ``history_item_ids`` is the user's last engagements as of the end of d-1.

Categoricals stay strings here; the trainer maps them (and ids) through its vocabulary.
"""

from __future__ import annotations

WATCH_THRESHOLD_S = 10.0
RATING_THRESHOLD = 4.0
NEGATIVES_PER_POSITIVE = 4

USER_DENSE = (
    "u_impressions_7d",
    "u_engagements_7d",
    "u_watch_time_7d",
    "u_ctr_7d",
    "u_ctr_28d",
    "u_engagements_28d",
)
ITEM_DENSE = (
    "i_impressions_7d",
    "i_engagements_7d",
    "i_ctr_7d",
    "i_ctr_28d",
    "i_trending",
    "i_age_days",
    "i_engagements_28d",
)
COHORT_DENSE = ("c_ctr_28d",)
USER_SPARSE = ("user_id", "country", "device", "age_bucket")
ITEM_SPARSE = ("item_id", "category", "creator")

TRAINING_EXAMPLES_DDL = ", ".join(
    [
        "example_id string NOT NULL",  # deterministic: request/event id + item
        "user_id bigint NOT NULL",
        "item_id bigint NOT NULL",
        "ts timestamp NOT NULL",
        "label int NOT NULL",
        "source string NOT NULL",  # impression | rating | sampled_negative
        "country string",
        "device string",
        "age_bucket string",
        "category string",
        "creator string",
        "history_item_ids array<bigint> NOT NULL",
        *[f"{c} double NOT NULL" for c in USER_DENSE + ITEM_DENSE + COHORT_DENSE],
        "dt date NOT NULL",
    ]
)
