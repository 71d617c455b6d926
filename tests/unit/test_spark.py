"""The S3A settings ``get_spark`` derives from the standard ``AWS_*`` variables for an
``s3a://`` lake, and the Delta log store that keeps its commits safe (docs/deploy.md, "A lake on
an S3 API"). The lake itself against a real S3 API server: tests/integration/test_s3_lake.py."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from recassets.spark import DEFAULT_CONF, S3_LOG_STORE, s3a_conf, session_conf

LAKE = {"RECASSETS_LAKE": "s3a://bucket/lake"}
SECRET = {"AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI"}


def test_an_s3_compatible_server_over_http():
    env = {**LAKE, **SECRET, "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "AWS_REGION": "eu-west-1"}
    assert s3a_conf(env) == {
        "spark.delta.logStore.s3a.impl": S3_LOG_STORE,
        "spark.hadoop.fs.s3a.endpoint": "http://127.0.0.1:9000",
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "false",
        "spark.hadoop.fs.s3a.endpoint.region": "eu-west-1",
    }


def test_an_https_endpoint_keeps_tls_and_aws_itself_needs_only_the_region():
    env = {**LAKE, "AWS_ENDPOINT_URL": "https://minio.internal", "AWS_DEFAULT_REGION": "us-east-1"}
    assert s3a_conf(env)["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "true"
    assert s3a_conf({**LAKE, "AWS_DEFAULT_REGION": "us-east-1"}) == {
        "spark.delta.logStore.s3a.impl": S3_LOG_STORE,
        "spark.hadoop.fs.s3a.endpoint.region": "us-east-1",
    }


def test_credentials_never_enter_sparks_conf():
    conf = s3a_conf({**LAKE, **SECRET, "AWS_ENDPOINT_URL": "http://127.0.0.1:9000"})
    assert not set(SECRET.values()) & set(conf.values())
    assert not any("key" in k for k in conf)


def test_a_local_lake_gets_no_s3_setting_whatever_the_aws_variables():
    env = {**SECRET, "AWS_ENDPOINT_URL": "http://127.0.0.1:9000", "RECASSETS_LAKE": "/data/lake"}
    assert s3a_conf(env) == {}
    assert session_conf(None, env) == DEFAULT_CONF
    assert s3a_conf({"RECASSETS_ARTIFACTS": "s3a://b/artifacts"})  # any s3a:// home counts


def test_the_users_conf_wins_over_the_derived_settings():
    env = {**LAKE, "AWS_ENDPOINT_URL": "http://127.0.0.1:9000"}
    mine = {"spark.hadoop.fs.s3a.path.style.access": "false", "spark.ui.enabled": "true"}
    conf = session_conf(mine, env)
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "false"
    assert conf["spark.ui.enabled"] == "true"
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:9000"


def test_the_log_store_is_a_class_delta_has_and_its_own_choice_for_s3a(spark):
    """S3SingleDriverLogStore is loadable and is what Delta picks for s3a:// anyway (named in
    the conf so the choice is visible); a misspelled one is not a class, and another scheme
    (abfs) gets another store."""
    jvm = spark._jvm
    stores = jvm.org.apache.spark.sql.delta.storage.DelegatingLogStore
    assert stores.getDefaultLogStoreClassName("s3a").get() == S3_LOG_STORE
    assert stores.getDefaultLogStoreClassName("abfs").get() != S3_LOG_STORE
    loader = jvm.java.lang.Thread.currentThread().getContextClassLoader()
    assert jvm.java.lang.Class.forName(S3_LOG_STORE, False, loader).getName() == S3_LOG_STORE
    try:
        jvm.java.lang.Class.forName(S3_LOG_STORE + "X", False, loader)
    except Exception as exc:
        assert "ClassNotFoundException" in str(exc)
    else:
        raise AssertionError("a misspelled log store loaded")


def test_the_warm_up_runs_the_lakes_paths_and_leaves_nothing_behind(spark):
    """Ten rows a day over three days; the overwrite of the first day keeps its six ids > 10. Its
    folder is made in this process's scratch and removed after."""
    from recassets.spark import process_scratch, warm_up

    made: list[str] = []
    real = tempfile.mkdtemp

    def mkdtemp(**kwargs):
        made.append(real(**kwargs))
        return made[-1]

    with pytest.MonkeyPatch.context() as m:
        m.setattr(tempfile, "mkdtemp", mkdtemp)
        assert warm_up(spark) == {"2026-01-01": 6, "2026-01-02": 10, "2026-01-03": 10}
    (folder,) = made
    assert Path(folder).parent == process_scratch() and not Path(folder).exists()


