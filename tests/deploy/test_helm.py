"""deploy/helm/values.yaml: values for Dagster's official chart, checked without helm.

No helm binary and no chart download here, so the checks are the chart's own value schema as
far as this file uses it (the keys of its pydantic models in dagster-io/dagster
helm/dagster/schema/schema/charts/, 1.13), the Kubernetes objects inside the values validated
against the API models (tests/deploy/kube.py), the run pods' default config validated by
dagster-k8s, the values agreeing with the image (deploy/docker/Dockerfile) and the instance they
produce agreeing with deploy/dagster.yaml. Each check has a case that breaks it.
"""

import copy
import json
import re
from pathlib import Path
from typing import Any

import kubernetes.client as k
import pytest
import yaml
from dagster_k8s.job import USER_DEFINED_K8S_CONFIG_KEY, get_user_defined_k8s_config

from tests.deploy.kube import validate
from tests.deploy.test_docker import build_args, instructions

REPO = Path(__file__).resolve().parents[2]
VALUES = REPO / "deploy" / "helm" / "values.yaml"
DOCKERFILE = REPO / "deploy" / "docker" / "Dockerfile"
INSTANCE = REPO / "deploy" / "dagster.yaml"

# The chart's value models (extra="forbid" on all but the top level, where the chart tolerates
# the old `dagit` alias: an unknown top-level key is a typo here all the same).
TOP = {
    "dagsterWebserver", "dagster-user-deployments", "postgresql",
    "generatePostgresqlPasswordSecret", "generateCeleryConfigSecret", "rabbitmq", "redis",
    "flower", "ingress", "imagePullSecrets", "computeLogManager", "scheduler", "runLauncher",
    "pythonLogs", "dagsterDaemon", "busybox", "migrate", "telemetry", "serviceAccount", "global",
    "retention", "concurrency", "additionalInstanceConfig",
}  # fmt: skip
GLOBAL = {"postgresqlSecretName", "dagsterHome", "serviceAccountName", "celeryConfigSecretName"}
USER_DEPLOYMENTS = {"enabled", "enableSubchart", "imagePullSecrets", "deployments"}
USER_DEPLOYMENT = {
    "name", "image", "port", "dagsterApiGrpcArgs", "codeServerArgs",
    "includeConfigInLaunchedRuns", "env", "envConfigMaps", "envSecrets", "annotations",
    "nodeSelector", "affinity", "tolerations", "podSecurityContext", "securityContext",
    "resources", "livenessProbe", "readinessProbe", "startupProbe", "labels", "volumeMounts",
    "volumes", "schedulerName",
}  # fmt: skip
K8S_RUN_LAUNCHER = {
    "image", "imagePullPolicy", "jobNamespace", "loadInclusterConfig", "kubeconfigFile",
    "envConfigMaps", "envSecrets", "envVars", "volumeMounts", "volumes", "labels",
    "failPodOnRunFailure", "resources", "schedulerName", "securityContext", "runK8sConfig",
}  # fmt: skip
RUN_K8S_CONFIG = {
    "containerConfig", "podSpecConfig", "podTemplateSpecMetadata", "jobSpecConfig", "jobMetadata",
}  # fmt: skip
POSTGRESQL = {
    "postgresqlScheme", "image", "enabled", "postgresqlHost", "postgresqlUsername",
    "postgresqlPassword", "postgresqlDatabase", "postgresqlParams", "service",
}  # fmt: skip
DAEMON = {
    "schedulerName", "volumeMounts", "volumes", "enabled", "image", "runCoordinator",
    "heartbeatTolerance", "env", "envConfigMaps", "envSecrets", "deploymentLabels", "labels",
    "nodeSelector", "affinity", "tolerations", "podSecurityContext", "securityContext",
    "resources", "livenessProbe", "readinessProbe", "startupProbe", "annotations",
    "runMonitoring", "runRetries", "sensors", "schedules",
}  # fmt: skip
QUEUED = {"maxConcurrentRuns", "tagConcurrencyLimits", "dequeueIntervalSeconds",
          "dequeueNumWorkers", "dequeueUseThreads", "blockOpConcurrencyLimitedRuns"}  # fmt: skip
CONCURRENCY = {"enabled", "pools", "runs"}
POOLS = {"defaultLimit", "granularity", "opGranularityRunBuffer"}
RUNS = {"maxConcurrentRuns", "tagConcurrencyLimits"}


def load() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text())


def _keys(where: str, obj: dict[str, Any], allowed: set[str], found: list[str]) -> None:
    for key in sorted(set(obj) - allowed):
        found.append(f"{where}: unknown key {key!r}")


