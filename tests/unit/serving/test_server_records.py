"""Which servers ``recassets status`` names (review, 2026-12-07): it read the newest
``logs/bentoml-serve-*.log``, which every start writes, so it named a second ``recassets serve``
stopped while the first still served ("not answering (stopped?)"), or the demo's sample
server, which no ``recassets serve`` ran. Now a ``recassets serve`` (``start(record=True)``)
leaves a record while it runs, and status names the records whose process lives and whose
port answers. ``bentoml serve`` is played by ``fake_bentoml.py``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from recassets.bento import server
from recassets.cli_status import serving_lines

FAKE = Path(__file__).with_name("fake_bentoml.py")
TAG = "recassets_recommender:20260104t030000-model-aa"


def fake_bentoml(monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """``start``'s ``bentoml serve`` replaced by ``fake_bentoml.py`` in ``mode``, launched as
    ``start`` launches it (its log, its environment, its own process group)."""
    real = subprocess.Popen

    def popen(args: list[str], **kwargs: object) -> subprocess.Popen[bytes]:
        assert args[1:4] == ["-m", "bentoml", "serve"], args
        port = args[args.index("--port") + 1]
        return real([sys.executable, str(FAKE), port, mode], **kwargs)  # type: ignore[call-overload]

    monkeypatch.setattr(server.subprocess, "Popen", popen)


@pytest.fixture
def listener() -> Iterator[int]:
    """A port that accepts connections, as a running server's does."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield sock.getsockname()[1]


@pytest.fixture
def group_leader() -> Iterator[int]:
    """A live process leading its own group, as ``bentoml serve`` does."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                            start_new_session=True)  # fmt: skip
    yield proc.pid
    proc.kill()
    proc.wait()


def _gone_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    proc.wait()
    return proc.pid


def _record(paths, pid: int, port: int, tag: str = TAG) -> Path:
    where = server.records_dir(paths) / f"serve-{port}.json"
    where.parent.mkdir(parents=True, exist_ok=True)
    where.write_text(json.dumps({"pid": pid, "host": "127.0.0.1", "port": port, "tag": tag,
                                 "url": f"http://127.0.0.1:{port}",
                                 "started_at": "2026-01-04T03:01:00+00:00"}))  # fmt: skip
    return where


def _served(paths) -> list[str]:
    return [line for line in serving_lines(paths) if line.startswith("  served bento:")]


def test_of_two_recorded_servers_only_the_live_one_is_named(paths, listener, group_leader):
    """The repro: a serve on port A running, a second on B started then stopped (killed here,
    so its record stayed). Status said B, "not answering (stopped?)", while A answered."""
    dead = server.free_port()
    stale = _record(paths, _gone_pid(), dead, tag="recassets_recommender:20260105t000000-b")
    _record(paths, group_leader, listener)
    assert _served(paths) == [
        f"  served bento: {TAG} by `recassets serve` at http://127.0.0.1:{listener} (pid "
        f"{group_leader}, since 2026-01-04T03:01:00+00:00); not the newest: a running server "
        "keeps the bento it started with; restart it (Ctrl-C, then `recassets serve`) to "
        "serve the newest"
    ]
    assert not stale.exists()  # its process is gone: deleted when read
    assert [r["port"] for r in server.running(paths)] == [listener]


def test_a_record_whose_process_lives_but_port_is_closed_is_not_named(paths, group_leader):
    """A pid alone may be another process's after a reboot: the port must answer too."""
    where = _record(paths, group_leader, server.free_port())
    assert server.running(paths) == []
    assert _served(paths) == ["  served bento: no `recassets serve` of this home is running "
                              "(the next one serves the newest bento)"]  # fmt: skip
    assert where.exists()  # not provably stale: left, and replaced by the next serve there


def test_a_sample_servers_log_is_not_named_as_serving(paths, listener):
    """The demo's last step (``sample_recommendation``) starts a server on a free port and
    stops it; its log stayed the newest, and status named that port, "not answering". A log,
    even of a port that answers, names no server now."""
    log = Path(paths.home) / "logs" / f"bentoml-serve-{listener}.log"
    log.parent.mkdir(parents=True)
    log.write_text('2026-01-04T03:01:00+0000 [INFO] [cli] Starting production HTTP BentoServer '
                   f'from "{TAG}" listening on http://127.0.0.1:{listener} (Press CTRL+C to '
                   "quit)\n")  # fmt: skip
    said = _served(paths)
    assert said == ["  served bento: no `recassets serve` of this home is running (the next one "
                    "serves the newest bento)"]  # fmt: skip
    assert str(listener) not in "\n".join(serving_lines(paths))


