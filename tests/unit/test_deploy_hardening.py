"""What the deploy review of 2026-12-07 found, kept from coming back (docs/deploy.md):

- every step that starts a Spark driver runs in a pod that holds its heap: it carries
  ``assets/pods.py`` ``SPARK_DRIVER_POD``, and the heap the Helm values give the code location
  (``RECASSETS_SPARK_CONF``), with Spark's overhead, fits that pod's memory limit. "Starts
  Spark" is read from the definitions, not listed by hand: an asset or check that takes a
  ``SparkResource`` or whose kinds say ``spark``; and no module of the code location calls
  ``get_spark`` but the resource itself (and the CLI's launcher, which runs outside pods);
- every pod spec of deploy/ (the manifests, the executor template, the pods the Helm values
  produce and the step pods of the assets' tags, merged as dagster-k8s merges them) would be
  admitted under the restricted Pod Security Standard, as the image's user;
- the sharded-training Job keeps the code location's home on the shared volume;
- every remote ``ADD`` of a Dockerfile is pinned by ``--checksum`` (the executor image's jars),
  with the Dockerfile syntax that knows the flag. (What an image is built with, ``VARIANT=cuda``
  and not the Makefile's ``GPU=1``: tests/deploy/test_docker.py.)

Each check has a case that breaks it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
from pathlib import Path
from typing import Any

import kubernetes.client as k
import pytest
import yaml
from dagster import AssetCheckResult, Definitions, asset, asset_check
from dagster_k8s.container_context import K8sContainerContext
from dagster_k8s.job import (
    USER_DEFINED_K8S_CONFIG_KEY,
    UserDefinedDagsterK8sConfig,
    get_user_defined_k8s_config,
)
from dagster_k8s.models import k8s_model_from_dict, k8s_snake_case_dict

from assets import pods
from recassets.spark import DEFAULT_CONF, parse_conf
from resources import SparkResource
from tests.deploy.test_docker import build_args, instructions
from tests.deploy.test_k8s_schemas import manifest_docs, run_job, user_code_deployment

REPO = Path(__file__).resolve().parents[2]
VALUES = REPO / "deploy" / "helm" / "values.yaml"
MANIFESTS = sorted((REPO / "deploy" / "k8s").glob("*.yaml"))
EXECUTOR_TEMPLATE = REPO / "deploy" / "spark" / "executor-pod-template.yaml"
DOCKERFILES = sorted((REPO / "deploy" / "docker").glob("Dockerfile*"))
TAG = USER_DEFINED_K8S_CONFIG_KEY
GI = 1024**3


def load_values() -> dict[str, Any]:
    return yaml.safe_load(VALUES.read_text())


def location_env(values: dict[str, Any]) -> dict[str, str]:
    d = values["dagster-user-deployments"]["deployments"][0]
    return {e["name"]: e.get("value", "") for e in d.get("env", [])}


# --- Spark steps and their pods (M1) --------------------------------------------------------


def spark_steps(defs: Definitions) -> dict[str, dict[str, str]]:
    """Op name -> op tags of every step that starts a Spark driver: an asset or asset check
    that requires a resource that is a ``SparkResource``, or an asset of kind ``spark``."""
    spark_keys = {key for key, r in (defs.resources or {}).items() if isinstance(r, SparkResource)}
    repo = defs.get_repository_def()
    found: dict[str, dict[str, str]] = {}
    for ad in repo.assets_defs_by_key.values():
        kinds = {kind for spec in ad.specs for kind in spec.kinds}
        if ad.is_executable and (spark_keys & ad.required_resource_keys or "spark" in kinds):
            found[ad.node_def.name] = dict(ad.node_def.tags)
    for cd in repo.asset_checks_defs_by_key.values():
        if spark_keys & cd.required_resource_keys:
            found[cd.node_def.name] = dict(cd.node_def.tags)
    return found


def k8s_bytes(quantity: str) -> int:
    """A Kubernetes memory quantity (``16Gi``, ``16G``, ``512Mi``, bytes) in bytes."""
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
             "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}  # fmt: skip
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([KMGT]i|[kMGT])?", str(quantity).strip())
    if not m:
        raise ValueError(f"not a memory quantity: {quantity!r}")
    return int(float(m.group(1)) * units.get(m.group(2) or "", 1))


def jvm_bytes(size: str) -> int:
    """A Spark/JVM size (``10g``, ``4096m``; binary units, as Spark reads them) in bytes."""
    m = re.fullmatch(r"(\d+)([kmgt]?)b?", size.strip().lower())
    if not m:
        raise ValueError(f"not a JVM memory size: {size!r}")
    return int(m.group(1)) * 1024 ** "_kmgt".index(m.group(2) or "_")


def driver_need(conf: dict[str, str]) -> int:
    """The driver's memory in bytes: its heap and Spark's overhead for a driver in a container
    (``spark.driver.memoryOverhead``, else 10 % of the heap and at least 384 MiB)."""
    heap = jvm_bytes(conf.get("spark.driver.memory", "1g"))
    if "spark.driver.memoryOverhead" in conf:
        return heap + jvm_bytes(conf["spark.driver.memoryOverhead"])
    factor = float(conf.get("spark.driver.memoryOverheadFactor", "0.10"))
    return heap + max(int(heap * factor), 384 * 2**20)


def step_limit(values: dict[str, Any], tags: dict[str, str]) -> str | None:
    """The memory limit of the pod a step runs in: with ``RECASSETS_EXECUTOR=k8s`` its own step
    pod (the tag's limit over ``runK8sConfig``'s), else the run pod (``runK8sConfig``'s)."""
    run = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]
    limit = run.get("containerConfig", {}).get("resources", {}).get("limits", {}).get("memory")
    if location_env(values).get("RECASSETS_EXECUTOR") != "k8s" or TAG not in tags:
        return limit
    tag: dict[str, Any] = json.loads(tags[TAG])
    return tag.get("container_config", {}).get("resources", {}).get("limits", {}).get("memory", limit)  # fmt: skip


