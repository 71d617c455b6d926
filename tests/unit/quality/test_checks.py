"""Checking a Delta partition: the history the bounds are drawn from (trailing days, the
previous partition, gaps included) is read right, and the partition is validated with Spark.
Checking a range: each day's report equals the one-day check's, empty days included."""

from __future__ import annotations

import datetime as dt

import pytest

from recassets.quality import (
    check_feature_table,
    check_feature_table_range,
    check_has_events,
    check_raw_events,
    check_raw_events_range,
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
        "volume check skipped: 2 trailing day(s) with events, at least 3 needed for a meaningful median"
    ]

    spike = check_raw_events(spark, lake, "2026-01-04")
    assert not spike.success
    assert [f.label for f in spike.failures] == ["expect_table_row_count_to_be_between"]
    assert spike.failures[0].observed == {"observed_value": 30}
    assert spike.context == {
        "day": "2026-01-04", "trailing_daily_counts": [10, 12, 8], "band": 0.5,
        "trailing_median": 10, "row_count_bounds": [5, 15],
    }  # fmt: skip


def test_the_band_is_an_argument_and_the_environment_changes_nothing(spark, lake, monkeypatch):
    monkeypatch.setenv("RECASSETS_VOLUME_BAND", "off")  # read at the edge (QualityResource) only
    assert not check_raw_events(spark, lake, "2026-01-04").success
    off = check_raw_events(spark, lake, "2026-01-04", band=None)
    assert off.success and off.notes == ["volume check off (RECASSETS_VOLUME_BAND=off)"]
    wide = check_raw_events(spark, lake, "2026-01-04", band=3.0)
    assert wide.success and wide.context["row_count_bounds"] == [1, 40]


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
    assert bad.context["row_count_bounds"] == [3, None]


# --- ranges: one validation, a report per day equal to the one-day check's -------------------

# Three normal days (mean 10, band [5, 15]); 01-04 with four rows broken and normal volume;
# 01-05 reusing an event_id of 01-04 (unique within its day: fine); 01-06 without landing
# files (an empty partition); 01-07 normal; 01-08 with files but every row quarantined.
RANGE = [f"2026-01-0{d}" for d in range(1, 9)]
BAD_DAY, EMPTY_DAY, QUARANTINED_DAY = "2026-01-04", "2026-01-06", "2026-01-08"


def _manifest(paths, day: str, **fields) -> None:
    import json
    from pathlib import Path

    from recassets.ingest import lineage_path

    target = Path(lineage_path(paths, "raw_events", day))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"table": "raw_events", "partition": day, **fields}))


@pytest.fixture(scope="module")
def range_lake(spark, make_home):
    paths = make_home("quality_range_lake")
    sizes = {"2026-01-01": 10, "2026-01-02": 12, "2026-01-03": 8, BAD_DAY: 10}
    sizes |= {"2026-01-05": 10, "2026-01-07": 10}
    days = {day: event_records(day, n) for day, n in sizes.items()}
    bad = days[BAD_DAY]
    midnight = dt.datetime(2026, 1, 5, tzinfo=dt.UTC)
    bad[1]["user_id"] = None
    bad[2]["event_type"] = "poke"
    bad[3]["ts"] = midnight  # the next day's first instant: outside
    bad[4]["ts"] = midnight - dt.timedelta(microseconds=1)  # the day's last: inside
    bad[6]["event_id"] = bad[5]["event_id"]
    days["2026-01-05"][0]["event_id"] = bad[0]["event_id"]
    rows = [r for day_rows in days.values() for r in day_rows]
    spark.createDataFrame(rows, EVENTS_DDL).write.format("delta").partitionBy("dt").save(
        paths.table("raw_events")
    )
    _manifest(paths, EMPTY_DAY, empty=True, looked_in=paths.landing_dir("events", EMPTY_DAY))
    _manifest(paths, QUARANTINED_DAY, empty=False, looked_in=None, rows=0, quarantined=9)
    _manifest(paths, "2026-01-07", empty=False, looked_in=None, rows=10, quarantined=0)
    return paths


def test_raw_events_range_reports_each_day_as_the_one_day_check_does(spark, range_lake):
    reports = check_raw_events_range(spark, range_lake, RANGE)
    assert list(reports) == RANGE
    assert {day: r.success for day, r in reports.items()} == {
        day: day not in (BAD_DAY, QUARANTINED_DAY) for day in RANGE
    }
    for day in RANGE:
        assert reports[day] == check_raw_events(spark, range_lake, day), day


