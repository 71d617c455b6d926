"""A Spark Connect server on the loopback, from pyspark's own distribution with delta-spark's
jars (``spark-submit --class ...SparkConnectServer``), in its own process group: stop it with
``recassets.process.stop_process_group``. Shared by ``tests/integration/test_spark_connect.py``
and ``benchmarks/scale_connect.py``.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

from support.ports import free_port, wait_listening

STARTUP_S = 240  # the first start resolves delta-spark through Ivy (cached after)
# What a server needs whatever the caller adds: Delta's session extension and catalog, and UTC.
SERVER_CONF = {
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    "spark.ui.enabled": "false",
    "spark.sql.session.timeZone": "UTC",
}


def start_connect_server(
    log: Path, conf: Mapping[str, str] | None = None, master: str = "local[2]"
) -> tuple[subprocess.Popen, str]:
    """The server's process and its ``sc://127.0.0.1:<port>`` URL once it accepts connections;
    ``conf`` is added to ``SERVER_CONF`` (the driver's memory and JVM options among it)."""
    import delta
    import pyspark

    spark_home = Path(pyspark.__file__).parent
    if not list((spark_home / "jars").glob("spark-connect_*.jar")):
        raise RuntimeError(f"no spark-connect jar in {spark_home / 'jars'}")
    port = free_port()
    major_minor = ".".join(pyspark.__version__.split(".")[:2])
    merged = {
        **SERVER_CONF,
        **dict(conf or {}),
        "spark.connect.grpc.binding.address": "127.0.0.1",
        "spark.connect.grpc.binding.port": str(port),
    }
    cmd = [
        str(spark_home / "bin" / "spark-submit"),
        "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
        "--master", master,
        "--packages", f"io.delta:delta-spark_{major_minor}_2.13:{delta.__version__}",
    ]  # fmt: skip
    for k, v in merged.items():
        cmd += ["--conf", f"{k}={v}"]
    env = {**os.environ, "SPARK_HOME": str(spark_home)}
    with log.open("wb") as f:
        proc = subprocess.Popen(
            cmd, stdout=f, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        wait_listening(proc, port, log, "Spark Connect server", STARTUP_S)
    except RuntimeError:
        from recassets.process import stop_process_group

        stop_process_group(proc)
        raise
    return proc, f"sc://127.0.0.1:{port}"
