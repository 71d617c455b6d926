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


def test_recent_commits_match_delta_history(spark, tmp_path):
    """The commit files read directly give what ``history`` gives: versions newest first,
    each commit's userMetadata and operation metrics."""
    from delta.tables import DeltaTable

    from recassets.lake import recent_commits

    path = str(tmp_path / "t")
    for i in range(3):
        spark.range(i + 1).write.format("delta").mode("append").option(
            "userMetadata", f"run {i}"
        ).save(path)
    history = [
        (int(r["version"]), r["userMetadata"], dict(r["operationMetrics"]))
        for r in DeltaTable.forPath(spark, path)
        .history(2)
        .select("version", "userMetadata", "operationMetrics")
        .collect()
    ]
    got = recent_commits(spark, path, n=2)
    assert got == history == recent_commits(spark, "file://" + path, n=2)
    assert [(v, m) for v, m, _ in got] == [(2, "run 2"), (1, "run 1")]
    assert got[0][2]["numOutputRows"] == "3"  # the metrics the ingest check reads


def test_a_table_from_an_older_ddl_gains_the_new_columns_once(spark, tmp_path):
    import datetime as dt

    from recassets.lake import ensure_table

    path = str(tmp_path / "t")
    ensure_table(spark, path, "id bigint NOT NULL, dt date NOT NULL", ["dt"])
    spark.createDataFrame([(1, dt.date(2026, 1, 1))], "id bigint, dt date").write.format(
        "delta"
    ).mode("append").save(path)
    newer = "id bigint NOT NULL, tags array<bigint> NOT NULL, dt date NOT NULL"
    ensure_table(spark, path, newer, ["dt"])
    rows = spark.read.format("delta").load(path).collect()
    assert [(r["id"], r["tags"]) for r in rows] == [(1, None)]  # the old row reads null
    version = latest_version(spark, path)
    ensure_table(spark, path, newer, ["dt"])  # nothing missing: no commit
    assert latest_version(spark, path) == version
    spark.createDataFrame(
        [(2, [7], dt.date(2026, 1, 2))], "id bigint, tags array<bigint>, dt date"
    ).write.format("delta").mode("append").save(path)
    assert sorted(r["id"] for r in spark.read.format("delta").load(path).collect()) == [1, 2]


def test_replace_partitions_writes_one_file_per_day_and_only_the_days_it_selects(spark, tmp_path):
    """Rows of each day spread over several tasks: a plain write leaves a file per day per
    task, ``replace_partitions`` one per day; the days outside ``where`` keep their rows."""
    import datetime as dt

    from deltalake import DeltaTable
    from pyspark.sql import functions as F

    from recassets.lake import days_predicate, replace_partitions

    def files_per_day(path):
        days = DeltaTable(path).get_add_actions(flatten=True).column("partition.dt").to_pylist()
        return {str(d): days.count(d) for d in set(days)}

    first = dt.date(2026, 1, 1)
    rows = (
        spark.range(600)
        .select((F.col("id") % 97).alias("v"), F.date_add(F.lit(first), (F.col("id") % 3).cast("int")).alias("dt"))
        .repartition(4)  # round-robin: every task holds rows of every day
    )  # fmt: skip
    plain, path = str(tmp_path / "plain"), str(tmp_path / "t")
    rows.write.format("delta").partitionBy("dt").save(plain)
    rows.write.format("delta").partitionBy("dt").save(path)
    assert all(n > 1 for n in files_per_day(plain).values())  # the case replace_partitions fixes

    days = ["2026-01-02", "2026-01-03"]
    replace_partitions(
        rows.where(F.col("dt") >= F.lit(dt.date(2026, 1, 2))), path, days_predicate(days), "m"
    )
    counts = files_per_day(path)
    assert {d: counts[d] for d in days} == {d: 1 for d in days}
    assert counts["2026-01-01"] == files_per_day(plain)["2026-01-01"]  # not rewritten
    back = spark.read.format("delta").load(path)
    assert back.count() == 600
    assert sorted(map(tuple, back.collect())) == sorted(map(tuple, rows.collect()))


def test_a_version_never_written_or_a_table_gone_is_said_as_such(tmp_path):
    """Both read as log cleanup ("no longer in the table's log") or "cannot be read"."""
    import pyarrow as pa
    from deltalake import write_deltalake

    from recassets.lake import version_gone

    path = str(tmp_path / "t")
    for i in range(2):
        write_deltalake(path, pa.table({"x": [i]}), mode="append")
    assert version_gone(path, 1) is None  # the version is there
    assert version_gone(path, 5) == "version 5 was never written (the table's latest is 1)"
    gone = version_gone(str(tmp_path / "missing"), 1)
    assert gone is not None and gone.startswith(f"no Delta table at {tmp_path / 'missing'}")
