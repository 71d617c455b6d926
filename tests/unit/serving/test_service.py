"""The service's handlers over a stand-in funnel (no bundle, no server): what they make of
the funnel's ``RequestError`` inside a batch and of a degraded answer, and the request id,
bento tag and decision log of each answer (with a log that cannot be written). Everything
else about the service is tested over HTTP (tests/integration/test_serving.py)."""

from __future__ import annotations

import asyncio
import inspect
import json
from pathlib import Path
from types import SimpleNamespace

import pytest

from recassets.bento import decisions as D
from recassets.funnel.notes import RequestError
from recassets.funnel.recommender import Recommendation

service = pytest.importorskip("serving.service")


class _Funnel:
    """``recommend`` as the service calls it: k over 10 is the funnel's RequestError; user
    99 is answered without the online store."""

    def recommend(self, user_id, k=20, exclude_seen=True, *, country=None, age_bucket=None):
        if k > 10:
            raise RequestError("k", f"must be between 1 and 10, got {k}")
        items = [{"item_id": 5, "score": 1.5, "stages": ["trending", "rules"], "category": "c"}]
        rec = Recommendation(user_id, "cold_start" if user_id == 99 else "model", items, "d", [])
        rec.degraded = user_id == 99
        return rec

    # /rank
    policy = {"policy": "model"}
    catalog = SimpleNamespace(last=SimpleNamespace(day="2026-01-02"))

    def rank_request(self, user_id, item_ids, notes):
        if any(i < 0 for i in item_ids):
            raise RequestError("item_ids[0]", "no")
        return [{"item_id": i, "score": float(i), "stages": ["ranking"]} for i in item_ids]


class _Counter:
    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def labels(self, endpoint):
        counter = self

        class _One:
            def inc(self) -> None:
                counter.counts[endpoint] = counter.counts.get(endpoint, 0) + 1

        return _One()


class _Drops:
    def __init__(self) -> None:
        self.counts: dict[str, float] = {}

    def labels(self, reason):
        drops = self

        class _One:
            def inc(self, n=1) -> None:
                drops.counts[reason] = drops.counts.get(reason, 0) + n

        return _One()


def _make(landing: Path, rate: float = 1.0) -> tuple[object, _Drops]:
    instance = object.__new__(service.RecommenderService.inner)
    instance.recommender = _Funnel()
    instance.fallbacks = _Counter()
    instance.bento = "recassets_recommender:v1"
    instance.models = {"two_tower": "two_tower/0001", "ranking": "ranking/0001"}
    drops = _Drops()
    instance.decisions = D.DecisionLog(
        landing, D.Settings(rate=rate), on_drop=lambda n, r: drops.labels(r).inc(n),
        background=False,
    )  # fmt: skip
    return instance, drops


@pytest.fixture
def svc(tmp_path):
    return _make(tmp_path)[0]


def _ctx(header: str | None = None):
    headers = {} if header is None else {D.REQUEST_ID_HEADER: header}
    return SimpleNamespace(
        request=SimpleNamespace(headers=headers),
        response=SimpleNamespace(headers={}, status_code=200),
    )


def _call(answer):
    return asyncio.run(answer) if inspect.isawaitable(answer) else answer


def _logged(landing: Path) -> list[dict]:
    out = []
    for f in sorted((landing / D.DATASET).rglob("*.jsonl")):
        out += [json.loads(line) for line in f.read_text().splitlines()]
    return out


def _batch(svc, *requests, ctx=None):
    reqs = [service.RecommendRequest(**r) for r in requests]
    answer = svc.recommend_batch(reqs, ctx=ctx if ctx is not None else _ctx())
    return asyncio.run(answer) if inspect.isawaitable(answer) else answer


def test_a_request_error_inside_a_batch_is_a_400_naming_its_position(svc):
    ctx = _ctx()
    answer = _batch(svc, {"user_id": 1, "k": 5}, {"user_id": 2, "k": 11}, ctx=ctx)
    assert answer.status_code == 400 and ctx.response.status_code == 400
    body = json.loads(answer.body)
    assert body["field"] == "requests[1].k" and "between 1 and 10" in body["error"]
    svc.decisions.close()  # the first request's page was never served: nothing logged
    assert _logged(Path(svc.decisions.root).parent) == []


