"""Data quality: Great Expectations suites for the lake's tables, a runner that reports the
failing expectations with sample rows, and helpers that check one Delta partition or a range
of them (one validation for the range, a report per day: ``recassets.quality.ranges``).

Wrapped by ordinary Dagster ``@asset_check``s in ``assets/quality.py`` (not dagster-ge, whose
op-based integration returns a deprecated result type).
"""

from recassets.quality.checks import (
    DayEvents,
    check_feature_table,
    check_feature_table_range,
    check_has_events,
    check_raw_events,
    check_raw_events_range,
    events_manifest_empty,
    previous_partition,
    trailing_daily_counts,
)
from recassets.quality.ranges import PartitionRange
from recassets.quality.runner import Failure, QualityReport, validate
from recassets.quality.suites import (
    counter_columns,
    ctr_columns,
    feature_suite,
    raw_events_suite,
)

__all__ = [
    "DayEvents",
    "Failure",
    "PartitionRange",
    "QualityReport",
    "check_feature_table",
    "check_feature_table_range",
    "check_has_events",
    "check_raw_events",
    "check_raw_events_range",
    "counter_columns",
    "ctr_columns",
    "events_manifest_empty",
    "feature_suite",
    "previous_partition",
    "raw_events_suite",
    "trailing_daily_counts",
    "validate",
]
