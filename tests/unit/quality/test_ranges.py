"""PartitionRange on its own: a failing expectation that no Spark predicate locates is judged
by Great Expectations on every day, and what has no range form is refused."""

from __future__ import annotations

import great_expectations as gx
import pytest
from pyspark.sql import functions as F

from recassets.quality import PartitionRange, validate
from tests.unit.quality.frames import EVENTS_DDL, event_records

DAYS = ["2026-01-01", "2026-01-02"]


@pytest.fixture(scope="module")
def frame(spark):
    # 01-02 has 11 rows: its last event_id, 2026-01-02-10, is 13 characters long.
    rows = event_records(DAYS[0], 10) + event_records(DAYS[1], 11)
    return spark.createDataFrame(rows, EVENTS_DDL)


def _suite(expectation) -> gx.ExpectationSuite:
    return gx.ExpectationSuite(
        name="ids", expectations=[expectation], meta={"sample_columns": ["event_id"]}
    )


def test_an_expectation_without_a_locating_predicate_is_judged_on_every_day(frame):
    def suite():
        E = gx.expectations
        return _suite(E.ExpectColumnValueLengthsToBeBetween(column="event_id", max_value=12))

    with PartitionRange(frame, DAYS) as batch:
        assert batch.row_counts() == {DAYS[0]: 10, DAYS[1]: 11}
        reports = batch.validate({day: suite() for day in DAYS})
    assert {day: r.success for day, r in reports.items()} == {DAYS[0]: True, DAYS[1]: False}
    [failure] = reports[DAYS[1]].failures
    assert failure.observed["unexpected_count"] == 1
    assert failure.sample_rows == [{"event_id": "2026-01-02-10"}]
    for day in DAYS:
        assert reports[day] == validate(frame.where(F.col("dt") == day), suite()), day


def test_what_has_no_range_form_is_refused(frame):
    E = gx.expectations
    partial = _suite(E.ExpectColumnValuesToNotBeNull(column="user_id", mostly=0.9))
    columns = _suite(E.ExpectTableColumnCountToEqual(value=11))
    with PartitionRange(frame, DAYS[:1]) as batch:
        with pytest.raises(ValueError, match="mostly"):
            batch.validate({DAYS[0]: partial})
        with pytest.raises(ValueError, match="expect_table_column_count_to_equal"):
            batch.validate({DAYS[0]: columns})