def test_a_local_sessions_jars_blocks_and_temporary_files_are_in_its_own_scratch(spark):
    """The session of this process (the suite's fixture, made by ``get_spark``) keeps what its
    JVM writes in ``process_scratch()``, not loose in /tmp where a killed JVM left it."""
    from recassets.spark import process_scratch

    folder = process_scratch()
    jvm = spark._jvm  # pyright: ignore[reportAttributeAccessIssue]
    assert spark.conf.get("spark.local.dir") == str(folder)
    assert jvm.java.lang.System.getProperty("java.io.tmpdir") == str(folder)
    assert list(folder.glob("spark-*/userFiles-*/*.jar")) and list(folder.glob("blockmgr-*"))
    assert folder.name.startswith(f"{os.getpid()}-")
    from recassets.spark import _lock_folder

    assert _lock_folder(folder) is None  # held by this process (a second open file description)


def test_the_sweep_removes_the_scratch_of_a_killed_process_and_keeps_a_running_ones(
    tmp_path, monkeypatch
):
    """Two real processes make their scratch folders; one is SIGKILLed, the other runs on: the
    sweep removes the first only, then the second once it has ended too. This process's own
    folder, a folder being made (dot name) and a file are never removed; a dot-named folder
    left unlocked for long (a start killed mid-way) is."""
    import shutil
    import signal
    import subprocess
    import sys

    from recassets.spark import process_scratch, scratch_root, sweep_scratch

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr("recassets.spark._scratch", None)
    monkeypatch.setattr("recassets.spark._scratch_lock", None)
    child = (
        "from recassets.spark import process_scratch; p = process_scratch(); "
        "(p / 'blockmgr-1').mkdir(); print(p, flush=True); import time; time.sleep(120)"
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True, env=env)
        for _ in range(2)
    ]
    try:
        killed, running = (Path(p.stdout.readline().strip()) for p in procs)  # pyright: ignore
        mine = process_scratch()
        making = scratch_root() / ".123-being-made"
        making.mkdir()
        left = scratch_root() / ".456-killed-while-made"
        left.mkdir()
        os.utime(left, (0, 0))  # unlocked since long ago: its start was killed
        (scratch_root() / "notes.txt").write_text("not a folder")
        shutil.rmtree(running / "blockmgr-1")  # an age-based /tmp cleaner inside: still held
        assert sweep_scratch() == [left]  # both run: their folders stay
        procs[0].send_signal(signal.SIGKILL)
        procs[0].wait()
        assert killed.is_dir()  # what the kill left behind
        assert sweep_scratch() == [killed] and not killed.exists()
        assert running.is_dir() and mine.is_dir() and making.is_dir()
        procs[1].terminate()
        procs[1].wait()
        assert sweep_scratch() == [running]
        assert sorted(p.name for p in scratch_root().iterdir()) == sorted(
            [mine.name, making.name, "notes.txt"]
        )
    finally:
        for p in procs:
            p.kill()


