"""Batch recommendations are the pages the served bento answers (``training.served``): the
funnel decides each case (known user with or without history, unknown user) as ``/recommend``
does. Here serving's ``Recommender`` is a stand-in that answers fixed pages, as the funnel
would for a popularity bento: the batch must hand back exactly those."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from recassets.bento import store
from recassets.funnel import bundle as FB
from recassets.funnel import recommender as FR
from recassets.funnel.recommender import Recommendation
from recassets.paths import Paths
from recassets.training import recommend as R
from recassets.training import served
from support import planted

from .test_evaluation import N_CATEGORIES

TAG = f"{store.BENTO_NAME}:20260105t000000-popularity-abc"
KNOWN_NO_HISTORY, UNKNOWN, WARM = 777, 999_999, 3
# what the funnel serves: the popularity order to a user the online store holds (777: in the
# store, no row in training_examples), the cold start (trending) to one it does not
PAGES = {
    KNOWN_NO_HISTORY: ("popularity", [(41, 435.0), (7, 393.0), (12, 380.0)]),
    WARM: ("popularity", [(7, 393.0), (12, 380.0), (5, 350.0)]),
    UNKNOWN: ("cold_start", [(30, 4.19), (22, 4.18), (9, 4.0)]),
}


class FakeRecommender:
    """``Recommender``'s constructor and ``recommend``, answering ``PAGES``."""

    made: list[Any] = []

    def __init__(self, bundle: Any, paths: Any, config: Any, **kw: Any) -> None:
        self.policy = {"policy": "popularity"}
        self.config, self.degraded = config, False
        FakeRecommender.made.append(self)

    def recommend(self, user_id: int, k: int = 20) -> Recommendation:
        assert k <= self.config.max_k  # a batch's k above the service's is let through
        policy, items = PAGES[user_id]
        page = [{"item_id": i, "score": s, "stages": [policy]} for i, s in items[:k]]
        if len(page) < k:
            page.append({"item_id": 99, "score": 0.5, "stages": ["backfill"]})
        return Recommendation(user_id, policy, page, "2026-01-04", [], self.degraded)


@pytest.fixture
def home(make_home: Callable[[str], Paths], monkeypatch: pytest.MonkeyPatch) -> Paths:
    paths = make_home("served")
    planted.write_days(paths.table("training_examples"), range(4), n_categories=N_CATEGORIES)
    folder = store.bento_folder(paths, TAG)
    (folder / "src" / "bundle").mkdir(parents=True)
    (folder / "bento.yaml").write_text("service: serving.service:RecommenderService\n")
    (folder / "src" / "bundle" / "manifest.json").write_text("{}")
    store.mark_built(paths, TAG)
    monkeypatch.setattr(FB.Bundle, "load", staticmethod(lambda f: FB.Bundle(Path(f), {})))
    monkeypatch.setattr(FR, "Recommender", FakeRecommender)
    FakeRecommender.made = []
    return paths


def _lists(table: pa.Table) -> dict[int, list[tuple[int, float]]]:
    out: dict[int, list[tuple[int, float]]] = {}
    for r in table.to_pylist():
        out.setdefault(r["user_id"], []).append((r["item_id"], r["score"]))
    return out


def test_batch_lists_are_the_served_pages_for_known_unknown_and_historyless_users(home: Paths):
    """Before, a user without a ``training_examples`` row (in ``u.user``, no ratings) was cold
    in the batch (the raw 7-day positives) while serving, which knows them from the online
    store, served the popularity policy; an unknown user got those same 7-day positives where
    serving gives trending (trend ratio x log volume)."""
    users = [KNOWN_NO_HISTORY, UNKNOWN, WARM]
    out = R.recommend(home, users, k=3)
    assert _lists(out) == {u: PAGES[u][1] for u in users}
    assert out["user_id"].to_pylist() == [u for u in users for _ in range(3)]
    assert out["rank"].to_pylist() == [1, 2, 3] * 3
    meta = out.schema.metadata
    assert meta[R.SERVED.encode()] == TAG.encode()
    assert meta[R.SERVED_POLICY.encode()] == b"popularity"
    assert R.BACKFILLED.encode() not in meta
    assert served.served_bundle(home) == (TAG, store.bento_folder(home, TAG) / "src" / "bundle")
    # the lake's order stays when asked (and serves a home without a bento)
    lake = R.recommend(home, users, k=3, bento=False)
    assert R.SERVED.encode() not in (lake.schema.metadata or {})
    assert _lists(lake)[KNOWN_NO_HISTORY] == _lists(lake)[UNKNOWN]  # both "cold" there


def test_a_batch_k_above_the_services_max_and_short_pages_are_served_and_said(
    home: Paths, capsys: pytest.CaptureFixture[str]
):
    out = R.recommend(home, [UNKNOWN], k=250)  # the service's max_k is 200
    assert FakeRecommender.made[-1].config.max_k == 250
    assert out["item_id"].to_pylist() == [30, 22, 9, 99]
    assert out.schema.metadata[R.BACKFILLED.encode()] == b"1"
    users = Path(home.home) / "users.txt"
    users.write_text(f"{UNKNOWN}\n")
    env = {"RECASSETS_HOME": home.home}
    with pytest.MonkeyPatch.context() as mp:
        for var in ("RECASSETS_LANDING", "RECASSETS_LAKE", "RECASSETS_ARTIFACTS"):
            mp.delenv(var, raising=False)
        for var, value in env.items():
            mp.setenv(var, value)
        R.cli_recommend(str(users), 5)
    err = capsys.readouterr().err
    assert f"the pages bento {TAG} serves (policy popularity)" in err
    assert "filled from trending, as /recommend backfills" in err


def test_a_failing_online_store_stops_the_batch(home: Paths, monkeypatch: pytest.MonkeyPatch):
    """The service answers from the cold start when the store fails (degraded); a batch made
    so would send everyone's trending: refused, naming the note."""
    monkeypatch.setattr(FakeRecommender, "recommend", _degraded)
    with pytest.raises(RuntimeError, match="store down: no batch recommendations"):
        R.recommend(home, [WARM], k=3)


def _degraded(self: Any, user_id: int, k: int = 20) -> Recommendation:
    return Recommendation(user_id, "cold_start", [], None, ["store down"], True)
