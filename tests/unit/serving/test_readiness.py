"""Readiness without an item catalogue (review, 2026-12-07): a replica started without its
online store (a wrong Redis URL, a home with no online.db) answered ``/readyz`` 200
"degraded" and every ``/recommend`` with an empty page, so a rollout made every new pod
Ready. Now ``/readyz`` is a 503 in the edge's JSON shape until a catalogue has been loaded, and
a store that fails after that still leaves the replica ready (a 200 "degraded": the cold-start
path serves from memory). In process: the service's own ``__is_ready__`` and health note
behind the real ``Guard``, with a ``/readyz`` that answers as BentoML's does (503 when
``__is_ready__`` is False); over HTTP: tests/integration/test_serving.py
(``test_a_missing_sqlite_file_at_start_is_not_ready_until_it_is_back``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from recassets.bento.guard import Guard
from recassets.funnel.notes import NO_ITEMS, short_page

service = pytest.importorskip("serving.service")


class _Reader:
    def __init__(self) -> None:
        self.up = False
        self.health = SimpleNamespace(error="Redis at redis://wrong:6379 refused the connection")
        self.marker_error: str | None = None
        self.unfinished: str | None = None

    def ping(self) -> bool:
        return self.up


class _Funnel:
    """What readiness reads of the Recommender: the catalogue's block and the reader."""

    def __init__(self) -> None:
        self.reader = _Reader()
        self.ids = np.zeros(0, np.int64)  # the reader starts empty when the store is down
        self.catalog = SimpleNamespace(block=lambda: SimpleNamespace(ids=self.ids))

    def info(self) -> dict:
        return {"items_in_memory": len(self.ids)}


@pytest.fixture
def probe(monkeypatch: pytest.MonkeyPatch):
    funnel = _Funnel()
    instance = object.__new__(service.RecommenderService.inner)
    instance.recommender = funnel
    monkeypatch.setitem(service._LIVE, "recommender", funnel)

    async def readyz(_request):  # BentoML's: a 503 when __is_ready__ returns False
        if not instance.__is_ready__():
            raise HTTPException(503, "Service is not ready because .__is_ready__() returns False.")
        return PlainTextResponse("\n")

    app = Starlette(routes=[Route("/readyz", readyz)])
    app.add_middleware(Guard, token="t", health=service._store_note)
    return funnel, TestClient(app)


def test_no_catalogue_is_not_ready_then_a_store_failing_after_one_is_degraded(probe):
    funnel, client = probe
    ready = client.get("/readyz")  # the store never answered: no catalogue
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        "detail": f"{service.NO_CATALOG} (the reason is in the service's log)",
    }
    assert "redis://" not in ready.text  # the cause is in the log, not on the open probe
    funnel.reader.up = True  # the store answers, but holds no materialized day
    assert client.get("/readyz").status_code == 503
    assert service._store_note().endswith("holds no materialized day")
    funnel.ids = np.arange(5, dtype=np.int64)  # a catalogue loaded
    assert client.get("/readyz").text == "\n"
    funnel.reader.up = False  # the store fails after it: ready, degraded (served from memory)
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["detail"].startswith("online store unavailable, answering from the cold")


def test_readiness_is_false_when_the_funnel_fails():
    instance = object.__new__(service.RecommenderService.inner)
    instance.recommender = SimpleNamespace(catalog=None)  # block() raises: not ready, no raise
    assert instance.__is_ready__() is False


def test_a_page_short_for_want_of_a_catalogue_says_so():
    notes: list[str] = []
    short_page(notes, 0, 10, 0)  # no item in memory: not "no other item to recommend"
    assert notes == [NO_ITEMS]
    short_page(notes, 0, 10, 0)  # said once (the model path may have said it already)
    assert notes == [NO_ITEMS]
    notes = []
    short_page(notes, 3, 10, 3)  # the whole catalogue is on the page
    assert notes == ["3 item(s) of k=10: no other item to recommend"]
    short_page(notes := [], 10, 10, 50)
    assert notes == []


def test_info_says_the_build_of_the_bento():
    """``/info``'s ``build`` (review, 2026-12-07: no code version, BentoML version, build time
    or torch build was shown); None where a bento from before the code record does not say."""
    code = {"recassets": "0.1.0", "bentoml": "1.4.40", "torch": "cpu",
            "files": {"service.py": "ab" * 32}}  # fmt: skip
    said = service.build_info({"created_at": "2026-12-07T10:00:00+00:00", "code": code})
    assert said["created_at"] == "2026-12-07T10:00:00+00:00"
    assert (said["recassets"], said["torch"], said["bentoml_at_build"]) == (
        "0.1.0",
        "cpu",
        "1.4.40",
    )
    assert len(said["code"]) == 12 and said["bentoml"] == service.bentoml.__version__
    other = service.build_info({"code": {**code, "files": {"service.py": "cd" * 32}}})
    assert other["code"] != said["code"]  # another service.py, another code digest
    old = service.build_info({"created_at": "2026-12-01T00:00:00+00:00"})
    assert old["recassets"] is None and old["code"] is None and old["torch"] is None
