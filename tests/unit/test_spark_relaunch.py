"""A second Spark start in one process is explained in its own words (recassets/spark_start.py).

Once ``spark.release_jvm`` had ended the first driver JVM (``assets.launch`` does, before the
models' run), a later ``get_spark`` that failed quoted the first JVM's launcher lines beside its
own, and gave the jars advice for the first one's Ivy lines; and a failed wait for a master was
remembered by the master alone, so the same master set elsewhere was named by the first
setting (review, 2026-12-07)."""

from __future__ import annotations

import os
import socket
from collections import deque
from collections.abc import Iterator

import pytest

from recassets import spark_start
from recassets.spark_start import SparkStartError, launch_teed, start_error

GATEWAY_EXITED = "[JAVA_GATEWAY_EXITED] Java gateway process exited before sending its port number."
# The first JVM's log: it started, after an Ivy warning about a jar it then found in its cache.
FIRST_JVM = [
    ":: loading settings :: url = jar:file:/x/pyspark/jars/ivy-2.5.3.jar!/ivysettings.xml",
    "[FAILED     ] io.delta#delta-storage;4.0.0!delta-storage.jar: download failed (0ms)",
    "26/12/07 10:00:01 INFO SparkContext: Running Spark version 4.0.0",
]
# The second's: refused by the JVM itself.
SECOND_JVM = [
    "Invalid maximum heap size: -Xmx4x",
    "Error: Could not create the Java Virtual Machine.",
    "Error: A fatal exception has occurred. Program will exit.",
]


@pytest.fixture(autouse=True)
def no_failed_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spark_start, "_UNANSWERED", {})


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port bound to nothing that listens: a connect to it is refused at once."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def test_a_second_jvm_that_does_not_start_is_explained_by_its_own_lines_only(monkeypatch):
    from pyspark import SparkContext

    monkeypatch.setattr(spark_start, "LAUNCHER_LINES", deque(FIRST_JVM, maxlen=400))
    monkeypatch.setattr(spark_start, "_TEES", [])  # the first JVM's tee: read to its end
    monkeypatch.setattr(SparkContext, "_gateway", None)  # released: a new JVM is launched
    monkeypatch.delenv("PYSPARK_GATEWAY_PORT", raising=False)

    def refused(conf, popen_kwargs):  # the launcher, writing to the stderr it was given
        os.write(popen_kwargs["stderr"], ("\n".join(SECOND_JVM) + "\n").encode())
        raise RuntimeError(GATEWAY_EXITED)

    monkeypatch.setattr("pyspark.java_gateway.launch_gateway", refused)
    with pytest.raises(RuntimeError) as failed:
        launch_teed({"spark.master": "local[1]"})
    message = str(start_error(failed.value, "local[1]", "RECASSETS_SPARK_MASTER"))
    assert message.startswith("Spark's driver JVM did not start")
    assert "  Invalid maximum heap size: -Xmx4x" in message
    # before: the first JVM's Ivy line quoted, and the jars advice given for it
    assert "download failed" not in message and "Maven Central" not in message


def test_a_failed_wait_names_the_setting_of_each_wait(closed_port: int):
    master = f"spark://127.0.0.1:{closed_port}"
    with pytest.raises(SparkStartError, match=r"\(RECASSETS_SPARK_MASTER\) did not answer"):
        spark_start.wait_for_master(master, "RECASSETS_SPARK_MASTER", timeout_s=0.3)
    conf = "RECASSETS_SPARK_CONF's spark.master"
    with pytest.raises(SparkStartError) as again:  # before: the first wait's error, as it was
        spark_start.wait_for_master(master, conf, timeout_s=0.3)
    assert f"Spark master {master} ({conf}) did not answer" in str(again.value)
