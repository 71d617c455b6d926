"""Data quality: Great Expectations suites for the lake's tables, a runner that reports the
failing expectations with sample rows, and helpers that check one Delta partition.

Wrapped by ordinary Dagster ``@asset_check``s in ``assets/quality.py`` (not dagster-ge, whose
op-based integration returns a deprecated result type).
"""

from recassets.quality.checks import (
    check_feature_table,
    check_raw_events,
    previous_partition,
    trailing_daily_counts,
)
from recassets.quality.runner import Failure, QualityReport, validate
from recassets.quality.suites import (
    counter_columns,
    ctr_columns,
    feature_suite,
    raw_events_suite,
)

__all__ = [
    "Failure",
    "QualityReport",
    "check_feature_table",
    "check_raw_events",
    "counter_columns",
    "ctr_columns",
    "feature_suite",
    "previous_partition",
    "raw_events_suite",
    "trailing_daily_counts",
    "validate",
]
