"""The BentoML service: JSON over HTTP around ``recassets.funnel.recommender.Recommender``.

Endpoints (all POST, JSON):

- ``/recommend`` ``{user_id, k = 20, exclude_seen = true, country?, age_bucket?, ads = true}``:
  the funnel (retrieve ``RECASSETS_SERVE_CANDIDATES`` = 500, rank, rules), then the ad auction
  for the reserved slots when the bundle carries campaigns (``recassets.funnel.ads``; an ad
  entry has ``"ad": true``, ``campaign_id``, ``price`` per click, ``pctr``; ``ads: false`` or
  ``RECASSETS_ADS=off`` keeps the page organic). ``country`` and ``age_bucket`` only matter
  for a user the online store does not know (cold start by cohort).
- ``/rank`` ``{user_id, item_ids}``: the given candidates, ranked; items the catalog does not
  hold are kept, marked ``missing_features``, after every known item, and noted, as is a
  user the online store does not know (ranked on default user features).

Each ``/recommend`` and ``/rank`` answer carries ``request_id`` (the client's ``X-Request-Id``
header when it is a safe short token that ``recassets lineage`` reads as a request id, else a
new uuid4 hex; also sent back as that header) and ``bento`` (the tag served), and is
appended, sampled at ``RECASSETS_DECISION_LOG_RATE``
(default 1: all), to the decision log: JSON Lines files under
``<landing>/serving_log/dt=YYYY-MM-DD/``, landed in the background, never on the request's
time (``recassets.bento.decisions``; dropped records are counted in
``recassets_decision_log_dropped_total{reason}``).
- ``/recommend_batch`` ``{requests: [{user_id, k, exclude_seen, country?, age_bucket?}, ...]}``
  (1..``RECASSETS_SERVE_MAX_BATCH`` = 64, their ``k`` summing to at most
  ``RECASSETS_SERVE_MAX_BATCH_ITEMS`` = 1,280, 64 pages of 20: one request of 64 pages of 200
  cost 365 ms of the worker's CPU, a 2 MB answer and 2 MB of decision log; between pages the
  handler yields, so other requests are answered meanwhile): ``/recommend`` for each, in
  order, each answer
  with its own ``request_id`` (``<batch id>-<i>``, the batch's id in ``X-Request-Id``) and
  ``bento``, and logged like a ``/recommend`` answer. Not adaptively
  batched: the funnel's work is per user (one user tower row, one FAISS query, the ranker over
  that user's N candidates), so merging calls saves little compute, and a merged batch could
  only fail or succeed as a whole, where a client's mistake must come back as its own 400
  naming ``requests[i].field``.
- ``/info``: what is served (policy, features day, index, the bento's digest, the online
  store's state, and ``build``: when it was built, the recassets version and a digest of its
  code, the torch build, the BentoML it was built with and the one running it); paths are
  shown from the home folder they lie in, never absolute.
- BentoML's own ``/livez``, ``/readyz`` (503 until the bundle and an item catalogue are
  loaded: a replica whose online store never answered, a wrong Redis URL, would serve empty
  pages; a 200 whose JSON body says ``degraded`` while the store fails after that) and
  ``/metrics`` (Prometheus, with ``recassets_online_store_fallbacks_total``: answers given
  without the online store; ``recassets_unrouted_requests_total``: requests for a path no
  route serves, which stay out of BentoML's per-path series, ``recassets.bento.unrouted``).

Bad requests are refused with 4xx by validation (strict types: ``"5"`` is not an int; ids
within int64; ``k`` within 1..``RECASSETS_SERVE_MAX_K``; ``country``/``age_bucket`` at most
32 characters; an unknown field, top level or in a batch's request, is ``extra_forbidden``)
and the message names the field; ``RequestError`` from the funnel also becomes a 400 naming
its field. Such a client error is logged as one WARNING line (``recassets.bento.logs``), not
BentoML's ERROR with a traceback. ``recassets.bento.guard.Guard`` sits in front: the optional
bearer token (``RECASSETS_SERVING_TOKEN`` or ``RECASSETS_SERVING_TOKEN_FILE``; every path but
``/livez`` and ``/readyz``), the body size (413 over ``RECASSETS_SERVE_MAX_BODY_BYTES``) and
its deadline (408 past ``RECASSETS_SERVE_BODY_TIMEOUT_S``).

When the online store fails (Redis down, the SQLite file missing or locked) requests are
still answered, from the cold-start path, with a note; the store is read again by the next
request, so serving recovers by itself.

Threads: OpenMP and MKL pools are pinned to one thread before numpy/torch load
(``OMP_NUM_THREADS``), and ``pin_threads`` repeats it for torch and FAISS in each worker.
"""

