"""The suites on tiny frames: a good partition passes, and each expectation fails on the one
thing broken for it, named in the report with its failing rows.

Most cases validate pandas frames (a validation takes a fraction of a second); the Spark
cases check that GE's Spark datasource gives the same verdicts and samples on pyspark 4.2.
"""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest

from recassets.quality import (
    counter_columns,
    ctr_columns,
    feature_suite,
    raw_events_suite,
    validate,
)
from recassets.quality.suites import FINITE, count_band, ddl_columns
from tests.unit.quality.frames import EVENTS_DDL, event_records, feature_ddl, feature_records

DAY = "2026-01-05"
NOT_NULL = "expect_column_values_to_not_be_null"
IN_SET = "expect_column_values_to_be_in_set"
BETWEEN = "expect_column_values_to_be_between"
UNIQUE = "expect_column_values_to_be_unique"
ROW_COUNT = "expect_table_row_count_to_be_between"
TRAILING = [10, 12, 8]  # mean 10: the band is [5, 15]


def events(n: int = 10) -> pd.DataFrame:
    return pd.DataFrame(event_records(DAY, n))


def labels(report) -> list[str]:
    return [f.label for f in report.failures]


# --- raw_events: the suite itself ----------------------------------------------------------


def test_raw_events_suite_holds_the_volume_band_from_three_trailing_days():
    suite = raw_events_suite(DAY, [100, 110, 120], band=0.5)
    assert [(e.expectation_type, getattr(e, "column", None)) for e in suite.expectations] == [
        (NOT_NULL, "event_id"), (NOT_NULL, "user_id"), (NOT_NULL, "item_id"), (NOT_NULL, "ts"),
        (NOT_NULL, "event_type"), (IN_SET, "event_type"), (BETWEEN, "ts"), (UNIQUE, "event_id"),
        (NOT_NULL, "value"), (BETWEEN, "value"), (BETWEEN, "value"), (ROW_COUNT, None),
    ]  # fmt: skip
    row_count = suite.expectations[-1]
    assert (row_count.min_value, row_count.max_value) == (55, 165)
    ts = suite.expectations[6]
    assert (ts.min_value, ts.max_value, ts.strict_max) == (
        dt.datetime(2026, 1, 5, tzinfo=dt.UTC), dt.datetime(2026, 1, 6, tzinfo=dt.UTC), True,
    )  # fmt: skip
    assert suite.meta["notes"] == []


def test_raw_events_suite_skips_the_volume_check_under_three_trailing_days():
    suite = raw_events_suite(DAY, [100, 110])
    [floor] = [e for e in suite.expectations if e.expectation_type == ROW_COUNT]
    assert (floor.min_value, floor.max_value) == (1, None)  # only "not nothing"
    assert suite.meta["notes"] == [
        "volume check skipped: 2 trailing day(s) with events, at least 3 needed for a meaningful median"
    ]


def test_count_band_rounds_inwards():
    assert count_band(10, 0.5) == (5, 15)
    assert count_band(11, 0.5) == (6, 16)  # [5.5, 16.5]
    assert count_band(3, 2.0) == (0, 9)  # never below zero


# --- raw_events: validation ----------------------------------------------------------------


def test_good_partition_passes():
    report = validate(events(), raw_events_suite(DAY, TRAILING))
    assert report.success
    assert report.failures == []
    assert report.statistics == {
        "evaluated_expectations": 12, "successful_expectations": 12,
        "unsuccessful_expectations": 0, "success_percent": 100.0,
    }  # fmt: skip
    assert report.context["row_count_bounds"] == [5, 15]


@pytest.mark.parametrize("column", ["event_id", "user_id", "item_id"])
def test_null_id_fails_not_null_with_the_row(column):
    df = events()
    df[column] = df[column].astype(object)
    df.loc[3, column] = None
    report = validate(df, raw_events_suite(DAY, TRAILING))
    assert not report.success
    assert labels(report) == [f"{NOT_NULL}({column})"]
    failure = report.failure(NOT_NULL, column)
    assert failure.observed["unexpected_count"] == 1
    row = failure.sample_rows[0]
    assert len(failure.sample_rows) == 1
    assert row[column] is None
    assert (row["ts"], row["event_type"]) == ("2026-01-05T00:03:00+00:00", "share")


def test_unknown_event_type_fails_in_set():
    df = events()
    df.loc[2, "event_type"] = "poke"
    report = validate(df, raw_events_suite(DAY, TRAILING))
    assert labels(report) == [f"{IN_SET}(event_type)"]
    failure = report.failure(IN_SET, "event_type")
    assert failure.observed["partial_unexpected_list"] == ["poke"]
    assert failure.sample_rows == [
        {
            "event_id": f"{DAY}-2",
            "ts": "2026-01-05T00:02:00+00:00",
            "user_id": 3,
            "item_id": 3,
            "event_type": "poke",
        }
    ]


