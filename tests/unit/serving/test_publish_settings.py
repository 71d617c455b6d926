"""The bento step's settings. ``RECASSETS_SERVE_EMBEDDINGS`` is read by one rule on both sides:
the build publishes the embedding rows to Redis exactly when the serving workers
(``FunnelConfig``) will look for them there, and a value they refuse is refused at the build
too (``redsi`` had published nothing, raised nothing, and the workers set to ``redis`` then
refused to start). And every setting the step reads is parsed before it builds or publishes
anything (a bad ``RECASSETS_EMBEDDINGS_KEEP_BENTOS`` had failed the step with the bento in the
store and the rows in Redis)."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

import pytest
from dagster import build_asset_context

from recassets.funnel import embedding_store as ES
from recassets.funnel.config import FunnelConfig

VAR, URL = "RECASSETS_SERVE_EMBEDDINGS", "RECASSETS_REDIS_URL"
MANIFEST = {
    "files": {"two_tower": "models/two_tower.pt", "ranking": "models/ranking.pt"},
    "lineage": {"two_tower": {"sha256": "a" * 64}, "ranking": {"sha256": "b" * 64}},
    "policy": {"policy": "model"},
    "digest": "d" * 16,
}


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple]:
    """What reached Redis: the rows published and the prune, through a fake client."""
    import redis

    seen: list[tuple] = []
    monkeypatch.setattr(redis.Redis, "from_url", staticmethod(lambda url, **kw: ("client", url)))
    monkeypatch.setattr(
        ES, "publish_bundle", lambda client, m, files: seen.append(("publish", client)) or {"r": 1}
    )
    monkeypatch.setattr(ES, "prune", lambda client, keep, hours: seen.append(("prune", hours)))
    return seen


@pytest.mark.parametrize("raw", ["", " ", "process", "PROCESS", "redis", " Redis "])
def test_the_build_publishes_exactly_when_the_workers_read_from_redis(raw: str, calls: list):
    served_from_redis = FunnelConfig.from_mapping({VAR: raw}).embeddings == "redis"
    got = ES.publish_if_asked("/b", MANIFEST, {VAR: raw, URL: "redis://r:6379/0"})
    assert (got is not None) == served_from_redis
    assert bool(calls) == served_from_redis


@pytest.mark.parametrize("raw", ["redsi", "abc", "redis-cluster"])
def test_a_value_the_workers_refuse_is_refused_by_the_build(raw: str, calls: list):
    with pytest.raises(ValueError, match=f"{VAR} .*must be process or redis, got '{raw}'"):
        FunnelConfig.from_mapping({VAR: raw})
    with pytest.raises(ValueError, match=f"{VAR} .*must be process or redis, got '{raw}'"):
        ES.publish_if_asked("/b", MANIFEST, {VAR: raw, URL: "redis://r:6379/0"})
    assert calls == []


def test_the_kept_bentos_and_hours_reach_the_prune(calls: list):
    kept = []
    env = {VAR: "redis", URL: "redis://r", ES.KEEP_BENTOS_ENV: " 5 ", ES.KEEP_HOURS_ENV: "2.5"}
    ES.publish_if_asked("/b", MANIFEST, env, lambda n: kept.append(n) or ())
    assert kept == [5] and calls[-1] == ("prune", 2.5)


@pytest.mark.parametrize(("name", "raw"), [("KEEP_BENTOS_ENV", "abc"), ("KEEP_HOURS_ENV", "-1")])
def test_a_bad_keep_setting_is_refused_before_a_row_is_published(name: str, raw: str, calls: list):
    env = {VAR: "redis", URL: "redis://r", getattr(ES, name): raw}
    with pytest.raises(ValueError, match=getattr(ES, name)):
        ES.publish_if_asked("/b", MANIFEST, env)
    assert calls == []


# --- the step: serving/recommender_bento ------------------------------------------------------


class Built(Exception):
    """Raised by the fake build when asked to: the step got that far."""


@pytest.fixture
def step(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, calls: list) -> Callable[..., None]:
    """The bento step with its side effects recorded (staging, build, Redis), in an
    environment holding only the variables a test sets."""
    from recassets.bento import bundle as B

    for name in (VAR, URL, ES.KEEP_BENTOS_ENV, ES.KEEP_HOURS_ENV, B.TORCH_ENV):
        monkeypatch.delenv(name, raising=False)

    @contextlib.contextmanager
    def staged(paths: Any) -> Generator[Path]:
        calls.append(("staged",))
        (tmp_path / "manifest.json").write_text(json.dumps(MANIFEST))
        yield tmp_path

    stop = {"at_build": False}

    def build(paths: Any, bundle: Path, **kw: Any) -> str:
        calls.append(("build", kw.get("variant")))
        if stop["at_build"]:
            raise Built
        return "recassets_recommender:t"  # the step goes on: to publish the rows

    monkeypatch.setattr(B, "staged_bundle", staged)
    monkeypatch.setattr(B, "build_bento", build)

    def run(stop_at_build: bool = False, **env: str) -> None:
        from assets.serving import recommender_bento
        from resources import BentoStoreResource, LakeResource

        stop["at_build"] = stop_at_build
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        ctx = build_asset_context(
            resources={
                "lake": LakeResource(home=str(tmp_path)),
                "bento_store": BentoStoreResource(),
            }
        )
        recommender_bento(ctx)

    return run


REDIS = {VAR: "redis", URL: "redis://r:6379/0"}


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({**REDIS, "RECASSETS_EMBEDDINGS_KEEP_BENTOS": "abc"}, "RECASSETS_EMBEDDINGS_KEEP_BENTOS"),
        ({**REDIS, "RECASSETS_EMBEDDINGS_KEEP_HOURS": "nan"}, "RECASSETS_EMBEDDINGS_KEEP_HOURS"),
        ({VAR: "redsi", URL: "redis://r:6379/0"}, VAR),
        ({VAR: "redis"}, URL),
        ({"RECASSETS_BENTO_TORCH": "gpu"}, "RECASSETS_BENTO_TORCH"),
    ],
)
def test_a_bad_setting_fails_the_step_before_anything_is_built_or_published(
    env: dict[str, str], variable: str, step: Callable[..., None], calls: list
):
    with pytest.raises(ValueError, match=variable):
        step(**env)
    assert calls == []  # nothing staged, built or published


def test_good_settings_reach_the_build(step: Callable[..., None], calls: list):
    with pytest.raises(Built):
        step(True, **REDIS, RECASSETS_EMBEDDINGS_KEEP_BENTOS="2", RECASSETS_BENTO_TORCH="CPU")
    assert calls == [("staged",), ("build", "cpu")]
