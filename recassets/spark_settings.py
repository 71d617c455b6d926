"""The Spark settings checked before a JVM starts: memory sizes, the master URL, the Connect URL.

Spark checks these itself only once its launcher runs, and its refusals came back as
``JAVA_GATEWAY_EXITED``, which ``get_spark`` read as a failure to fetch delta-spark's jars:
``RECASSETS_SPARK_CONF=spark.driver.memory=4gb`` (the JVM: ``Invalid maximum heap size:
-Xmx4gb``), ``spark.executor.memory=lots``, ``RECASSETS_SPARK_MASTER=bogus``. Each is refused
here instead, naming the variable, the value and the form taken: by ``run_settings.check`` when
the code location loads, and by ``get_spark`` for a value given in code (``SparkResource``).

The forms are Spark 4's own. A memory size goes through ``JavaUtils.byteStringAs``: digits and
an optional unit, ``b``, ``k``/``kb``, ``m``/``mb``, ``g``/``gb``, ``t``/``tb``, ``p``/``pb``
(any case; no fraction). ``spark.driver.memory`` is stricter: the launcher passes it to the
driver JVM as ``-Xmx<value>``, and the JVM takes only ``k``, ``m``, ``g`` or ``t``, reads a bare
number as bytes where Spark reads MiB (``-Xmx4096`` is "Too small maximum heap"), so it needs
one of those four units. A master is what SparkSubmit and SparkContext parse; a Connect URL is
what pyspark's ``DefaultChannelBuilder`` parses.

This module loads no heavy library: ``run_settings`` calls it when the definitions load.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

MASTER_ENV = "RECASSETS_SPARK_MASTER"
REMOTE_ENV = "RECASSETS_SPARK_REMOTE"
CONF_ENV = "RECASSETS_SPARK_CONF"
# How long a start waits for a spark:// master or a Connect server to accept a connection.
# Spark's own standalone client gave up after about 66 s, naming no master; the Connect client
# retried for about ten minutes (15 tries, backoff to 60 s each), saying nothing.
WAIT_ENV, WAIT_S = "RECASSETS_SPARK_CONNECT_TIMEOUT_S", 60

_JVM_SIZE = re.compile(r"([0-9]+)[kmgt]", re.IGNORECASE)
_SPARK_SIZE = re.compile(r"([0-9]+)(b|kb?|mb?|gb?|tb?|pb?)?", re.IGNORECASE)
JVM_FORM = "digits and a unit k, m, g or t (the JVM's -Xmx form), e.g. 4g or 512m"
SPARK_FORM = "digits and an optional unit b, k, kb, m, mb, g, gb, t, tb (e.g. 4g, 512m)"

# key -> (the form it takes, its least value in bytes-or-units: 1 for sizes Spark needs
# positive, 0 where 0 means "none" or "no limit").
MEMORY_KEYS: dict[str, tuple[str, int]] = {
    "spark.driver.memory": ("jvm", 1),
    "spark.executor.memory": ("spark", 1),
    "spark.driver.memoryOverhead": ("spark", 1),
    "spark.executor.memoryOverhead": ("spark", 1),
    "spark.executor.pyspark.memory": ("spark", 1),
    "spark.yarn.am.memory": ("jvm", 1),  # the YARN application master's -Xmx, likewise
    "spark.yarn.am.memoryOverhead": ("spark", 1),
    "spark.driver.maxResultSize": ("spark", 0),  # 0: no limit
    "spark.memory.offHeap.size": ("spark", 0),  # 0: none (the default)
}

MASTER_FORMS = (
    "local, local[N], local[*], local[N,F], local[*,F], spark://host:port[,host:port...], "
    "k8s://https://host:port, yarn, or a Spark Connect sc://host:port"
)
_LOCAL = re.compile(r"local(\[([1-9][0-9]*|\*)(\s*,\s*[1-9][0-9]*)?\])?")
_LOCAL_CLUSTER = re.compile(
    r"local-cluster\[\s*[1-9][0-9]*\s*,\s*[1-9][0-9]*\s*,\s*[1-9][0-9]*\s*\]"
)
_HOST_PORT = re.compile(r"(\[[0-9a-fA-F:.]+\]|[A-Za-z0-9_.-]+):([0-9]{1,5})")
CONNECT_FORM = "sc://host[:port][/;param=value;...] (port 15002 when left out)"


def check_memory(conf: Mapping[str, str], where: str = CONF_ENV) -> None:
    """Refuse a memory size in ``conf`` that Spark or the driver's JVM would refuse at start."""
    for key, (form, least) in MEMORY_KEYS.items():
        raw = conf.get(key)
        if raw is None:
            continue
        value = raw.strip()
        pattern, wanted = (_JVM_SIZE, JVM_FORM) if form == "jvm" else (_SPARK_SIZE, SPARK_FORM)
        match = pattern.fullmatch(value)
        if match is None:
            raise ValueError(f"{where}: {key}={raw[:40]!r} is not a memory size: expected {wanted}")
        if int(match.group(1)) < least:
            raise ValueError(f"{where}: {key}={raw[:40]!r}: expected a size above 0 ({wanted})")