import asyncio
import os

# a blank setting means the default (as preflight reads it): OpenMP refuses an empty value
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_var, os.environ.get("RECASSETS_SERVE_THREADS", "").strip() or "1")

from pathlib import Path  # noqa: E402
from typing import Annotated, Any  # noqa: E402

import bentoml  # noqa: E402
from pydantic import (  # noqa: E402
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    field_validator,
)

from recassets.bento import decisions as D  # noqa: E402
from recassets.bento import unrouted  # noqa: E402
from recassets.bento.guard import CLIENT_CLOSED, Guard  # noqa: E402
from recassets.bento.guard_body import COHORT_PATTERN  # noqa: E402
from recassets.freshness import env_int  # noqa: E402

# A setting that is no integer of at least 1 stops the worker at start, naming the variable
# (0 would have refused every request, "abc" was an unnamed ValueError).
MAX_K = env_int("RECASSETS_SERVE_MAX_K", 200, minimum=1)
MAX_RANK_ITEMS = 1000
MAX_BATCH = env_int("RECASSETS_SERVE_MAX_BATCH", 64, minimum=1)
MAX_BATCH_ITEMS = env_int("RECASSETS_SERVE_MAX_BATCH_ITEMS", 64 * 20, minimum=1)
MAX_COHORT_CHARS = 32  # country codes and age buckets ("18-24") are a few characters
INT64_MAX = 2**63 - 1
BUNDLE = Path(os.environ.get("RECASSETS_BUNDLE_DIR") or Path(__file__).resolve().parent / "bundle")

UserId = Annotated[StrictInt, Field(ge=0, le=INT64_MAX, description="users.user_id (int64)")]
ItemId = Annotated[StrictInt, Field(ge=-INT64_MAX - 1, le=INT64_MAX, description="item id")]
K = Annotated[StrictInt, Field(ge=1, le=MAX_K, description=f"items to return, 1..{MAX_K}")]
# 20, or the most a request may ask for when that is less: a default above the bound refused
# every request without k (a 400 naming the k it did not send)
DEFAULT_K = min(20, MAX_K)
Cohort = Annotated[StrictStr, Field(max_length=MAX_COHORT_CHARS, pattern=COHORT_PATTERN)]


class RecommendRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: UserId
    k: K = DEFAULT_K
    exclude_seen: StrictBool = True
    country: Cohort | None = None
    age_bucket: Cohort | None = None
    ads: StrictBool = True


class RankRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: UserId
    item_ids: Annotated[list[ItemId], Field(min_length=1, max_length=MAX_RANK_ITEMS)]


class InfoRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # no field: {"x": 1} is a 400, as elsewhere


class BatchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    requests: Annotated[list[RecommendRequest], Field(min_length=1, max_length=MAX_BATCH)]

    @field_validator("requests")
    @classmethod
    def _within_budget(cls, requests: list[RecommendRequest]) -> list[RecommendRequest]:
        asked = sum(r.k for r in requests)
        if asked > MAX_BATCH_ITEMS:
            raise ValueError(
                f"the requests' k sum to {asked}, more than the {MAX_BATCH_ITEMS} items one "
                "batch may ask for (RECASSETS_SERVE_MAX_BATCH_ITEMS): split the batch"
            )
        return requests


class ServedItem(BaseModel):
    # category (after the rules) and retrieval_score (through retrieval) where a stage set them;
    # sources (the blend order: two_tower, similarity, trending) where candidates were merged;
    # an ad: ad, campaign_id, advertiser, price (per click), pctr, pctr_source, slot (the
    # position it stands at) and cost (what its impression was charged)
    model_config = ConfigDict(extra="allow")

    item_id: int
    score: float
    stages: list[str]


class Answer(BaseModel):
    request_id: str = Field(description="the client's X-Request-Id when safe, else uuid4 hex")
    bento: str | None = Field(description="the bento tag served (None outside a bento)")
    user_id: int
    items: list[ServedItem]
    notes: list[str]


class RecommendAnswer(Answer):
    policy: str
    features_day: str | None


class RankAnswer(Answer):
    pass


# The one place the worker's Recommender is found by what runs outside the service instance
# (the Guard's readiness probe); set when the instance is built.
_LIVE: dict[str, Any] = {}