def spark_pod_problems(steps: dict[str, dict[str, str]], values: dict[str, Any]) -> list[str]:
    want = json.loads(json.dumps(pods.SPARK_DRIVER_POD[TAG]))
    conf = {**DEFAULT_CONF, **parse_conf(location_env(values).get("RECASSETS_SPARK_CONF"))}
    need = driver_need(conf)
    found = []
    if not steps:
        found.append("no step starts Spark: the walk found nothing")
    for name, tags in sorted(steps.items()):
        got = json.loads(tags[TAG]) if TAG in tags else None
        if got != want:
            found.append(f"{name} starts Spark without assets/pods.py SPARK_DRIVER_POD")
        limit = step_limit(values, tags)
        if limit is None or k8s_bytes(limit) < need:
            found.append(
                f"{name}: spark.driver.memory={conf.get('spark.driver.memory')} with its "
                f"overhead ({need / GI:.1f} GiB) does not fit the pod's limit {limit}"
            )
    return found


@pytest.fixture(scope="module")
def deployed_spark_steps() -> dict[str, dict[str, str]]:
    import definitions

    return spark_steps(definitions.defs)


def test_every_spark_step_gets_a_driver_pod(
    deployed_spark_steps: dict[str, dict[str, str]],
) -> None:
    # the walk finds what the review listed, and all of it passes
    assert {"lake__raw_events", "lake__users", "lake__items", "lake__serving_log",
            "feature_tables", "lake__training_examples",
            "lake__raw_events_raw_events_quality"} <= set(deployed_spark_steps)  # fmt: skip
    assert spark_pod_problems(deployed_spark_steps, load_values()) == []