def test_a_range_names_the_bad_day_with_its_own_failures_and_rows(spark, range_lake):
    bad = check_raw_events_range(spark, range_lake, RANGE)[BAD_DAY]
    assert [f.label for f in bad.failures] == [
        "expect_column_values_to_not_be_null(user_id)",
        "expect_column_values_to_be_in_set(event_type)",
        "expect_column_values_to_be_between(ts)",
        "expect_column_values_to_be_unique(event_id)",
    ]
    assert bad.failure("expect_column_values_to_be_between", "ts").sample_rows == [
        {"event_id": f"{BAD_DAY}-3", "ts": "2026-01-05T00:00:00", "user_id": 4, "item_id": 1,
         "event_type": "share"},
    ]  # fmt: skip
    unique = bad.failure("expect_column_values_to_be_unique", "event_id")
    assert unique.observed["unexpected_count"] == 2
    assert unique.observed["element_count"] == 10  # the day's rows, not the range's
    assert bad.statistics == {
        "evaluated_expectations": 12, "successful_expectations": 8,
        "unsuccessful_expectations": 4, "success_percent": 8 / 12 * 100,
    }  # fmt: skip
    assert bad.context["row_count_bounds"] == [5, 15]


def test_the_runs_log_names_each_failed_days_expectations(spark, range_lake):
    """A failed day was logged as its date alone ("1 of 1 day(s) failed: 2026-01-04"): what
    failed was only on the UI's check page. A range that passes logs nothing."""
    from assets.quality import _log_failures

    class Log:
        def __init__(self) -> None:
            self.errors: list[str] = []

        def error(self, text: str) -> None:
            self.errors.append(text)

    class Context:
        log = Log()

    reports = check_raw_events_range(spark, range_lake, RANGE)
    _log_failures(Context(), reports)
    (said,) = Context.log.errors
    assert said.startswith(f"2 of {len(RANGE)} day(s) failed: {BAD_DAY} (")
    assert "expect_column_values_to_not_be_null(user_id): unexpected_count=" in said
    assert said.endswith(
        f", {QUARANTINED_DAY} (expect_table_row_count_to_be_between: observed_value=0 "
        "(expected min_value=5, max_value=15))"
    )
    Context.log = Log()
    _log_failures(Context(), {day: r for day, r in reports.items() if r.success})
    assert Context.log.errors == []


def test_a_one_day_range_is_the_one_day_check(spark, range_lake):
    for day in (BAD_DAY, "2026-01-05"):
        assert check_raw_events_range(spark, range_lake, [day]) == {
            day: check_raw_events(spark, range_lake, day)
        }


def test_an_empty_day_passes_and_is_left_out_of_the_following_days_band(spark, range_lake):
    reports = check_raw_events_range(spark, range_lake, [EMPTY_DAY, "2026-01-07"])
    empty = reports[EMPTY_DAY]
    assert empty.success and empty.failures == []
    assert empty.statistics["evaluated_expectations"] == 11  # no volume expectation
    assert empty.notes == [
        "volume check skipped: no events landed for 2026-01-06 (ingestion wrote an empty "
        "partition), so there is no volume to compare; raw_events_has_events warns"
    ]
    assert reports["2026-01-07"].context["trailing_daily_counts"] == [10, 12, 8, 10, 10]
    assert trailing_daily_counts(spark, range_lake, "2026-01-07") == [10, 12, 8, 10, 10]


def test_a_day_whose_rows_were_all_quarantined_fails_the_volume_band(spark, range_lake):
    [report] = check_raw_events_range(spark, range_lake, [QUARANTINED_DAY]).values()
    assert [f.label for f in report.failures] == ["expect_table_row_count_to_be_between"]
    assert report.failures[0].observed == {"observed_value": 0}
    assert report.context["trailing_daily_counts"] == [10, 12, 8, 10, 10, 10]  # 01-06 left out


def test_has_events_flags_empty_and_eventless_days_with_the_folder_looked_in(spark, range_lake):
    found = check_has_events(spark, range_lake, [BAD_DAY, EMPTY_DAY, QUARANTINED_DAY])
    assert {day: f.has_events for day, f in found.items()} == {
        BAD_DAY: True, EMPTY_DAY: False, QUARANTINED_DAY: False,
    }  # fmt: skip
    folder = range_lake.landing_dir("events", EMPTY_DAY)
    assert found[EMPTY_DAY].describe() == (
        f"no events on {EMPTY_DAY}: ingestion found no landing file in {folder} and wrote an "
        "empty partition"
    )
    assert found[QUARANTINED_DAY].describe() == (
        f"no events on {QUARANTINED_DAY}: 0 rows in raw_events from "
        f"{range_lake.landing_dir('events', QUARANTINED_DAY)} (9 row(s) quarantined)"
    )
    assert found[BAD_DAY].describe() == f"10 events on {BAD_DAY}"


