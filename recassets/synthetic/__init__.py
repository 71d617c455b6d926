"""A deterministic synthetic recommendation world and the daily events it produces.

The generator stands in for a real product's logs: it lands ``users``, ``items`` and
``events`` files (see ``recassets.events`` for the contracts) through
``recassets.landing.write_landing_file``, one day at a time, so every downstream asset can be
built and tested without outside data. It is good enough to train on because the clicks come
from a hidden preference model that the tests (and benchmarks) can read back through
``true_preference``. Advertisers' campaigns (bids, budgets, targeting, promoted items of its
catalog) land beside the days as ``ads/campaigns.json`` (``recassets.synthetic.ads``).

The world
    Users (ids 1..U) have a country, a device, an age bucket, a hidden interest distribution
    over categories (Dirichlet with a small concentration, so each user has a few favourite
    categories; its prior depends on the age bucket so that profile features carry a
    cold-start signal) and a hidden activity level (lognormal) that sets how many requests
    they make. Items (ids 1..I) have a category, a creator, a hidden quality (normal) and a
    Zipf popularity weight (``1 / rank``, ranks following quality with noise), so exposure is
    long-tailed. New users and items arrive every day; ids increase with ``first_seen``, so
    "published by time t" is a prefix of the item ids.

A day
    Active users (sampled by activity x the share of the day they existed) make requests; each
    request is served a slate of ``slate_size`` items by a simple policy, ~70 % drawn by
    popularity weight and ~30 % uniformly, both among the items already published at that
    moment. Each impression is clicked with probability ``sigmoid(true_preference)``::

        logit = bias + a * log(interest[user, category] * n_categories)
                     + b * quality + c * (log popularity - mean log popularity)

    where ``bias`` is calibrated on the initial population so that the click-through rate is
    about 7 %. The constants are tuned so that the signal is learnable: ranking every item by
    this logit recalls a user's next-day clicks well over 1.5x better than global popularity
    does (``tests/unit/test_synthetic.py``). With a steeper Zipf law (``rank**-1.1``) and a
    weaker interest term the head took half of all clicks, and no personal ranking could beat
    popularity by much. A click may be followed by a like (30 %), a share (5 %) and a watch (70 %) whose
    value is the dwell time in seconds (lognormal, longer for preferred items).

Determinism
    Every random draw comes from ``np.random.default_rng([seed, stream, day_index])``: the
    population of day ``d`` and the events of day ``d`` each have their own stream, so a day
    can be regenerated alone and a shorter horizon is a prefix of a longer one. The same
    config gives byte-identical files.
"""

from recassets.synthetic.days import generate, generate_day
from recassets.synthetic.world import (
    AGE_P,
    COUNTRIES,
    COUNTRY_P,
    DEVICE_P,
    DEVICES,
    GENERATED_EVENT_TYPES,
    INTEREST_CONCENTRATION,
    INTEREST_SMOOTHING,
    INTEREST_WEIGHT,
    POPULAR_SHARE,
    POPULARITY_NOISE,
    POPULARITY_WEIGHT,
    QUALITY_WEIGHT,
    SURFACE_P,
    SURFACES,
    TARGET_CTR,
    ZIPF_EXPONENT,
    GenerationSummary,
    SyntheticConfig,
    World,
    build_world,
    true_preference,
)

__all__ = [
    "AGE_P",
    "COUNTRIES",
    "COUNTRY_P",
    "DEVICES",
    "DEVICE_P",
    "GENERATED_EVENT_TYPES",
    "GenerationSummary",
    "INTEREST_CONCENTRATION",
    "INTEREST_SMOOTHING",
    "INTEREST_WEIGHT",
    "POPULARITY_NOISE",
    "POPULARITY_WEIGHT",
    "POPULAR_SHARE",
    "QUALITY_WEIGHT",
    "SURFACES",
    "SURFACE_P",
    "SyntheticConfig",
    "TARGET_CTR",
    "World",
    "ZIPF_EXPONENT",
    "build_world",
    "generate",
    "generate_day",
    "true_preference",
]
