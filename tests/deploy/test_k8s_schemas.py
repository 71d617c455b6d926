"""Every Kubernetes object of deploy/ against the Kubernetes JSON schemas (kubernetes-validate).

kubernetes-validate ships the OpenAPI-derived JSON schemas of each Kubernetes release (1.37
here) and validates an object of any kind against them, strictly (an unknown field is an
error), with no cluster. It checks what the client's API models in tests/deploy/kube.py do not:
types (``replicas: "two"``), formats and every required field of the schema. Validated:

- deploy/k8s/*.yaml, every document, through the library and through its command line on the
  files themselves (``kubernetes-validate --strict``), as a platform engineer would run it;
- the objects the Helm values produce: the user-code Deployment and the run Job as the
  dagster chart renders them from deploy/helm/values.yaml (the fields it copies from the values
  put where its templates put them: deployment-user.yaml, and dagster-k8s's job builder for
  runK8sConfig), and the step pods of the ``dagster-k8s/config`` tags (assets/pods.py).

What is not validated here (the dagster chart cannot be downloaded on these machines): the
chart's own templates, so the parts of its objects that do not come from these values.
Each check has a case that breaks it: broken copies of the manifest and of the values.
"""

import copy
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from assets.pods import GPU_POD, SPARK_DRIVER_POD

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = sorted((REPO / "deploy" / "k8s").glob("*.yaml"))
VALUES = REPO / "deploy" / "helm" / "values.yaml"
KUBERNETES = "1.37"  # the newest release the installed kubernetes-validate ships schemas for
TAG_KEY = "dagster-k8s/config"


def schema_problems(obj: dict[str, Any], where: str) -> list[str]:
    """``where: path: message`` for each way ``obj`` fails its kind's schema (strict); a kind
    with no schema is a problem too, not a warning."""
    try:
        kubernetes_validate.validate(obj, KUBERNETES, strict=True)
    except kubernetes_validate.ValidationError as e:
        path = ".".join(str(p) for p in e.path)
        return [f"{where}: {path}: {e.message}"]
    except kubernetes_validate.SchemaNotFoundError as e:
        return [f"{where}: {e.message}"]
    return []


def manifest_docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


# --- the objects the Helm values produce ---------------------------------------------------


def user_code_deployment(values: dict[str, Any]) -> dict[str, Any]:
    """The chart's user-code Deployment (dagster-user-deployments/templates/deployment-user.yaml)
    as far as the values fill it in."""
    d = values["dagster-user-deployments"]["deployments"][0]
    image = d["image"]
    probe = {k: v for k, v in d.get("readinessProbe", {}).items() if k != "enabled"}
    container = {
        "name": d["name"],
        "image": f"{image['repository']}:{image['tag']}",
        "imagePullPolicy": image.get("pullPolicy"),
        "args": [
            "dagster",
            "code-server",
            "start",
            "-h",
            "0.0.0.0",
            "-p",
            str(d["port"]),
            *d.get("codeServerArgs", []),
        ],  # fmt: skip
        "env": d.get("env", []),
        "envFrom": [
            *({"configMapRef": {"name": c["name"]}} for c in d.get("envConfigMaps", [])),
            *({"secretRef": {"name": s["name"]}} for s in d.get("envSecrets", [])),
        ],
        "resources": d.get("resources", {}),
        "securityContext": d.get("securityContext", {}),
        # the chart's probe runs the gRPC health check; the timing comes from the values
        "readinessProbe": {
            "exec": {"command": ["dagster", "api", "grpc-health-check", "-p", str(d["port"])]},
            **probe,
        },
    }
    labels = {"app.kubernetes.io/name": "dagster", "deployment": d["name"]}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": f"dagster-dagster-user-deployments-{d['name']}", "labels": labels},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": labels},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "securityContext": d.get("podSecurityContext", {}),
                    "nodeSelector": d.get("nodeSelector", {}),
                    "tolerations": d.get("tolerations", []),
                    "affinity": d.get("affinity", {}),
                    "containers": [container],
                    **({"volumes": d["volumes"]} if d.get("volumes") else {}),
                },
            },
        },
    }


def run_job(values: dict[str, Any]) -> dict[str, Any]:
    """A run's Job as K8sRunLauncher builds it (dagster_k8s.job), with runK8sConfig merged
    in: containerConfig into the run container, podSpecConfig into its pod, jobSpecConfig into
    the Job's spec."""
    cfg = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]
    container = {
        "name": "dagster",
        "image": "REGISTRY/recassets:TAG",
        "args": ["dagster", "api", "execute_run", "{}"],
        **cfg.get("containerConfig", {}),
    }
    pod = {"restartPolicy": "Never", "containers": [container], **cfg.get("podSpecConfig", {})}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "dagster-run-0"},
        "spec": {"backoffLimit": 0, "template": {"spec": pod}, **cfg.get("jobSpecConfig", {})},
    }


def step_pod(name: str, tags: dict[str, Any]) -> dict[str, Any]:
    """The step pod of a ``dagster-k8s/config`` op tag (k8s_job_executor)."""
    cfg = tags[TAG_KEY]
    container = {"name": "dagster", "image": "REGISTRY/recassets:TAG"}
    container.update(cfg.get("container_config", {}))
    spec = {"restartPolicy": "Never", "containers": [container], **cfg.get("pod_spec_config", {})}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name}, "spec": spec}


