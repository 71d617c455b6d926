"""Declarative automation and freshness policies, and which asset carries which.

``with_automation`` attaches them when ``definitions.py`` builds the ``Definitions``: the asset
modules declare what an asset is, this module when Dagster should build it. ``sensors/``
imports ``assets/`` (keys, partitions, config), never the other way round, so the two packages
have no import cycle (``tests/dagster/test_definitions.py`` checks it).

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
from collections.abc import Iterable, Sequence

from dagster import (
    AssetKey,
    AssetsDefinition,
    AssetSelection,
    AssetSpec,
    AutomationCondition,
    FreshnessPolicy,
    map_asset_specs,
)

from assets import keys

# Two more changes to eager, both 2026-12-06, found under a real daemon:
# - "any_deps_updated" without its ``~executed_with_root_target()``: Dagster ignores a parent's
#   update made by a run that also targeted this *asset*, whatever the partitions. The landing
#   run of a re-ingested day 10 builds day 10's features (ONLINE_PATH_KEYS), so day 11's, whose
#   window reads day 10, were never rebuilt (shown stale, requested 0). A partition that run
#   built itself is not requested again: its own update resets ``since_last_handled``.
# - nothing is requested for a day whose upstream failed a blocking check: a landing run whose
#   quality check failed for a day (every row quarantined) stopped its own downstream steps,
#   and the automation then built that day's features, examples and online rows anyway, in a
#   green run after three red ones. The day's features wait until its data passes, as do the
#   later days whose window reads it (a new day's own landing run still builds its features).
_ANY_DEPS_UPDATED = AutomationCondition.any_deps_match(
    AutomationCondition.newly_updated() | AutomationCondition.will_be_requested()
).with_label("any_deps_updated")
_UPSTREAM_CHECK_FAILED = AutomationCondition.any_deps_match(
    AutomationCondition.any_checks_match(AutomationCondition.check_failed(), blocking_only=True)
).with_label("any_deps_failed_a_blocking_check")
DAILY_EAGER = (
    AutomationCondition.eager()
    .without(AutomationCondition.in_latest_time_window())
    .replace("any_deps_updated", _ANY_DEPS_UPDATED)
    & ~_UPSTREAM_CHECK_FAILED
).with_label("eager (any day whose upstream partition updated and passed its checks)")

# The serving side (item embeddings, the index, the bento; unpartitioned) follows the online
# store as well as the models: when feature_store loads a new day, the catalog grows, so the
# current policy's item tower embeds the new items, the index takes them and a new bento serves
# them, whether or not a retraining passed the gate (a refused candidate must not also freeze
# the catalog). Eager without "no dependency missing": these assets read every day of
# feature_store, whose daily partitions reach today while the data's days need not (the
# synthetic world starts in 2026-01, MovieLens in 1997), so some parent partition is always
# missing and plain eager would never fire.
#
# The bento also depends on training/examples_version, so that it shows stale when the data
# its models grew from changed (assets/training.py); an observation of that version is no
# reason to rebuild it (the models have not changed), so its updates are ignored here: the
# bento is rebuilt when the models are, by retrain_job or through model_evaluation. A rebuild
# for a new online day records the version its evaluation read, not the one observed now
# (assets/serving.py, served_training_data): it serves the new items and stays stale until
# the models are retrained (a rebuild recording the new version had shown it FRESH).
SERVING_EAGER = (
    AutomationCondition.eager()
    .without(~AutomationCondition.any_deps_missing())
    .replace(
        "any_deps_updated",
        AutomationCondition.any_deps_updated().ignore(AssetSelection.assets(keys.TRAINING_DATA)),
    )
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

# Which asset carries which condition and policy. Ingestion is driven by landing_sensor and
# the models by retrain_sensor / retrain_schedule, so they carry none; nor do the checks, which
# ride along with their asset's run (see above).
AUTOMATION: dict[AssetKey, AutomationCondition] = {
    **dict.fromkeys(
        [*keys.FEATURE_TABLES, keys.FEATURE_STORE, keys.TRAINING_EXAMPLES], DAILY_EAGER
    ),
    **dict.fromkeys([keys.ITEM_EMBEDDINGS, keys.ITEM_INDEX, keys.RECOMMENDER_BENTO], SERVING_EAGER),
}
FRESHNESS: dict[AssetKey, FreshnessPolicy] = {
    **dict.fromkeys([*keys.FEATURE_TABLES, keys.FEATURE_STORE], FEATURES_FRESHNESS),
    keys.RECOMMENDER_BENTO: SERVING_FRESHNESS,  # what serves must be rebuilt daily
}


def _automate(spec: AssetSpec) -> AssetSpec:
    if spec.key not in AUTOMATION and spec.key not in FRESHNESS:
        return spec
    return spec.replace_attributes(
        automation_condition=AUTOMATION.get(spec.key, spec.automation_condition),
        freshness_policy=FRESHNESS.get(spec.key, spec.freshness_policy),
    )


def with_automation(
    assets: Iterable[AssetsDefinition | AssetSpec],
) -> Sequence[AssetsDefinition | AssetSpec]:
    """``assets`` with the conditions and freshness policies of ``AUTOMATION`` and
    ``FRESHNESS`` attached to the specs they name (the others unchanged)."""
    return map_asset_specs(_automate, list(assets))
