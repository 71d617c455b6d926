"""The BentoML service: JSON over HTTP around ``recassets.funnel.recommender.Recommender``.

Endpoints (all POST, JSON):

- ``/recommend`` ``{user_id, k = 20, exclude_seen = true, country?, age_bucket?}``: the
  funnel (retrieve ``RECASSETS_SERVE_CANDIDATES`` = 500, rank, rules). ``country`` and
  ``age_bucket`` only matter for a user the online store does not know (cold start by cohort).
- ``/rank`` ``{user_id, item_ids}``: the given candidates, ranked.
- ``/recommend_batch`` ``{requests: [{user_id, k, exclude_seen}, ...]}``: the same as
  ``/recommend`` for many users; adaptive batching (``max_batch_size`` 32,
  ``max_latency_ms`` 5) merges concurrent calls into one batch. ``/recommend`` itself is not
  batched: the funnel's work is per user (one user tower row, one FAISS query, the ranker over
  that user's N candidates), so a batch saves little compute and its window adds latency.
- ``/info``: what is served (policy, features day, index, bundle lineage digest).
- BentoML's own ``/livez``, ``/readyz`` (503 until the bundle is loaded and the online store
  answers) and ``/metrics`` (Prometheus).

Bad requests are refused with 400 by validation (strict types: ``"5"`` is not an int) and the
message names the field; ``RequestError`` from the funnel also becomes a 400 naming its field.

Threads: OpenMP and MKL pools are pinned to one thread before numpy/torch load
(``OMP_NUM_THREADS``), and ``pin_threads`` repeats it for torch and FAISS in each worker.
"""

import os

for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, os.environ.get("RECASSETS_SERVE_THREADS", "1"))

from pathlib import Path  # noqa: E402
from typing import Annotated, Any  # noqa: E402

import bentoml  # noqa: E402
from pydantic import BaseModel, Field, StrictBool, StrictInt, StrictStr  # noqa: E402

MAX_K = int(os.environ.get("RECASSETS_SERVE_MAX_K", "200"))
MAX_RANK_ITEMS = 1000
BUNDLE = Path(os.environ.get("RECASSETS_BUNDLE_DIR") or Path(__file__).resolve().parent / "bundle")

UserId = Annotated[StrictInt, Field(ge=0, description="users.user_id")]
K = Annotated[StrictInt, Field(ge=1, le=MAX_K, description=f"items to return, 1..{MAX_K}")]


class RecommendRequest(BaseModel):
    user_id: UserId
    k: K = 20
    exclude_seen: StrictBool = True
    country: StrictStr | None = None
    age_bucket: StrictStr | None = None


def _error(field: str, message: str) -> Any:
    from starlette.responses import JSONResponse

    return JSONResponse({"error": message, "field": field}, status_code=400)


@bentoml.service(
    name="recassets_recommender",
    workers=int(os.environ.get("RECASSETS_SERVE_WORKERS", "1")),
    # /recommend and /rank are ``async def``: the funnel runs on the worker's event loop,
    # with no hop to a thread and no GIL hand-offs between that thread and the loop (at
    # concurrency 8: 267 req/s against 228-242 through one thread; two threads were slower
    # still: the funnel is CPU-bound Python and torch, so threads only contend for the GIL).
    # Concurrent requests queue on the loop; scale with workers. ``threads`` is for the
    # sync endpoints (/recommend_batch, /info).
    threads=int(os.environ.get("RECASSETS_SERVE_API_THREADS", "1")),
    traffic={"timeout": 30},
)
class RecommenderService:
    def __init__(self) -> None:
        from recassets.featurestore.config import REDIS_URL_ENV
        from recassets.funnel.recommender import Bundle, FunnelConfig, Recommender, pin_threads
        from recassets.paths import Paths

        pin_threads(int(os.environ.get("RECASSETS_SERVE_THREADS", "1")))
        self.recommender = Recommender(
            Bundle.load(BUNDLE),
            Paths.from_env(),
            FunnelConfig.from_mapping(os.environ),
            # the online store: Redis when RECASSETS_REDIS_URL is set, read here at the edge
            redis_url=os.environ.get(REDIS_URL_ENV) or None,
        )

    def __is_ready__(self) -> bool:
        try:
            self.recommender.info()
        except Exception:  # noqa: BLE001 - readiness reports, it does not raise
            return False
        return True

    @bentoml.api
    async def recommend(
        self,
        user_id: UserId,
        k: K = 20,
        exclude_seen: StrictBool = True,
        country: StrictStr | None = None,
        age_bucket: StrictStr | None = None,
    ) -> dict[str, Any]:
        from recassets.funnel.recommender import RequestError

        try:
            rec = self.recommender.recommend(
                user_id, k, exclude_seen, country=country, age_bucket=age_bucket
            )
        except RequestError as e:
            return _error(e.field, str(e))
        return rec.to_dict()

    @bentoml.api
    async def rank(
        self,
        user_id: UserId,
        item_ids: Annotated[list[StrictInt], Field(min_length=1, max_length=MAX_RANK_ITEMS)],
    ) -> dict[str, Any]:
        return {"user_id": user_id, "items": self.recommender.rank_request(user_id, item_ids)}

    @bentoml.api(batchable=True, batch_dim=0, max_batch_size=32, max_latency_ms=5)
    def recommend_batch(self, requests: list[RecommendRequest]) -> list[dict[str, Any]]:
        out = []
        for r in requests:
            rec = self.recommender.recommend(
                r.user_id, r.k, r.exclude_seen, country=r.country, age_bucket=r.age_bucket
            )
            out.append(rec.to_dict())
        return out

    @bentoml.api
    def info(self) -> dict[str, Any]:
        manifest = self.recommender.bundle.manifest
        return {
            **self.recommender.info(),
            "digest": manifest.get("digest"),
            "lineage": manifest.get("lineage"),
        }
