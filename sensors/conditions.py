"""Declarative automation and freshness policies, attached by ``assets/`` to their assets.

This module imports nothing of ours (only Dagster), so ``assets/*`` can import it without a
cycle through ``sensors/__init__`` (which imports the sensor modules).

Why not plain ``AutomationCondition.eager()`` on the daily assets: for time-partitioned assets
it includes ``in_latest_time_window()``, i.e. it only ever considers *today's* partition. Our
days are the data's days (the synthetic world starts 2026-01-01, MovieLens lands in 1998), and
late files re-ingest old days; both would be ignored. ``DAILY_EAGER`` is eager without that
clause: a partition is requested when one of *its own* upstream partitions was updated (or it
became missing), never the whole history. On the first evaluation nothing is requested
(``since_last_handled`` counts the initial evaluation as handled), so turning the daemon on
over a built home does not recompute it.

Asset checks carry no condition on purpose: a check without one rides along in the run of
its asset (Dagster 1.13 ``_ride_along_check_keys_for_assets``), so the blocking Great
Expectations checks still stop the downstream assets of the same run. A check with its own
condition would be scheduled apart and stop riding along.
"""

import datetime as dt

from dagster import AutomationCondition, FreshnessPolicy

DAILY_EAGER = (
    AutomationCondition.eager()
    .without(AutomationCondition.in_latest_time_window())
    .with_label("eager (any day whose upstream partition updated)")
)

# The serving side (item embeddings, the index, the bento; unpartitioned) follows the online
# store as well as the models: when feature_store loads a new day, the catalog grows, so the
# current policy's item tower embeds the new items, the index takes them and a new bento serves
# them, whether or not a retraining passed the gate (a refused candidate must not also freeze
# the catalog). Eager without "no dependency missing": these assets read every day of
# feature_store, whose daily partitions reach today while the data's days need not (the
# synthetic world starts in 2026-01, MovieLens in 1997), so some parent partition is always
# missing and plain eager would never fire.
SERVING_EAGER = (
    AutomationCondition.eager()
    .without(~AutomationCondition.any_deps_missing())
    .with_label("eager (a new online day or a new evaluated model)")
)

# Freshness: time since the last materialization (evaluated by the daemon's freshness loop,
# on by default in Dagster 1.13; shown on the asset page and in the asset health). Data lands
# daily: a feature table is late after a day and an hour (warn), stale after two days (fail).
FEATURES_FRESHNESS = FreshnessPolicy.time_window(
    fail_window=dt.timedelta(hours=48), warn_window=dt.timedelta(hours=25)
)
# What serves (serving/recommender_bento): rebuilt by retrain_job, at least once a day by the
# retrain sensor or schedule, same windows.
SERVING_FRESHNESS = FreshnessPolicy.time_window(
    fail_window=dt.timedelta(hours=48), warn_window=dt.timedelta(hours=25)
)