# -- unknown fields: the body models BentoML validates -----------------------------------------

API_BODIES = {
    "recommend": {"user_id": 1, "k": 5, "exclude_seen": False},
    "rank": {"user_id": 1, "item_ids": [1, 2]},
    "recommend_batch": {"requests": [{"user_id": 1, "k": 5}]},
}


@pytest.mark.parametrize("api", sorted(API_BODIES))
def test_each_apis_body_model_is_its_handlers_parameters(api):
    """What BentoML validates (the API's input_spec) is what the handler takes: a field added
    to one and not the other would be refused, or silently dropped."""
    method = service.RecommenderService.apis[api]
    params = [p for p in inspect.signature(method.func).parameters if p not in ("self", "ctx")]
    assert list(method.input_spec.model_fields) == params
    assert method.ctx_param == "ctx"


@pytest.mark.parametrize("api", sorted(API_BODIES))
@pytest.mark.parametrize("extra", ["kk", "exclude_sen", "extra"])
def test_an_unknown_field_is_refused_naming_it(api, extra):
    from pydantic import ValidationError

    spec = service.RecommenderService.apis[api].input_spec
    good = API_BODIES[api]
    assert spec.model_validate_json(json.dumps(good)).model_dump() == spec(**good).model_dump()
    with pytest.raises(ValidationError) as refused:  # BentoML's 400, with pydantic's detail
        spec.model_validate_json(json.dumps({**good, extra: 1}))
    assert [(e["type"], e["loc"]) for e in refused.value.errors()] == [
        ("extra_forbidden", (extra,))
    ]


def test_an_unknown_field_inside_a_batch_is_refused_naming_its_position():
    from pydantic import ValidationError

    spec = service.RecommenderService.apis["recommend_batch"].input_spec
    body = {"requests": [{"user_id": 1}, {"user_id": 2, "kk": 3}]}
    with pytest.raises(ValidationError) as refused:
        spec.model_validate_json(json.dumps(body))
    assert [(e["type"], e["loc"]) for e in refused.value.errors()] == [
        ("extra_forbidden", ("requests", 1, "kk"))
    ]


def test_a_batch_answers_each_request_and_counts_the_degraded_ones(svc):
    answer = _batch(svc, {"user_id": 1, "k": 5}, {"user_id": 99, "k": 2}, {"user_id": 3, "k": 1})
    assert [a["user_id"] for a in answer] == [1, 99, 3]
    assert svc.fallbacks.counts == {"recommend_batch": 1}


def test_each_batch_answer_has_its_own_request_id_and_the_bento_and_is_logged(tmp_path):
    svc, _ = _make(tmp_path)
    ctx = _ctx("batch-7")
    answer = _batch(svc, {"user_id": 1, "k": 5}, {"user_id": 99, "k": 2}, ctx=ctx)
    assert [(a["request_id"], a["bento"], a["user_id"]) for a in answer] == [
        ("batch-7-0", "recassets_recommender:v1", 1),
        ("batch-7-1", "recassets_recommender:v1", 99),
    ]
    assert ctx.response.headers == {D.REQUEST_ID_HEADER: "batch-7"}
    svc.decisions.close()
    logged = {r["request_id"]: r for r in _logged(tmp_path)}
    assert set(logged) == {"batch-7-0", "batch-7-1"}
    rec = logged["batch-7-1"]
    assert (rec["endpoint"], rec["user_id"], rec["policy"], rec["bento"]) == (
        "recommend", 99, "cold_start", "recassets_recommender:v1",
    )  # fmt: skip
    assert [i["item_id"] for i in rec["items"]] == [i["item_id"] for i in answer[1]["items"]]


def test_a_batch_without_a_usable_id_gets_a_new_one_for_the_batch(svc):
    ctx = _ctx("users")  # a table's name: `recassets lineage users` would not trace it
    answer = _batch(svc, {"user_id": 1, "k": 5}, {"user_id": 2, "k": 5}, ctx=ctx)
    batch = ctx.response.headers[D.REQUEST_ID_HEADER]
    assert batch != "users" and len(batch) == 32
    assert [a["request_id"] for a in answer] == [f"{batch}-0", f"{batch}-1"]


