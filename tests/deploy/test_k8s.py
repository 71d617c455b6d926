"""deploy/k8s/: the recommender bento's Deployment, Service and HorizontalPodAutoscaler.

Each object is validated against the Kubernetes API models (tests/deploy/kube.py), then checked
for what the platform needs of it: probes on BentoML's /livez and /readyz that the bearer-token
guard leaves open, a non-root user, a read-only root filesystem with an emptyDir for /tmp,
requests and limits, the serve host, Redis and the token from Secrets, a Service and an
autoscaler that point at the Deployment. Every check has a case that breaks it.
"""

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from recassets.bento.guard import OPEN_PATHS, TOKEN_FILE_ENV
from recassets.featurestore.config import REDIS_URL_ENV
from tests.deploy.kube import validate_manifest

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "recommender.yaml"


def load() -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]


def by_kind(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}"
    return found[0]


def problems(docs: list[dict[str, Any]]) -> list[str]:
    found: list[str] = []
    for doc in docs:
        try:
            validate_manifest(doc)
        except Exception as e:  # noqa: BLE001 - collected, reported together
            found.append(f"{doc.get('kind')}: {e}")
    deployment = by_kind(docs, "Deployment")
    service = by_kind(docs, "Service")
    hpa = by_kind(docs, "HorizontalPodAutoscaler")
    pod = deployment["spec"]["template"]
    spec = pod["spec"]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    pod_ctx = spec.get("securityContext", {})

    if deployment["spec"]["selector"]["matchLabels"].items() - pod["metadata"]["labels"].items():
        found.append("the Deployment's selector does not match its pod labels")

    for c in spec["containers"]:
        name = c.get("name", "?")
        ctx = {**pod_ctx, **c.get("securityContext", {})}
        if ctx.get("runAsNonRoot") is not True:
            found.append(f"{name}: runAsNonRoot is not true")
        if ctx.get("runAsUser", 1) == 0:
            found.append(f"{name}: runAsUser is 0")
        if c.get("securityContext", {}).get("readOnlyRootFilesystem") is not True:
            found.append(f"{name}: the root filesystem is writable")
        if c.get("securityContext", {}).get("allowPrivilegeEscalation") is not False:
            found.append(f"{name}: privilege escalation allowed")
        res = c.get("resources", {})
        for need in ("cpu", "memory"):
            if need not in res.get("requests", {}):
                found.append(f"{name}: no {need} request")
        if "memory" not in res.get("limits", {}):
            found.append(f"{name}: no memory limit")

        mounts = {m["mountPath"]: m for m in c.get("volumeMounts", [])}
        for m in mounts.values():
            if m["name"] not in volumes:
                found.append(f"{name}: volume mount {m['name']} has no volume")
        tmp = mounts.get("/tmp")
        if tmp is None or "emptyDir" not in volumes.get(tmp["name"], {}):
            found.append(f"{name}: no emptyDir at /tmp for the read-only root filesystem")

        ports = {p.get("name"): p["containerPort"] for p in c.get("ports", [])}
        for kind, path in (("livenessProbe", "/livez"), ("readinessProbe", "/readyz")):
            probe = c.get(kind, {}).get("httpGet")
            if probe is None:
                found.append(f"{name}: no HTTP {kind}")
                continue
            if probe["path"] != path:
                found.append(f"{name}: {kind} on {probe['path']}, not {path}")
            if probe["path"] not in OPEN_PATHS:
                found.append(f"{name}: {kind} path {probe['path']} is behind the bearer token")
            if probe["port"] not in ports and probe["port"] not in ports.values():
                found.append(f"{name}: {kind} port {probe['port']} is not a container port")

        env = {e["name"]: e for e in c.get("env", [])}
        if env.get("RECASSETS_SERVE_HOST", {}).get("value") != "0.0.0.0":
            found.append(
                f"{name}: RECASSETS_SERVE_HOST is not 0.0.0.0 (the service binds loopback)"
            )
        for var, e in env.items():
            secretish = any(w in var for w in ("PASSWORD", "TOKEN", "SECRET")) and var != (
                TOKEN_FILE_ENV
            )
            if secretish and "value" in e:
                found.append(f"{name}: {var} is written in the manifest, not read from a Secret")
        for var in (REDIS_URL_ENV, "RECASSETS_REDIS_PASSWORD"):
            if "secretKeyRef" not in env.get(var, {}).get("valueFrom", {}):
                found.append(f"{name}: {var} does not come from a Secret")
        # The decision log (<landing>/serving_log) on the volume lake/serving_log ingests from,
        # written as the platform's UID: on the pod's emptyDir it was lost with the pod, and
        # filled the emptyDir's 1Gi after about a million answers (the kubelet evicts then).
        landing = env.get("RECASSETS_LANDING", {}).get("value") or "(unset: the pod's emptyDir)"
        on_pvc = [
            p for p, m in mounts.items() if "persistentVolumeClaim" in volumes.get(m["name"], {})
        ]
        if not any(landing.startswith(p.rstrip("/") + "/") for p in on_pvc):
            found.append(
                f"{name}: RECASSETS_LANDING={landing}: the decision log is not on the shared volume"
            )
        if ctx.get("runAsUser") != 10001:
            found.append(
                f"{name}: runAsUser {ctx.get('runAsUser')} is not the platform's 10001 (the volume's owner)"
            )
        token_file = env.get(TOKEN_FILE_ENV, {}).get("value")
        secret_mounts = [p for p, m in mounts.items() if "secret" in volumes.get(m["name"], {})]
        if not token_file or not any(
            token_file.startswith(p.rstrip("/") + "/") for p in secret_mounts
        ):
            found.append(f"{name}: {TOKEN_FILE_ENV} is not a file in a mounted Secret")

    if service["spec"]["selector"].items() - pod["metadata"]["labels"].items():
        found.append("the Service selects no pod of the Deployment")
    container_ports = {
        p.get("name"): p["containerPort"] for c in spec["containers"] for p in c.get("ports", [])
    }
    for p in service["spec"]["ports"]:
        target = p.get("targetPort", p["port"])
        if target not in container_ports and target not in container_ports.values():
            found.append(f"the Service's targetPort {target} is no container port")

    ref = hpa["spec"]["scaleTargetRef"]
    if (ref["kind"], ref["name"]) != ("Deployment", deployment["metadata"]["name"]):
        found.append("the autoscaler does not scale the Deployment")
    if hpa["spec"].get("minReplicas", 1) > hpa["spec"]["maxReplicas"]:
        found.append("the autoscaler's minReplicas exceeds maxReplicas")
    if "replicas" in deployment["spec"]:  # every `kubectl apply` would reset the autoscaler's count
        found.append("the Deployment sets replicas beside its autoscaler")
    return found


