"""The code location loads with the environment deploy/helm/values.yaml gives it.

A fresh interpreter (the definitions read the environment when imported) gets the user-code
deployment's `env`, stand-ins for its `envSecrets`, and the image's DAGSTER_HOME and
RECASSETS_HOME; it loads definitions.py and initializes every resource, and the resources must
point where the values say: the lake, artifacts and landing on object storage, Spark's conf,
Redis as the online store. Every RECASSETS_* variable the values set must be one the code reads.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
VALUES = REPO / "deploy" / "helm" / "values.yaml"
SECRET_STAND_INS = {
    "RECASSETS_REDIS_URL": "redis://redis.test:6379/0",
    "RECASSETS_REDIS_PASSWORD": "stand-in",
    "AWS_ACCESS_KEY_ID": "stand-in",
    "AWS_SECRET_ACCESS_KEY": "stand-in",
}
PROBE = """
import json
from dagster import build_resources
import definitions
from resources import build_resources as recassets_resources

repo = definitions.defs.get_repository_def()
with build_resources(recassets_resources()) as r:
    paths = r.lake.paths()
    print(json.dumps({
        "resources": sorted(repo.get_top_level_resources()),
        "lake": paths.lake, "artifacts": paths.artifacts, "landing": paths.landing,
        "spark_conf": r.spark.conf_line, "redis_url": r.feature_store.redis_url,
        "executor": definitions.defs.resolve_implicit_global_asset_job_def().executor_def.name,
    }))
"""


def deployment_env(values: dict[str, Any]) -> dict[str, str]:
    deployment = values["dagster-user-deployments"]["deployments"][0]
    return {e["name"]: e["value"] for e in deployment.get("env", []) if "value" in e}


def unknown_variables(env: dict[str, str]) -> list[str]:
    """RECASSETS_* names set in ``env`` that no code of the location reads."""
    sources = (REPO / "definitions.py").read_text() + "".join(
        p.read_text()
        for folder in ("recassets", "resources", "assets", "sensors", "serving")
        for p in (REPO / folder).rglob("*.py")
    )
    read = set(re.findall(r"RECASSETS_[A-Z_]+", sources))
    return sorted(name for name in env if name.startswith("RECASSETS_") and name not in read)


def test_every_variable_is_one_the_code_reads() -> None:
    assert unknown_variables(deployment_env(yaml.safe_load(VALUES.read_text()))) == []


def test_a_misspelt_variable_is_caught() -> None:
    assert unknown_variables({"RECASSETS_LAKEE": "s3a://x"}) == ["RECASSETS_LAKEE"]


@pytest.mark.timeout(600)
def test_the_definitions_load_with_the_values_environment(tmp_path: Path) -> None:
    env_from_values = deployment_env(yaml.safe_load(VALUES.read_text()))
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("RECASSETS_", "DAGSTER_", "AWS_"))
    }
    env.update(env_from_values)
    env.update(SECRET_STAND_INS)
    env.update(DAGSTER_HOME=str(tmp_path / "dagster_home"), RECASSETS_HOME=str(tmp_path / "home"))
    (tmp_path / "dagster_home").mkdir()
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", PROBE],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    got = json.loads(done.stdout.strip().splitlines()[-1])
    assert got["resources"] == ["bento_store", "feature_store", "lake", "quality", "spark"]
    assert got["lake"] == env_from_values["RECASSETS_LAKE"]
    assert got["artifacts"] == env_from_values["RECASSETS_ARTIFACTS"]
    assert got["landing"] == env_from_values["RECASSETS_LANDING"]
    assert got["spark_conf"] == env_from_values["RECASSETS_SPARK_CONF"]
    assert got["redis_url"] == SECRET_STAND_INS["RECASSETS_REDIS_URL"]
    assert got["executor"] == "k8s"  # a pod per step: the dagster-k8s/config tags apply


def test_the_executor_is_in_process_by_default_and_a_bad_name_is_refused() -> None:
    probe = "import definitions; print(definitions.defs.resolve_implicit_global_asset_job_def().executor_def.name)"
    env = {k: v for k, v in os.environ.items() if k != "RECASSETS_EXECUTOR"}
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", probe], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=540)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "in_process"
    env["RECASSETS_EXECUTOR"] = "k8ss"
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", probe], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=540)  # fmt: skip
    assert done.returncode != 0
    assert "RECASSETS_EXECUTOR='k8ss': expected 'in_process' or 'k8s'" in done.stderr