def _k8s(where: str, model: type, obj: Any, found: list[str]) -> None:
    try:
        validate(model, obj)
    except Exception as e:  # noqa: BLE001 - collected
        found.append(f"{where}: {e}")


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def instance_from_values(values: dict[str, Any]) -> dict[str, Any]:
    """The parts of the dagster.yaml the chart renders from these values that deploy/dagster.yaml
    also sets (helm/dagster/templates/helpers/instance/*.tpl)."""
    conc = values.get("concurrency", {})
    runs = conc.get("runs", {})
    daemon = values["dagsterDaemon"]
    pg = values["postgresql"]
    return {
        "scheme": pg.get("postgresqlScheme", "postgresql"),
        # the connection's URL parameters (sslmode): the chart renders postgresqlParams as
        # postgres_db.params; none of them is libpq's sslmode=prefer, plain text when refused
        "params": pg.get("postgresqlParams") or {},
        "max_concurrent_runs": runs.get("maxConcurrentRuns") if conc.get("enabled") else None,
        "tag_concurrency_limits": runs.get("tagConcurrencyLimits", []),
        "default_pool_limit": conc.get("pools", {}).get("defaultLimit"),
        "run_retries": daemon.get("runRetries", {}).get("enabled", False),
        "max_retries": daemon.get("runRetries", {}).get("maxRetries", 0),
        "telemetry": values.get("telemetry", {}).get("enabled", True),
    }


def instance_from_yaml(inst: dict[str, Any]) -> dict[str, Any]:
    runs = inst.get("concurrency", {}).get("runs", {})
    return {
        "scheme": inst["storage"]["postgres"]["postgres_db"].get("scheme", "postgresql"),
        "params": inst["storage"]["postgres"]["postgres_db"].get("params") or {},
        "max_concurrent_runs": runs.get("max_concurrent_runs"),
        "tag_concurrency_limits": runs.get("tag_concurrency_limits", []),
        "default_pool_limit": inst.get("concurrency", {}).get("pools", {}).get("default_limit"),
        "run_retries": inst.get("run_retries", {}).get("enabled", False),
        "max_retries": inst.get("run_retries", {}).get("max_retries", 0),
        "telemetry": inst.get("telemetry", {}).get("enabled", True),
    }


