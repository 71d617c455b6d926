"""One Spark session per process, local with the Delta extensions by default.

The master, a Spark Connect URL, any Spark conf and local jars come from the caller as
arguments (in Dagster, the ``SparkResource``, fed by ``RECASSETS_SPARK_MASTER``,
``RECASSETS_SPARK_REMOTE``, ``RECASSETS_SPARK_CONF`` and ``RECASSETS_SPARK_JARS``), so ``local[*]``, ``spark://host:7077``, ``k8s://https://...``
and Spark Connect ``sc://host:15002`` run the same code (docs/operations.md, "Spark Connect"). delta-spark's jars are fetched from Maven Central
by Ivy on the first start and cached under ``~/.ivy2.5.2``; when that fails the error says so.
A start that fails for another reason says that reason: bad settings are refused before the JVM
starts (``recassets.spark_settings``), a JVM that does not start is explained in its launcher's
own words, and a master or Connect server that does not answer is named after a bounded wait
(``recassets.spark_start``).

The environment is read for one thing only, an ``s3a://`` lake (``RECASSETS_LAKE``,
``_ARTIFACTS``, ``_LANDING``): hadoop-aws and the AWS SDK join the packages (``extra_packages``)
and the S3A settings follow the standard ``AWS_*`` variables (``s3a_conf``), the same ones
delta-rs reads for the trainer's and the Feast export's reads (docs/deploy.md, "A lake on an S3
API").
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recassets.spark_settings import CONF_ENV, MASTER_ENV, REMOTE_ENV, check_master, check_memory
from recassets.spark_start import JARS_HELP as JARS_HELP  # its old home, re-exported
from recassets.spark_start import (
    SparkStartError,
    launch_teed,
    start_error,
    wait_for_connect,
    wait_for_master,
)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession
    from pyspark.sql.types import DataType, StructType

_lock = threading.Lock()
_session: SparkSession | None = None

# Sized for the embedded default (a laptop, 2 cores): small shuffles, UTC everywhere.
DEFAULT_CONF: dict[str, str] = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.shuffle.partitions": "8",
    "spark.sql.adaptive.enabled": "true",
    "spark.ui.enabled": "false",
    "spark.ui.showConsoleProgress": "false",
    "spark.driver.memory": "4g",
    # Delta: let replaceWhere overwrite exactly one partition range atomically.
    "spark.databricks.delta.schema.autoMerge.enabled": "false",
    "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    "spark.sql.sources.partitionOverwriteMode": "static",
    # Delta rebuilds its snapshot state on every commit in this many tasks (default 50): on
    # small tables the 50 empty tasks dominate a write. Raise it for big tables on a cluster.
    "spark.databricks.delta.snapshotPartitions": "4",
    # The JVM's quick compiler only (C1, no C2). A local run is many small jobs whose time goes
    # to warming up (Janino-generated classes, Delta's log replay), and C2 spends both cores
    # optimizing code that runs for seconds: with C1 alone the demo's first Spark step (JVM
    # start and ingesting three tables) took 125 s instead of 212 s, measured back to back.
    # A cluster or a long job wants C2: set spark.driver.extraJavaOptions in
    # RECASSETS_SPARK_CONF (an empty value restores the JVM's default compiler; a local
    # session still gets its scratch's -Djava.io.tmpdir, below). C1 alone reserves only
    # 48 MB for compiled code; with an s3a:// lake (hadoop-aws and the AWS SDK) it filled in
    # under a minute and the JVM stopped compiling ("CodeCache is full. Compiler has been
    # disabled"): 256 MB is reserved address space, committed only as it is used.
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:ReservedCodeCacheSize=256m",
}

DEFAULT_MASTER = "local[*]"


# --- the local JVM's scratch --------------------------------------------------------------------
# A local session copies its packages' jars (delta-spark and its dependencies, about 85 MB) into
# a `spark-*/userFiles-*` folder, and keeps its shuffle blocks in `blockmgr-*`, both under
# /tmp; the JVM's shutdown hooks remove them, so a JVM killed outright (SIGKILL, the OOM
# killer, a test's crash) left them there for good: 9.2 GB of them piled up in /tmp on the
# development machine in three days. Each process's JVM now keeps them (and its own temporary
# files, and the warm-up's table) in a folder of its own, which the process holds locked
# (`flock` on the folder itself) for as long as it runs; every local start first removes the
# folders nobody holds. A lock, not the pid: the kernel releases it however the process ends,
# and a reused pid or another PID namespace sharing /tmp cannot make a live folder look dead.
# A lock on the folder, not on a file in it: an age-based /tmp cleaner (systemd-tmpfiles)
# could remove a lock file a long-lived daemon made days ago, and the folder would then look
# free; tmpfiles also skips a folder that is locked this way, the JVM's files included.

_scratch: Path | None = None
_scratch_lock: int | None = None  # the folder's fd, locked for the process's lifetime
_MAKING_GRACE_S = 600  # a dot-named folder unlocked for this long was left by a killed start


def scratch_root() -> Path:
    """``<tmp>/recassets-spark-<uid>``: where each process's local JVM keeps its scratch."""
    return Path(tempfile.gettempdir()) / f"recassets-spark-{os.getuid()}"