def test_feature_range_compares_each_day_with_the_latest_partition_before_it(spark, lake):
    days = ["2026-01-01", "2026-01-02", "2026-01-03", "2026-01-04"]
    reports = check_feature_table_range(spark, lake, "user_features", days)
    assert {day: r.success for day, r in reports.items()} == {
        "2026-01-01": True, "2026-01-02": False, "2026-01-03": True, "2026-01-04": False,
    }  # fmt: skip
    for day in days:
        assert reports[day] == check_feature_table(spark, lake, "user_features", day), day
    assert reports["2026-01-04"].context["previous_partition"] == "2026-01-03"
    assert reports["2026-01-04"].failures[0].sample_rows == [{"user_id": 2, "impressions_1d": -4}]


def test_a_sparse_range_draws_its_bounds_from_the_days_between(spark, range_lake, lake):
    # 01-07's trailing days include 01-05, outside the range; 01-04's previous user_features
    # partition is 01-03, outside it too.
    events = check_raw_events_range(spark, range_lake, [BAD_DAY, "2026-01-07"])
    assert events["2026-01-07"] == check_raw_events(spark, range_lake, "2026-01-07")
    assert events["2026-01-07"].context["trailing_daily_counts"] == [10, 12, 8, 10, 10]
    features = check_feature_table_range(spark, lake, "user_features", ["2026-01-01", "2026-01-04"])
    assert features["2026-01-04"] == check_feature_table(spark, lake, "user_features", "2026-01-04")
    assert features["2026-01-04"].context["previous_partition"] == "2026-01-03"


@pytest.mark.parametrize("table", ["user_features", "cohort_features"])
def test_an_entity_twice_in_a_day_fails_that_day_only_in_a_range(spark, make_home, table):
    """Each day holds every entity once; the same keys on other days are the next days' rows.
    A day holding one twice fails, in the range form (keys within the day, a compound key
    unit-separated) as in the one-day form."""
    paths = make_home(f"quality_twice_{table}")
    days = ["2026-01-01", "2026-01-02", "2026-01-03"]
    rows = [r for day in days for r in feature_records(table, day, 6)]
    rows.append({**feature_records(table, days[1], 6)[2], "ctr_28d": 0.25})
    spark.createDataFrame(rows, feature_ddl(table)).write.format("delta").partitionBy("dt").save(
        paths.table(table)
    )
    reports = check_feature_table_range(spark, paths, table, days)
    assert {day: r.success for day, r in reports.items()} == {
        days[0]: True, days[1]: False, days[2]: True,
    }  # fmt: skip
    for day in days:
        assert reports[day] == check_feature_table(spark, paths, table, day), day
    [failure] = reports[days[1]].failures
    assert failure.expectation in (
        "expect_column_values_to_be_unique", "expect_compound_columns_to_be_unique",
    )  # fmt: skip


def test_a_rating_off_its_scale_fails_its_day_only_and_a_long_watch_is_no_rating(spark, make_home):
    """The value expectations hold only where a row_condition keeps them (ratings, watches): in
    the range form the day's own condition and the day are both applied, so a watch of an hour
    on one day is not judged on the rating scale, and a rating of 9 fails its day alone."""
    paths = make_home("quality_values")
    days = ["2026-01-01", "2026-01-02", "2026-01-03"]
    rows = [r for day in days for r in event_records(day, 10)]
    for r in rows:
        if r["dt"] == dt.date(2026, 1, 2) and r["event_id"].endswith("-3"):
            r["event_type"], r["value"] = "rating", 9.0
        if r["event_id"].endswith("-4"):  # a watch on every day
            r["event_type"], r["value"] = "watch", 3600.0
    spark.createDataFrame(rows, EVENTS_DDL).write.format("delta").partitionBy("dt").save(
        paths.table("raw_events")
    )
    reports = check_raw_events_range(spark, paths, days, band=None)
    assert {d: r.success for d, r in reports.items()} == {
        days[0]: True,
        days[1]: False,
        days[2]: True,
    }
    for day in days:
        assert reports[day] == check_raw_events(spark, paths, day, band=None), day
    [failure] = reports[days[1]].failures
    assert (failure.expectation, failure.column) == ("expect_column_values_to_be_between", "value")
    assert failure.observed["unexpected_count"] == 1
    assert failure.sample_rows[0]["event_id"] == "2026-01-02-3"
