"""The framework's floor for ``benchmarks/serve_http.py``: a BentoML service whose ``/recommend``
takes the same request as ``serving/service.py`` (same typed, validated parameters) and
returns a constant response of the same shape and size as ours for the k asked: the same
top-level fields (``request_id``, ``bento``, ``user_id``, ``items``, ``notes``, ``policy``,
``features_day``) and k items with the fields a served blend item carries. The answers for
every k are made once at import. Whatever it costs per request is BentoML's own cost (HTTP,
routing, validation, JSON), which ``/recommend`` pays too; the benchmark reports ours against
it (before, the floor answered 20 items whatever k was asked: at another k the two sides sent
bodies of different sizes).

    cd benchmarks && bentoml serve floor_service:Floor --host 127.0.0.1 --port 3001

Same worker count as the recommender (``RECASSETS_SERVE_WORKERS``, default 1), the same
traffic timeout and the same kind of handler (``async def``: called on the worker's event
loop, no hop to a thread), so the two differ only in the funnel's work.
"""

import os
from typing import Annotated, Any

import bentoml
from pydantic import Field, StrictBool, StrictInt, StrictStr

MAX_K = int(os.environ.get("RECASSETS_SERVE_MAX_K", "200"))
UserId = Annotated[StrictInt, Field(ge=0, description="users.user_id")]
K = Annotated[StrictInt, Field(ge=1, le=MAX_K, description=f"items to return, 1..{MAX_K}")]


def answer(k: int) -> dict[str, Any]:
    """What the recommender answers for ``k`` (model policy, blend order), with fixed values."""
    return {
        "request_id": "0" * 32,  # ours: the client's X-Request-Id or a uuid4 hex, 32 characters
        "bento": "recassets_recommender:00000000t000000-model-000000000000",
        "user_id": 0,
        "items": [
            {
                "item_id": 1000 + i,
                "score": 1.0 - i / (2 * k),
                "stages": ["retrieval", "blend", "rules"],
                "retrieval_score": 0.5 - i / (4 * k),
                "sources": ["two_tower"],
                "category": f"category_{i % 5}",
            }
            for i in range(k)
        ],
        "notes": [],
        "policy": "model",
        "features_day": "2026-01-01",
    }


ANSWERS: dict[int, dict[str, Any]] = {k: answer(k) for k in range(1, MAX_K + 1)}


@bentoml.service(
    name="recassets_floor",
    workers=int(os.environ.get("RECASSETS_SERVE_WORKERS", "1")),
    traffic={"timeout": 30},
)
class Floor:
    @bentoml.api
    async def recommend(
        self,
        user_id: UserId,
        k: K = 20,
        exclude_seen: StrictBool = True,
        country: StrictStr | None = None,
        age_bucket: StrictStr | None = None,
        ads: StrictBool = True,
    ) -> dict[str, Any]:
        return ANSWERS[k]