def test_a_batch_at_rate_zero_logs_nothing(tmp_path):
    svc, _ = _make(tmp_path, rate=0.0)
    assert [a["request_id"] for a in _batch(svc, {"user_id": 1, "k": 5}, ctx=_ctx("b"))] == ["b-0"]
    svc.decisions.close()
    assert not (tmp_path / D.DATASET).exists()


def test_an_answer_carries_a_new_request_id_and_the_bento(svc):
    ctx = _ctx()
    answer = _call(svc.recommend(3, 5, ctx=ctx))
    assert isinstance(answer, service.RecommendAnswer)
    body = answer.model_dump()
    assert len(body["request_id"]) == 32 and int(body["request_id"], 16) >= 0
    assert body["bento"] == "recassets_recommender:v1" and body["policy"] == "model"
    assert body["items"] == [
        {"item_id": 5, "score": 1.5, "stages": ["trending", "rules"], "category": "c"}
    ]  # the funnel's own keys kept, nothing added
    assert ctx.response.headers == {D.REQUEST_ID_HEADER: body["request_id"]}
    other = _call(svc.recommend(3, 5, ctx=_ctx())).request_id
    assert other != body["request_id"]


@pytest.mark.parametrize(
    ("header", "kept"),
    [("client-req_42", True), ("x" * 65, False), ("caf\u00e9", False), ("a\nb", False)],
)
def test_the_client_request_id_is_honoured_when_safe(svc, header, kept):
    ctx = _ctx(header)
    rid = _call(svc.rank(3, [1, 2], ctx=ctx)).request_id
    assert (rid == header) is kept
    assert ctx.response.headers[D.REQUEST_ID_HEADER] == rid


def test_a_refused_request_is_a_400_also_for_bentoml(svc):
    ctx = _ctx()
    answer = _call(svc.recommend(3, 11, ctx=ctx))
    assert answer.status_code == 400 and ctx.response.status_code == 400
    assert _call(svc.rank(3, [-1], ctx=(ctx := _ctx()))).status_code == 400
    assert ctx.response.status_code == 400


def test_every_answer_is_logged_at_rate_one(tmp_path):
    svc, _ = _make(tmp_path, rate=1.0)
    a = _call(svc.recommend(3, 5, ctx=_ctx("req-a")))
    b = _call(svc.rank(4, [9, 8], ctx=_ctx()))
    _call(svc.recommend(3, 11, ctx=_ctx()))  # refused: nothing served, nothing logged
    svc.decisions.close()
    logged = {r["request_id"]: r for r in _logged(tmp_path)}
    assert set(logged) == {a.request_id, b.request_id}
    rec = logged["req-a"]
    assert (rec["endpoint"], rec["user_id"], rec["policy"], rec["features_day"]) == (
        "recommend", 3, "model", "d",
    )  # fmt: skip
    assert rec["bento"] == "recassets_recommender:v1" and rec["two_tower"] == "two_tower/0001"
    assert rec["items"] == [
        {"item_id": 5, "score": 1.5, "stages": ["trending", "rules"], "source": "trending"}
    ]
    ranked = logged[b.request_id]
    assert ranked["endpoint"] == "rank" and ranked["features_day"] == "2026-01-02"
    assert [i["item_id"] for i in ranked["items"]] == [9, 8]


def test_rate_zero_logs_nothing(tmp_path):
    svc, _ = _make(tmp_path, rate=0.0)
    for user in range(5):
        assert _call(svc.recommend(user, 5, ctx=_ctx())).request_id
    svc.decisions.close()
    assert not (tmp_path / D.DATASET).exists()


def test_a_log_that_cannot_be_written_fails_no_request_and_is_counted(tmp_path):
    (tmp_path / D.DATASET).write_text("a file where the folder should be")
    svc, drops = _make(tmp_path)
    answers = [_call(svc.recommend(u, 5, ctx=_ctx())) for u in (1, 2)]
    answers.append(_call(svc.rank(1, [3], ctx=_ctx())))
    assert all(isinstance(a, service.Answer) and a.items for a in answers)
    svc.decisions.close()
    assert drops.counts == {"write_error": 3}