# What readiness says of a replica with no item catalogue: every page would be empty (trending,
# popularity and the ranker all read the items in memory), so it is not ready (a 503), unlike
# one whose store fails after the catalogue was loaded, which answers from memory (a 200).
NO_CATALOG = "no item catalogue loaded (the online store is unavailable or holds no items)"


def _has_catalog(rec: Any) -> bool:
    """Whether the worker holds an item catalogue (``Catalog.block`` also looks for a newer
    feature day, so a store that comes back is loaded by the probe itself). Once loaded, the
    reader never swaps it for an empty one (``OnlineFeatureReader.refresh``): this is "loaded
    at least once"."""
    return len(rec.catalog.block().ids) > 0


def _store_note() -> str | None:
    """None while the online store answers (probed now), else what is wrong; first, that no
    item catalogue was ever loaded (``__is_ready__`` is then False: a 503)."""
    rec = _LIVE.get("recommender")
    if rec is None:
        return None
    if not _has_catalog(rec):
        reader = rec.reader
        why = (reader.health.error if not reader.ping() else reader.marker_error) or (
            "the online store holds no materialized day"
        )
        return f"{NO_CATALOG}: {why}"
    if not rec.reader.ping():
        error = rec.reader.health.error
        return f"online store unavailable, answering from the cold-start path: {error}"
    if rec.reader.marker_error:
        return f"{rec.reader.marker_error}: serving the items of {rec.reader.day}"
    if rec.reader.unfinished:
        return rec.reader.unfinished
    for store in getattr(rec, "embedding_stores", {}).values():  # rows in Redis
        if not store.ping():
            return f"embedding rows unavailable, answering by popularity: {store.health.error}"
    return None


def _fallbacks() -> Any:
    """The Prometheus counter of answers given without the online store, made once per worker
    (after BentoML has set up its multiprocess metrics folder)."""
    if "fallbacks" not in _LIVE:
        import prometheus_client

        _LIVE["fallbacks"] = prometheus_client.Counter(
            "recassets_online_store_fallbacks",
            "answers given without the online store (it failed): cold start or default features",
            ["endpoint"],
        )
    return _LIVE["fallbacks"]


def _decision_drops() -> Any:
    """The Prometheus counter of decision records dropped (not landed), by reason."""
    if "decision_drops" not in _LIVE:
        import prometheus_client

        _LIVE["decision_drops"] = prometheus_client.Counter(
            "recassets_decision_log_dropped",
            "decision log records not landed: buffer_full, buffer_bytes, byte_budget, write_error, unserializable, closed (after shutdown began)",
            ["reason"],
        )
    return _LIVE["decision_drops"]


def _embedding_lookups() -> Any:
    """The Prometheus counter of embedding rows looked up in the local cache, by result (hit,
    miss): the hit rate when the rows live in Redis (RECASSETS_SERVE_EMBEDDINGS=redis)."""
    if "embedding_lookups" not in _LIVE:
        import prometheus_client

        _LIVE["embedding_lookups"] = prometheus_client.Counter(
            "recassets_embedding_cache_lookups",
            "embedding rows asked of the local cache of hot rows, by result (hit or miss)",
            ["result"],
        )
    return _LIVE["embedding_lookups"]


def _count_unrouted() -> None:
    """One more request that no route serves (``recassets.bento.unrouted``)."""
    if "unrouted" not in _LIVE:
        import prometheus_client

        _LIVE["unrouted"] = prometheus_client.Counter(
            "recassets_unrouted_requests",
            "requests for a path no route serves (answered, not in BentoML's per-path metrics)",
        )
    _LIVE["unrouted"].inc()


def _count_lookups(hits: int, misses: int) -> None:
    counter = _embedding_lookups()
    if hits:
        counter.labels("hit").inc(hits)
    if misses:
        counter.labels("miss").inc(misses)


def _freeze_heap() -> None:
    """Move what the worker has loaded (the libraries, the models, the catalog: alive as long
    as the worker) out of the cyclic collector's reach (``gc.freeze``), after one last full
    collection: a full collection then walks only what requests made since, not the hundreds of
    thousands of objects torch, pandas and BentoML leave behind (about 400,000 in a worker: a
    full collection of them took 166 ms, a stall of every request in flight). Nothing is
    leaked: the garbage is collected first, frozen objects were alive anyway, and what a
    request allocates is collected as before. Measured with the decision log's change
    (docs/benchmarks.md): p99 at concurrency 8 28.8 ms without the freeze, 24.2 ms with it."""
    import gc

    gc.collect()
    gc.freeze()


