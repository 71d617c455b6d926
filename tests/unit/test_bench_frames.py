"""The benchmarks' check that both sides of a ratio made the same table
(``benchmarks._common.frame_differences``): a ratio over different outputs measures nothing."""

from __future__ import annotations

from benchmarks._common import frame_differences


def test_frames_that_differ_only_beyond_nine_digits_are_the_same_table(spark) -> None:
    a = spark.createDataFrame(
        [(1, 0.1 + 0.2, [1.0, 2.0]), (2, 3.0, [0.5])], "id int, x double, w array<double>"
    )
    b = spark.createDataFrame(
        [(2, 3.0, [0.5]), (1, 0.3, [1.0, 2.0 + 1e-13])], "id int, x double, w array<double>"
    )
    assert frame_differences(a, b) == 0


def test_a_changed_value_a_changed_array_and_a_repeated_row_are_counted(spark) -> None:
    a = spark.createDataFrame(
        [(1, 0.3, [1.0]), (2, 3.0, [0.5])], "id int, x double, w array<double>"
    )
    value = spark.createDataFrame(
        [(1, 0.3001, [1.0]), (2, 3.0, [0.5])], "id int, x double, w array<double>"
    )
    array = spark.createDataFrame(
        [(1, 0.3, [1.0]), (2, 3.0, [0.6])], "id int, x double, w array<double>"
    )
    repeated = spark.createDataFrame(
        [(1, 0.3, [1.0]), (1, 0.3, [1.0]), (2, 3.0, [0.5])], "id int, x double, w array<double>"
    )
    assert frame_differences(a, value) == 2  # one row each side missing from the other
    assert frame_differences(a, array) == 2
    assert frame_differences(a, repeated) == 1  # multisets: the second copy is extra
