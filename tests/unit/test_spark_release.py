"""``spark.release_jvm`` and the launcher's use of it (``assets.launch.spark_done``), review at
volume of 2026-12-07: one ``recassets materialize`` kept the driver JVM of its ingest and
features run (3.75 GB resident, idle) through the models' run, which needed 5 GB of its own.
A stopped session alone leaves pyspark's gateway process running; the JVM itself now ends.
In a child process: this one's session-wide ``spark`` fixture must keep its JVM."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from assets.launch import spark_done

CHILD = textwrap.dedent(
    """
    from pyspark import SparkContext
    from recassets.spark import get_spark, release_jvm, stop_spark

    spark = get_spark("local[1]")
    assert spark.range(3).count() == 3
    proc = SparkContext._gateway.proc
    {release}
    print("jvm", "ended" if proc.poll() is not None else "running")
    again = get_spark("local[1]")  # a later step that needs Spark gets a new one
    print("again", again.range(4).count())
    release_jvm()
    """
)


def _child(release: str) -> str:
    out = subprocess.run([sys.executable, "-c", CHILD.format(release=release)],
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    return out.stdout


def test_release_ends_the_driver_jvm_and_a_later_session_starts_again():
    said = _child("release_jvm()")
    assert "jvm ended" in said and "again 4" in said


def test_stopping_the_session_alone_leaves_the_jvm_running():
    # what the plan did before: the reason for release_jvm
    assert "jvm running" in _child("stop_spark()")


def test_the_jvm_is_released_only_once_no_later_entry_needs_spark():
    lake = {"select": ["lake/raw_events", "lake/user_features"]}
    models = {"select": ["models/two_tower_model"]}
    serving = {"select": ["retrieval/item_index", "serving/recommender_bento"]}
    plan = [lake, models, serving]
    assert [spark_done(plan, i) for i in range(3)] == [False, True, True]
    later_lake = [lake, models, {"select": ["lake/serving_log"]}]
    assert [spark_done(later_lake, i) for i in range(3)] == [False, False, False]
    assert spark_done([models, serving], 0) is False  # nothing ran before: nothing to end