def _error(field: str, message: str, ctx: Any = None) -> Any:
    from starlette.responses import JSONResponse

    if ctx is not None:  # BentoML sets the context's status on whatever is returned
        ctx.response.status_code = 400
    return JSONResponse({"error": message, "field": field}, status_code=400)


CLIENT_GONE = 499  # nginx's "client closed request": the access log says what happened


def _gone(ctx: Any) -> Any:
    """A 499 when the client has closed its connection (``guard.client_closed_check``: a peek
    at its socket, microseconds, no pass of the event loop), else None. Checked before a
    page's ads are charged, and every 8 pages of a batch: an abandoned request spent the
    campaigns' budgets and frequency caps on a page nobody saw (a probe closed 30 requests
    for one user right after sending them: that user's next page had no ad left) and a batch
    the worker's time (41 s of abandoned batches before the next request)."""
    from starlette.responses import JSONResponse

    check = (getattr(ctx.request, "scope", None) or {}).get(CLIENT_CLOSED)
    if check is None or not check():
        return None
    ctx.response.status_code = CLIENT_GONE
    message = "the client closed the connection before its answer"
    return JSONResponse({"error": message, "field": "connection"}, status_code=CLIENT_GONE)


def _request_id(ctx: Any, answers: int = 0) -> str:
    """The request id (``decisions.request_id``), sent back as ``X-Request-Id``; with
    ``answers``, a batch's id, with room for the ``-<i>`` of each answer's id
    (``decisions.batch_ids``)."""
    rid = D.request_id(ctx.request.headers.get(D.REQUEST_ID_HEADER), answers=answers)
    ctx.response.headers[D.REQUEST_ID_HEADER] = rid
    return rid


