"""``lake.latest_version``: the directory listing agrees with Delta's own history."""

from __future__ import annotations

from recassets.lake import latest_version


def test_latest_version_matches_delta_history(spark, tmp_path):
    from delta.tables import DeltaTable

    path = str(tmp_path / "t")
    for i in range(3):
        spark.range(i + 1).write.format("delta").mode("append").save(path)
    expected = int(DeltaTable.forPath(spark, path).history(1).select("version").first()[0])
    assert expected == 2
    assert latest_version(spark, path) == 2
    assert latest_version(spark, "file://" + path) == 2
    spark.range(5).write.format("delta").mode("overwrite").save(path)
    assert latest_version(spark, path) == 3
