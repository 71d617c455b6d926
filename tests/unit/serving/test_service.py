"""The service's handlers over a stand-in funnel (no bundle, no server): what they make of
the funnel's ``RequestError`` inside a batch and of a degraded answer. Everything else about
the service is tested over HTTP (tests/integration/test_serving.py)."""

from __future__ import annotations

import asyncio
import inspect
import json

import pytest

from recassets.funnel.recommender import Recommendation, RequestError

service = pytest.importorskip("serving.service")


class _Funnel:
    """``recommend`` as the service calls it: k over 10 is the funnel's RequestError; user
    99 is answered without the online store."""

    def recommend(self, user_id, k=20, exclude_seen=True, *, country=None, age_bucket=None):
        if k > 10:
            raise RequestError("k", f"must be between 1 and 10, got {k}")
        rec = Recommendation(user_id, "cold_start" if user_id == 99 else "model", [], "d", [])
        rec.degraded = user_id == 99
        return rec


class _Counter:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def labels(self, endpoint):
        counter = self

        class _One:
            def inc(self) -> None:
                counter.counts[endpoint] = counter.counts.get(endpoint, 0) + 1

        return _One()


@pytest.fixture
def svc():
    instance = object.__new__(service.RecommenderService.inner)
    instance.recommender = _Funnel()
    instance.fallbacks = _Counter()
    return instance


def _batch(svc, *requests):
    reqs = [service.RecommendRequest(**r) for r in requests]
    answer = svc.recommend_batch(reqs)
    return asyncio.run(answer) if inspect.isawaitable(answer) else answer


def test_a_request_error_inside_a_batch_is_a_400_naming_its_position(svc):
    answer = _batch(svc, {"user_id": 1, "k": 5}, {"user_id": 2, "k": 11})
    assert answer.status_code == 400
    body = json.loads(answer.body)
    assert body["field"] == "requests[1].k" and "between 1 and 10" in body["error"]


def test_a_batch_answers_each_request_and_counts_the_degraded_ones(svc):
    answer = _batch(svc, {"user_id": 1, "k": 5}, {"user_id": 99, "k": 2}, {"user_id": 3, "k": 1})
    assert [a["user_id"] for a in answer] == [1, 99, 3]
    assert svc.fallbacks.counts == {"recommend_batch": 1}