def _own_root(root: Path) -> bool:
    """Whether ``root`` is this user's private folder, made now if absent (and made private if
    it is this user's). A name anyone can guess in a shared /tmp could have been made first by
    another user, or as a link to elsewhere: the JVM's jars would then lie where that user can
    replace them. Such a root is neither used nor swept."""
    import stat

    try:
        root.mkdir(mode=0o700)
    except FileExistsError:
        pass
    except OSError:
        return False
    st = os.lstat(root)
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.getuid():  # a link, or another's
        return False
    if st.st_mode & 0o077:
        os.chmod(root, 0o700)
    return True


def _lock_folder(folder: Path) -> int | None:
    """The folder opened (never through a link) and locked: its fd; None when another process
    holds it. Raises ``OSError`` when it cannot be opened or locked at all (a file system
    without ``flock``): the caller must not read that as free."""
    import errno
    import fcntl

    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        os.close(fd)
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


def process_scratch() -> Path:
    """This process's scratch folder, ``scratch_root()/<pid>-<random>``, made and locked on first
    use (made under a dot name and renamed once locked, so a sweep never sees it unlocked).
    Where the root is not this user's private folder (``_own_root``), or the file system cannot
    lock, a private folder of its own in <tmp> instead, which no sweep removes."""
    global _scratch, _scratch_lock
    if _scratch is not None and _scratch.is_dir():
        return _scratch
    root = scratch_root()
    if _own_root(root):
        making = Path(tempfile.mkdtemp(prefix=f".{os.getpid()}-", dir=root))
        try:
            fd = _lock_folder(making)  # free: nobody else knows it yet
        except OSError:  # a file system without flock
            fd = None
        if fd is not None:
            folder = making.with_name(making.name[1:])
            making.rename(folder)
            if _scratch_lock is not None:
                os.close(_scratch_lock)
            _scratch, _scratch_lock = folder, fd
            return _scratch
        making.rmdir()
    _scratch = Path(tempfile.mkdtemp(prefix="recassets-spark-"))
    return _scratch


def sweep_scratch(root: Path | None = None) -> list[Path]:
    """Remove the scratch folders no running process holds; returns them. A dot-named folder
    (one being made) only once it has been left unlocked for ``_MAKING_GRACE_S``; links,
    files and folders that cannot be locked are left alone."""
    import time

    root = root or scratch_root()
    removed: list[Path] = []
    if not root.is_dir() or not _own_root(root):
        return removed
    for folder in sorted(root.iterdir()):
        if folder.is_symlink() or not folder.is_dir() or folder == _scratch:
            continue
        try:
            if folder.name.startswith(".") and (
                time.time() - folder.lstat().st_mtime < _MAKING_GRACE_S
            ):
                continue  # being made: its maker locks it next
            fd = _lock_folder(folder)
        except OSError:
            continue  # gone meanwhile, or no lock to be had: never read as free
        if fd is None:
            continue  # held: its process runs
        try:
            shutil.rmtree(folder, ignore_errors=True)
        finally:
            os.close(fd)
        removed.append(folder)
    return removed


_TMPDIR_VARS = ("JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS")