@bentoml.service(
    name="recassets_recommender",
    workers=env_int("RECASSETS_SERVE_WORKERS", 1, minimum=1),
    # /recommend and /rank are ``async def``: the funnel runs on the worker's event loop,
    # with no hop to a thread and no GIL hand-offs between that thread and the loop (at
    # concurrency 8: 267 req/s against 228-242 through one thread; two threads were slower
    # still: the funnel is CPU-bound Python and torch, so threads only contend for the GIL).
    # Concurrent requests queue on the loop; scale with workers. ``threads`` is for the
    # sync endpoint (/info).
    threads=env_int("RECASSETS_SERVE_API_THREADS", 1, minimum=1),
    traffic={"timeout": 30},
    # the loopback unless told otherwise, also for a bare `bentoml serve` (BentoML's default
    # is every interface); recassets.bento.server passes --host explicitly as well
    http={"host": os.environ.get("RECASSETS_SERVE_HOST", "127.0.0.1")},
)
class RecommenderService:
    ads: Any = None  # recassets.funnel.ads.Ads, set in __init__ (None: every page organic)

    def __init__(self) -> None:
        from recassets.bento import logs
        from recassets.featurestore.config import REDIS_URL_ENV
        from recassets.funnel.recommender import Bundle, FunnelConfig, Recommender, pin_threads
        from recassets.paths import Paths

        logs.install()  # a client's 400 is one WARNING line, not an ERROR with a traceback
        from recassets.bento import preflight

        # every setting at once, each error naming its variable (a bare `bentoml serve` fails
        # here, at start; `recassets serve` refused before launching)
        # the bento's own bundle: its code and requirements checked too (an edited service.py
        # or library file refuses to start, naming it); RECASSETS_BUNDLE_DIR runs other code
        own = not os.environ.get("RECASSETS_BUNDLE_DIR")
        bundle = Bundle.load(BUNDLE, code=Path(__file__).resolve().parent if own else None)
        preflight.check(os.environ, bundle.path("campaigns"))
        pin_threads(env_int("RECASSETS_SERVE_THREADS", 1, minimum=1))
        self.recommender = Recommender(
            bundle,
            Paths.from_env(),
            FunnelConfig.from_mapping(os.environ),
            # the online store: Redis when RECASSETS_REDIS_URL is set, read here at the edge
            redis_url=os.environ.get(REDIS_URL_ENV) or None,
            on_embedding_lookup=_count_lookups,
        )
        self.fallbacks = _fallbacks()
        # every series at 0 from the start: an alert on rate() saw nothing before the first
        for endpoint in ("recommend", "rank", "recommend_batch"):
            self.fallbacks.labels(endpoint)
        from recassets.funnel.ads import Ads

        # the bundle's campaigns (none on MovieLens: every page organic)
        self.ads = Ads.from_env(self.recommender.bundle.path("campaigns"), os.environ)
        if self.ads.config.enabled and self.ads.campaigns:
            # the campaigns' items are scored with each ranked page: the auction's pCTR then
            # comes from the page's ranker call instead of a second one
            self.recommender.prescore([c.item_id for c in self.ads.campaigns])
        _LIVE["recommender"] = self.recommender
        # what every answer names: the bento served and the model versions in it
        self.bento = D.bento_tag(Path(__file__).resolve().parent)
        self.models = D.model_versions(self.recommender.bundle.manifest)
        drops = _decision_drops()
        for reason in D.DROP_REASONS:
            drops.labels(reason)
        self.decisions = D.DecisionLog(
            self.recommender.paths.landing,
            D.Settings.from_env(os.environ),
            on_drop=lambda n, reason: drops.labels(reason).inc(n),
        )
        _freeze_heap()  # last: everything loaded above lives as long as the worker

    def _with_ads(self, rec: Any, k: int, ads: bool) -> Any:
        """The page with the auction's ads spliced in (``Ads.apply``: never fails the page)."""
        return rec if self.ads is None else self.ads.apply(self.recommender, rec, k, ads)

    @bentoml.on_shutdown
    def _close_decision_log(self) -> None:
        self.decisions.close()

    def _log(
        self, rid: str, endpoint: str, user_id: int, items: list, policy: Any, day: Any
    ) -> None:
        """Append the answer to the decision log, when sampled; never raises."""
        log = self.decisions
        try:
            if log.sampled():
                log.append(
                    D.decision(
                        request_id=rid, endpoint=endpoint, user_id=user_id, items=items,
                        policy=policy, features_day=day, models=self.models, bento=self.bento,
                    )
                )  # fmt: skip
        except Exception:  # noqa: BLE001 - the answer is what matters, the log is a copy
            import logging

            logging.getLogger(__name__).exception("decision log: record not made")

    def __is_ready__(self) -> bool:
        """Ready once an item catalogue is in memory (``_has_catalog``): a replica started
        without its online store (a wrong Redis URL, no online.db) answered every page empty
        and reported ready, so a rollout made every new pod Ready. A store that fails after the
        catalogue was loaded keeps it ready: the cold-start path serves from memory."""
        try:
            return _has_catalog(self.recommender) and self.recommender.info() is not None
        except Exception:  # noqa: BLE001 - readiness reports, it does not raise
            import logging

            logging.getLogger(__name__).exception("not ready")  # and says why
            return False

    # Each API's input_spec is the pydantic model of its body (the handler's own parameters,
    # kept equal by tests/unit/serving/test_service.py): BentoML's model inferred from the
    # signature ignores unknown fields, so a misspelled "kk" would be answered with the
    # defaults; these forbid them, a 400 naming the field like every other validation error.
    # (BentoML takes any pydantic model there, wrapping it, but types the argument narrower.)
    @bentoml.api(input_spec=RecommendRequest)  # pyright: ignore[reportArgumentType]
    async def recommend(
        self,
        user_id: UserId,
        k: K = DEFAULT_K,
        exclude_seen: StrictBool = True,
        country: Cohort | None = None,
        age_bucket: Cohort | None = None,
        ads: StrictBool = True,
        *,
        ctx: bentoml.Context,
    ) -> RecommendAnswer:
        from recassets.funnel.notes import RequestError

        rid = _request_id(ctx)
        try:
            rec = self.recommender.recommend(
                user_id, k, exclude_seen, country=country, age_bucket=age_bucket
            )
        except RequestError as e:
            return _error(e.field, str(e), ctx)
        if (gone := _gone(ctx)) is not None:
            return gone  # before any ad is charged
        rec = self._with_ads(rec, k, ads)
        if rec.degraded:
            self.fallbacks.labels("recommend").inc()
        self._log(rid, "recommend", rec.user_id, rec.items, rec.policy, rec.features_day)
        return RecommendAnswer(request_id=rid, bento=self.bento, **rec.to_dict())

    @bentoml.api(input_spec=RankRequest)  # pyright: ignore[reportArgumentType]
    async def rank(
        self,
        user_id: UserId,
        item_ids: Annotated[list[ItemId], Field(min_length=1, max_length=MAX_RANK_ITEMS)],
        *,
        ctx: bentoml.Context,
    ) -> RankAnswer:
        from recassets.funnel.notes import NO_ITEMS, ROWS_DOWN, STORE_DOWN, RequestError

        rid = _request_id(ctx)
        notes: list[str] = []
        try:
            items = self.recommender.rank_request(user_id, item_ids, notes)
        except RequestError as e:
            return _error(e.field, str(e), ctx)
        # answered without the store; an unknown user or item is answered as designed
        if STORE_DOWN in notes or NO_ITEMS in notes or ROWS_DOWN in notes:
            self.fallbacks.labels("rank").inc()
        # a page ordered by popularity (no item features yet, the embedding rows down) is
        # logged as popularity, as /recommend logs its fallback: lineage and training joins
        # must not credit the model with it
        fell_back = bool(items) and items[0]["stages"][0] == "popularity"
        policy = "popularity" if fell_back else self.recommender.policy.get("policy")
        day = self.recommender.catalog.last.day  # the block rank_request just used
        self._log(rid, "rank", user_id, items, policy, day)
        answer = {"request_id": rid, "bento": self.bento, "user_id": user_id, "items": items}
        return RankAnswer.model_validate({**answer, "notes": notes})

    @bentoml.api(input_spec=BatchRequest)  # pyright: ignore[reportArgumentType]
    async def recommend_batch(
        self,
        requests: Annotated[list[RecommendRequest], Field(min_length=1, max_length=MAX_BATCH)],
        *,
        ctx: bentoml.Context,
    ) -> list[dict[str, Any]]:
        """Each answer is a ``/recommend`` answer with a request id of its own, the batch's
        id (``X-Request-Id``) and its position (``decisions.batch_ids``), logged as one."""
        from recassets.funnel.notes import RequestError

        rid = _request_id(ctx, answers=len(requests))
        recs = []
        for i, r in enumerate(requests):  # every page first: a refused batch charges no ad
            if i:
                await asyncio.sleep(0)  # the worker's other requests between two pages
            if i % 8 == 0 and (gone := _gone(ctx)) is not None:
                return gone  # an abandoned batch stops within 8 pages
            try:
                recs.append(
                    self.recommender.recommend(
                        r.user_id, r.k, r.exclude_seen, country=r.country, age_bucket=r.age_bucket
                    )
                )
            except RequestError as e:
                return _error(f"requests[{i}].{e.field}", f"requests[{i}].{e}", ctx)
        if (gone := _gone(ctx)) is not None:
            return gone  # before any ad is charged
        out = []
        for answer_id, r, rec in zip(D.batch_ids(rid, len(recs)), requests, recs, strict=True):
            rec = self._with_ads(rec, r.k, r.ads)
            if rec.degraded:
                self.fallbacks.labels("recommend_batch").inc()
            self._log(answer_id, "recommend", rec.user_id, rec.items, rec.policy, rec.features_day)
            out.append({"request_id": answer_id, "bento": self.bento, **rec.to_dict()})
        return out

    @bentoml.api(input_spec=InfoRequest)  # pyright: ignore[reportArgumentType]
    def info(self) -> dict[str, Any]:
        from recassets.funnel.recommender import public

        manifest = self.recommender.bundle.manifest
        return {
            **self.recommender.info(),
            "bento": self.bento,  # was "bundle": null (the manifest has no tag)
            "ads": None if self.ads is None else self.ads.info(),
            "digest": manifest.get("digest"),
            "build": build_info(manifest),
            "lineage": public(manifest.get("lineage")),
        }


def build_info(manifest: dict[str, Any]) -> dict[str, Any]:
    """What ``/info`` says of the build: when the bundle was written, the recassets version
    and a digest of the code files (``code_record``), the torch build and the BentoML version
    the bento was built with, and the BentoML running it (None where a bento built before
    the record does not say)."""
    import hashlib
    import json

    code = manifest.get("code") or {}
    files = code.get("files")
    digest = json.dumps(files, sort_keys=True).encode() if files else None
    return {
        "created_at": manifest.get("created_at"),
        "recassets": code.get("recassets"),
        "code": hashlib.sha256(digest).hexdigest()[:12] if digest else None,
        "torch": code.get("torch"),
        "bentoml_at_build": code.get("bentoml"),
        "bentoml": bentoml.__version__,
    }


# Outermost of the service's own middlewares: nothing is parsed before the token and the size.
RecommenderService.add_asgi_middleware(Guard, health=_store_note)
# BentoML's per-path request metrics (outside the Guard) measure only the paths routes serve:
# a scanner's made-up paths would each add series for the life of the worker
unrouted.install(_count_unrouted)
unrouted.no_websockets()  # before the worker's uvicorn loads its config (after this import)
