"""deploy/dagster.yaml against a real PostgreSQL server the test starts itself.

Debian's ``postgresql`` package provides the server (``/usr/lib/postgresql/<N>/bin``); where it
is missing the fixture installs it with apt-get when it runs as root, and skips otherwise. The
cluster lives in a temporary folder, listens on a free loopback port, requires a password
(scram-sha-256) and offers TLS (a self-signed certificate made with openssl: the file asks for
``sslmode=require``, as a managed server would be reached), and is stopped at the end of the
module.
"""

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dagster import (
    AssetKey,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
    materialize,
)
from dagster_postgres import PostgresEventLogStorage, PostgresRunStorage, PostgresScheduleStorage

from tests.deploy import tiny_location
from tests.deploy.tiny_location import SENSOR_DAY, tiny_counts

REPO = Path(__file__).resolve().parents[2]
INSTANCE_YAML = REPO / "deploy" / "dagster.yaml"
USER = "dagster"
PASSWORD = "s3cret-for-the-test"
DB = "dagster_test"


@dataclass(frozen=True)
class Server:
    port: int


def _bin_dir() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(found[-1]).parent if found else None


def _find_or_install() -> Path:
    bin_dir = _bin_dir()
    if bin_dir is not None:
        return bin_dir
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip(
            "no PostgreSQL server: install Debian's `postgresql` package "
            "(/usr/lib/postgresql/*/bin/initdb), or run the tests as root to let them install it"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "install", "-y", "-q", "postgresql"], check=True, env=env)
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.fail("apt-get installed postgresql but no /usr/lib/postgresql/*/bin/initdb exists")
    return bin_dir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_server_user(cmd: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: run them as Debian's ``postgres`` user."""
    if os.geteuid() != 0:
        return cmd
    return ["runuser", "-u", "postgres", "--", *cmd]


def _self_signed(root: Path) -> tuple[Path, Path]:
    """A certificate and key for the server's TLS, readable by the server's user only (postgres
    refuses a key others can read)."""
    if shutil.which("openssl") is None:
        pytest.skip("no openssl to make the test server's TLS certificate")
    cert, key = root / "server.crt", root / "server.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )  # fmt: skip
    key.chmod(0o600)
    if os.geteuid() == 0:
        shutil.chown(cert, "postgres")
        shutil.chown(key, "postgres")
    return cert, key


@pytest.fixture(scope="module")
def server() -> Iterator[Server]:
    bin_dir = _find_or_install()
    # Not under pytest's temporary folder: its parents are 0700 root, closed to ``postgres``.
    root = Path(tempfile.mkdtemp(prefix="recassets-pg-"))
    data, sockets, pwfile = root / "data", root / "sockets", root / "pwfile"
    sockets.mkdir()
    pwfile.write_text(PASSWORD + "\n")
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        shutil.chown(sockets, "postgres")
        shutil.chown(pwfile, "postgres")
    initdb = [str(bin_dir / "initdb"), "-D", str(data), "-U", USER, f"--pwfile={pwfile}"]
    done = subprocess.run(
        _as_server_user([*initdb, "--auth=scram-sha-256", "-E", "UTF8", "--no-sync"]),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        shutil.rmtree(root, ignore_errors=True)
        pytest.fail(f"initdb failed: {done.stderr}")
    cert, key = _self_signed(root)
    port = _free_port()
    proc = subprocess.Popen(
        _as_server_user(
            [
                str(bin_dir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-k",
                str(sockets),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
                "-c",
                "ssl=on",
                "-c",
                f"ssl_cert_file={cert}",
                "-c",
                f"ssl_key_file={key}",
            ]
        ),
        stdout=subprocess.DEVNULL,
        stderr=(root / "server.log").open("w"),
    )
    try:
        import psycopg2

        deadline = time.monotonic() + 60
        while True:
            try:
                conn = psycopg2.connect(
                    host="127.0.0.1", port=port, user=USER, password=PASSWORD, dbname="postgres"
                )
                break
            except psycopg2.OperationalError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"postgres did not start: {(root / 'server.log').read_text()}")
                time.sleep(0.2)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f"CREATE DATABASE {DB}")
        conn.close()
        yield Server(port=port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dagster_home(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(INSTANCE_YAML, home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("DAGSTER_PG_HOST", "127.0.0.1")
    monkeypatch.setenv("DAGSTER_PG_PORT", str(server.port))
    monkeypatch.setenv("DAGSTER_PG_DB", DB)
    monkeypatch.setenv("DAGSTER_PG_USER", USER)
    monkeypatch.setenv("DAGSTER_PG_PASSWORD", PASSWORD)
    return home


def test_partition_materialized_and_read_back_through_postgres(dagster_home: Path) -> None:
    with DagsterInstance.get() as instance:
        assert isinstance(instance.run_storage, PostgresRunStorage)
        assert isinstance(instance.event_log_storage, PostgresEventLogStorage)
        assert isinstance(instance.schedule_storage, PostgresScheduleStorage)
        assert instance.run_retries_enabled and instance.run_retries_max_retries == 2
        assert instance.event_log_storage.supports_global_concurrency_limits
        assert instance.get_concurrency_config().pool_config.default_pool_limit == 1
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 8

        # sslmode=require (the file's params) reached the connection: it is encrypted
        with instance.run_storage.connect() as conn:
            pid_ssl = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
            assert conn.exec_driver_sql(pid_ssl).scalar() is True
        assert "sslmode=require" in instance.run_storage.postgres_url

        result = materialize([tiny_counts], instance=instance, partition_key="2026-01-02")
        assert result.success
        run_id = result.run_id

    # A second instance from the same file sees what the first wrote: it is in Postgres.
    with DagsterInstance.get() as instance:
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == DagsterRunStatus.SUCCESS
        assert [r.run_id for r in instance.get_runs(RunsFilter(run_ids=[run_id]))] == [run_id]
        types = {
            r.event_log_entry.dagster_event_type
            for r in instance.get_records_for_run(run_id).records
        }
        assert {
            DagsterEventType.RUN_START,
            DagsterEventType.ASSET_MATERIALIZATION,
            DagsterEventType.RUN_SUCCESS,
        } <= types
        key = AssetKey("tiny_counts")
        assert instance.get_materialized_partitions(key) == {"2026-01-02"}
        event = instance.get_latest_materialization_event(key)
        assert event is not None and event.asset_materialization is not None
        assert event.asset_materialization.partition == "2026-01-02"
        assert event.asset_materialization.metadata["rows"].value == 3


def test_a_sensor_tick_is_recorded_and_its_run_queued(dagster_home: Path) -> None:
    """One iteration of the daemon's sensor loop against the instance: the tick lands in the
    schedule storage and the requested run waits in the run queue (QueuedRunCoordinator)."""
    import logging

    from dagster._core.remote_representation.external import RemoteSensor
    from dagster._core.scheduler.instigation import InstigatorType, TickStatus
    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._core.workspace.load_target import PythonFileTarget
    from dagster._daemon.sensor import execute_sensor_iteration

    target = PythonFileTarget(
        python_file=tiny_location.__file__,
        attribute="defs",
        working_directory=str(REPO),
        location_name="deploy_test",
    )
    with DagsterInstance.get() as instance:
        with create_test_daemon_workspace_context(target, instance) as workspace:
            list(execute_sensor_iteration(workspace, logging.getLogger("test"), None, None))
            location = next(
                iter(workspace.create_request_context().get_code_location_entries().values())
            ).code_location
            assert location is not None
            repo = next(iter(location.get_repositories().values()))
            remote: RemoteSensor = repo.get_sensor("tiny_landing_sensor")

    with DagsterInstance.get() as instance:
        ticks = instance.get_ticks(remote.get_remote_origin_id(), remote.selector_id)
        assert [t.status for t in ticks] == [TickStatus.SUCCESS]
        assert ticks[0].instigator_type == InstigatorType.SENSOR
        (run_id,) = ticks[0].run_ids
        run = instance.get_run_by_id(run_id)
        assert run is not None and run.status == DagsterRunStatus.QUEUED
        assert run.tags["dagster/partition"] == SENSOR_DAY
        assert run.tags["dagster/sensor_name"] == "tiny_landing_sensor"


def test_wrong_password_is_refused(dagster_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The credentials come from the environment: a wrong one fails, nothing falls back."""
    from dagster_postgres.utils import DagsterPostgresException

    monkeypatch.setenv("DAGSTER_PG_PASSWORD", "not-the-password")
    with pytest.raises(DagsterPostgresException) as refused:
        with DagsterInstance.get() as instance:
            instance.get_runs()
    assert "password authentication failed" in str(refused.value.__cause__)