def scratch_conf(conf: Mapping[str, str], env: Mapping[str, str]) -> dict[str, str]:
    """``spark.local.dir`` and the driver JVM's ``java.io.tmpdir`` in this process's scratch
    folder. Nothing when the caller chose where Spark writes (``spark.local.dir``,
    ``SPARK_LOCAL_DIRS``, a ``-Djava.io.tmpdir`` of their own in the driver's options or the
    JVM's variables): their choice stands whole. For a local master only: on a cluster
    ``spark.local.dir`` would reach the executors (on Kubernetes, as volume mounts)."""
    options = conf.get("spark.driver.extraJavaOptions", "")
    chosen = [conf.get("spark.driver.defaultJavaOptions", ""), options]
    chosen += [env.get(v, "") for v in _TMPDIR_VARS]
    if "spark.local.dir" in conf or env.get("SPARK_LOCAL_DIRS"):
        return {}
    if any("-Djava.io.tmpdir" in c for c in chosen):
        return {}
    folder = str(process_scratch())
    out = {"spark.local.dir": folder}
    if '"' not in folder:  # Spark's launcher splits the options as a shell does: quoted
        out["spark.driver.extraJavaOptions"] = f'{options} "-Djava.io.tmpdir={folder}"'.strip()
    return out


def parse_conf(raw: str | None) -> dict[str, str]:
    """Spark conf from its one-line form, ``"k=v,k2=v2"`` (``RECASSETS_SPARK_CONF``). A part
    without ``=`` continues the value before it, so a list value keeps its commas:
    ``"spark.jars.packages=a:b:1,c:d:2,spark.x=y"``. A first part without ``=`` is an error."""
    conf: dict[str, str] = {}
    key = None
    for part in filter(None, (p.strip() for p in (raw or "").split(","))):
        if "=" not in part:
            if key is None:
                raise ValueError(f"RECASSETS_SPARK_CONF: {part!r} is not key=value")
            conf[key] += "," + part
            continue
        key, _, value = (x.strip() for x in part.partition("="))
        conf[key] = value
    return conf


# What an s3a:// lake needs on the driver's classpath: pyspark ships Hadoop's client (3.5.0) but
# not hadoop-aws, nor the AWS SDK bundle hadoop-aws 3.5.0 was built against (the executor image,
# deploy/docker/Dockerfile.spark, adds the same two).
S3A_PACKAGES = ("org.apache.hadoop:hadoop-aws:3.5.0", "software.amazon.awssdk:bundle:2.35.4")


S3A_HOMES = ("RECASSETS_LAKE", "RECASSETS_ARTIFACTS", "RECASSETS_LANDING")


def uses_s3a(env: Mapping[str, str]) -> bool:
    """Whether the lake, artifacts or landing zone is an ``s3a://`` URL."""
    return any(str(env.get(k, "")).strip().startswith("s3a://") for k in S3A_HOMES)


def extra_packages(configured: str, env: Mapping[str, str]) -> list[str]:
    """The Maven packages the session loads besides Delta: the ``spark.jars.packages`` a user
    configured (``conf=`` or ``RECASSETS_SPARK_CONF``), plus ``S3A_PACKAGES`` when the lake,
    artifacts or landing zone is an ``s3a://`` URL; de-duplicated, in that order."""
    found = [p.strip() for p in configured.split(",") if p.strip()]
    if uses_s3a(env):
        found += S3A_PACKAGES
    return list(dict.fromkeys(found))


# S3 has no atomic put-if-absent rename, so a Delta commit there is safe only while one process
# at a time writes a table: Delta's S3SingleDriverLogStore (its default for s3a://, named here so
# that the choice is visible and tested) serializes the commits of one driver, and the Dagster
# pools (one step per pool across all runs: recassets/instance.py DAGSTER_YAML, deploy/dagster.yaml)
# make each table's writer the only driver (docs/deploy.md, "A lake on an S3 API").
S3_LOG_STORE = "io.delta.storage.S3SingleDriverLogStore"


def s3a_conf(env: Mapping[str, str]) -> dict[str, str]:
    """Hadoop's S3A settings derived from the standard AWS variables, the ones delta-rs, boto3
    and the aws CLI read themselves, so one set of variables configures every client of the lake:

    * ``AWS_ENDPOINT_URL``: an S3-compatible server (MinIO, Ceph, moto): ``fs.s3a.endpoint``,
      path-style requests (such servers rarely resolve ``bucket.host``), and TLS as its scheme
      says (``http://`` off);
    * ``AWS_REGION`` (else ``AWS_DEFAULT_REGION``): ``fs.s3a.endpoint.region``.

    Credentials are not copied: S3A's default provider chain reads ``AWS_ACCESS_KEY_ID`` and
    ``AWS_SECRET_ACCESS_KEY`` from the environment itself, so no secret enters Spark's conf.
    Empty unless the lake, artifacts or landing zone is an ``s3a://`` URL (``uses_s3a``); a
    user's own ``spark.hadoop.fs.s3a.*`` in ``RECASSETS_SPARK_CONF`` wins over these."""
    if not uses_s3a(env):
        return {}
    conf = {"spark.delta.logStore.s3a.impl": S3_LOG_STORE}
    endpoint = env.get("AWS_ENDPOINT_URL", "").strip()
    if endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = endpoint
        conf["spark.hadoop.fs.s3a.path.style.access"] = "true"
        secure = not endpoint.lower().startswith("http://")
        conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = str(secure).lower()
    region = (env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "").strip()
    if region:
        conf["spark.hadoop.fs.s3a.endpoint.region"] = region
    return conf