def master_addresses(url: str) -> list[tuple[str, int]]:
    """The (host, port) of each master of a ``spark://`` URL (standalone HA lists several,
    comma-separated); ``ValueError`` when one is not ``host:port``."""
    out = []
    for part in url.removeprefix("spark://").split(","):
        match = _HOST_PORT.fullmatch(part.strip())
        if match is None or not 0 < int(match.group(2)) < 65536:
            raise ValueError(f"{part.strip()!r} is not host:port")
        out.append((match.group(1).strip("[]"), int(match.group(2))))
    return out


def check_master(url: str, where: str = MASTER_ENV) -> None:
    """Refuse a master URL Spark would refuse at start (SparkSubmit: "Master must either be
    yarn or start with spark, k8s, or local"; SparkContext: "Could not parse Master URL")."""
    url = url.strip()
    if url.startswith("sc://"):
        return check_remote(url, where)
    if url == "yarn" or _LOCAL.fullmatch(url) or _LOCAL_CLUSTER.fullmatch(url):
        return None
    if url.startswith("k8s://") and len(url) > len("k8s://"):
        return None
    if url.startswith("spark://"):
        try:
            master_addresses(url)
        except ValueError as e:
            raise ValueError(f"{where}={url[:80]!r}: {e}: expected {MASTER_FORMS}") from None
        return None
    raise ValueError(f"{where}={url[:80]!r} is not a Spark master: expected {MASTER_FORMS}")


def connect_address(url: str) -> tuple[str, int]:
    """The (host, port) of a Spark Connect URL, as pyspark's ``DefaultChannelBuilder`` reads it;
    ``ValueError`` naming what is wrong (the URL's parameters, which carry its token, are never
    quoted)."""
    from urllib.parse import urlparse

    if not url.startswith("sc://"):
        raise ValueError("it does not start with sc://")
    parsed = urlparse("http" + url[2:])
    if parsed.path not in ("", "/"):
        raise ValueError(f"the path {parsed.path!r} must be empty")
    for param in filter(None, parsed.params.split(";")):
        if param.count("=") != 1:
            raise ValueError("a parameter after ';' is not key=value")
    try:
        port = parsed.port or 15002
    except ValueError:
        raise ValueError("its port is not a number from 1 to 65535") from None
    if not parsed.hostname:
        raise ValueError("it names no host")
    return parsed.hostname, port


def check_remote(url: str, where: str = REMOTE_ENV) -> None:
    """Refuse a Spark Connect URL that pyspark's client would refuse, naming ``where``."""
    try:
        connect_address(url.strip())
    except ValueError as e:
        shown = url.strip().split(";", 1)[0][:80]  # recassets.spark.safe_url: no token
        raise ValueError(f"{where}={shown!r}: {e}: expected {CONNECT_FORM}") from None


def check_spark(environ: Mapping[str, str]) -> None:
    """Every Spark setting of ``environ`` a Spark step reads (``SparkResource``, fed by
    ``resources.SPARK_ENV``): the conf's form and memory sizes, the master (the conf's
    ``spark.master`` too, which wins over it), the Connect URL and the wait for either."""
    from recassets.run_settings import env_int
    from recassets.spark import parse_conf

    conf = parse_conf(environ.get(CONF_ENV))
    check_memory(conf)
    if (environ.get(MASTER_ENV) or "").strip():
        check_master(environ[MASTER_ENV])
    if conf.get("spark.master"):
        check_master(conf["spark.master"], f"{CONF_ENV}'s spark.master")
    if (environ.get(REMOTE_ENV) or "").strip():
        check_remote(environ[REMOTE_ENV])
    env_int(WAIT_ENV, WAIT_S, minimum=1, env=environ)
