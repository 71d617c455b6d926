"""Checking a Delta partition: the history the bounds are drawn from (trailing days, the
previous partition, gaps included) is read right, and the partition is validated with Spark."""

from __future__ import annotations

import datetime as dt

import pytest

from recassets.quality import (
    check_feature_table,
    check_raw_events,
    previous_partition,
    trailing_daily_counts,
)
from tests.unit.quality.frames import EVENTS_DDL, event_records, feature_ddl, feature_records

# raw_events: 3 days of history (mean 10, band [5, 15]), then a day with twice the volume.
EVENT_DAYS = {"2026-01-01": 10, "2026-01-02": 12, "2026-01-03": 8, "2026-01-04": 30}
# user_features: a gap on 01-02; 01-04 halves the rows (previous: 01-03, 6 rows -> [3, 9]).
FEATURE_DAYS = {"2026-01-01": 6, "2026-01-03": 6, "2026-01-04": 2}


@pytest.fixture(scope="module")
def lake(spark, make_home):
    paths = make_home("quality_checks_lake")
    events = [r for day, n in EVENT_DAYS.items() for r in event_records(day, n)]
    spark.createDataFrame(events, EVENTS_DDL).write.format("delta").partitionBy("dt").save(
        paths.table("raw_events")
    )
    rows = [r for day, n in FEATURE_DAYS.items() for r in feature_records("user_features", day, n)]
    rows[-1]["impressions_1d"] = -4  # the last row of 01-04
    df = spark.createDataFrame(rows, feature_ddl("user_features"))
    df.write.format("delta").partitionBy("dt").save(paths.table("user_features"))
    return paths


def test_trailing_counts_are_the_partitions_of_the_seven_days_before(spark, lake):
    assert trailing_daily_counts(spark, lake, "2026-01-04") == [10, 12, 8]
    assert trailing_daily_counts(spark, lake, "2026-01-02") == [10]
    assert trailing_daily_counts(spark, lake, "2026-01-09") == [12, 8, 30]  # 01-02..01-08
    assert trailing_daily_counts(spark, lake, "2026-01-11") == [30]  # 01-04..01-10
    assert trailing_daily_counts(spark, lake, "2026-01-01") == []


def test_previous_partition_is_the_latest_before_the_day(spark, lake):
    assert previous_partition(spark, lake, "user_features", "2026-01-03") == (
        dt.date(2026, 1, 1),
        6,
    )
    assert previous_partition(spark, lake, "user_features", "2026-01-04") == (
        dt.date(2026, 1, 3),
        6,
    )
    assert previous_partition(spark, lake, "user_features", "2026-01-01") is None


def test_raw_events_day_within_the_band_passes_and_a_spike_fails(spark, lake):
    early = check_raw_events(spark, lake, "2026-01-03")
    assert early.success
    assert early.notes == [
        "volume check skipped: 2 trailing day(s) with events, at least 3 needed for a meaningful mean"
    ]

    spike = check_raw_events(spark, lake, "2026-01-04")
    assert not spike.success
    assert [f.label for f in spike.failures] == ["expect_table_row_count_to_be_between"]
    assert spike.failures[0].observed == {"observed_value": 30}
    assert spike.context == {
        "day": "2026-01-04", "trailing_daily_counts": [10, 12, 8], "band": 0.5,
        "trailing_mean": 10.0, "row_count_bounds": [5, 15],
    }  # fmt: skip


def test_feature_partition_is_compared_with_the_previous_one(spark, lake):
    first = check_feature_table(spark, lake, "user_features", "2026-01-01")
    assert first.success
    assert first.notes == ["row-count check skipped: no previous partition to compare with"]

    bad = check_feature_table(spark, lake, "user_features", "2026-01-04")
    assert [f.label for f in bad.failures] == [
        "expect_column_values_to_be_between(impressions_1d)", "expect_table_row_count_to_be_between",
    ]  # fmt: skip
    assert bad.failures[0].sample_rows == [{"user_id": 2, "impressions_1d": -4}]
    assert bad.failures[1].observed == {"observed_value": 2}
    assert bad.context["previous_partition"] == "2026-01-03"
    assert bad.context["row_count_bounds"] == [3, 9]