def session_conf(conf: Mapping[str, str] | None, env: Mapping[str, str]) -> dict[str, str]:
    """The session's conf: ``DEFAULT_CONF``, then ``s3a_conf(env)``, then the caller's."""
    return {**DEFAULT_CONF, **s3a_conf(env), **(conf or {})}


def warm_up(spark: SparkSession) -> dict[str, int]:
    """Run the lake's code paths once on a few rows in a temporary folder: a JSON Lines read,
    a Delta write partitioned by day, a replaceWhere overwrite and a filtered, grouped read.

    The first Spark job of a JVM pays for compiling what it runs (Janino's generated classes,
    the JVM's own compiler, Delta's log replay): on the 2-core machine ingesting ml-100k's 1,682
    items took twice as long as its 97,399 events right after. ``assets.launch`` runs this in
    its prewarm thread while the process imports the definitions (one core busy), so the first
    step finds that work done (the caller ignores its failures: the steps report their own).
    Returns the rows per day it read back, which its test checks. The folder is in this
    process's scratch (a process killed mid-way leaves it to the next start's sweep)."""
    from pyspark.sql import functions as F

    from recassets.lake import days_predicate, replace_partitions

    scratch = process_scratch() if os.name == "posix" else None
    folder = tempfile.mkdtemp(prefix="recassets-warmup-", dir=scratch)
    try:
        lines = Path(folder) / "rows.jsonl"
        lines.write_text(
            "".join(f'{{"id": {i}, "ts": "2026-01-0{1 + i % 3}T00:00:00Z"}}\n' for i in range(30))
        )
        rows = spark.read.json(str(lines)).select(
            F.col("id").cast("long").alias("id"), F.to_date("ts").alias("dt")
        )
        table = str(Path(folder) / "t")
        rows.write.format("delta").partitionBy("dt").save(table)
        first = rows.where((F.col("id") > 10) & (F.col("dt") == "2026-01-01"))
        replace_partitions(first, table, days_predicate(["2026-01-01"]), "{}")  # the lake's own
        back = spark.read.format("delta").load(table).where(F.col("dt") >= "2026-01-01")
        return {r["dt"].isoformat(): r["count"] for r in back.groupBy("dt").count().collect()}
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def get_spark(
    master: str | None = DEFAULT_MASTER,
    conf: dict[str, str] | None = None,
    app_name: str = "recassets",
    jars: str | None = None,
    remote: str | None = None,
) -> SparkSession:
    """The process's Spark session, created on first use.

    ``master``: ``local[*]`` by default (None too). ``remote`` (or a ``master`` that is an
    ``sc://`` URL): a Spark Connect client of that server instead, ``remote`` winning; the
    server must run Delta's session extension and catalog (``connect_session``). ``conf``
    overrides ``DEFAULT_CONF``. ``jars``: local delta-spark and delta-storage jars (comma-separated) for
    an offline machine, instead of fetching them from Maven Central. Later calls return the
    same session whatever they pass: one session per process.
    """
    global _session
    with _lock:
        if _session is not None:
            return _session
        from pyspark.sql import SparkSession

        master = master or DEFAULT_MASTER
        merged = session_conf(conf, os.environ)
        try:  # what the settings check refuses, refused here too for a value given in code
            check_memory(merged)
            check_master(remote or master, REMOTE_ENV if remote else MASTER_ENV)
        except ValueError as e:
            raise SparkStartError(str(e)) from None
        if remote or master.startswith("sc://"):
            where = REMOTE_ENV if remote else MASTER_ENV
            wait_for_connect(remote or master, where)  # bounded: the client's retries are not
            _session = connect_session(remote or master, merged, app_name)
            return _session

        where = MASTER_ENV
        if "spark.master" in merged:  # the conf's wins
            master, where = merged["spark.master"], f"{CONF_ENV}'s spark.master"
            try:
                check_master(master, where)
            except ValueError as e:
                raise SparkStartError(str(e)) from None
        wait_for_master(master, where)  # a spark:// master: named at once when it is down
        local = master.startswith("local")
        if local and os.name == "posix":  # flock and a uid: not on Windows, left as Spark has it
            sweep_scratch()  # what killed JVMs before this one left behind
            merged.update(scratch_conf(merged, os.environ))
        builder = SparkSession.builder.master(master).appName(app_name)
        builder = builder.config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        builder = builder.config(
            "spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog"
        )
        packages = extra_packages(merged.pop("spark.jars.packages", ""), os.environ)
        for k, v in merged.items():
            builder = builder.config(k, v)
        try:
            if jars:
                builder = builder.config("spark.jars", jars)
                if packages:
                    builder = builder.config("spark.jars.packages", ",".join(packages))
            else:
                from delta import configure_spark_with_delta_pip

                # Delta's helper sets spark.jars.packages outright: the user's go through it
                builder = configure_spark_with_delta_pip(builder, extra_packages=packages)
            launch_teed(builder._options)  # the JVM as getOrCreate would start it, stderr kept
            session = builder.getOrCreate()
            # Touch the Delta classes now, so a missing jar fails here with advice, not later.
            jvm: Any = session._jvm  # py4j's view of the JVM: attributes made on access
            jvm.io.delta.tables.DeltaTable  # noqa: B018
        except Exception as exc:  # explained in the launcher's words where they say why
            error = start_error(exc, master, where)
            if error is exc:
                raise
            raise error from exc
        session.sparkContext.setLogLevel("ERROR")
        _session = session
        return _session