def test_ts_outside_the_day_fails_both_edges():
    df = events()
    df.loc[0, "ts"] = pd.Timestamp("2026-01-04T23:59:59Z")
    df.loc[9, "ts"] = pd.Timestamp("2026-01-06T00:00:00Z")  # next midnight: outside, end exclusive
    report = validate(df, raw_events_suite(DAY, TRAILING))
    assert labels(report) == [f"{BETWEEN}(ts)"]
    failure = report.failure(BETWEEN, "ts")
    assert failure.observed["unexpected_count"] == 2
    assert [(r["event_id"], r["ts"]) for r in failure.sample_rows] == [
        (f"{DAY}-0", "2026-01-04T23:59:59+00:00"), (f"{DAY}-9", "2026-01-06T00:00:00+00:00"),
    ]  # fmt: skip


def test_duplicate_event_id_fails_unique_with_both_rows():
    df = events()
    df.loc[7, "event_id"] = f"{DAY}-1"
    report = validate(df, raw_events_suite(DAY, TRAILING))
    assert labels(report) == [f"{UNIQUE}(event_id)"]
    failure = report.failure(UNIQUE, "event_id")
    assert failure.observed["unexpected_count"] == 2
    assert [(r["event_id"], r["ts"]) for r in failure.sample_rows] == [
        (f"{DAY}-1", "2026-01-05T00:01:00+00:00"), (f"{DAY}-1", "2026-01-05T00:07:00+00:00"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("n", "passed"), [(4, False), (5, True), (15, True), (16, False), (40, False)]
)
def test_volume_outside_the_trailing_band_fails(n, passed):
    report = validate(events(n), raw_events_suite(DAY, TRAILING))
    assert report.success is passed
    if not passed:
        assert labels(report) == [ROW_COUNT]
        failure = report.failure(ROW_COUNT)
        assert failure.observed == {"observed_value": n}
        assert failure.kwargs == {"min_value": 5, "max_value": 15}
        assert failure.sample_rows == []


def test_volume_is_not_checked_without_enough_history():
    report = validate(events(40), raw_events_suite(DAY, [10, 10]))
    assert report.success
    assert report.notes == [
        "volume check skipped: 2 trailing day(s) with events, at least 3 needed for a meaningful median"
    ]


def test_samples_are_capped_at_five_rows():
    df = events(12)
    df["event_type"] = "poke"
    report = validate(df, raw_events_suite(DAY, TRAILING))
    failure = report.failure(IN_SET, "event_type")
    assert failure.observed["unexpected_count"] == 12
    assert [r["event_id"] for r in failure.sample_rows] == [f"{DAY}-{i}" for i in range(5)]


def test_markdown_names_the_failing_expectation_and_its_rows():
    df = events()
    df.loc[2, "event_type"] = "poke"
    report = validate(df, raw_events_suite(DAY, [10, 10]))
    md = report.to_markdown()
    assert md.splitlines()[:2] == [
        f"**raw_events_{DAY}: FAILED**: 11/12 expectations met",
        "- note: volume check skipped: 2 trailing day(s) with events, at least 3 needed for a meaningful median",
    ]
    assert (
        "| expect_column_values_to_be_in_set | event_type | "
        "value_set=['impression', 'click', 'like', 'share', 'watch', 'rating'] | "
        "unexpected_count=1, unexpected_percent=10.0, element_count=10, missing_count=0, "
        "partial_unexpected_list=['poke'] |"
    ) in md
    assert md.endswith(
        "Sample failing rows of expect_column_values_to_be_in_set(event_type):\n\n"
        "| event_id | ts | user_id | item_id | event_type |\n"
        "| --- | --- | --- | --- | --- |\n"
        f"| {DAY}-2 | 2026-01-05T00:02:00+00:00 | 3 | 3 | poke |"
    )
    assert report.sample_rows() == {
        "expect_column_values_to_be_in_set(event_type)": [
            {
                "event_id": f"{DAY}-2",
                "ts": "2026-01-05T00:02:00+00:00",
                "user_id": 3,
                "item_id": 3,
                "event_type": "poke",
            }
        ]
    }


# --- raw_events on Spark -------------------------------------------------------------------


def test_spark_frame_passes_and_fails_like_pandas(spark):
    good = spark.createDataFrame(event_records(DAY, 10), EVENTS_DDL)
    assert validate(good, raw_events_suite(DAY, TRAILING)).success

    rows = event_records(DAY, 10)
    rows[1]["user_id"] = None
    rows[2]["event_type"] = "poke"
    rows[3]["ts"] = dt.datetime(2026, 1, 6, tzinfo=dt.UTC)
    rows[4]["event_id"] = rows[5]["event_id"]
    bad = spark.createDataFrame(rows, EVENTS_DDL)
    report = validate(bad, raw_events_suite(DAY, [30, 30, 30]))
    assert not report.success
    assert labels(report) == [
        f"{NOT_NULL}(user_id)", f"{IN_SET}(event_type)", f"{BETWEEN}(ts)", f"{UNIQUE}(event_id)", ROW_COUNT,
    ]  # fmt: skip
    assert [r["event_id"] for r in report.failure(NOT_NULL, "user_id").sample_rows] == [f"{DAY}-1"]
    assert report.failure(IN_SET, "event_type").sample_rows[0]["event_type"] == "poke"
    assert [r["event_id"] for r in report.failure(BETWEEN, "ts").sample_rows] == [f"{DAY}-3"]
    assert (
        sorted(r["event_id"] for r in report.failure(UNIQUE, "event_id").sample_rows)
        == [f"{DAY}-5"] * 2
    )
    assert report.failure(ROW_COUNT).observed == {"observed_value": 10}
    assert report.statistics["unsuccessful_expectations"] == 5


# --- feature tables ------------------------------------------------------------------------


def features(table: str, n: int = 6) -> pd.DataFrame:
    return pd.DataFrame(feature_records(table, DAY, n))


def test_counter_and_ctr_columns_come_from_the_ddl():
    windows = [
        f"{c}_{w}d"
        for w in (1, 7, 28)
        for c in ("impressions", "clicks", "likes", "engagements", "watch_time")
    ]
    assert counter_columns("user_features") == windows
    assert counter_columns("item_features") == windows
    assert counter_columns("cohort_features") == [
        "impressions_7d", "clicks_7d", "engagements_7d", "impressions_28d", "clicks_28d", "engagements_28d",
    ]  # fmt: skip
    assert ctr_columns("user_features") == ["ctr_7d", "ctr_28d"]
    assert ctr_columns("cohort_features") == ["ctr_28d"]
    assert ddl_columns("a bigint NOT NULL, b array<struct<x: bigint, y: string>> NOT NULL, c string") == [
        ("a", "bigint"), ("b", "array<struct<x: bigint, y: string>>"), ("c", "string"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("table", "evaluated"), [("user_features", 20), ("item_features", 20), ("cohort_features", 11)]
)
def test_good_feature_partition_passes(table, evaluated):
    report = validate(features(table), feature_suite(table, previous_row_count=6))
    assert report.success
    # keys + one row per key + counters + ctrs (+ rows, but for cohorts)
    assert report.statistics["evaluated_expectations"] == evaluated
    assert report.context.get("row_count_bounds") == (
        None if table == "cohort_features" else [3, None]
    )


def test_cohorts_may_thin_out_with_the_events_where_items_may_not():
    """A quiet month leaves no cohort with events in its window: one cohort row after six is
    a true fact for cohort_features and a lost write for item_features."""
    cohorts = validate(features("cohort_features", 1), feature_suite("cohort_features", 6))
    assert cohorts.success
    assert cohorts.notes == [
        "row-count check not applied: cohort_features rows exist only for cohorts with events "
        "in the window (see feature_suite)"
    ]
    items = validate(features("item_features", 1), feature_suite("item_features", 6))
    assert labels(items) == [ROW_COUNT]


def test_feature_row_count_may_grow_but_not_fall_by_more_than_the_tolerance():
    df = features("item_features")  # 6 rows
    assert validate(df, feature_suite("item_features", previous_row_count=2)).success  # 3x more
    shrunk = validate(df, feature_suite("item_features", previous_row_count=13))  # 6 < 6.5
    assert labels(shrunk) == ["expect_table_row_count_to_be_between"]
    assert shrunk.failure("expect_table_row_count_to_be_between").kwargs == {"min_value": 7}


def test_negative_counter_fails():
    df = features("user_features")
    df.loc[1, "clicks_7d"] = -1
    report = validate(df, feature_suite("user_features", previous_row_count=6))
    assert labels(report) == [f"{BETWEEN}(clicks_7d)"]
    failure = report.failure(BETWEEN, "clicks_7d")
    assert failure.kwargs == {"column": "clicks_7d", "min_value": 0, "max_value": FINITE}
    assert failure.sample_rows == [{"user_id": 2, "clicks_7d": -1}]


def test_an_infinite_counter_fails():
    """Contract-valid watches can sum past a double's range: ``>= 0`` alone passed inf."""
    df = features("user_features")
    df["watch_time_7d"] = df["watch_time_7d"].astype(float)
    df.loc[2, "watch_time_7d"] = float("inf")
    report = validate(df, feature_suite("user_features", previous_row_count=6))
    assert labels(report) == [f"{BETWEEN}(watch_time_7d)"]
    df.loc[2, "watch_time_7d"] = 1e300  # large, and finite
    assert validate(df, feature_suite("user_features", previous_row_count=6)).success


def test_ctr_above_one_fails():
    df = features("item_features")
    df.loc[4, "ctr_28d"] = 1.25
    report = validate(df, feature_suite("item_features", previous_row_count=6))
    assert labels(report) == [f"{BETWEEN}(ctr_28d)"]
    failure = report.failure(BETWEEN, "ctr_28d")
    assert failure.kwargs == {"column": "ctr_28d", "min_value": 0, "max_value": 1}
    assert failure.sample_rows == [{"item_id": 5, "ctr_28d": 1.25}]


def test_null_key_fails():
    df = features("cohort_features")
    df.loc[2, "age_bucket"] = None
    report = validate(df, feature_suite("cohort_features", previous_row_count=6))
    assert labels(report) == [f"{NOT_NULL}(age_bucket)"]
    assert report.failure(NOT_NULL, "age_bucket").sample_rows == [
        {"country": "C2", "age_bucket": None, "category": "news"}
    ]


@pytest.mark.parametrize(("n", "passed"), [(3, True), (2, False), (9, True), (10, True)])
def test_row_count_below_the_tolerance_of_the_previous_partition_fails(n, passed):
    report = validate(
        features("item_features", n), feature_suite("item_features", previous_row_count=6)
    )
    assert report.success is passed
    if not passed:
        assert labels(report) == [ROW_COUNT]
        assert report.failure(ROW_COUNT).observed == {"observed_value": n}


def test_row_count_is_not_checked_on_the_first_partition():
    suite = feature_suite("user_features", previous_row_count=None)
    assert ROW_COUNT not in [e.expectation_type for e in suite.expectations]
    report = validate(features("user_features", 1), suite)
    assert report.success
    assert report.notes == ["row-count check skipped: no previous partition to compare with"]


def test_missing_column_is_reported_as_a_failure_not_raised():
    df = features("cohort_features").drop(columns=["clicks_7d"])
    report = validate(df, feature_suite("cohort_features", previous_row_count=6))
    assert labels(report) == [f"{BETWEEN}(clicks_7d)"]
    assert report.failure(BETWEEN, "clicks_7d").observed == {
        "error": 'Error: The column "clicks_7d" in BatchData does not exist.'
    }


def test_unknown_feature_table_is_refused():
    with pytest.raises(ValueError, match="unknown feature table 'users'"):
        feature_suite("users", 10)


def test_spark_feature_frame_fails_with_its_key(spark):
    rows = feature_records("user_features", DAY, 6)
    rows[3]["ctr_7d"] = 1.5
    rows[5]["watch_time_28d"] = -2.0
    report = validate(
        spark.createDataFrame(rows, feature_ddl("user_features")), feature_suite("user_features", 6)
    )
    assert labels(report) == [f"{BETWEEN}(watch_time_28d)", f"{BETWEEN}(ctr_7d)"]
    assert report.failure(BETWEEN, "watch_time_28d").sample_rows == [
        {"user_id": 6, "watch_time_28d": -2.0}
    ]
    assert report.failure(BETWEEN, "ctr_7d").sample_rows == [{"user_id": 4, "ctr_7d": 1.5}]


def test_parse_volume_band():
    from recassets.quality.checks import parse_volume_band

    assert parse_volume_band(None) == parse_volume_band("") == parse_volume_band(" ") == 0.5
    assert parse_volume_band("0.8") == 0.8
    assert parse_volume_band("OFF") is None and parse_volume_band("none") is None
    with pytest.raises(ValueError):
        parse_volume_band("wide")


def test_volume_expectation_is_dropped_when_the_band_is_off():
    from recassets.quality import raw_events_suite

    on = raw_events_suite("2026-01-10", [100, 100, 100], band=0.5)
    off = raw_events_suite("2026-01-10", [100, 100, 100], band=None)
    assert len(on.expectations) == len(off.expectations)
    bounds = [
        (e.min_value, e.max_value) for e in off.expectations if e.expectation_type == ROW_COUNT
    ]
    assert bounds == [(1, None)]  # the band is off, the floor of one row is not


def test_the_band_is_the_trailing_median_so_one_replayed_day_moves_nothing():
    """Every partition counts in the trailing days, those that failed this check included: one
    day replayed ten times moved the mean so far that the normal days after it failed too."""
    normal, replayed = [20] * 6, [20] * 5 + [200]
    for trailing in (normal, replayed):
        report = validate(events(20), raw_events_suite(DAY, trailing))
        assert report.success, trailing
        assert report.context["row_count_bounds"] == [10, 30]
    assert not validate(events(40), raw_events_suite(DAY, replayed)).success  # a real doubling


def test_a_day_whose_every_row_was_quarantined_fails_with_the_band_off_or_no_history():
    nothing = events(1).iloc[0:0]
    for trailing, band in (([100] * 7, None), ([], 0.5), ([100, 90], 0.5)):
        report = validate(nothing, raw_events_suite(DAY, trailing, band=band))
        assert labels(report) == [ROW_COUNT], (trailing, band)
        assert report.failure(ROW_COUNT).observed == {"observed_value": 0}
    # a day without landing files (the manifest says empty) is not judged on volume
    assert validate(nothing, raw_events_suite(DAY, [100] * 7, empty=True)).success


@pytest.mark.parametrize("table", ["user_features", "item_features", "cohort_features"])
def test_an_entity_twice_in_a_feature_partition_fails(table):
    from recassets.features.schema import KEYS

    good = features(table)
    doubled = pd.concat([good, good.iloc[[1]]], ignore_index=True)
    report = validate(doubled, feature_suite(table, previous_row_count=6))
    expected = (
        "expect_column_values_to_be_unique"
        if len(KEYS[table]) == 1
        else ("expect_compound_columns_to_be_unique")
    )
    assert [f.expectation for f in report.failures] == [expected]
    assert validate(good, feature_suite(table, previous_row_count=6)).success


def test_a_value_off_its_scale_fails_where_it_carries_the_measurement():
    """A writer that bypasses ingestion: a rating of 9 (a 0-10 scale, read as a positive), a
    rating without a value, a watch of -3600 s. Clicks without a value stay fine."""
    good = events(10)
    good.loc[1, "value"] = None  # a click: no measurement, nothing to check
    assert validate(good, raw_events_suite(DAY, TRAILING)).success
    for row, kind, value, failing in (
        (2, "rating", 9.0, BETWEEN), (3, "rating", None, NOT_NULL), (4, "watch", -3600.0, BETWEEN),
    ):  # fmt: skip
        bad = good.copy()
        bad.loc[row, ["event_type", "value"]] = [kind, value]
        report = validate(bad, raw_events_suite(DAY, TRAILING))
        assert [(f.expectation, f.column) for f in report.failures] == [(failing, "value")], kind
        assert report.failures[0].sample_rows[0]["event_id"] == f"{DAY}-{row}"
    rated = good.copy()
    rated.loc[2, ["event_type", "value"]] = ["rating", 4.5]
    assert validate(rated, raw_events_suite(DAY, TRAILING)).success


def test_the_rating_and_the_watch_bounds_are_told_apart_with_their_rows(spark):
    """Both are ``expect_column_values_to_be_between(value)``: failing together, their sample
    rows were filed under one label (the watch's overwrote the rating's), the log lines read
    alike and without the bounds, and a NaN watch was shown as None, a null."""
    rows = event_records(DAY, 10)
    rows[2].update(event_type="rating", value=9.0)
    rows[4].update(event_type="watch", value=float("nan"))
    report = validate(spark.createDataFrame(rows, EVENTS_DDL), raw_events_suite(DAY, TRAILING))
    rating = f"{BETWEEN}(value where event_type == 'rating')"
    watch = f"{BETWEEN}(value where event_type == 'watch')"
    assert labels(report) == [rating, watch]
    samples = report.sample_rows()
    assert [r["event_id"] for r in samples[rating]] == [f"{DAY}-2"]
    assert [(r["event_id"], r["value"]) for r in samples[watch]] == [(f"{DAY}-4", "NaN")]
    line = report.failures[0].line()
    assert line.startswith(f"{rating}: unexpected_count=1") and line.endswith(
        "(expected min_value=0.0, max_value=5.0)"
    )
    # the control: one rating off its scale alone is one failure, under its own label
    rows[4].update(event_type="watch", value=30.0)
    alone = validate(spark.createDataFrame(rows, EVENTS_DDL), raw_events_suite(DAY, TRAILING))
    assert labels(alone) == [rating]
