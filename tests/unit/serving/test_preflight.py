"""``preflight.check``: every setting a serving worker reads at start, refused before
``bentoml serve`` starts, naming the variable. Before it, a bad token file stopped
``recassets serve`` while the server it had launched kept answering 500s; a bad edge limit
failed every request; a bad worker count read as "No module named 'recassets_recommender'";
others restarted the worker every ten seconds for ever."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from recassets.bento import preflight, server
from recassets.paths import Paths


@pytest.mark.parametrize(
    ("env", "says"),
    [
        ({"RECASSETS_SERVE_BODY_TIMEOUT_S": "nan"}, "RECASSETS_SERVE_BODY_TIMEOUT_S='nan'"),
        ({"RECASSETS_SERVE_MAX_BODY_BYTES": "-1"}, "RECASSETS_SERVE_MAX_BODY_BYTES=-1"),
        # the request head's bounds, read by the worker's HTTP server (was: not checked here)
        ({"RECASSETS_SERVE_MAX_HEAD_BYTES": "100"},
         "RECASSETS_SERVE_MAX_HEAD_BYTES=100: expected at least 4096"),
        ({"RECASSETS_SERVE_MAX_HEADERS": "abc"}, "RECASSETS_SERVE_MAX_HEADERS='abc'"),
        ({"RECASSETS_SERVE_HEAD_TIMEOUT_S": "0"}, "RECASSETS_SERVE_HEAD_TIMEOUT_S='0'"),
        ({"RECASSETS_SERVE_MAX_K": "1e9"}, "RECASSETS_SERVE_MAX_K='1e9': expected an integer"),
        ({"RECASSETS_SERVE_WORKERS": "abc"}, "RECASSETS_SERVE_WORKERS='abc'"),
        ({"RECASSETS_SERVE_WORKERS": "0"}, "RECASSETS_SERVE_WORKERS=0: expected at least 1"),
        ({"RECASSETS_SERVE_THREADS": "abc"}, "RECASSETS_SERVE_THREADS='abc'"),
        ({"RECASSETS_SERVE_CANDIDATES": "0"}, "RECASSETS_SERVE_CANDIDATES"),
        ({"RECASSETS_DECISION_LOG_RATE": "nan"}, "RECASSETS_DECISION_LOG_RATE"),
        ({"RECASSETS_ADS_FREQUENCY_CAP": "0"}, "RECASSETS_ADS_FREQUENCY_CAP='0'"),
        ({"RECASSETS_ADS_STATE": "memcached"}, "RECASSETS_ADS_STATE='memcached'"),
        ({"RECASSETS_ADS_CAMPAIGNS": "/nowhere/c.json"},
         "RECASSETS_ADS_CAMPAIGNS=/nowhere/c.json: no such campaigns file"),
        ({"RECASSETS_ADS_CAMPAIGNS": "/tmp"}, "RECASSETS_ADS_CAMPAIGNS=/tmp: a folder, not a"),
        # checked before a worker starts (was: only when a model loaded, a restart loop)
        ({"RECASSETS_SERVE_EMBEDDINGS": "abc"}, "RECASSETS_SERVE_EMBEDDINGS (embeddings) must be"),
        ({"RECASSETS_SERVE_EMBEDDINGS": "redis"}, "=redis needs RECASSETS_REDIS_URL"),
    ],
)  # fmt: skip
def test_a_bad_setting_is_refused_naming_its_variable(env, says):
    with pytest.raises(ValueError) as refused:
        preflight.check(env)
    assert says in str(refused.value)


def test_good_settings_and_none_pass(tmp_path: Path):
    campaigns = tmp_path / "c.json"
    campaigns.write_text(json.dumps({"campaigns": []}))
    preflight.check({})
    # the way an operator may write them: "Redis " means redis; a blank thread count the default
    preflight.check({"RECASSETS_SERVE_EMBEDDINGS": "Redis ", "RECASSETS_REDIS_URL": "redis://x",
                     "RECASSETS_SERVE_THREADS": ""})  # fmt: skip
    preflight.check(
        {"RECASSETS_SERVE_WORKERS": "2", "RECASSETS_SERVE_BODY_TIMEOUT_S": "2.5",
         "RECASSETS_SERVE_MAX_HEAD_BYTES": "8192", "RECASSETS_SERVE_HEAD_TIMEOUT_S": "30",
         "RECASSETS_DECISION_LOG_RATE": "0.5", "RECASSETS_ADS_CAMPAIGNS": str(campaigns)}
    )  # fmt: skip
    with pytest.raises(RuntimeError, match="the token file is empty"):
        (tmp_path / "token").write_text("")
        preflight.check({"RECASSETS_SERVING_TOKEN_FILE": str(tmp_path / "token")})


def test_start_refuses_a_bad_setting_before_launching_anything(tmp_path: Path, monkeypatch):
    """The token file is read before ``bentoml serve`` starts: no server is left running."""
    launched = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: launched.append(a))
    paths = Paths.at(tmp_path / "home")
    missing = str(tmp_path / "nope.txt")
    with pytest.raises(RuntimeError, match="cannot read the token file"):
        server.start(
            paths, "recassets_recommender:any", env={"RECASSETS_SERVING_TOKEN_FILE": missing}
        )
    with pytest.raises(ValueError, match="RECASSETS_SERVE_MAX_K"):
        server.start(paths, "recassets_recommender:any", env={"RECASSETS_SERVE_MAX_K": "x"})
    # the HTTP server's head bound: was read only by the worker's uvicorn, after the launch
    with pytest.raises(ValueError, match="RECASSETS_SERVE_MAX_HEAD_BYTES=100"):
        server.start(
            paths, "recassets_recommender:any", env={"RECASSETS_SERVE_MAX_HEAD_BYTES": "100"}
        )
    assert launched == []


def test_start_refuses_a_damaged_bundle_before_launching_anything(tmp_path: Path, monkeypatch):
    """A bento whose bundle manifest is cut short: its worker failed at start and BentoML
    restarted it over and over, so ``recassets serve`` waited its whole 180 s and then blamed
    a timeout. The bundle is read first now, and named."""
    from recassets.bento import bundle as B
    from recassets.training.checkpoint import DamagedArtifactError

    launched = []
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: launched.append(a))
    monkeypatch.delenv("RECASSETS_SERVING_TOKEN_FILE", raising=False)
    paths = Paths.at(tmp_path / "home")
    tag = "recassets_recommender:v1"
    bundle = B.bento_folder(paths, tag) / "src" / "bundle"
    bundle.mkdir(parents=True)
    (B.bento_folder(paths, tag) / "bento.yaml").write_text("service: x\n")  # a built bento
    (bundle / "manifest.json").write_text('{"tag": "recassets_recomm')
    with pytest.raises(DamagedArtifactError, match="bundle manifest .*manifest.json is damaged"):
        server.start(paths, tag)
    assert launched == []
    (bundle / "manifest.json").write_text('{"tag": "v1", "lineage": {}}')  # no policy: named
    with pytest.raises(DamagedArtifactError, match="policy is not an object"):
        server.start(paths, tag)
    assert launched == []
    (bundle / "manifest.json").write_text(
        '{"policy": {"policy": "popularity"}, "files": {}, "lineage": {}}'
    )  # whole: launched
    monkeypatch.setattr(server, "Server", lambda *a, **k: (_ for _ in ()).throw(SystemExit))
    with pytest.raises(SystemExit):
        server.start(paths, tag)
    assert len(launched) == 1