# Set by the server's own launch, not by a client: a Connect session refuses to change them. The
# server's filesystems (spark.hadoop.*, Delta's log stores) are its own too.
_SERVER_ONLY = (
    "spark.driver.",
    "spark.ui.",
    "spark.executor.",
    "spark.jars",
    "spark.master",
    "spark.hadoop.",
    "spark.delta.logStore.",
)

CONNECT_HELP = (
    "The Spark Connect server at {url} does not run Delta's session extension: start it with "
    "--packages io.delta:delta-spark_4.2_2.13:<delta-spark version> --conf "
    "spark.sql.extensions=io.delta.sql.DeltaSparkSessionExtension --conf "
    "spark.sql.catalog.spark_catalog=org.apache.spark.sql.delta.catalog.DeltaCatalog "
    '(docs/operations.md, "Spark Connect").'
)


def safe_url(url: str) -> str:
    """``url`` fit for a message or a log: a Spark Connect URL without its parameters
    (``sc://host:15002/;token=...;use_ssl=true`` is ``sc://host:15002/``). Connect takes its
    bearer token as one of them, so any message quoting the whole URL would print the token."""
    return url.split(";", 1)[0]


def connect_session(url: str, conf: dict[str, str], app_name: str = "recassets") -> SparkSession:
    """A Spark Connect client session of the server at ``url`` (``sc://host:port``).

    The session's SQL conf (``conf``, less what only the server's launch sets: driver,
    executors, UI, jars) is sent with it; Delta's extension and catalog are the server's, and
    are checked here so that a server without them fails now, with advice, and not at the
    first write. ``get_spark`` first waits for the server to answer (``wait_for_connect``):
    the client itself would retry for about ten minutes, silently."""
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.remote(url).appName(app_name)
    for k, v in conf.items():
        if not k.startswith(_SERVER_ONLY):
            builder = builder.config(k, v)
    session = builder.getOrCreate()
    extensions = session.conf.get("spark.sql.extensions", None) or ""
    if "DeltaSparkSessionExtension" not in extensions:
        session.stop()
        raise SparkStartError(CONNECT_HELP.format(url=safe_url(url)))
    return session


def stop_spark() -> None:
    """Stop the process's session (tests, the end of a CLI command)."""
    global _session
    with _lock:
        if _session is not None:
            _session.stop()
            _session = None


def started() -> bool:
    """Whether this process holds a Spark session or a driver JVM gateway (``release_jvm``
    has something to end). Read without importing pyspark: a process that never imported it
    started neither, and importing it to find that out cost the CLI's later runs the import."""
    import sys

    if _session is not None:
        return True
    if "pyspark" not in sys.modules:
        return False
    from pyspark import SparkContext

    return SparkContext._gateway is not None


