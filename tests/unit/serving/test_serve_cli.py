"""``recassets serve`` itself (review, 2026-12-07), in a child process with ``bentoml serve``
played by ``fake_bentoml.py``: it records its server while it runs, for ``recassets status``,
and removes the record when stopped (SIGTERM as Ctrl-C); and a server without an item
catalogue is refused at once, naming the store's error, where it waited 180 s and said only
"not ready". ``start``'s part: test_server_records.py, test_server_catalogue.py."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from recassets.bento import server

from .fake_bentoml import STORE_ERROR

REPO = Path(__file__).resolve().parents[3]
TAG = "recassets_recommender:20261206t072059-a"
CHILD = """
import sys
import pytest
from tests.unit.serving.test_server_records import fake_bentoml
fake_bentoml(pytest.MonkeyPatch(), sys.argv[1])
from recassets import cli
cli.main(["serve", "--tag", sys.argv[2], "--port", sys.argv[3]])
"""


def _serve(paths, mode: str, port: int) -> subprocess.Popen[str]:
    from recassets.bento import bundle as B

    held = Path(B.bentoml_home(paths)) / "bentos" / "recassets_recommender" / TAG.split(":")[1]
    held.mkdir(parents=True, exist_ok=True)
    (held / "bento.yaml").write_text("service: x\n")  # a tag of the store (no bundle to load)
    env = {**os.environ, "RECASSETS_HOME": paths.home}
    return subprocess.Popen([sys.executable, "-c", CHILD, mode, TAG, str(port)], cwd=REPO,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)  # fmt: skip


def test_serve_records_its_server_while_it_runs_and_removes_it_when_stopped(paths):
    port = server.free_port()
    child = _serve(paths, "ready", port)
    record = server.records_dir(paths) / server._record_file(port)
    try:
        deadline = time.monotonic() + 120
        while server.get(f"http://127.0.0.1:{port}/readyz", timeout=2)[0] != 200:
            assert child.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        deadline = time.monotonic() + 10  # ready: recorded by then, or within a moment
        while not record.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        [running] = server.running(paths)
        assert (running["port"], running["tag"]) == (port, TAG)
    finally:
        child.send_signal(signal.SIGTERM)
        out, _ = child.communicate(timeout=60)
    assert child.returncode == 0, out
    assert not record.exists() and server.running(paths) == []


def test_serve_without_an_item_catalogue_is_refused_at_once_naming_the_store(paths):
    child = _serve(paths, "no-catalogue", server.free_port())
    try:
        out, _ = child.communicate(timeout=120)  # before: 180 s, then "not ready in 180 s"
    finally:
        child.kill()
    assert child.returncode == 1, out
    assert ("recassets serve: bentoml serve is up but not ready: no item catalogue loaded (the "
            f"online store is unavailable or holds no items): {STORE_ERROR}." in out)  # fmt: skip
    assert "`recassets materialize --select featurestore/feature_store`" in out