def values_problems(values: dict[str, Any]) -> list[str]:
    return [
        *schema_problems(user_code_deployment(values), "user-code Deployment"),
        *schema_problems(run_job(values), "run Job"),
    ]


# --- deploy/k8s -----------------------------------------------------------------------------


def test_there_are_manifests() -> None:
    assert MANIFESTS, "deploy/k8s holds no manifest"


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_every_manifest_validates(path: Path) -> None:
    docs = manifest_docs(path)
    assert docs
    found = [p for i, d in enumerate(docs) for p in schema_problems(d, f"{path.name}[{i}]")]
    assert found == []


def _deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == "Deployment")


def _container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return _deployment(docs)["spec"]["template"]["spec"]["containers"][0]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # a misspelt field: only a strict schema catches it (Kubernetes would drop it silently)
        (lambda d: _container(d).__setitem__("livenessprobe", {}), "livenessprobe"),
        (lambda d: _deployment(d)["spec"].__setitem__("replicas", "two"), "not of type 'integer'"),
        (lambda d: _container(d).pop("name"), "'name' is a required property"),
        (lambda d: _container(d)["ports"][0].__setitem__("containerPort", "http"), "containerPort"),
        (lambda d: d.append({**d[0], "apiVersion": "apps/v2"}), "Couldn't find schema"),
    ],
    ids=["unknown-field", "wrong-type", "missing-required", "port-name", "unknown-version"],
)
def test_a_broken_manifest_is_rejected(edit: Callable[[Any], Any], expected: str) -> None:
    docs = copy.deepcopy(manifest_docs(REPO / "deploy" / "k8s" / "recommender.yaml"))
    edit(docs)
    found = [p for i, d in enumerate(docs) for p in schema_problems(d, f"doc {i}")]
    assert any(expected in p for p in found), found


def _cli(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", KUBERNETES, *map(str, files)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_command_line_passes_the_manifests_and_rejects_a_broken_copy(tmp_path: Path) -> None:
    done = _cli(*MANIFESTS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count(" passed for resource ") == sum(
        len(manifest_docs(p)) for p in MANIFESTS
    )
    broken = tmp_path / "recommender.yaml"
    text = (REPO / "deploy" / "k8s" / "recommender.yaml").read_text()
    broken.write_text(text.replace("readinessProbe:", "readinessprobe:", 1))
    done = _cli(broken)
    assert done.returncode != 0
    assert "ERROR" in done.stdout and "readinessprobe" in done.stdout, done.stdout


# --- the Helm values and the op tags --------------------------------------------------------


def test_the_objects_of_the_values_validate() -> None:
    values = yaml.safe_load(VALUES.read_text())
    assert values_problems(values) == []
    # they carry the values (a renderer that dropped them would validate too)
    container = user_code_deployment(values)["spec"]["template"]["spec"]["containers"][0]
    # none on the code server: the chart hands them to every run pod, over runK8sConfig's
    assert container["resources"] == {}
    job = run_job(values)
    assert job["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] == {
        "memory": "8Gi"
    }
    assert job["spec"]["ttlSecondsAfterFinished"] == 86400
    assert job["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


def _ud(v: dict[str, Any]) -> dict[str, Any]:
    return v["dagster-user-deployments"]["deployments"][0]


def _run(v: dict[str, Any]) -> dict[str, Any]:
    return v["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda v: _ud(v).__setitem__("resources", {"limits": {"memory": ["4Gi"]}}),
            "limits.memory",
        ),
        (lambda v: _ud(v)["env"].append({"value": "x"}), "'name' is a required property"),
        (lambda v: _ud(v)["readinessProbe"].__setitem__("periodSeconds", "20s"), "periodSeconds"),
        (lambda v: _run(v)["containerConfig"].__setitem__("resourcez", {}), "resourcez"),
        (
            lambda v: _run(v)["podSpecConfig"].__setitem__("tolerations", {"key": "x"}),
            "tolerations",
        ),  # fmt: skip
        (lambda v: _run(v)["jobSpecConfig"].__setitem__("ttlSecondsAfterFinished", "1d"), "ttl"),
    ],
    ids=["quantity", "env-name", "probe-type", "container-field", "tolerations", "job-ttl"],
)
def test_broken_values_are_rejected(edit: Callable[[Any], Any], expected: str) -> None:
    values = yaml.safe_load(VALUES.read_text())
    edit(values)
    found = values_problems(values)
    assert any(expected in p for p in found), found


@pytest.mark.parametrize(
    ("name", "tags"), [("gpu", GPU_POD), ("spark-driver", SPARK_DRIVER_POD)], ids=["gpu", "spark"]
)
def test_the_step_pods_of_the_op_tags_validate(name: str, tags: dict[str, Any]) -> None:
    assert schema_problems(step_pod(name, tags), name) == []


def test_a_broken_op_tag_pod_is_rejected() -> None:
    tags = copy.deepcopy(GPU_POD)
    tags[TAG_KEY]["pod_spec_config"]["nodeSelector"] = {"nvidia.com/gpu.present": True}
    found = schema_problems(step_pod("gpu", tags), "gpu")
    assert any("nodeSelector" in p and "not of type 'string'" in p for p in found), found
