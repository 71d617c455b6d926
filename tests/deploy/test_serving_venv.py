"""The bento served from a virtualenv of deploy/serving.lock alone (issue 17).

A fresh virtualenv gets deploy/serving.lock and nothing else (uv, from its cache: the wheels are
hardlinked, about a second; the network only when the cache lacks a wheel), then ``bentoml
serve`` runs from it the bento that tests/integration/test_serving.py builds (a TorchRec
two-tower and DCN-v2 promoted by the policy, a FAISS index, a Feast-materialized SQLite online
store) on a free 127.0.0.1 port. /readyz and /recommend are called over HTTP and the answer is
the funnel's own answer for the same user. The venv holds exactly the lock's pins, and neither
pyspark, dagster nor great_expectations imports in it, so what the bento needs at run time
is in the serving lock and what it does not need is not. The bento's own requirements are the
serving lock's pins (what ``bentoml containerize`` installs), and the venv is installed as the
bento's image installs them: its ``env/python/requirements.txt`` with uv's ``UV_OVERRIDE`` as
its bento.yaml sets it, pointing at the bento's own ``env/python/overrides.txt`` (without it
uv pulled the CUDA ``fbgemm-gpu`` beside ``fbgemm-gpu-cpu``, review of 2026-12-07).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from recassets.bento import bundle as B
from recassets.bento import server
from recassets.funnel.recommender import load
from recassets.paths import Paths
from recassets.process import stop_process_group
from tests.deploy.test_serving_lock import MAIN_LOCK, SERVING_LOCK, UV, pins
from tests.integration import test_serving
from tests.integration.test_serving import DAY, ITEMS

pytestmark = pytest.mark.integration

# the bento of tests/integration/test_serving.py (its module-scoped fixtures, built again here)
home = test_serving.home
built = test_serving.built

REPO = Path(__file__).resolve().parents[2]
# what uv says when a wheel is missing from its cache and it may not fetch it, and when the
# fetch itself fails: only then is the test skipped (any other failure is the lock's)
OFFLINE_MISS = ("offline", "cache", "network connectivity is disabled")
NO_NETWORK = ("connect", "dns", "network", "resolve host", "timed out", "unreachable")


def _uv(
    *args: str, timeout: float = 900, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(UV), *args], capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )  # fmt: skip


# BENTO_PATH in the images BentoML generates: where the bento's files are in them
IMAGE_BENTO_PATH = "/home/bentoml/bento/"


def image_install_env(bento: Path) -> dict[str, str]:
    """The uv settings the bento's bento.yaml gives its image's install step (its ``envs``),
    with the image's bento path read as this bento's folder: what the Dockerfile BentoML
    generates sets before ``uv pip install -r env/python/requirements.txt``."""
    import yaml

    envs = yaml.safe_load((bento / "bento.yaml").read_text()).get("envs") or []
    return {
        e["name"]: str(e.get("value", "")).replace(IMAGE_BENTO_PATH, f"{bento}/")
        for e in envs
        if e["name"].startswith("UV_")
    }


def install_serving_venv(venv: Path, requirements: Path, bento: Path) -> dict[str, float]:
    """A virtualenv at ``venv`` with ``requirements`` (the bento's env/python/requirements.txt,
    deploy/serving.lock's pins) installed as ``bento``'s image installs them (its uv settings,
    ``image_install_env``: the bento's own overrides file), offline first, from the network
    only when the cache lacks a wheel. Returns the seconds each step took; skips the test when
    a wheel is neither cached nor downloadable."""
    if not UV.exists():
        pytest.skip(f"no uv at {UV}: `make install` first")
    env = image_install_env(bento)
    assert env.get("UV_OVERRIDE") == str(bento / "env" / "python" / "overrides.txt"), env
    timings: dict[str, float] = {}
    start = time.monotonic()
    # the interpreter this test runs on (the base of .venv): the Python the bento was built with
    done = _uv(
        "venv", "-q", "--python", getattr(sys, "_base_executable", sys.executable), str(venv)
    )
    assert done.returncode == 0, done.stderr
    timings["venv"] = time.monotonic() - start
    install = ["pip", "install", "-q", "--python", str(venv / "bin" / "python"),
               "-r", str(requirements)]  # fmt: skip
    start = time.monotonic()
    done = _uv(*install, "--offline", env=env)
    if done.returncode != 0:
        assert any(s in done.stderr.lower() for s in OFFLINE_MISS), done.stderr
        online = _uv(*install, env=env)
        if online.returncode != 0:
            if any(s in online.stderr.lower() for s in NO_NETWORK):
                pytest.skip(
                    "uv's cache lacks a wheel of deploy/serving.lock and the index is not "
                    f"reachable:\n{done.stderr[-1500:]}\n{online.stderr[-1500:]}"
                )
            raise AssertionError(online.stderr)
    timings["install"] = time.monotonic() - start
    return timings


@pytest.fixture(scope="module")
def serving_venv(tmp_path_factory: pytest.TempPathFactory, built: dict[str, Any]) -> Path:
    # under pytest's temporary folder: the filesystem of uv's cache here, so uv hardlinks
    venv = tmp_path_factory.mktemp("serving_venv") / "venv"
    bento = B.bento_folder(built["home"], built["tag"])
    timings = install_serving_venv(venv, bento / "env" / "python" / "requirements.txt", bento)
    print(
        f"serving venv: created in {timings['venv']:.1f} s, installed in {timings['install']:.1f} s"
    )
    return venv


def serve_from(
    venv: Path, paths: Paths, tag: str, log: Path, timeout_s: float = 240
) -> server.Server:
    """``bentoml serve <tag>`` with ``venv``'s interpreter and an environment that names no
    other Python (no PYTHONPATH, no other venv on PATH), on a free loopback port."""
    port = server.free_port()
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", "/tmp"),
        "VIRTUAL_ENV": str(venv),
        "BENTOML_HOME": B.bentoml_home(paths),
        "BENTOML_DO_NOT_TRACK": "True",
        "RECASSETS_HOME": paths.home,
        "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
        # PYTHONDONTWRITEBYTECODE left unset: the first process writes the venv's .pyc files
        # and the worker reads them (the fresh venv has none).
    }
    handle = open(log, "wb")  # noqa: SIM115 - handed to the child
    # env --default-signal: background servers here may otherwise ignore SIGTERM.
    proc = subprocess.Popen(
        ["env", "--default-signal=INT,TERM", str(venv / "bin" / "python"), "-m", "bentoml",
         "serve", tag, "--host", "127.0.0.1", "--port", str(port)],
        stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=log.parent, start_new_session=True,
    )  # fmt: skip
    handle.close()
    srv = server.Server(proc, f"http://127.0.0.1:{port}", log)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"bentoml serve exited ({proc.returncode}):\n{_tail(log)}")
        # a worker that cannot import what it needs is restarted by BentoML, forever: fail now
        if b"Application startup failed" in log.read_bytes():
            stop_process_group(proc, timeout_s=20)
            raise RuntimeError(f"the service did not start:\n{_tail(log)}")
        if srv.get("/readyz", timeout=2)[0] == 200:
            return srv
        time.sleep(0.5)
    stop_process_group(proc, timeout_s=20)
    raise TimeoutError(f"not ready in {timeout_s:.0f} s:\n{_tail(log)}")


def _status_of_a_huge_head(url: str) -> int:
    """The status a GET /livez with one 100 KB header line is answered with, over a socket."""
    import socket
    from urllib.parse import urlsplit

    where = urlsplit(url)
    head = f"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: {'a' * 100_000}\r\n\r\n".encode()
    with socket.create_connection((where.hostname, where.port), timeout=30) as conn:
        with contextlib.suppress(OSError):  # the server may answer and close mid-send
            conn.sendall(head)
        answer = conn.recv(200)
    return int(answer.split(b" ", 2)[1])


def _tail(path: Path) -> str:
    return path.read_text(errors="replace")[-4000:]


def test_the_venv_holds_the_serving_lock_and_nothing_of_the_pipeline(serving_venv: Path) -> None:
    done = _uv("pip", "freeze", "--python", str(serving_venv / "bin" / "python"))
    assert done.returncode == 0, done.stderr
    assert pins(done.stdout) == pins(SERVING_LOCK.read_text())
    for module in ("pyspark", "dagster", "great_expectations", "feast", "deltalake"):
        probe = subprocess.run(
            [str(serving_venv / "bin" / "python"), "-c", f"import {module}"],
            capture_output=True, text=True,
        )  # fmt: skip
        assert probe.returncode != 0 and "ModuleNotFoundError" in probe.stderr, module
    assert "pyspark" in pins(MAIN_LOCK.read_text())  # the main venv does have it


def test_the_bento_requires_the_serving_lock(built: dict[str, Any]) -> None:
    requirements = B.bento_folder(built["home"], built["tag"]) / "env/python/requirements.txt"
    assert pins(requirements.read_text()) == pins(SERVING_LOCK.read_text())
    assert "fbgemm-gpu" not in pins(requirements.read_text())  # the overrides' business


def test_the_image_install_env_is_the_bentos_own(built: dict[str, Any], tmp_path: Path) -> None:
    """What the venv is installed with: the bento's bento.yaml's uv settings, its overrides
    file in its folder (the repo's own overrides.txt was used, which no image has); without
    them (a bento built before), none and the assertion of ``install_serving_venv`` fails."""
    bento = B.bento_folder(built["home"], built["tag"])
    env = image_install_env(bento)
    overrides = bento / "env" / "python" / "overrides.txt"
    assert env["UV_OVERRIDE"] == str(overrides)
    assert overrides.read_text() == (REPO / "overrides.txt").read_text()
    old = tmp_path / "old"
    old.mkdir()
    (old / "bento.yaml").write_text("name: recassets_recommender\nenvs: []\n")
    assert image_install_env(old) == {}


def test_the_bento_serves_from_the_serving_venv(
    serving_venv: Path, home: Paths, built: dict[str, Any], tmp_path: Path
) -> None:
    start = time.monotonic()
    srv = serve_from(serving_venv, home, built["tag"], tmp_path / "serve.log")
    ready_s = time.monotonic() - start
    try:
        status, body = srv.get("/readyz")
        assert status == 200, body
        status, answer = srv.post("/recommend", {"user_id": 3, "k": 10})
        assert status == 200, answer
        # the head bounds hold in the bento's own environment (it lacked httptools: uvicorn
        # fell back to h11 and answered a 100 KB header with 200, reviewed 2026-12-07)
        assert _status_of_a_huge_head(srv.url) == 431
        # the server is the venv's interpreter (`env` execs it in place), not this test's
        cmdline = Path(f"/proc/{srv.process.pid}/cmdline").read_bytes().split(b"\0")
        assert cmdline[0].decode() == str(serving_venv / "bin" / "python"), cmdline
    finally:
        srv.stop()
    print(f"bentoml serve from the serving venv: ready in {ready_s:.1f} s")
    assert answer["policy"] == "model" and answer["features_day"] == DAY
    ids = [i["item_id"] for i in answer["items"]]
    assert len(ids) == 10 and len(set(ids)) == 10 and set(ids) <= set(ITEMS)
    assert all(i["stages"][:2] == ["retrieval", "ranking"] for i in answer["items"])
    # the same answer as the funnel in this process, over the bento's own bundle
    bundle = B.bento_folder(home, built["tag"]) / "src" / "bundle"
    expected = load(bundle, home.home).recommend(3, 10).to_dict()
    assert ids == [i["item_id"] for i in expected["items"]]
    assert [i["score"] for i in answer["items"]] == pytest.approx(
        [i["score"] for i in expected["items"]], rel=1e-5
    )


def test_a_lock_missing_what_serving_imports_cannot_serve(
    home: Paths, built: dict[str, Any], tmp_path: Path
) -> None:
    """The serving lock less protobuf (recassets.featurestore.wire decodes Feast's values with
    it): the venv installs, but the service does not start, and the log names the module."""
    bento = B.bento_folder(home, built["tag"])
    lock = tmp_path / "serving.lock"
    lock.write_text(
        "".join(
            line
            for line in (bento / "env" / "python" / "requirements.txt").read_text().splitlines(True)
            if not line.startswith("protobuf==")
        )
    )
    venv = tmp_path / "venv"
    install_serving_venv(venv, lock, bento)
    with pytest.raises(RuntimeError, match="No module named 'google'"):
        srv = serve_from(venv, home, built["tag"], tmp_path / "serve.log", timeout_s=180)
        srv.stop()