def problems(values: dict[str, Any]) -> list[str]:
    found: list[str] = []
    _keys("values", values, TOP, found)
    _keys("global", values.get("global", {}), GLOBAL, found)

    ud = values.get("dagster-user-deployments", {})
    _keys("dagster-user-deployments", ud, USER_DEPLOYMENTS, found)
    deployments = ud.get("deployments", [])
    if not deployments:
        found.append("no user-code deployment")
    for d in deployments:
        where = f"deployment {d.get('name')}"
        _keys(where, d, USER_DEPLOYMENT, found)
        _k8s(f"{where}.resources", k.V1ResourceRequirements, d.get("resources", {}), found)
        _k8s(f"{where}.podSecurityContext", k.V1PodSecurityContext, d.get("podSecurityContext", {}), found)  # fmt: skip
        _k8s(f"{where}.securityContext", k.V1SecurityContext, d.get("securityContext", {}), found)
        for env in d.get("env", []):
            _k8s(f"{where}.env", k.V1EnvVar, env, found)
        probe = {key: v for key, v in d.get("readinessProbe", {}).items() if key != "enabled"}
        _k8s(f"{where}.readinessProbe", k.V1Probe, probe, found)
        if d.get("podSecurityContext", {}).get("runAsNonRoot") is not True:
            found.append(f"{where}: the code server may run as root")

    launcher = values.get("runLauncher", {})
    if launcher.get("type") != "K8sRunLauncher":
        found.append("the run launcher is not K8sRunLauncher")
    k8s_launcher = launcher.get("config", {}).get("k8sRunLauncher", {})
    _keys("k8sRunLauncher", k8s_launcher, K8S_RUN_LAUNCHER, found)
    run_cfg = k8s_launcher.get("runK8sConfig", {})
    _keys("runK8sConfig", run_cfg, RUN_K8S_CONFIG, found)
    # dagster-k8s reads runK8sConfig as it reads a dagster-k8s/config tag (snake_case keys).
    try:
        get_user_defined_k8s_config(
            {
                USER_DEFINED_K8S_CONFIG_KEY: json.dumps(
                    {_snake(key): v for key, v in run_cfg.items()}
                )
            }
        )
    except Exception as e:  # noqa: BLE001 - collected
        found.append(f"runK8sConfig refused by dagster-k8s: {e}")
    _k8s("runK8sConfig.containerConfig", k.V1Container, {"name": "run", **run_cfg.get("containerConfig", {})}, found)  # fmt: skip
    _k8s("runK8sConfig.podSpecConfig", k.V1PodSpec, {"containers": [], **run_cfg.get("podSpecConfig", {})}, found)  # fmt: skip
    _k8s("runK8sConfig.jobSpecConfig", k.V1JobSpec, {"template": {}, **run_cfg.get("jobSpecConfig", {})}, found)  # fmt: skip

    pg = values.get("postgresql", {})
    _keys("postgresql", pg, POSTGRESQL, found)
    if pg.get("postgresqlScheme") != "postgresql+psycopg2":
        found.append("postgresqlScheme is not postgresql+psycopg2 (SQLAlchemy 2.1 needs it named)")

    daemon = values.get("dagsterDaemon", {})
    _keys("dagsterDaemon", daemon, DAEMON, found)
    coord = daemon.get("runCoordinator", {})
    if not (coord.get("enabled") and coord.get("type") == "QueuedRunCoordinator"):
        found.append("the daemon's run queue is off")
    queued = coord.get("config", {}).get("queuedRunCoordinator") or {}
    _keys("queuedRunCoordinator", queued, QUEUED, found)
    conc = values.get("concurrency", {})
    _keys("concurrency", conc, CONCURRENCY, found)
    _keys("concurrency.pools", conc.get("pools", {}), POOLS, found)
    _keys("concurrency.runs", conc.get("runs", {}), RUNS, found)
    if conc.get("enabled") and {"maxConcurrentRuns", "tagConcurrencyLimits"} & set(queued):
        # dagster refuses an instance with both (dagster/_core/instance/config.py)
        found.append("run limits set both in queuedRunCoordinator and concurrency.runs")

    # The values against the image they run.
    args = build_args(instructions(DOCKERFILE.read_text()))
    dockerfile = DOCKERFILE.read_text()
    home = values.get("global", {}).get("dagsterHome")
    if f"DAGSTER_HOME={home}" not in dockerfile:
        found.append(f"global.dagsterHome {home} is not the image's DAGSTER_HOME")
    for d in deployments:
        cargs = d.get("codeServerArgs") or d.get("dagsterApiGrpcArgs") or []
        opts = dict(zip(cargs[::2], cargs[1::2], strict=False))
        if not (REPO / opts.get("--python-file", "?")).is_file():
            found.append(f"--python-file {opts.get('--python-file')} is not in the repo")
        if f"WORKDIR {opts.get('--working-directory')}\n" not in dockerfile:
            found.append(f"--working-directory {opts.get('--working-directory')} is not the image's WORKDIR")  # fmt: skip
        uid = d.get("podSecurityContext", {}).get("runAsUser")
        if str(uid) != args.get("UID"):
            found.append(f"runAsUser {uid} is not the image's UID {args.get('UID')}")

    # Landing, artifacts and lineage are local file calls: on a mounted volume the run pods get
    # too (recassets.paths refuses a URL there; only the lake may be one).
    for d in deployments:
        env = {e["name"]: e.get("value") for e in d.get("env", [])}
        volumes = {v.get("name") for v in d.get("volumes", [])}
        mounts = []
        for m in d.get("volumeMounts", []):
            mounts.append(m.get("mountPath", "?").rstrip("/") + "/")
            if m.get("name") not in volumes:
                found.append(f"volumeMount {m.get('name')} has no volume")
        # the Bento store too: a bento built in a step pod on its own disk went with the pod;
        # and the home, where the landing sensor keeps its state between ticks (on the image's
        # disk it was lost at every restart of the code server, and every file hashed again)
        for var in ("RECASSETS_HOME", "RECASSETS_ARTIFACTS", "RECASSETS_LANDING",
                    "RECASSETS_LINEAGE", "RECASSETS_BENTOML_HOME"):  # fmt: skip
            where = env.get(var) or "(unset: the pod's own disk)"
            if not any(where.startswith(mp) for mp in mounts):
                found.append(f"{var}={where} is not in a mounted volume")
        if mounts and not d.get("includeConfigInLaunchedRuns", {}).get("enabled"):
            found.append("run pods would not get the deployment's volumes")
        elif d.get("resources"):  # handed to every run pod, over runK8sConfig's
            found.append("the code location's resources would size every run pod")

    # The instance the chart writes against deploy/dagster.yaml.
    want = instance_from_yaml(yaml.safe_load(INSTANCE.read_text()))
    got = instance_from_values(values)
    for key in want:
        if want[key] != got[key]:
            found.append(f"instance {key}: values give {got[key]!r}, deploy/dagster.yaml {want[key]!r}")  # fmt: skip
    return found


def test_values_pass() -> None:
    assert problems(load()) == []


def _ud(v):
    return v["dagster-user-deployments"]["deployments"][0]