def _tiny_defs(tagged: bool) -> Definitions:
    tags = pods.SPARK_DRIVER_POD if tagged else None

    @asset(op_tags=tags)
    def reads_spark(spark: SparkResource) -> None: ...

    @asset(kinds={"spark"}, op_tags=tags)
    def says_spark() -> None: ...

    @asset
    def no_spark() -> None: ...

    @asset_check(asset=no_spark, op_tags=tags)
    def checks_with_spark(spark: SparkResource) -> AssetCheckResult:
        return AssetCheckResult(passed=True)

    return Definitions(
        assets=[reads_spark, says_spark, no_spark],
        asset_checks=[checks_with_spark],
        resources={"spark": SparkResource()},
    )


def test_a_spark_step_without_the_tag_is_named() -> None:
    values = load_values()
    assert spark_pod_problems(spark_steps(_tiny_defs(tagged=True)), values) == []
    found = spark_pod_problems(spark_steps(_tiny_defs(tagged=False)), values)
    for name in ("reads_spark", "says_spark", "no_spark_checks_with_spark"):
        assert any(p.startswith(f"{name} starts Spark without") for p in found), found
        assert any(p.startswith(f"{name}: spark.driver.memory=10g") for p in found), found
    assert not any(p.startswith("no_spark ") for p in found)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # a heap the 16Gi step pods cannot hold
        (lambda env: env.__setitem__("RECASSETS_SPARK_CONF", "spark.driver.memory=15g"), "15g"),
        (
            lambda env: env.__setitem__("RECASSETS_SPARK_CONF", "spark.driver.memory=16384m"),
            "16384m",
        ),
        # one pod per run: the steps' tags no longer apply, the run launcher's 8Gi does
        (lambda env: env.__setitem__("RECASSETS_EXECUTOR", "in_process"), "limit 8Gi"),
    ],
    ids=["heap-15g", "heap-16g", "in-process"],
)
def test_a_heap_over_the_pod_limit_is_named(edit: Any, expected: str) -> None:
    values = copy.deepcopy(load_values())
    env = values["dagster-user-deployments"]["deployments"][0]["env"]
    by_name = {e["name"]: e.get("value") for e in env}
    edit(by_name)
    values["dagster-user-deployments"]["deployments"][0]["env"] = [
        {"name": n, "value": v} for n, v in by_name.items()
    ]
    steps = {"ingest": {TAG: json.dumps(pods.SPARK_DRIVER_POD[TAG])}}
    found = spark_pod_problems(steps, values)
    assert any(expected in p for p in found), found


def test_the_quantities_parse() -> None:
    assert k8s_bytes("16Gi") == 16 * GI and k8s_bytes("16G") == 16 * 10**9
    assert jvm_bytes("10g") == 10 * GI and jvm_bytes("4096m") == 4 * GI
    with pytest.raises(ValueError):
        k8s_bytes("16 gigs")


# The code location's modules (what the code server and the run and step pods import), and
# those allowed to call get_spark: the resource, the module that defines it, and the CLI's
# launcher (assets/launch.py), which runs `recassets materialize` in its own process.
CODE = ("assets", "resources", "sensors", "recassets", "definitions.py")
MAY_START_SPARK = {"resources/spark.py", "recassets/spark.py", "assets/launch.py"}


def spark_starters(files: dict[str, str]) -> list[str]:
    """The modules of ``files`` (path -> text) that call ``get_spark`` and may not."""
    return sorted(p for p, t in files.items() if re.search(r"\bget_spark\(", t) and p not in MAY_START_SPARK)  # fmt: skip


def code_files() -> dict[str, str]:
    out = {}
    for top in CODE:
        for p in [REPO / top] if top.endswith(".py") else sorted((REPO / top).rglob("*.py")):
            out[str(p.relative_to(REPO))] = p.read_text()
    return out


def test_only_the_spark_resource_starts_spark() -> None:
    files = code_files()
    assert spark_starters(files) == []
    files["assets/retrieval.py"] += "\nsession = get_spark()\n"
    assert spark_starters(files) == ["assets/retrieval.py"]


# --- the restricted Pod Security Standard (L2) ----------------------------------------------