def release_jvm() -> None:
    """``stop_spark``, then end the driver JVM itself: a stopped session leaves pyspark's
    gateway process running with its heap (3.75 GB idle through a models' run, review
    2026-12-07). A later ``get_spark`` starts a new one. Nothing on Spark Connect (no JVM
    here) or inside spark-submit (``PYSPARK_GATEWAY_PORT``: the JVM is not ours)."""
    import contextlib
    import subprocess

    from pyspark import SparkContext

    stop_spark()
    gateway = SparkContext._gateway
    if gateway is None or "PYSPARK_GATEWAY_PORT" in os.environ:
        return
    proc = getattr(gateway, "proc", None)
    with contextlib.suppress(Exception):  # a JVM already gone: nothing to say
        gateway.shutdown()
    SparkContext._gateway = None
    SparkContext._jvm = None
    if proc is not None:
        with contextlib.suppress(OSError):
            proc.stdin.close()  # the launcher's pipe: the JVM exits when it breaks
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- small frames made on the driver ------------------------------------------------------------
# Classic pyspark's createDataFrame(list_of_rows, schema) makes a Python RDD: every executor that
# runs one of its partitions starts a Python worker. The executors of a k8s:// master run the
# JVM alone (deploy/docker/Dockerfile.spark has no Python), so such a frame failed there
# ("Cannot run program python3"). From an Arrow table pyspark sends the batches to the JVM on
# the driver (PythonSQLUtils.toDataFrame), and executors decode them in the JVM; over Spark
# Connect the rows travel as Arrow too. Every frame the code builds from Python rows goes
# through local_frame (tests/unit/test_local_frame.py).


def local_frame(
    spark: SparkSession, rows: Iterable[Sequence[Any] | Mapping[str, Any]], schema: str | StructType
) -> DataFrame:
    """What ``spark.createDataFrame(rows, schema)`` returns, built from an Arrow table so that no
    executor needs Python. ``rows``: tuples (by position) or mappings (by field name);
    ``schema``: a DDL string or a ``StructType``. As createDataFrame: a naive datetime in a
    ``timestamp`` is the machine's local time, and a null in a ``NOT NULL`` column is refused
    (checked here for top-level columns; Arrow would keep it silently)."""
    import pyarrow as pa
    from pyspark.sql.pandas.types import to_arrow_schema
    from pyspark.sql.types import StructType

    struct = spark._parse_ddl(schema) if isinstance(schema, str) else schema
    if not isinstance(struct, StructType):
        raise TypeError(f"local_frame needs a struct schema, not {struct.simpleString()}")
    fields = struct.fields
    table_rows = []
    for row in rows:
        values = [row.get(f.name) for f in fields] if isinstance(row, Mapping) else list(row)
        if len(values) != len(fields):
            raise ValueError(f"row {row!r} has {len(values)} values for {len(fields)} columns")
        table_rows.append(values)
    arrow = to_arrow_schema(struct, timezone="UTC")
    columns = []
    for i, (field, arrow_field) in enumerate(zip(fields, arrow, strict=True)):
        values = [_arrow_value(r[i], field.dataType) for r in table_rows]
        if not field.nullable and any(v is None for v in values):
            raise ValueError(f"column {field.name} is NOT NULL but a row gives it None")
        columns.append(pa.array(values, type=arrow_field.type))
    return spark.createDataFrame(pa.Table.from_arrays(columns, schema=arrow), struct)


def _arrow_value(value: Any, kind: DataType) -> Any:
    """``value`` as pyarrow reads it for ``kind``, as createDataFrame reads it: pyarrow takes a
    naive datetime for UTC, createDataFrame for the machine's local time (``astimezone()``
    does the same); nested values are walked for their timestamps."""
    import datetime as dt

    from pyspark.sql.types import ArrayType, MapType, StructType, TimestampType

    if value is None:
        return None
    if isinstance(kind, TimestampType) and isinstance(value, dt.datetime):
        return value if value.tzinfo is not None else value.astimezone()
    if isinstance(kind, ArrayType):
        return [_arrow_value(v, kind.elementType) for v in value]
    if isinstance(kind, MapType):
        return [
            (_arrow_value(k, kind.keyType), _arrow_value(v, kind.valueType))
            for k, v in value.items()
        ]
    if isinstance(kind, StructType):
        items = (
            [value.get(f.name) for f in kind.fields] if isinstance(value, Mapping) else list(value)
        )
        return {
            f.name: _arrow_value(v, f.dataType) for f, v in zip(kind.fields, items, strict=True)
        }
    return value
