"""``/recommend_batch``'s budget: its requests' ``k`` sum to at most
``RECASSETS_SERVE_MAX_BATCH_ITEMS``; above, the body model refuses it (BentoML's 400) naming
``requests``, before any page is made. And the handler lets the worker's other requests run
between two pages."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace

import pytest

service = pytest.importorskip("serving.service")


def _body(pages: int, k: int) -> str:
    return json.dumps({"requests": [{"user_id": i, "k": k} for i in range(pages)]})


def test_a_batch_within_the_item_budget_passes_and_one_over_it_is_refused_naming_requests():
    from pydantic import ValidationError

    spec = service.RecommenderService.apis["recommend_batch"].input_spec
    budget = service.MAX_BATCH_ITEMS
    assert budget == 64 * 20  # the default: a full batch of default pages
    assert len(spec.model_validate_json(_body(64, 20)).requests) == 64
    assert len(spec.model_validate_json(_body(6, 200)).requests) == 6  # 1,200 items
    with pytest.raises(ValidationError) as refused:
        spec.model_validate_json(_body(7, 200))  # 1,400: before, 64 x 200 = 12,800 passed
    (error,) = refused.value.errors()
    assert error["loc"] == ("requests",)
    assert f"sum to 1400, more than the {budget} items" in error["msg"]


def test_other_requests_are_answered_between_two_pages_of_a_batch():
    """The handler runs on the worker's event loop: without a yield between pages, a batch
    held every other request of the worker until its last page."""
    order: list[str] = []

    class _Funnel:
        def recommend(self, user_id, k=20, exclude_seen=True, *, country=None, age_bucket=None):
            order.append(f"page {user_id}")
            if user_id == 1:
                raise RuntimeError("the pages are all this test needs")

    svc = object.__new__(service.RecommenderService.inner)
    svc.recommender = _Funnel()
    ctx = SimpleNamespace(
        request=SimpleNamespace(headers={}),
        response=SimpleNamespace(headers={}, status_code=200),
    )

    async def both() -> None:
        reqs = [service.RecommendRequest(user_id=i, k=1) for i in range(2)]
        batch = asyncio.ensure_future(svc.recommend_batch(reqs, ctx=ctx))
        await asyncio.sleep(0)  # the batch starts: its first page
        order.append("other request")
        with pytest.raises(RuntimeError):
            await batch

    asyncio.run(both())
    assert order == ["page 0", "other request", "page 1"]  # before: page 1 before the other