RESTRICTED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral",
                      "persistentVolumeClaim", "projected", "secret", "image"}  # fmt: skip
SAFE_SECCOMP = {"RuntimeDefault", "Localhost"}


def camel(model: type, obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` (camelCase or snake_case) through the client's model, back as a manifest's
    camelCase: the rules below read one spelling."""
    instance = k8s_model_from_dict(model, k8s_snake_case_dict(model, obj))
    out: dict[str, Any] = k.ApiClient().sanitize_for_serialization(instance)  # pyright: ignore[reportAssignmentType]
    return out


def restricted_problems(spec: dict[str, Any], where: str, uid: int) -> list[str]:
    """How the pod spec ``spec`` (camelCase) would be refused under the restricted Pod Security
    Standard (kubernetes.io/docs/concepts/security/pod-security-standards), and where it runs
    as another user than ``uid`` (the image's)."""
    found = []
    pod_sc = spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            found.append(f"{where}: {field}")
    for v in spec.get("volumes") or []:
        kinds = set(v) - {"name"}
        if not kinds <= RESTRICTED_VOLUMES:
            found.append(f"{where}: volume {v.get('name')} is {sorted(kinds)}")
    if pod_sc.get("sysctls"):
        found.append(f"{where}: sysctls")
    if (pod_sc.get("seccompProfile") or {}).get("type") == "Unconfined":
        found.append(f"{where}: seccompProfile Unconfined")
    containers = [*(spec.get("containers") or []), *(spec.get("initContainers") or []),
                  *(spec.get("ephemeralContainers") or [])]  # fmt: skip
    for c in containers:
        at = f"{where}/{c.get('name')}"
        sc = c.get("securityContext") or {}
        if sc.get("privileged"):
            found.append(f"{at}: privileged")
        if sc.get("allowPrivilegeEscalation") is not False:
            found.append(f"{at}: allowPrivilegeEscalation is not false")
        caps = sc.get("capabilities") or {}
        if "ALL" not in (caps.get("drop") or []):
            found.append(f"{at}: capabilities do not drop ALL")
        if set(caps.get("add") or []) - {"NET_BIND_SERVICE"}:
            found.append(f"{at}: capabilities add {caps['add']}")
        non_root = sc.get("runAsNonRoot", pod_sc.get("runAsNonRoot"))
        if non_root is not True:
            found.append(f"{at}: runAsNonRoot is not true")
        user = sc.get("runAsUser", pod_sc.get("runAsUser"))
        if user != uid:
            found.append(f"{at}: runs as user {user}, not the image's {uid}")
        seccomp = (sc.get("seccompProfile") or pod_sc.get("seccompProfile") or {}).get("type")
        if seccomp not in SAFE_SECCOMP:
            found.append(f"{at}: seccompProfile {seccomp} (RuntimeDefault or Localhost)")
        if any(p.get("hostPort") for p in c.get("ports") or []):
            found.append(f"{at}: hostPort")
        if sc.get("procMount", "Default") != "Default":
            found.append(f"{at}: procMount {sc['procMount']}")
    return found


def read_only_problems(spec: dict[str, Any], where: str) -> list[str]:
    """A read-only root for every container, with a writable volume at /tmp."""
    found = []
    for c in spec.get("containers") or []:
        sc = c.get("securityContext") or {}
        if sc.get("readOnlyRootFilesystem") is not True:
            found.append(f"{where}/{c.get('name')}: the root filesystem is writable")
        mounts = {m["mountPath"].rstrip("/"): m for m in c.get("volumeMounts") or []}
        if "/tmp" not in mounts or mounts["/tmp"].get("readOnly"):
            found.append(f"{where}/{c.get('name')}: no writable volume at /tmp")
    return found


def pod_specs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod specs of a manifest document (a Pod, or a workload's pod template)."""
    kind, spec = doc.get("kind"), doc.get("spec") or {}
    if kind == "Pod":
        return [spec]
    if kind == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
        return [spec["template"]["spec"]]
    return []


def image_uid() -> int:
    return int(build_args(instructions((REPO / "deploy/docker/Dockerfile").read_text()))["UID"])


def manifest_pods() -> dict[str, dict[str, Any]]:
    out = {}
    for path in [*MANIFESTS, EXECUTOR_TEMPLATE]:
        for i, doc in enumerate(manifest_docs(path)):
            for spec in pod_specs(doc):
                out[f"{path.name}[{i}]"] = spec
    return out


def step_pod(values: dict[str, Any], tags: dict[str, Any]) -> dict[str, Any]:
    """A step pod of k8s_job_executor as dagster-k8s merges its config (deep): the run
    launcher's runK8sConfig, then the code location's container context (what the chart hands
    the runs with includeConfigInLaunchedRuns: its security contexts), then the op tag."""
    run_cfg = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]
    snake = {re.sub(r"(?<!^)(?=[A-Z])", "_", key).lower(): v for key, v in run_cfg.items()}
    d = values["dagster-user-deployments"]["deployments"][0]
    pod_sc = k8s_snake_case_dict(k.V1PodSecurityContext, d.get("podSecurityContext", {}))
    location = UserDefinedDagsterK8sConfig.from_dict({"pod_spec_config": {"security_context": pod_sc}})  # fmt: skip
    container_sc = k8s_snake_case_dict(k.V1SecurityContext, d.get("securityContext", {}))
    merged = (
        K8sContainerContext(run_k8s_config=get_user_defined_k8s_config({TAG: json.dumps(snake)}))
        .merge(K8sContainerContext(security_context=container_sc, run_k8s_config=location))
        .merge(K8sContainerContext(run_k8s_config=get_user_defined_k8s_config({TAG: json.dumps(tags[TAG])})))
    ).run_k8s_config  # fmt: skip
    container = {"name": "dagster", "image": "REGISTRY/recassets:TAG", **merged.container_config}
    return camel(k.V1PodSpec, {**merged.pod_spec_config, "containers": [container]})


def tag_configs() -> dict[str, dict[str, Any]]:
    """Every dagster-k8s/config tag of assets/pods.py, by name."""
    return {n: v for n, v in vars(pods).items() if isinstance(v, dict) and TAG in v}


def helm_pods(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    out = {
        "user-code Deployment": user_code_deployment(values)["spec"]["template"]["spec"],
        "run Job": run_job(values)["spec"]["template"]["spec"],
    }
    out = {n: camel(k.V1PodSpec, s) for n, s in out.items()}
    for name, tags in tag_configs().items():
        out[f"step pod {name}"] = step_pod(values, tags)
    return out


def all_pod_problems(values: dict[str, Any], manifests: dict[str, dict[str, Any]]) -> list[str]:
    uid = image_uid()
    found = []
    for where, spec in {**manifests, **helm_pods(values)}.items():
        found += restricted_problems(spec, where, uid)
    for where, spec in manifests.items():
        found += read_only_problems(spec, where)
    return found


def test_every_pod_spec_is_restricted() -> None:
    manifests = manifest_pods()
    # the pods of the review: the bento, the training Job, the executors
    assert {"recommender.yaml[0]", "training-job.yaml[2]", "executor-pod-template.yaml[0]"} <= set(manifests)  # fmt: skip
    assert set(tag_configs()) == {"GPU_POD", "SPARK_DRIVER_POD"}
    assert all_pod_problems(load_values(), manifests) == []


def _training(m: dict[str, Any]) -> dict[str, Any]:
    return m["training-job.yaml[2]"]


def _run(v: dict[str, Any]) -> dict[str, Any]:
    return v["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        # the finding: the training Job's pod had no security context at all
        (
            lambda v, m: _training(m).pop("securityContext"),
            "training-job.yaml[2]/trainer: runs as user None",
        ),  # fmt: skip
        (
            lambda v, m: _training(m)["containers"][0].pop("securityContext"),
            "trainer: allowPrivilegeEscalation",
        ),  # fmt: skip
        (
            lambda v, m: _training(m)["volumes"].append({"name": "h", "hostPath": {"path": "/"}}),
            "volume h is ['hostPath']",
        ),  # fmt: skip
        (
            lambda v, m: _training(m)["containers"][0]["volumeMounts"].pop(),
            "no writable volume at /tmp",
        ),  # fmt: skip
        (
            lambda v, m: m["recommender.yaml[0]"]["securityContext"].pop("seccompProfile"),
            "recommender: seccompProfile None",
        ),  # fmt: skip
        (
            lambda v, m: m["executor-pod-template.yaml[0]"]["securityContext"].__setitem__(
                "runAsUser", 0
            ),
            "runs as user 0",
        ),  # fmt: skip
        # the run pods: capabilities were not dropped
        (
            lambda v, m: _run(v)["containerConfig"]["securityContext"].pop("capabilities"),
            "run Job/dagster: capabilities",
        ),  # fmt: skip
        (
            lambda v, m: _run(v)["podSpecConfig"]["securityContext"].pop("seccompProfile"),
            "run Job/dagster: seccompProfile None",
        ),  # fmt: skip
        (
            lambda v, m: v["dagster-user-deployments"]["deployments"][0]["podSecurityContext"][
                "seccompProfile"
            ].__setitem__("type", "Unconfined"),
            "user-code Deployment: seccompProfile Unconfined",
        ),  # fmt: skip
        # a tag that weakens what the step pods get from runK8sConfig
        (
            lambda v, m: pods_tag("SPARK_DRIVER_POD")["container_config"].__setitem__(
                "securityContext", {"privileged": True, "allowPrivilegeEscalation": True}
            ),
            "step pod SPARK_DRIVER_POD/dagster: privileged",
        ),  # fmt: skip
        (
            lambda v, m: pods_tag("GPU_POD")["pod_spec_config"].__setitem__("hostNetwork", True),
            "step pod GPU_POD: hostNetwork",
        ),  # fmt: skip
    ],
)
def test_a_pod_outside_restricted_is_named(edit: Any, expected: str, monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    for name, tags in tag_configs().items():
        monkeypatch.setattr(pods, name, copy.deepcopy(tags))
    values, manifests = copy.deepcopy(load_values()), copy.deepcopy(manifest_pods())
    edit(values, manifests)
    found = all_pod_problems(values, manifests)
    assert any(expected in p for p in found), found


def pods_tag(name: str) -> dict[str, Any]:
    return getattr(pods, name)[TAG]


# --- the code location's home on the shared volume, where project code runs (M2) ------------


def home_problems(manifests: dict[str, dict[str, Any]], image: str = "REGISTRY/recassets:") -> list[str]:  # fmt: skip
    """Containers of the user-code image whose RECASSETS_HOME is unset or not on a mounted
    persistent volume (the code location's own is checked by tests/deploy/test_helm.py)."""
    found = []
    for where, spec in manifests.items():
        claims = {v["name"] for v in spec.get("volumes") or [] if "persistentVolumeClaim" in v}
        for c in spec.get("containers") or []:
            if not str(c.get("image", "")).startswith(image):
                continue
            env = {e["name"]: e.get("value") for e in c.get("env") or []}
            home = env.get("RECASSETS_HOME") or "(unset)"
            mounts = [m["mountPath"].rstrip("/") + "/" for m in c.get("volumeMounts") or [] if m["name"] in claims]  # fmt: skip
            if not any(home.startswith(mp) for mp in mounts):
                found.append(f"{where}/{c['name']}: RECASSETS_HOME={home} is not on a persistent volume")  # fmt: skip
    return found


def test_the_training_job_keeps_the_home_on_the_shared_volume() -> None:
    manifests = manifest_pods()
    assert home_problems(manifests) == []
    env = _training(manifests)["containers"][0]["env"]
    values_home = location_env(load_values())["RECASSETS_HOME"]
    assert {"name": "RECASSETS_HOME", "value": values_home} in env
    broken = copy.deepcopy(manifests)
    _training(broken)["containers"][0]["env"] = [e for e in env if e["name"] != "RECASSETS_HOME"]
    assert home_problems(broken) == ["training-job.yaml[2]/trainer: RECASSETS_HOME=(unset) is not on a persistent volume"]  # fmt: skip


# --- remote ADDs pinned by checksum (L5) ----------------------------------------------------


def add_problems(text: str, name: str) -> list[str]:
    """Remote ``ADD``s without ``--checksum``, and a ``--checksum`` without a syntax line that
    knows it (docker/dockerfile 1.6 or later)."""
    found, pinned = [], False
    for word, rest in instructions(text):
        if word != "ADD":
            continue
        args = rest.split()
        if any(re.match(r"(https?://|\$\{?MAVEN)", a) or a.startswith("git@") for a in args):
            if not any(re.fullmatch(r"--checksum=sha256:[0-9a-f]{64}", a) for a in args):
                found.append(f"{name}: a remote ADD without --checksum=sha256: {rest}")
            pinned = True
    syntax = re.match(r"# syntax=docker/dockerfile:(\d+)(?:\.(\d+))?", text)
    if pinned and not (syntax and (int(syntax[1]), int(syntax[2] or 99)) >= (1, 6)):
        found.append(f"{name}: ADD --checksum needs `# syntax=docker/dockerfile:1.6` or later")
    return found


def test_every_remote_add_is_pinned() -> None:
    assert DOCKERFILES
    texts = {p.name: p.read_text() for p in DOCKERFILES}
    assert [p for n, t in texts.items() for p in add_problems(t, n)] == []
    spark = texts["Dockerfile.spark"]
    unpinned = re.sub(r" --checksum=sha256:[0-9a-f]{64}", "", spark, count=1)
    assert any("without --checksum" in p for p in add_problems(unpinned, "x"))
    for older in ("# syntax=docker/dockerfile:1.4", "# no syntax line"):
        old_syntax = spark.replace("# syntax=docker/dockerfile:1.6", older)
        assert any("needs `# syntax" in p for p in add_problems(old_syntax, "x"))
    # `:1` is the newest 1.x, which has it
    assert add_problems(spark.replace("dockerfile:1.6", "dockerfile:1"), "x") == []
    http = "# syntax=docker/dockerfile:1.7\nFROM x\nADD https://example.com/a.jar /a.jar\n"
    assert any("without --checksum" in p for p in add_problems(http, "x"))


def test_the_checksums_are_the_jars_of_these_versions() -> None:
    """Each pinned jar against the one Spark's Ivy fetched for the driver (the same versions,
    tests/deploy/test_spark_k8s.py; fetched by the s3a:// and Delta tests): a version moved
    without its checksum fails here before a build does."""
    text = (REPO / "deploy/docker/Dockerfile.spark").read_text()
    args = build_args(instructions(text))
    checked = 0
    for word, rest in instructions(text):
        if word != "ADD":
            continue
        (digest,) = re.findall(r"--checksum=sha256:([0-9a-f]{64})", rest)
        url = re.sub(r"\$\{(\w+)\}", lambda m: args[m[1]], rest.split()[-2])
        group_path, version, jar = url.split("/maven2/")[1].rsplit("/", 2)
        cached = Path.home() / ".ivy2.5.2" / "cache" / group_path.rsplit("/", 1)[0].replace("/", ".") / group_path.rsplit("/", 1)[1] / "jars" / jar  # fmt: skip
        if not cached.is_file():
            continue
        assert hashlib.sha256(cached.read_bytes()).hexdigest() == digest, (jar, version)
        checked += 1
    if not checked:
        pytest.skip("none of the jars is in Ivy's cache (~/.ivy2.5.2): nothing to compare")