def test_rank_counts_a_fallback_only_when_the_store_failed(svc):
    from recassets.funnel.notes import RANK_COLD_USER, STORE_DOWN

    said: list[str] = []

    def rank_request(user_id, item_ids, notes):
        notes.extend(said)
        return [{"item_id": i, "score": 0.0, "stages": ["ranking"]} for i in item_ids]

    svc.recommender.rank_request = rank_request
    said[:] = [RANK_COLD_USER]  # an unknown user is answered as designed, not degraded
    assert _call(svc.rank(5, [1], ctx=_ctx())).notes == [RANK_COLD_USER]
    assert svc.fallbacks.counts == {}
    said[:] = [STORE_DOWN]
    assert _call(svc.rank(5, [1], ctx=_ctx())).notes == [STORE_DOWN]
    assert svc.fallbacks.counts == {"rank": 1}


def test_a_rank_answered_by_popularity_is_logged_as_popularity(tmp_path):
    """/rank fell back to popularity (no item features yet, the embedding rows down) and the
    decision log credited the bundle's model with the order, where /recommend logs its own
    fallback as popularity."""
    svc, _ = _make(tmp_path)
    stage = {"now": "popularity"}

    def rank_request(user_id, item_ids, notes):
        return [{"item_id": i, "score": 0.0, "stages": [stage["now"]]} for i in item_ids]

    svc.recommender.rank_request = rank_request
    fell_back = _call(svc.rank(5, [1, 2], ctx=_ctx()))
    stage["now"] = "ranking"
    ranked = _call(svc.rank(5, [1, 2], ctx=_ctx()))
    svc.decisions.close()
    logged = {r["request_id"]: r["policy"] for r in _logged(tmp_path)}
    assert logged == {fell_back.request_id: "popularity", ranked.request_id: "model"}


def test_a_max_k_below_20_is_the_default_k(monkeypatch):
    """With RECASSETS_SERVE_MAX_K=10 every request without k was a 400 naming the k it did
    not send (the default 20 over the bound), and the schema said default 20, maximum 10."""
    import os
    import subprocess
    import sys

    code = ("import serving.service as s; print(s.DEFAULT_K, "
            "s.RecommendRequest.model_validate({'user_id': 1}).k)")  # fmt: skip
    for bound, default in (("10", "10 10"), ("200", "20 20")):
        env = {**os.environ, "RECASSETS_SERVE_MAX_K": bound}
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, cwd=Path(__file__).resolve().parents[3], check=True)  # fmt: skip
        assert out.stdout.split("\n")[-2] == default, out.stderr[-2000:]


def test_the_heap_is_frozen_after_its_garbage_is_collected():
    import gc
    import weakref

    class Node:
        pass

    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only the collector frees it
    gone = weakref.ref(a)
    del a, b
    try:
        service._freeze_heap()
        assert gc.get_freeze_count() > 0  # what lives now is out of the collector's reach
        assert gone() is None  # the garbage was collected first, not frozen with the rest
    finally:
        gc.unfreeze()


def test_a_client_that_left_gets_a_499_and_nothing_is_logged(tmp_path):
    """``guard.client_closed_check`` says the connection is closed: the batch stops, and a
    page is neither charged nor logged as served; an open one is answered as before."""
    from recassets.bento.guard import CLIENT_CLOSED

    svc, _ = _make(tmp_path)
    ctx = _ctx()
    ctx.request.scope = {CLIENT_CLOSED: lambda: True}
    answer = _batch(svc, {"user_id": 1, "k": 5}, {"user_id": 3, "k": 1}, ctx=ctx)
    assert answer.status_code == ctx.response.status_code == service.CLIENT_GONE
    assert json.loads(answer.body)["field"] == "connection"
    svc.decisions.flush()
    assert _logged(tmp_path) == []
    open_ctx = _ctx()
    open_ctx.request.scope = {CLIENT_CLOSED: lambda: False}
    assert [a["user_id"] for a in _batch(svc, {"user_id": 1, "k": 5}, ctx=open_ctx)] == [1]


def test_info_takes_no_field_and_refuses_one():
    """/info answered ``{"x": 1}`` with 200, where every other API refuses an unknown field."""
    from pydantic import ValidationError

    spec = service.RecommenderService.apis["info"].input_spec
    assert spec.model_validate_json(b"{}").model_dump() == {}
    with pytest.raises(ValidationError) as refused:
        spec.model_validate_json(b'{"x": 1}')
    assert [(e["type"], e["loc"]) for e in refused.value.errors()] == [("extra_forbidden", ("x",))]
