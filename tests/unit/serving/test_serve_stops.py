"""``recassets serve`` stops the server it started whatever ends it (review, 2026-12-07).
``bentoml serve`` leads its own session, so nothing else stops it: a record that could not be
written, a Ctrl-C while it got ready, a SIGTERM before the handler was installed, an install
without ``serving/`` (the note's comparison raised ``FileNotFoundError``) each left it serving,
with no ``recassets serve`` and, mostly, a traceback. ``bentoml serve`` is played by
``fake_bentoml.py`` (``test_server_records.fake_bentoml``), or by a sleeping process."""

from __future__ import annotations

import errno
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from recassets.bento import bundle as B
from recassets.bento import code, server
from recassets.cli_serve import serve
from recassets.process import stop_process_group

from .test_server_records import fake_bentoml

TAG = "recassets_recommender:20261206t072059-a"


@pytest.fixture
def launched(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The processes ``start`` launches (after ``fake_bentoml``), stopped at the end whatever
    the test left."""
    procs: list[subprocess.Popen[bytes]] = []
    real = server.subprocess.Popen

    def popen(*args: object, **kwargs: object) -> subprocess.Popen[bytes]:
        procs.append(real(*args, **kwargs))  # type: ignore[call-overload]
        return procs[-1]

    monkeypatch.setattr(server.subprocess, "Popen", popen)
    yield procs
    for proc in procs:
        stop_process_group(proc, timeout_s=5)


@pytest.fixture
def sigterm_default() -> Iterator[None]:
    """SIGTERM as a fresh process has it; put back as it was after the test."""
    before = signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    signal.signal(signal.SIGTERM, before)


def _stored_bento(paths, monkeypatch: pytest.MonkeyPatch, manifest: bool = True) -> None:
    """``TAG`` in the home's store (with ``manifest``, one with a code record to compare, for
    a faked ``start``: the real one loads the bundle it names), and the home as ``recassets
    serve`` finds it."""
    held = Path(B.bentoml_home(paths)) / "bentos" / "recassets_recommender" / TAG.split(":")[1]
    (held / "src" / "bundle").mkdir(parents=True)
    (held / "bento.yaml").write_text("service: x\n")
    if manifest:
        written = json.dumps({"code": {"files": {}}})
        (held / "src" / "bundle" / "manifest.json").write_text(written)
    monkeypatch.setenv("RECASSETS_HOME", paths.home)


def _sleeper() -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                            start_new_session=True)  # fmt: skip


def test_a_record_that_cannot_be_written_stops_the_ready_server(paths, monkeypatch, launched):
    """``<home>/run`` not writable: start raised after the server was ready, and left it."""

    def refused(*_args: object) -> Path:
        raise PermissionError(errno.EACCES, "Permission denied", str(server.records_dir(paths)))

    fake_bentoml(monkeypatch, "ready")
    monkeypatch.setattr(server, "_write_record", refused)
    with pytest.raises(PermissionError):
        server.start(paths, "fake:Svc", cwd=paths.home, record=True, ready_timeout_s=60)
    [proc] = launched
    assert proc.poll() is not None  # stopped: the fake serves until stopped


def test_ctrl_c_while_the_server_gets_ready_stops_it(paths, monkeypatch, launched):
    fake_bentoml(monkeypatch, "no-catalogue")  # up, never ready: start keeps probing
    probes = []

    def probe(*args: object, **kwargs: object) -> tuple[int, str]:
        probes.append(args)
        if len(probes) == 2:
            raise KeyboardInterrupt
        return 503, ""

    monkeypatch.setattr(server, "get", probe)
    with pytest.raises(KeyboardInterrupt):
        server.start(paths, "fake:Svc", cwd=paths.home, ready_timeout_s=60)
    [proc] = launched
    assert proc.poll() is not None


def test_serve_says_a_record_it_cannot_write_in_one_line_and_stops_the_server(
    paths, monkeypatch, launched, sigterm_default
):
    _stored_bento(paths, monkeypatch, manifest=False)
    fake_bentoml(monkeypatch, "ready")

    def refused(*_args: object) -> Path:
        raise PermissionError(errno.EACCES, "Permission denied", str(server.records_dir(paths)))

    monkeypatch.setattr(server, "_write_record", refused)
    with pytest.raises(SystemExit) as ended:
        serve(TAG, server.free_port(), lambda _line: None)
    assert str(ended.value) == (f"recassets serve: [Errno {errno.EACCES}] Permission denied: "
                                f"'{server.records_dir(paths)}'")  # fmt: skip
    [proc] = launched
    assert proc.poll() is not None
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the caller's handler back


def test_a_sigterm_while_the_server_gets_ready_ends_serve_through_start(
    paths, monkeypatch, sigterm_default
):
    """The handler was installed after ``start`` returned: a SIGTERM during the wait ended the
    process at once (the default action), and ``start`` never stopped its server."""
    _stored_bento(paths, monkeypatch)

    def start(*_args: object, **_kwargs: object) -> server.Server:
        handler = signal.getsignal(signal.SIGTERM)
        if not callable(handler):  # the default action would end this test's process
            raise AssertionError(f"SIGTERM during the start is {handler!r}")
        handler(signal.SIGTERM, None)  # delivered now: raises where start waits
        raise AssertionError("the handler let the start go on")

    monkeypatch.setattr(server, "start", start)
    with pytest.raises(KeyboardInterrupt):
        serve(TAG, None, lambda _line: None)
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_ctrl_c_between_the_start_and_the_wait_stops_the_server(
    paths, monkeypatch, sigterm_default
):
    """After ``start`` returned, the note's comparison (it hashes this install's code) ran
    outside the try whose ``finally`` stops the server."""
    _stored_bento(paths, monkeypatch)
    proc = _sleeper()
    try:
        monkeypatch.setattr(server, "start", lambda *_a, **_k: server.Server(
            proc, "http://127.0.0.1:1", Path(paths.home) / "serve.log"))  # fmt: skip

        def interrupted(*_args: object) -> str | None:
            raise KeyboardInterrupt

        monkeypatch.setattr(code, "bento_differs", interrupted)
        try:
            serve(TAG, None, lambda _line: None)  # Ctrl-C stops the server: no error
        except KeyboardInterrupt:  # raised on, it would end pytest's session as a Ctrl-C
            pytest.fail("the Ctrl-C escaped serve")
        assert proc.poll() is not None
    finally:
        stop_process_group(proc, timeout_s=5)


def test_an_install_without_serving_code_serves_without_a_note(paths, monkeypatch, sigterm_default):
    """A packaged install without ``serving/``: ``installed_files`` raises
    ``FileNotFoundError``; there is nothing to compare the bento with, so no note, and the
    server runs (it was left running behind a traceback)."""
    _stored_bento(paths, monkeypatch)

    def no_serving(*_args: object) -> dict[str, str]:
        raise FileNotFoundError(errno.ENOENT, "No such file or directory", "serving/service.py")

    monkeypatch.setattr(code, "installed_files", no_serving)
    assert code.bento_differs(paths, TAG) is None
    proc = subprocess.Popen([sys.executable, "-c", "pass"], start_new_session=True)
    monkeypatch.setattr(server, "start", lambda *_a, **_k: server.Server(
        proc, "http://127.0.0.1:1", Path(paths.home) / "serve.log"))  # fmt: skip
    said: list[str] = []
    serve(TAG, None, said.append)  # the server exits 0 at once: serve returns
    assert len(said) == 1 and said[0].startswith("serving on http://127.0.0.1:1 ")
