"""The object store's settings that are not secret (``AWS_REGION``, and ``AWS_ENDPOINT_URL`` and
``AWS_ALLOW_HTTP`` for an S3-compatible server) reach every kind of pod that opens the lake:
deploy/k8s/object-store-config.yaml, a ConfigMap given through ``envFrom`` to the code server
and the run and step pods (the Helm values' ``envConfigMaps``, carried to the runs by
``includeConfigInLaunchedRuns``), the Spark executors (their pod template) and the
sharded-training Job; each of them gets the ``recassets-object-store`` Secret too. Before, only
the Secret was given, and no file or command set the three variables (docs/deploy.md, "A lake on
an S3 API"). Each check has a case that breaks it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_k8s_schemas import manifest_docs, schema_problems, user_code_deployment

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "deploy" / "k8s" / "object-store-config.yaml"
VALUES = REPO / "deploy" / "helm" / "values.yaml"
TEMPLATE = REPO / "deploy" / "spark" / "executor-pod-template.yaml"
TRAINING = REPO / "deploy" / "k8s" / "training-job.yaml"
DOCS = REPO / "docs" / "deploy.md"
SECRET = "recassets-object-store"
# What the clients of the lake read besides the keys (recassets.spark.s3a_conf, delta-rs).
SETTINGS = {"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL", "AWS_ALLOW_HTTP"}


def _refs(container: dict[str, Any], kind: str) -> set[str]:
    return {e[kind]["name"] for e in container.get("envFrom", []) if kind in e}


def objects() -> dict[str, Any]:
    """The ConfigMap, and each kind of pod's container as the files give it."""
    job = next(d for d in manifest_docs(TRAINING) if d["kind"] == "Job")
    values = yaml.safe_load(VALUES.read_text())
    return {
        "config": manifest_docs(CONFIG),
        "values": values,
        "executor": yaml.safe_load(TEMPLATE.read_text())["spec"]["containers"][0],
        "trainer": job["spec"]["template"]["spec"]["containers"][0],
    }


def problems(o: dict[str, Any]) -> list[str]:
    found = []
    if [d.get("kind") for d in o["config"]] != ["ConfigMap"]:
        return ["object-store-config.yaml is not one ConfigMap"]
    config = o["config"][0]
    name, data = config["metadata"]["name"], config.get("data") or {}
    if unknown := set(data) - SETTINGS:
        found.append(f"the ConfigMap holds {sorted(unknown)}: not a setting the lake's clients read")  # fmt: skip
    if "AWS_REGION" not in data:
        found.append("the ConfigMap sets no AWS_REGION")
    if empty := sorted(k for k, v in data.items() if not str(v).strip()):
        found.append(f"empty {empty}: delta-rs takes an empty AWS_ENDPOINT_URL for an endpoint")
    ud = o["values"]["dagster-user-deployments"]["deployments"][0]
    if not ud.get("includeConfigInLaunchedRuns", {}).get("enabled"):
        found.append("run pods would not get the code location's ConfigMaps and Secrets")
    code_server = user_code_deployment(o["values"])["spec"]["template"]["spec"]["containers"][0]
    pods = {"run pods": code_server, "executors": o["executor"], "training Job": o["trainer"]}
    for kind, container in pods.items():
        if name not in _refs(container, "configMapRef"):
            found.append(f"{kind} do not get the {name} ConfigMap")
        if SECRET not in _refs(container, "secretRef"):
            found.append(f"{kind} do not get the {SECRET} Secret")
    text = DOCS.read_text()
    if f"apply -f deploy/k8s/{CONFIG.name}" not in text:
        found.append(f"docs/deploy.md does not apply {CONFIG.name}")
    return found


def test_the_config_map_validates_and_every_pod_kind_gets_it() -> None:
    o = objects()
    assert [p for d in o["config"] for p in schema_problems(d, "ConfigMap")] == []
    assert problems(o) == []


def _ud(o: dict[str, Any]) -> dict[str, Any]:
    return o["values"]["dagster-user-deployments"]["deployments"][0]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda o: _ud(o).pop("envConfigMaps"),
            "run pods do not get the recassets-object-store-config",
        ),  # fmt: skip
        (
            lambda o: _ud(o)["includeConfigInLaunchedRuns"].update({"enabled": False}),
            "run pods would not get",
        ),  # fmt: skip
        (
            lambda o: o["executor"].pop("envFrom"),
            "executors do not get the recassets-object-store-config",
        ),  # fmt: skip
        (lambda o: o["trainer"]["envFrom"].pop(1), "training Job do not get"),
        (
            lambda o: o["trainer"]["envFrom"].pop(0),
            "training Job do not get the recassets-object-store Secret",
        ),  # fmt: skip
        (lambda o: o["config"][0]["data"].update({"AWS_SECRET_ACCESS_KEY": "x"}), "not a setting"),
        (lambda o: o["config"][0]["data"].update({"AWS_ENDPOINT_URL": ""}), "empty"),
        (lambda o: o["config"][0]["data"].pop("AWS_REGION"), "no AWS_REGION"),
    ],
    ids=[
        "run-pods",
        "not-carried",
        "executors",
        "trainer",
        "trainer-secret",
        "a-key",
        "empty",
        "region",
    ],  # fmt: skip
)
def test_a_pod_kind_without_it_is_named(
    edit: Callable[[dict[str, Any]], Any], expected: str
) -> None:
    o = copy.deepcopy(objects())
    edit(o)
    found = problems(o)
    assert any(expected in p for p in found), found
