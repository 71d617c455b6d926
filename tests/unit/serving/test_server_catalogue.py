"""``recassets serve`` without an online store (review, 2026-12-07): the service is up but not
ready (a 503 "no item catalogue loaded" until its store answers, as a replica must be), and
``start`` waited its whole 180 s for a 200, then stopped the server saying only "not ready".
Now a caller that will not wait (``start(catalogue_wait_s=...)``, the CLI) is told at once
what the service logged (the store and its error) and what brings the store back; the
demo, tests and benchmarks still wait for a ready server. ``bentoml serve`` is played by
``fake_bentoml.py`` (``test_server_records.fake_bentoml``)."""

from __future__ import annotations

import json

import pytest

from recassets.bento import server
from recassets.bento.http_limits import public_note

from .fake_bentoml import STORE_ERROR
from .test_server_records import fake_bentoml


def test_a_server_without_catalogue_is_refused_at_once_naming_the_store(paths, monkeypatch):
    """Before: ``TimeoutError: bentoml serve not ready in 180 s`` (here the 60 s below)."""
    fake_bentoml(monkeypatch, "no-catalogue")
    launched = []
    real = server.subprocess.Popen

    def popen(*args, **kwargs):
        launched.append(real(*args, **kwargs))
        return launched[-1]

    monkeypatch.setattr(server.subprocess, "Popen", popen)
    with pytest.raises(server.NoCatalogueError) as refused:
        server.start(paths, "fake:Svc", cwd=paths.home, record=True, ready_timeout_s=60,
                     catalogue_wait_s=1)  # fmt: skip
    said = str(refused.value)
    assert said.startswith("bentoml serve is up but not ready: no item catalogue loaded (the "
                           f"online store is unavailable or holds no items): {STORE_ERROR}. ")  # fmt: skip
    assert "trace=" not in said
    assert "`recassets materialize --select featurestore/feature_store`" in said
    assert "RECASSETS_REDIS_URL" in said and said.endswith(".log")
    [proc] = launched
    assert proc.returncode is not None  # stopped, not left running
    assert server.running(paths) == [] and not server.records_dir(paths).exists()


def test_a_catalogue_loaded_within_the_grace_is_served(paths, monkeypatch):
    """A store busy for a moment: the first probes say no catalogue, then it loads."""
    fake_bentoml(monkeypatch, "no-catalogue:2")
    srv = server.start(paths, "fake:Svc", cwd=paths.home, ready_timeout_s=60,
                       catalogue_wait_s=60)  # fmt: skip
    try:
        assert srv.get("/readyz") == (200, "\n")
    finally:
        srv.stop()


def test_by_default_start_waits_for_the_catalogue(paths, monkeypatch):
    """The demo, tests and benchmarks need a ready server: no ``catalogue_wait_s``, the wait
    lasts until the store is back (tests/integration/test_serving.py, with a real store:
    ``test_a_missing_sqlite_file_at_start_is_not_ready_until_it_is_back``)."""
    fake_bentoml(monkeypatch, "no-catalogue:6")
    with server.serving(paths, "fake:Svc", cwd=paths.home, ready_timeout_s=60) as srv:
        assert srv.get("/readyz") == (200, "\n")


def test_only_the_services_no_catalogue_answer_counts():
    """The phrase is the service's (``serving/service.py`` NO_CATALOG through the edge's public
    note); BentoML's own 503 while the service starts, and a degraded 200, are not it."""
    service = pytest.importorskip("serving.service")
    body = json.dumps({"status": "unavailable",
                       "detail": public_note(f"{service.NO_CATALOG}: Redis refused")})  # fmt: skip
    assert server.no_catalogue(503, body)
    assert not server.no_catalogue(200, body)
    assert not server.no_catalogue(503, "Service Unavailable")
    degraded = {"status": "unavailable", "detail": "online store unavailable (the reason ...)"}
    assert not server.no_catalogue(503, json.dumps(degraded))
    assert not server.no_catalogue(503, "[1]")