def test_recommender_manifests_pass() -> None:
    assert problems(load()) == []


def _container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return by_kind(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def _env(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(e for e in _container(docs)["env"] if e["name"] == name)


def _break_unknown_field(docs):
    _container(docs)["livenessProbe"]["httpGett"] = _container(docs)["livenessProbe"].pop("httpGet")


def _break_required(docs):
    del _container(docs)["name"]


def _break_readiness_path(docs):
    _container(docs)["readinessProbe"]["httpGet"]["path"] = "/info"


def _break_root(docs):
    by_kind(docs, "Deployment")["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] = (
        False
    )
    _container(docs)["securityContext"].pop("runAsNonRoot")


def _break_rootfs(docs):
    _container(docs)["securityContext"]["readOnlyRootFilesystem"] = False


def _break_tmp(docs):
    _container(docs)["volumeMounts"] = [
        m for m in _container(docs)["volumeMounts"] if m["mountPath"] != "/tmp"
    ]


def _break_limits(docs):
    del _container(docs)["resources"]["limits"]


def _break_host(docs):
    _container(docs)["env"] = [
        e for e in _container(docs)["env"] if e["name"] != "RECASSETS_SERVE_HOST"
    ]


def _break_redis_secret(docs):
    _env(docs, "RECASSETS_REDIS_PASSWORD").pop("valueFrom")
    _env(docs, "RECASSETS_REDIS_PASSWORD")["value"] = "hunter2"


def _break_token_file(docs):
    _env(docs, TOKEN_FILE_ENV)["value"] = "/etc/token"


def _break_service(docs):
    by_kind(docs, "Service")["spec"]["ports"][0]["targetPort"] = "grpc"


def _break_hpa(docs):
    by_kind(docs, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"] = "other"


def _break_landing(docs):
    env = _container(docs)["env"]
    env[:] = [e for e in env if e["name"] != "RECASSETS_LANDING"]


def _break_replicas(docs):
    by_kind(docs, "Deployment")["spec"]["replicas"] = 2


def _break_hpa_metric(docs):
    metric = by_kind(docs, "HorizontalPodAutoscaler")["spec"]["metrics"][0]
    metric["resource"]["target"]["averageUtilisation"] = metric["resource"]["target"].pop(
        "averageUtilization"
    )


@pytest.mark.parametrize(
    ("breaker", "expected"),
    [
        (_break_unknown_field, "Unexpected keys in model class V1Probe"),
        (_break_required, "Deployment: Invalid value for `name`"),
        (_break_readiness_path, "readinessProbe on /info"),
        (_break_root, "runAsNonRoot is not true"),
        (_break_rootfs, "root filesystem is writable"),
        (_break_tmp, "no emptyDir at /tmp"),
        (_break_limits, "no memory limit"),
        (_break_host, "RECASSETS_SERVE_HOST"),
        (_break_redis_secret, "RECASSETS_REDIS_PASSWORD is written in the manifest"),
        (_break_token_file, "not a file in a mounted Secret"),
        (_break_service, "targetPort grpc"),
        (_break_hpa, "does not scale the Deployment"),
        (_break_hpa_metric, "Unexpected keys in model class V2MetricTarget"),
        (_break_replicas, "sets replicas beside its autoscaler"),
        (_break_landing, "the decision log is not on the shared volume"),
    ],
)
def test_a_broken_manifest_is_refused(breaker, expected: str) -> None:
    docs = copy.deepcopy(load())
    breaker(docs)
    found = problems(docs)
    assert any(expected in p for p in found), found