def test_a_scratch_root_another_user_could_have_made_is_neither_used_nor_swept(
    tmp_path, monkeypatch
):
    """``<tmp>/recassets-spark-<uid>`` is a name anyone can guess in a shared /tmp. Made first
    as a link to elsewhere, it would put the JVM's jars where its maker can replace them, and a
    sweep would remove what lies there: the link is not followed, a private folder of the
    process's own is used, and the sweep touches nothing. The root as this user made it is
    used, and made private."""
    from recassets.spark import process_scratch, scratch_root, sweep_scratch

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr("recassets.spark._scratch", None)
    monkeypatch.setattr("recassets.spark._scratch_lock", None)
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "123-abc").mkdir(parents=True)
    scratch_root().symlink_to(elsewhere)
    folder = process_scratch()
    assert folder.parent == tmp_path and folder.name.startswith("recassets-spark-")
    assert oct(folder.stat().st_mode & 0o777) == "0o700"
    assert sweep_scratch() == [] and [p.name for p in elsewhere.iterdir()] == ["123-abc"]
    scratch_root().unlink()
    scratch_root().mkdir(mode=0o755)
    monkeypatch.setattr("recassets.spark._scratch", None)
    folder = process_scratch()
    assert folder.parent == scratch_root()
    assert oct(scratch_root().stat().st_mode & 0o777) == "0o700"


def test_the_scratch_conf_quotes_its_folder_and_leaves_a_users_choice_whole(tmp_path, monkeypatch):
    """Spark's launcher splits the driver's options as a shell does: a TMPDIR holding a space
    made the JVM fail to start ("Could not find or load main class"), so the option is quoted
    (one shell word). A place the user chose for Spark's files (its local dirs, or the JVM's
    temporary folder in the options or the JVM's variables) is left whole."""
    import shlex

    from recassets.spark import scratch_conf

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "a b"))
    (tmp_path / "a b").mkdir()
    monkeypatch.setattr("recassets.spark._scratch", None)
    monkeypatch.setattr("recassets.spark._scratch_lock", None)
    conf = scratch_conf({"spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1"}, {})
    folder = conf["spark.local.dir"]
    assert " " in folder and Path(folder).is_dir()
    words = shlex.split(conf["spark.driver.extraJavaOptions"])
    assert words == ["-XX:TieredStopAtLevel=1", f"-Djava.io.tmpdir={folder}"]
    assert scratch_conf({"spark.local.dir": "/data/spark"}, {}) == {}
    assert scratch_conf({}, {"SPARK_LOCAL_DIRS": "/data/spark"}) == {}
    assert scratch_conf({"spark.driver.defaultJavaOptions": "-Djava.io.tmpdir=/x"}, {}) == {}
    assert scratch_conf({}, {"JAVA_TOOL_OPTIONS": "-Djava.io.tmpdir=/x"}) == {}


def test_a_connect_refusal_quotes_the_url_without_its_token(monkeypatch: pytest.MonkeyPatch):
    """Spark Connect takes its bearer token in the URL (``sc://host:15002/;token=...``): the
    refusal of a server without Delta names the server, never the token. A stub stands in for
    the server (its session reports no Delta extension)."""
    import pyspark.sql

    from recassets.spark import SparkStartError, connect_session, safe_url

    class Conf:
        def get(self, key: str, default: str | None = None) -> str | None:
            return default

    class Session:
        conf = Conf()

        def stop(self) -> None:
            pass

    class Builder:
        def remote(self, url: str) -> Builder:
            return self

        def appName(self, name: str) -> Builder:
            return self

        def config(self, key: str, value: str) -> Builder:
            return self

        def getOrCreate(self) -> Session:
            return Session()

    monkeypatch.setattr(pyspark.sql.SparkSession, "builder", Builder())
    url = "sc://spark-connect.internal:15002/;use_ssl=true;token=s3cr3t-bearer"
    with pytest.raises(SparkStartError) as refused:
        connect_session(url, {})
    message = str(refused.value)
    assert "sc://spark-connect.internal:15002/ does not run Delta" in message
    assert "s3cr3t" not in message and "token" not in message
    assert safe_url("sc://host:15002") == "sc://host:15002"
    assert safe_url("sc://host:15002;token=t") == "sc://host:15002"
