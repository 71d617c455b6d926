"""A Spark start that fails says why (recassets/spark_start.py): the launcher's own lines, the
jars advice only for jars, and a master or Connect server that does not answer named after a
bounded wait. Before, every launcher failure read "Spark could not load delta-spark's jars", a
dead spark:// master failed after about 66 s with "Cannot call methods on a stopped
SparkContext", and a dead Connect server held the step for about ten minutes, silently."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from recassets import spark_start
from recassets.spark_start import JARS_HELP, SparkStartError, explaining, start_error

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_EXITED = "[JAVA_GATEWAY_EXITED] Java gateway process exited before sending its port number."


@pytest.fixture(autouse=True)
def no_failed_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test waits afresh: a failed wait is remembered for the process (``_UNANSWERED``)."""
    monkeypatch.setattr(spark_start, "_UNANSWERED", {})


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A port of the range this suite may use (3160-3169) bound to nothing that listens: a
    connect to it is refused at once, and nothing else can take it while the test runs."""
    for port in range(3160, 3170):
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            sock.close()
            continue
        try:
            yield port
        finally:
            sock.close()
        return
    pytest.skip("no free port in 3160-3169")


# --- the launcher's words ---------------------------------------------------------------------

# What the launcher wrote in the review's runs (the frames cut short), then an Ivy failure.
MASTER_REFUSED = [
    ":: loading settings :: url = jar:file:/x/pyspark/jars/ivy-2.5.3.jar!/ivysettings.xml",
    "Ivy Default Cache set to: /root/.ivy2.5.2/cache",
    "io.delta#delta-spark_4.2_2.13 added as a dependency",
    'Exception in thread "main" org.apache.spark.SparkException: Master must either be yarn or '
    "start with spark, k8s, or local",
    "\tat org.apache.spark.deploy.SparkSubmit.error(SparkSubmit.scala:1097)",
    "\tat org.apache.spark.deploy.SparkSubmit.prepareSubmitEnvironment(SparkSubmit.scala:256)",
]
UNRESOLVED = [
    "\t  https://repo1.maven.org/maven2/io/nonexistent/nothing/0.0.1/nothing-0.0.1.pom",
    "\t\t::          UNRESOLVED DEPENDENCIES         ::",
    "\t\t:: io.nonexistent#nothing;0.0.1: not found",
    'Exception in thread "main" java.lang.RuntimeException: [unresolved dependency: '
    "io.nonexistent#nothing;0.0.1: not found]",
    "\tat org.apache.spark.util.MavenUtils$.resolveMavenCoordinates(MavenUtils.scala:539)",
]


def test_a_launcher_refusal_is_quoted_and_gets_no_jars_advice():
    error = start_error(
        RuntimeError(GATEWAY_EXITED), "bogus", "RECASSETS_SPARK_MASTER", MASTER_REFUSED
    )
    assert isinstance(error, SparkStartError)
    message = str(error)
    assert "Master must either be yarn or start with spark, k8s, or local" in message
    assert "Maven Central" not in message and "delta-spark's jars" not in message
    assert "SparkSubmit.error" not in message  # the frames stay in the log
    assert explaining(MASTER_REFUSED) == [MASTER_REFUSED[3]]


def test_a_jar_that_did_not_resolve_gets_the_jars_advice_and_the_launchers_words():
    error = start_error(
        RuntimeError(GATEWAY_EXITED), "local[*]", "RECASSETS_SPARK_MASTER", UNRESOLVED
    )
    message = str(error)
    assert message.startswith(JARS_HELP)
    assert "[unresolved dependency: io.nonexistent#nothing;0.0.1: not found]" in message
    missing = RuntimeError(
        "java.lang.ClassNotFoundException: io.delta.sql.DeltaSparkSessionExtension"
    )
    assert str(start_error(missing, "local[*]", "RECASSETS_SPARK_MASTER", [])).startswith(JARS_HELP)


def test_a_failure_nothing_here_explains_is_raised_as_it_is():
    other = ValueError("something else")
    assert start_error(other, "local[*]", "RECASSETS_SPARK_MASTER", MASTER_REFUSED) is other


def test_a_jvm_that_does_not_start_is_explained_in_its_launchers_words():
    """A real launcher, in a process of its own (a gateway, once started, serves the process for
    good): a JVM option no settings check reads (``-Xss1x``) stops the JVM; the error quotes the
    JVM's own line, gives no jars advice, and the line still reaches the process's stderr."""
    code = (
        "from recassets.spark import get_spark, SparkStartError\n"
        "try:\n"
        "    get_spark(conf={'spark.driver.extraJavaOptions': '-Xss1x'})\n"
        "except SparkStartError as e:\n"
        "    print('REFUSED:', e)\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYSPARK_GATEWAY")}
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert "REFUSED: Spark's driver JVM did not start" in out.stdout, out.stdout + out.stderr
    assert "  Invalid thread stack size: -Xss1x" in out.stdout
    assert "Maven Central" not in out.stdout
    assert "Invalid thread stack size: -Xss1x" in out.stderr  # teed, not swallowed


# --- a spark:// master that does not answer ---------------------------------------------------


def test_a_master_that_does_not_answer_is_named(closed_port: int):
    said: list[str] = []
    master = f"spark://127.0.0.1:{closed_port}"
    with pytest.raises(SparkStartError) as refused:
        spark_start.wait_for_master(master, timeout_s=0.5, say=said.append)
    message = str(refused.value)
    assert message.startswith(f"Spark master {master} (RECASSETS_SPARK_MASTER) did not answer")
    assert "RECASSETS_SPARK_CONNECT_TIMEOUT_S" in message
    spark_start.wait_for_master("local[*]", timeout_s=0.5)  # nothing to wait for


def test_the_wait_for_a_master_says_it_waits(closed_port: int, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(spark_start, "_SAY_EVERY_S", 0.2)
    said: list[str] = []
    with pytest.raises(SparkStartError):
        spark_start.wait_for_master(
            f"spark://127.0.0.1:{closed_port}", timeout_s=1.5, say=said.append
        )
    assert said and said[0].startswith(f"waiting for Spark master spark://127.0.0.1:{closed_port}")


def test_a_process_waits_for_a_dead_master_once_per_bound(closed_port: int):
    """The CLI's prewarm thread and the first step ask for the same session one after the
    other: the second is told at once what the first waited the bound to learn (it would say
    that it waits, and wait 30 s more)."""
    master = f"spark://127.0.0.1:{closed_port}"
    with pytest.raises(SparkStartError) as first:
        spark_start.wait_for_master(master, timeout_s=0.5)
    said: list[str] = []
    with pytest.raises(SparkStartError) as again:
        spark_start.wait_for_master(master, timeout_s=30, say=said.append)
    assert str(again.value) == str(first.value) and said == []


def test_get_spark_names_a_master_that_does_not_answer(
    closed_port: int, monkeypatch: pytest.MonkeyPatch
):
    """Through ``get_spark``, with the wait cut to a second by its variable."""
    import recassets.spark as spark

    monkeypatch.setattr(spark, "_session", None)
    monkeypatch.setenv("RECASSETS_SPARK_CONNECT_TIMEOUT_S", "1")
    master = f"spark://127.0.0.1:{closed_port}"
    with pytest.raises(
        SparkStartError, match=f"Spark master {master} \\(RECASSETS_SPARK_MASTER\\)"
    ):
        spark.get_spark(master=master)


def test_a_master_that_stops_the_context_is_named_with_the_launchers_words():
    """A master that listens but does not take the application (Spark's own retries end in
    "Cannot call methods on a stopped SparkContext")."""
    lines = [
        "26/12/07 21:49:20 WARN StandaloneAppClient$ClientEndpoint: Failed to connect to master h:7077"
    ]
    exc = RuntimeError(
        "java.lang.IllegalStateException: Cannot call methods on a stopped SparkContext."
    )
    message = str(start_error(exc, "spark://h:7077", "RECASSETS_SPARK_MASTER", lines))
    assert message.startswith("Spark master spark://h:7077 (RECASSETS_SPARK_MASTER) did not accept")
    assert "Failed to connect to master h:7077" in message


# --- a Spark Connect server that does not answer ----------------------------------------------


@pytest.mark.timeout(120)  # the client alone retried for about ten minutes
def test_a_connect_server_that_does_not_answer_is_named_within_its_bound(
    closed_port: int, monkeypatch: pytest.MonkeyPatch
):
    import recassets.spark as spark

    monkeypatch.setattr(spark, "_session", None)
    monkeypatch.setenv("RECASSETS_SPARK_CONNECT_TIMEOUT_S", "2")
    url = f"sc://127.0.0.1:{closed_port}/;token=s3cr3t-bearer"
    with pytest.raises(SparkStartError) as refused:
        spark.get_spark(remote=url)
    message = str(refused.value)
    assert message.startswith(
        f"Spark Connect server sc://127.0.0.1:{closed_port}/ (RECASSETS_SPARK_REMOTE) did not answer"
    )
    assert "s3cr3t" not in message and spark._session is None


@pytest.mark.timeout(120)
def test_the_wait_for_a_connect_server_says_it_waits(
    closed_port: int, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(spark_start, "_SAY_EVERY_S", 0.5)
    said: list[str] = []
    url = f"sc://127.0.0.1:{closed_port}"
    with pytest.raises(SparkStartError, match="RECASSETS_SPARK_MASTER"):
        spark_start.wait_for_connect(url, "RECASSETS_SPARK_MASTER", timeout_s=3, say=said.append)
    assert said and said[0].startswith(f"waiting for Spark Connect server {url}")


@pytest.mark.timeout(120)
def test_the_first_interrupt_ends_the_wait_for_a_connect_server(closed_port: int):
    """Ctrl-C while the wait runs raises ``KeyboardInterrupt`` there and then, not the
    ``SparkStartError`` of a wait that ran on to its bound (60 s here): the bound must not
    become a minute nobody can cut short."""
    code = (
        "import signal, sys\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from recassets import spark_start\n"
        "spark_start._SAY_EVERY_S = 0.5\n"
        "try:\n"
        f"    spark_start.wait_for_connect('sc://127.0.0.1:{closed_port}', timeout_s=60)\n"
        "except KeyboardInterrupt:\n"
        "    print('INTERRUPTED', flush=True)\n"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert child.stderr is not None
    first = child.stderr.readline()  # the first "waiting for" line: the wait is under way
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=90)
    assert first.startswith("recassets: waiting for Spark Connect server"), first + err
    assert out.strip() == "INTERRUPTED", out + err
