"""Starting Spark so that a failure says why: the launcher's own words, and bounded waits.

Three failures used to name the wrong cause or none (``recassets.spark.get_spark`` calls all of
this):

* **The driver JVM did not start.** pyspark's ``launch_gateway`` lets the launcher
  (``spark-submit``) write to the process's stderr and raises only ``JAVA_GATEWAY_EXITED``, which
  was read as a failure to fetch delta-spark's jars, whatever the launcher had said (``Invalid
  maximum heap size``, ``Master must either be yarn or start with spark, k8s, or local``).
  ``launch_teed`` starts the gateway itself, with the conf the builder would give it, and tees
  the launcher's stderr: every byte still reaches the process's stderr as before, and the last
  lines are kept (``LAUNCHER_LINES``) so that ``start_error`` can quote the ones that explain a
  failure and give the jars advice only when they are about jars.
* **A spark:// master that does not answer.** Spark's standalone client retries for about a
  minute and then fails with "Cannot call methods on a stopped SparkContext", the master's URL
  only in a WARN line of the log. ``wait_for_master`` connects to the master's port first (a
  TCP connect, retried until ``RECASSETS_SPARK_CONNECT_TIMEOUT_S``): a master that is down or
  unreachable is named at once, and the test needs no JVM. A connect proves only that something
  listens; a master that then refuses the application still ends in the stopped context, which
  ``start_error`` also names.
* **A Spark Connect server that does not answer.** The Connect client's default retry policy
  (15 tries, backoff up to 60 s each) sleeps about ten minutes before its first error, saying
  nothing. ``wait_for_connect`` waits for the gRPC channel to be ready, within the same bound,
  polling in short sleeps (an interrupt ends it at once), saying every ``_SAY_EVERY_S`` that it
  waits.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping

from recassets.spark_settings import (
    CONF_ENV,
    MASTER_ENV,
    REMOTE_ENV,
    WAIT_ENV,
    WAIT_S,
    connect_address,
    master_addresses,
)

# The launcher's last lines (its log once the JVM runs), for start_error to quote: this JVM's
# only. launch_teed empties it for each new JVM, once the tee of the one before (ended by
# ``spark.release_jvm``) has read that one's last lines: a second start that failed quoted the
# first JVM's lines too, and gave the jars advice for its old Ivy lines (review, 2026-12-07).
LAUNCHER_LINES: deque[str] = deque(maxlen=400)
_TEES: list[threading.Thread] = []  # the tee of each JVM this process launched
# (target, the setting that named it) -> (when its wait failed, the error): a process waits for
# a target once per bound. The CLI's prewarm thread (assets/launch.py) starts the session the
# first step then asks for: both waited the whole bound, one after the other, for the same dead
# master. Keyed by the setting too: the error names it, and a wait for the same master set
# elsewhere (the conf's spark.master) was told the first one's setting.
_UNANSWERED: dict[tuple[str, str], tuple[float, str]] = {}
_SAY_EVERY_S = 10.0

JARS_HELP = (
    "Spark could not load delta-spark's jars. On the first start Spark fetches "
    "io.delta:delta-spark from Maven Central and caches it under ~/.ivy2.5.2; run once with "
    "network access to Maven Central, or point RECASSETS_SPARK_JARS at local copies of the "
    "delta-spark and delta-storage jars (comma-separated) for an offline machine."
)


class SparkStartError(RuntimeError):
    pass


def wait_s(env: Mapping[str, str] | None = None) -> int:
    """``RECASSETS_SPARK_CONNECT_TIMEOUT_S`` (default 60), bounded as run_settings bounds it."""
    from recassets.run_settings import env_int

    return env_int(WAIT_ENV, WAIT_S, minimum=1, env=os.environ if env is None else env)


def _say(message: str) -> None:
    print(f"recassets: {message}", file=sys.stderr, flush=True)


# --- the launcher's stderr ----------------------------------------------------------------------


def _tee(source: int, sink: int) -> None:
    """Copy ``source`` to ``sink`` as it comes, keeping its lines in ``LAUNCHER_LINES``."""
    pending = b""
    try:
        while chunk := os.read(source, 65536):
            try:
                view = memoryview(chunk)
                while view:
                    view = view[os.write(sink, view) :]
            except OSError:
                pass  # a closed stderr: keep reading, or the JVM blocks on a full pipe
            *done, pending = (pending + chunk).split(b"\n")
            LAUNCHER_LINES.extend(line.decode(errors="replace").rstrip("\r") for line in done)
    finally:
        if pending:
            LAUNCHER_LINES.append(pending.decode(errors="replace"))
        os.close(source)
        os.close(sink)


def launch_teed(options: Mapping[str, str]) -> None:
    """Start pyspark's JVM gateway with the launcher's stderr teed (module docstring), once per
    process, with the conf ``SparkSession.builder.getOrCreate`` would launch it with
    (``options``: the builder's). Nothing where a gateway runs already, where pyspark runs
    inside spark-submit (``PYSPARK_GATEWAY_PORT``), or off POSIX (left as pyspark has it)."""
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ:
        return
    if os.name != "posix":
        return
    conf = SparkConf()
    for key, value in options.items():
        conf.set(key, value)
    for earlier in _TEES:  # its JVM has exited (release_jvm waits for it): the pipe's end is near
        earlier.join(timeout=5)
    _TEES.clear()
    LAUNCHER_LINES.clear()  # this launch's lines only (their comment above)
    source, write = os.pipe()
    tee = threading.Thread(
        target=_tee, args=(source, os.dup(2)), name="spark-launcher-stderr", daemon=True
    )
    _TEES.append(tee)
    tee.start()
    try:
        gateway = launch_gateway(conf, popen_kwargs={"stderr": write})
    except BaseException:
        os.close(write)
        tee.join(timeout=5)  # the launcher exited: its last words are read to the end
        raise
    os.close(write)  # the JVM holds its own end
    SparkContext._ensure_initialized(gateway=gateway)


_EXPLAINS = re.compile(
    r"error|exception|invalid|must|could not|cannot|unresolved|not found|failed|refused|"
    r"unrecognized|caused by",
    re.IGNORECASE,
)
_STACK = re.compile(r"^\s+(at |\.\.\. \d+ more)")
_JARS = ("unresolved dependency", "UNRESOLVED DEPENDENCIES", "download failed", "delta-spark")


def explaining(lines: list[str], most: int = 8) -> list[str]:
    """The last ``most`` distinct lines of the launcher's output that say what failed: errors,
    exceptions and their causes, not their stack frames."""
    found: list[str] = []
    for line in reversed(lines):
        text = line.strip()
        if text and not _STACK.match(line) and _EXPLAINS.search(text) and text not in found:
            found.append(text)
            if len(found) == most:
                break
    return found[::-1]


def about_jars(text: str) -> bool:
    """Whether ``text`` (a failure and the launcher's lines that explain it) is about Spark
    loading delta-spark's jars: Ivy's resolution or download, or a Delta class missing."""
    if any(s in text for s in _JARS):
        return True
    return bool(re.search(r"(ClassNotFound|NoClassDefFound)\w*:?\s*\S*delta", text, re.I)) or (
        "DeltaTable" in text
    )


def start_error(
    exc: BaseException, master: str, where: str, lines: list[str] | None = None
) -> BaseException:
    """What ``get_spark`` raises for ``exc`` from starting a classic session on ``master``
    (set by ``where``): a ``SparkStartError`` quoting the launcher's lines that explain it
    (``lines``, default ``LAUNCHER_LINES``), with the jars advice only when they are about
    jars; ``exc`` itself when nothing here explains it."""
    text = str(exc)
    said = explaining(list(LAUNCHER_LINES) if lines is None else lines)
    quoted = "\n".join(f"  {line}" for line in said)
    launcher = f"\nThe launcher said:\n{quoted}" if said else ""
    if about_jars(text) or about_jars(quoted):
        return SparkStartError(f"{JARS_HELP}\nCause: {text[-2000:]}{launcher}")
    if "JAVA_GATEWAY_EXITED" in text:
        why = launcher or "\n(the launcher said nothing: see the lines above in this log)"
        return SparkStartError(
            f"Spark's driver JVM did not start (master {master}, conf from {CONF_ENV} and "
            f"SparkResource).{why}"
        )
    if "stopped SparkContext" in text and master.startswith("spark://"):
        return SparkStartError(
            f"Spark master {master} ({where}) did not accept this application: Spark stopped "
            f"its context while registering with it.{launcher}"
        )
    return exc


# --- bounded waits --------------------------------------------------------------------------------


def _failed_lately(target: str, where: str, limit: float) -> None:
    """Raise again the error of a wait for ``target`` set by ``where`` that failed less than
    ``limit`` ago."""
    failed = _UNANSWERED.get((target, where))
    if failed and time.monotonic() - failed[0] < limit:
        raise SparkStartError(failed[1])


def _unanswered(target: str, where: str, message: str) -> SparkStartError:
    _UNANSWERED[(target, where)] = (time.monotonic(), message)
    return SparkStartError(message)


def wait_for_master(
    master: str,
    where: str = MASTER_ENV,
    timeout_s: float | None = None,
    say: Callable[[str], None] = _say,
) -> None:
    """Return once one of a ``spark://`` master's addresses accepts a TCP connection; raise
    ``SparkStartError`` naming the master and ``where`` after ``timeout_s`` (default
    ``RECASSETS_SPARK_CONNECT_TIMEOUT_S``). Any other master: nothing to wait for."""
    import socket

    if not master.startswith("spark://"):
        return
    addresses = master_addresses(master)
    limit = wait_s() if timeout_s is None else timeout_s
    _failed_lately(master, where, limit)
    start = time.monotonic()
    next_say, last = _SAY_EVERY_S, ""
    while True:
        waited = time.monotonic() - start
        slice_s = max(0.2, min(5.0, limit - waited))
        for host, port in addresses:
            try:
                with socket.create_connection((host, port), timeout=slice_s):
                    return
            except OSError as e:
                last = f"{host}:{port}: {e.strerror or e}"
        waited = time.monotonic() - start
        if waited >= limit:
            raise _unanswered(
                master,
                where,
                f"Spark master {master} ({where}) did not answer: no connection within "
                f"{limit:g} s ({last}). Is the master running and reachable from here? "
                f"{WAIT_ENV} sets how long to wait.",
            )
        if waited >= next_say:
            say(f"waiting for Spark master {master} ({where}) to answer ({waited:.0f} s): {last}")
            next_say += _SAY_EVERY_S
        time.sleep(min(1.0, max(0.0, limit - waited)))


def wait_for_connect(
    url: str,
    where: str = REMOTE_ENV,
    timeout_s: float | None = None,
    say: Callable[[str], None] = _say,
) -> None:
    """Return once the Spark Connect server at ``url`` accepts a gRPC channel (TLS and token
    as the URL says); raise ``SparkStartError`` naming the URL (without its parameters) and
    ``where`` after ``timeout_s`` (default ``RECASSETS_SPARK_CONNECT_TIMEOUT_S``)."""
    import grpc
    from pyspark.sql.connect.client.core import DefaultChannelBuilder

    shown = url.split(";", 1)[0]  # recassets.spark.safe_url: the token stays out
    connect_address(url)  # a malformed URL: the settings check's ValueError
    limit = wait_s() if timeout_s is None else timeout_s
    _failed_lately(url, where, limit)
    channel = DefaultChannelBuilder(url).toChannel()
    ready = grpc.channel_ready_future(channel)
    start = time.monotonic()
    next_say = _SAY_EVERY_S
    try:
        while True:
            # Polled in short sleeps: the first Ctrl-C (Dagster's interrupt) ends the wait
            # there and then (tests/unit/test_spark_start.py).
            if ready.done():
                return
            time.sleep(0.1)
            waited = time.monotonic() - start
            if waited >= limit:
                raise _unanswered(
                    url,
                    where,
                    f"Spark Connect server {shown} ({where}) did not answer within {limit:g} s. "
                    f"Is it running and reachable from here (and its TLS as the URL says)? "
                    f"{WAIT_ENV} sets how long to wait.",
                )
            if waited >= next_say:
                say(f"waiting for Spark Connect server {shown} ({where}) ({waited:.0f} s)")
                next_say += _SAY_EVERY_S
    finally:
        ready.cancel()
        channel.close()