def test_a_recorded_start_is_named_while_it_runs_and_not_after_its_stop(paths, monkeypatch):
    fake_bentoml(monkeypatch, "ready")
    srv = server.start(paths, "fake:Svc", cwd=paths.home, record=True, ready_timeout_s=60)
    try:
        port = int(srv.url.rsplit(":", 1)[1])
        assert srv.record == server.records_dir(paths) / server._record_file(port)
        [running] = server.running(paths)
        assert (running["pid"], running["url"], running["tag"]) == (srv.process.pid, srv.url,
                                                                    "fake:Svc")  # fmt: skip
        assert _served(paths)[0].startswith(f"  served bento: fake:Svc by `recassets serve` at "
                                            f"{srv.url} (pid {srv.process.pid}, since ")  # fmt: skip
    finally:
        srv.stop()
    assert srv.record is not None and not srv.record.exists()
    assert server.running(paths) == [] and not os.listdir(server.records_dir(paths))


def test_a_sample_start_leaves_no_record(paths, monkeypatch):
    """The demo, tests and benchmarks start without ``record``: their servers are their own
    samples, never what serves this home."""
    fake_bentoml(monkeypatch, "ready")
    with server.serving(paths, "fake:Svc", cwd=paths.home, ready_timeout_s=60) as srv:
        assert srv.record is None
        assert server.running(paths) == [] and not server.records_dir(paths).exists()
        assert _served(paths)[0].startswith("  served bento: no `recassets serve` of this home")


def _ready_server(paths, machine: str, port: int, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The record ``start`` writes for a ready server on ``port`` of the machine ``machine``
    (a process gone here: on that machine it may well run)."""
    monkeypatch.setattr(server.socket, "gethostname", lambda: machine)
    proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    proc.wait()
    srv = server.Server(proc, f"http://127.0.0.1:{port}", Path(paths.home) / "x.log")
    return server._write_record(paths, srv, TAG, "0.0.0.0", port)


def test_machines_sharing_a_home_keep_their_records_and_list_the_others_unchecked(
    paths, monkeypatch
):
    """A home on NFS or a Kubernetes volume: two replicas on one port replaced each other's
    record, and ``running`` on one machine deleted the other's live record (its pid is not
    alive here) and probed its address from here."""
    port = server.free_port()
    on_a = _ready_server(paths, "host-a", port, monkeypatch)
    on_b = _ready_server(paths, "host-b", port, monkeypatch)  # status runs on host-b
    probed: list[tuple[str, int]] = []
    monkeypatch.setattr(server, "_answers", lambda host, p: probed.append((host, p)) or False)
    assert server.running(paths) == []
    assert on_a.exists() and not on_b.exists()  # b's process is gone here: b's record goes
    assert probed == []  # nor was a's address probed from b
    [other] = server.elsewhere(paths)
    assert (other["hostname"], other["port"], other["tag"]) == ("host-a", port, TAG)
    assert _served(paths) == [
        f"  served bento: {TAG} by `recassets serve` on host host-a, not checked (pid "
        f"{other['pid']} there, at http://127.0.0.1:{port}, since {other['started_at']})"
    ]


def test_status_on_an_install_without_serving_code_still_names_the_servers(
    paths, monkeypatch, listener, group_leader
):
    """A packaged install without ``serving/``: the comparison of the bento's code raised
    ``FileNotFoundError``, and status said only "newest bento: unknown (...)"."""
    from recassets.bento import code

    def no_serving() -> dict[str, str]:
        raise FileNotFoundError(2, "No such file or directory", "serving/service.py")

    monkeypatch.setattr(code, "installed_files", no_serving)
    _record(paths, group_leader, listener)
    lines = serving_lines(paths)
    assert "  newest bento: none built" in lines
    assert _served(paths)[0].startswith(f"  served bento: {TAG} by `recassets serve` at ")