def _launcher(v):
    return v["runLauncher"]["config"]["k8sRunLauncher"]


@pytest.mark.parametrize(
    ("path_and_value", "expected"),
    [
        (lambda v: v.__setitem__("dagsterDeamon", {}), "unknown key 'dagsterDeamon'"),
        (lambda v: _ud(v).__setitem__("codeServerArg", []), "unknown key 'codeServerArg'"),
        (
            lambda v: _launcher(v).__setitem__("jobTtlSecondsAfterFinished", 1),
            "unknown key 'jobTtl",
        ),  # fmt: skip
        (
            lambda v: _launcher(v)["runK8sConfig"]["containerConfig"].__setitem__("resourcez", {}),
            "Unexpected keys in model class V1Container",
        ),  # fmt: skip
        (
            lambda v: _launcher(v)["runK8sConfig"].__setitem__("podSpec", {}),
            "refused by dagster-k8s",
        ),  # fmt: skip
        (
            lambda v: _ud(v)["podSecurityContext"].__setitem__("runAsNonroot", True),
            "Unexpected keys in model class V1PodSecurityContext",
        ),  # fmt: skip
        (lambda v: _ud(v)["podSecurityContext"].pop("runAsNonRoot"), "may run as root"),
        (
            lambda v: v["runLauncher"].__setitem__("type", "CeleryK8sRunLauncher"),
            "not K8sRunLauncher",
        ),  # fmt: skip
        (lambda v: v["postgresql"].pop("postgresqlScheme"), "postgresqlScheme"),
        (
            lambda v: v["dagsterDaemon"]["runCoordinator"]["config"].__setitem__(
                "queuedRunCoordinator", {"maxConcurrentRuns": 3}
            ),
            "both in queuedRunCoordinator",
        ),  # fmt: skip
        (
            lambda v: v["concurrency"]["runs"].__setitem__("maxConcurrentRuns", 20),
            "instance max_concurrent_runs",
        ),  # fmt: skip
        (
            lambda v: v["dagsterDaemon"]["runRetries"].__setitem__("maxRetries", 5),
            "instance max_retries",
        ),  # fmt: skip
        (
            lambda v: v["global"].__setitem__("dagsterHome", "/dagster"),
            "not the image's DAGSTER_HOME",
        ),  # fmt: skip
        (
            lambda v: _ud(v)["podSecurityContext"].__setitem__("runAsUser", 1000),
            "not the image's UID",
        ),  # fmt: skip
        (lambda v: _ud(v)["codeServerArgs"].__setitem__(1, "defs.py"), "--python-file defs.py"),
        (
            lambda v: _ud(v).__setitem__("resources", {"limits": {"memory": "4Gi"}}),
            "resources would size every run pod",
        ),
        (
            lambda v: [e for e in _ud(v)["env"] if e["name"] == "RECASSETS_BENTOML_HOME"][
                0
            ].__setitem__("value", "/var/lib/recassets/bentoml"),
            "RECASSETS_BENTOML_HOME=/var/lib/recassets/bentoml is not in a mounted volume",
        ),
        (
            lambda v: next(
                e for e in _ud(v)["env"] if e["name"] == "RECASSETS_ARTIFACTS"
            ).__setitem__("value", "s3a://BUCKET/recassets/artifacts"),
            "RECASSETS_ARTIFACTS=s3a://BUCKET/recassets/artifacts is not in a mounted volume",
        ),  # fmt: skip
        (
            lambda v: _ud(v).__setitem__(
                "env", [e for e in _ud(v)["env"] if e["name"] != "RECASSETS_HOME"]
            ),
            "RECASSETS_HOME=(unset: the pod's own disk) is not in a mounted volume",
        ),
        (
            lambda v: next(e for e in _ud(v)["env"] if e["name"] == "RECASSETS_HOME").__setitem__(
                "value", "/var/lib/recassets"
            ),
            "RECASSETS_HOME=/var/lib/recassets is not in a mounted volume",
        ),
        (lambda v: v["postgresql"].pop("postgresqlParams"), "instance params"),
        (
            lambda v: v["postgresql"]["postgresqlParams"].__setitem__("sslmode", "prefer"),
            "instance params",
        ),
        (lambda v: _ud(v).__setitem__("volumes", []), "volumeMount recassets-data has no volume"),
        (
            lambda v: _ud(v)["includeConfigInLaunchedRuns"].__setitem__("enabled", False),
            "run pods would not get",
        ),  # fmt: skip
    ],
)
def test_broken_values_are_refused(path_and_value, expected: str) -> None:
    values = copy.deepcopy(load())
    path_and_value(values)
    found = problems(values)
    assert any(expected in p for p in found), found
