"""`make dev`'s server: the webserver loads workspace.yaml and lists every asset, grouped by
stage, described and materializable (asked over GraphQL, as the UI does)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recassets.bento.server import free_port
from recassets.process import stop_process_group
from support.webserver import graphql

ROOT = Path(__file__).resolve().parents[2]
QUERY = "{ assetNodes { assetKey { path } groupName isMaterializable isExecutable description } }"


@pytest.fixture(scope="module")
def webserver(tmp_path_factory):
    home = tmp_path_factory.mktemp("ui_home")
    (home / "dagster").mkdir()
    env = {**os.environ, "RECASSETS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    port = free_port()
    # env --default-signal: background servers here may otherwise ignore SIGINT/SIGTERM.
    proc = subprocess.Popen(
        ["env", "--default-signal=INT,TERM", sys.executable, "-m", "dagster_webserver",
         "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.time() + 120
        while True:
            try:
                if graphql(port, QUERY)["data"]["assetNodes"]:
                    break
            except Exception:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError("dagster-webserver did not come up within 120 s")
            time.sleep(1)
        yield port
    finally:
        stop_process_group(proc, timeout_s=20)


def test_ui_lists_every_asset_grouped_and_materializable(webserver):
    import definitions

    nodes = graphql(webserver, QUERY)["data"]["assetNodes"]
    seen = {"/".join(n["assetKey"]["path"]): n for n in nodes}
    expected = {k.to_user_string() for k in definitions.defs.resolve_all_asset_keys()}
    assert set(seen) == expected
    for key, node in seen.items():
        assert node["groupName"] in {"ingest", "features", "training", "retrieval", "serving"}, key
        assert node["description"], key
    materializable = {k for k, n in seen.items() if n["isMaterializable"]}
    assert {"lake/raw_events", "lake/users", "lake/items"} <= materializable
    assert "landing/event_files" not in materializable  # external: files land, nobody computes them
