"""``assets.launch.release_spark`` ends a Spark JVM only where this process started one
(``spark.started``).

Its guard was ``"recassets.spark" in sys.modules``, true in every launcher (the resources
import it as the definitions load): each plan of models and serving runs imported pyspark
only to find no JVM to end (review, 2026-12-07). In a child process: this one's session-wide
``spark`` fixture keeps its JVM, and has pyspark imported."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

CHILD = textwrap.dedent(
    """
    import sys
    import definitions  # as the launcher loads them: recassets.spark imported
    from assets.launch import release_spark
    from recassets.spark import get_spark, started

    print("before", started())
    release_spark()
    print("pyspark imported", "pyspark" in sys.modules)
    get_spark("local[1]")
    print("after a start", started())
    from pyspark import SparkContext

    proc = SparkContext._gateway.proc
    release_spark()
    print("released", started(), "jvm", "ended" if proc.poll() is not None else "running")
    """
)


def test_release_ends_a_jvm_this_process_started_and_imports_nothing_otherwise():
    out = subprocess.run([sys.executable, "-c", CHILD], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.splitlines() == [
        "before False",
        "pyspark imported False",  # before: True, release_jvm imported it to find no gateway
        "after a start True",
        "released False jvm ended",
    ]
