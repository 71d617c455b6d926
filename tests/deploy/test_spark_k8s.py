"""Spark on Kubernetes (a ``k8s://`` master) as configuration the code picks up unchanged:
``deploy/spark/`` (the driver's ``spark-defaults.conf`` and the executors' pod template),
``deploy/k8s/spark-rbac.yaml``, the Helm overlay ``deploy/helm/values-spark-k8s.yaml`` and the
executor image ``deploy/docker/Dockerfile.spark``.

No cluster runs here. Checked: the pod template and the RBAC objects against the Kubernetes
schemas; the overlay merged into the base values as Helm merges them, then the same checks as
the base values (chart keys, dagster-k8s, the run Job's schema); the names that must agree
(service account, paths inside the image, the COPY that puts them there); that the conf sets
nothing ``get_spark`` overrides; the executor image's versions against what is installed; that
the executors mount every path the driver hands them (the landing zone, and the lake when it
is local) from the run pods' volume, run as the run pods' user, get the object store's Secret
and settings and a writable work-dir, and can read the image's jars; and, with a real local
Spark, that pyspark reads ``SPARK_CONF_DIR`` and that ``get_spark``'s own settings win over it.
That executors need no Python: tests/unit/test_local_frame.py. Each check has a case that
breaks it.
"""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml

from recassets.spark import DEFAULT_CONF
from tests.deploy.test_docker import allowed_by_dockerignore, build_args, instructions
from tests.deploy.test_helm import problems
from tests.deploy.test_k8s_schemas import manifest_docs, run_job, schema_problems, values_problems

REPO = Path(__file__).resolve().parents[2]
SPARK = REPO / "deploy" / "spark"
DEFAULTS = SPARK / "conf" / "spark-defaults.conf"
TEMPLATE = SPARK / "executor-pod-template.yaml"
RBAC = REPO / "deploy" / "k8s" / "spark-rbac.yaml"
VALUES = REPO / "deploy" / "helm" / "values.yaml"
OVERLAY = REPO / "deploy" / "helm" / "values-spark-k8s.yaml"
DOCKER = REPO / "deploy" / "docker"
WORKDIR = "/opt/recassets"  # the user-code image's (Dockerfile WORKDIR)


def spark_defaults(text: str) -> dict[str, str]:
    """spark-defaults.conf as Spark reads it: ``key value`` (whitespace or '='), # comments."""
    conf = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            key, *value = re.split(r"[\s=]+", line, maxsplit=1)
            conf[key] = value[0].strip() if value else ""
    return conf


def merge(base: Any, overlay: Any) -> Any:
    """Helm's merge of values files: maps merge key by key, anything else is replaced."""
    if isinstance(base, dict) and isinstance(overlay, dict):
        out = dict(base)
        for k, v in overlay.items():
            out[k] = merge(base.get(k), v) if k in base else v
        return out
    return copy.deepcopy(overlay)


def merged_values() -> dict[str, Any]:
    return merge(yaml.safe_load(VALUES.read_text()), yaml.safe_load(OVERLAY.read_text()))


def run_env(values: dict[str, Any]) -> dict[str, Any]:
    container = run_job(values)["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


def agreement_problems(conf: dict[str, str], values: dict[str, Any], rbac: list[dict]) -> list[str]:
    """What must agree between the conf, the values, the RBAC objects and the image."""
    found = []
    env = run_env(values)
    pod_spec = run_job(values)["spec"]["template"]["spec"]
    account = conf.get("spark.kubernetes.authenticate.driver.serviceAccountName")
    if pod_spec.get("serviceAccountName") != account:
        found.append(f"run pods' service account {pod_spec.get('serviceAccountName')} is not the driver's {account}")  # fmt: skip
    kinds = {d["kind"]: d for d in rbac}
    if kinds.get("ServiceAccount", {}).get("metadata", {}).get("name") != account:
        found.append(f"spark-rbac.yaml has no ServiceAccount {account}")
    binding = kinds.get("RoleBinding", {})
    if account not in [s.get("name") for s in binding.get("subjects", [])]:
        found.append("the RoleBinding does not bind the driver's service account")
    if binding.get("roleRef", {}).get("name") != kinds.get("Role", {}).get("metadata", {}).get("name"):  # fmt: skip
        found.append("the RoleBinding does not name the Role")
    verbs = {
        v for rule in kinds.get("Role", {}).get("rules", []) if "pods" in rule.get("resources", [])
        for v in rule.get("verbs", [])
    }  # fmt: skip
    if missing := {"create", "delete", "watch", "list", "get"} - verbs:
        found.append(f"the Role cannot {sorted(missing)} pods")
    if not str(env.get("RECASSETS_SPARK_MASTER", "")).startswith("k8s://"):
        found.append("run pods get no k8s:// RECASSETS_SPARK_MASTER")
    if env.get("SPARK_LOCAL_IP") != {"fieldRef": {"fieldPath": "status.podIP"}}:
        found.append("SPARK_LOCAL_IP is not the pod's IP")
    conf_dir = str(env.get("SPARK_CONF_DIR", ""))
    in_repo = {f"{WORKDIR}/{p.relative_to(REPO)}": p for p in SPARK.rglob("*")}
    if (conf_dir + "/spark-defaults.conf") not in in_repo:
        found.append(f"SPARK_CONF_DIR {conf_dir} holds no spark-defaults.conf of deploy/spark")
    template = conf.get("spark.kubernetes.executor.podTemplateFile", "")
    if template not in in_repo:
        found.append(f"podTemplateFile {template} is not a file of deploy/spark in the image")
    if "spark.kubernetes.executor.podNamePrefix" in conf:
        # executors are <prefix>-exec-<n>, n from 1 for every driver: two concurrent drivers
        # with one fixed prefix ask for the same pod names (409 AlreadyExists)
        found.append("a fixed executor podNamePrefix: concurrent runs' executors collide")
    if overridden := sorted(set(conf) & set(DEFAULT_CONF)):
        found.append(f"set by get_spark over this file, so ignored here: {overridden}")
    return found


OBJECT_STORE_SECRET = "recassets-object-store"  # AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY


def _mounts(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["mountPath"].rstrip("/") + "/": m for m in container.get("volumeMounts", [])}


def _claim(volume: dict[str, Any] | None) -> str | None:
    return ((volume or {}).get("persistentVolumeClaim") or {}).get("claimName")


def executor_problems(template: dict[str, Any], values: dict[str, Any]) -> list[str]:
    """What the executors lack of what the driver hands them: each path it plans reads (the
    landing zone) or writes (the lake, when it is not an s3a:// URL) of, mounted at the same
    path from the run pods' own volume (read-write for the lake); the run pods' user, which
    owns what either writes there; the object store's Secret and settings (the driver passes
    neither key); and a writable working directory (the jars the driver adds are fetched
    there) under the read-only root."""
    found = []
    ud = values["dagster-user-deployments"]["deployments"][0]
    env = {e["name"]: e.get("value") for e in ud.get("env", [])}
    spec = template["spec"]
    container = spec["containers"][0]
    volumes = {v["name"]: v for v in spec.get("volumes", [])}
    run_volumes = {v["name"]: v for v in ud.get("volumes", [])}
    mounts, run_mounts = _mounts(container), _mounts(ud)
    handed = {"RECASSETS_LANDING": False}  # variable -> whether executors write there
    if "://" not in str(env.get("RECASSETS_LAKE", "")):
        handed["RECASSETS_LAKE"] = True
    for var, writes in handed.items():
        path = str(env.get(var) or "(unset)")
        at = max((mp for mp in mounts if path.startswith(mp)), key=len, default=None)
        if at is None:
            found.append(f"executors do not mount {var}={path}")
            continue
        mount = mounts[at]
        if writes and mount.get("readOnly"):
            found.append(f"executors mount {var}={path} read-only, but write the lake there")
        if mount["name"] not in volumes:
            found.append(f"the executors' volumeMount {mount['name']} has no volume")
        run_mount = run_mounts.get(at)
        run_claim = _claim(run_volumes.get(run_mount["name"])) if run_mount else None
        if run_claim is None or _claim(volumes.get(mount["name"])) != run_claim:
            found.append(f"{var}: the executors' {at} is not the run pods' volume ({run_claim})")
    run_context = values["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"]["podSpecConfig"]["securityContext"]  # fmt: skip
    for key in ("runAsUser", "runAsGroup", "fsGroup"):
        mine = spec.get("securityContext", {}).get(key)
        if mine != run_context.get(key):
            found.append(f"executors' {key} {mine} is not the run pods' {run_context.get(key)}")
    env_from = container.get("envFrom", [])
    secrets = {e["secretRef"]["name"] for e in env_from if "secretRef" in e}
    maps = {e["configMapRef"]["name"] for e in env_from if "configMapRef" in e}
    if OBJECT_STORE_SECRET not in secrets:
        found.append(f"executors do not get the {OBJECT_STORE_SECRET} Secret")
    for config_map in ud.get("envConfigMaps", []):
        if config_map["name"] not in maps:
            found.append(f"executors do not get the {config_map['name']} ConfigMap")
    read_only_root = container.get("securityContext", {}).get("readOnlyRootFilesystem")
    if read_only_root and "/opt/spark/work-dir/" not in mounts:
        found.append("the executors' work-dir is on the read-only root: no jar can be fetched")
    return found


def image_problems() -> list[str]:
    """The user-code image carries deploy/spark where the paths say."""
    found = []
    steps = instructions((DOCKER / "Dockerfile").read_text())
    if ("COPY", "deploy/spark/ deploy/spark/") not in steps:
        found.append("the Dockerfile does not COPY deploy/spark/ into its WORKDIR")
    ignore = (DOCKER / "Dockerfile.dockerignore").read_text()
    for p in SPARK.rglob("*"):
        if p.is_file() and not allowed_by_dockerignore(str(p.relative_to(REPO)), ignore):
            found.append(f"{p.relative_to(REPO)} is left out by Dockerfile.dockerignore")
    return found


def executor_image_problems(dockerfile: str) -> list[str]:
    """Dockerfile.spark's versions against the driver's: pyspark, delta-spark, pyspark's Hadoop."""
    import pyspark

    args = build_args(instructions(dockerfile))
    hadoop = next(
        m.group(1)
        for p in (Path(pyspark.__file__).parent / "jars").iterdir()
        if (m := re.fullmatch(r"hadoop-client-api-(.+)\.jar", p.name))
    )
    found = []
    if not args.get("SPARK_IMAGE", "").startswith(f"apache/spark:{pyspark.__version__}-scala2.13-java17"):  # fmt: skip
        found.append(f"SPARK_IMAGE {args.get('SPARK_IMAGE')} is not Spark {pyspark.__version__}")
    if args.get("DELTA_VERSION") != metadata.version("delta-spark"):
        found.append(f"DELTA_VERSION {args.get('DELTA_VERSION')} is not delta-spark {metadata.version('delta-spark')}")  # fmt: skip
    if args.get("HADOOP_VERSION") != hadoop:
        found.append(f"HADOOP_VERSION {args.get('HADOOP_VERSION')} is not pyspark's Hadoop {hadoop}")  # fmt: skip
    major_minor = ".".join(pyspark.__version__.split(".")[:2])
    if f"delta-spark_{major_minor}_2.13" not in dockerfile:
        found.append(f"the executor image does not add delta-spark_{major_minor}_2.13")
    return found


# --- the objects, against the Kubernetes schemas -----------------------------------------


def test_the_executor_pod_template_and_the_rbac_validate() -> None:
    assert schema_problems(yaml.safe_load(TEMPLATE.read_text()), "pod template") == []
    docs = manifest_docs(RBAC)
    assert [d["kind"] for d in docs] == ["ServiceAccount", "Role", "RoleBinding"]
    assert [p for d in docs for p in schema_problems(d, d["kind"])] == []


def test_a_broken_pod_template_is_rejected() -> None:
    broken = yaml.safe_load(TEMPLATE.read_text())
    broken["spec"]["securityContext"]["runAsUser"] = "spark"
    broken["spec"]["containers"][0]["volumeMount"] = []  # a misspelt field
    assert schema_problems(broken, "pod template") != []


# --- the overlay, as Helm merges it ------------------------------------------------------


def test_the_merged_values_pass_the_base_values_checks() -> None:
    values = merged_values()
    assert problems(values) == []
    assert values_problems(values) == []
    # the overlay adds to the run pods; it keeps what the base gives them
    base_run = run_job(yaml.safe_load(VALUES.read_text()))["spec"]["template"]["spec"]
    run = run_job(values)["spec"]["template"]["spec"]
    assert run["containers"][0]["resources"] == base_run["containers"][0]["resources"]
    assert run["securityContext"] == base_run["securityContext"]


def test_the_merge_replaces_lists_and_merges_maps() -> None:
    # Helm's rule, which the overlay relies on: a list in the overlay replaces the base's
    assert merge({"a": {"b": 1, "l": [1, 2]}}, {"a": {"c": 2, "l": [3]}}) == {
        "a": {"b": 1, "c": 2, "l": [3]}
    }


def test_conf_values_rbac_and_image_agree() -> None:
    conf = spark_defaults(DEFAULTS.read_text())
    assert conf["spark.kubernetes.container.image"].endswith(":4.2.0")
    assert agreement_problems(conf, merged_values(), manifest_docs(RBAC)) == []
    assert image_problems() == []
    assert executor_image_problems((DOCKER / "Dockerfile.spark").read_text()) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda c, v, r: c.update(
                {"spark.kubernetes.authenticate.driver.serviceAccountName": "other"}
            ),
            "service account",
        ),  # fmt: skip
        (
            lambda c, v, r: c.update(
                {
                    "spark.kubernetes.executor.podTemplateFile": "/opt/recassets/deploy/spark/missing.yaml"
                }
            ),
            "podTemplateFile",
        ),  # fmt: skip
        (lambda c, v, r: c.update({"spark.sql.shuffle.partitions": "200"}), "ignored here"),
        (
            lambda c, v, r: c.update({"spark.kubernetes.executor.podNamePrefix": "recassets"}),
            "podNamePrefix",
        ),
        (lambda c, v, r: r[2]["subjects"][0].update({"name": "default"}), "RoleBinding"),
        (lambda c, v, r: r[1]["rules"][0].update({"verbs": ["get"]}), "cannot"),
        (
            lambda c, v, r: v["runLauncher"]["config"]["k8sRunLauncher"]["runK8sConfig"][
                "containerConfig"
            ]["env"].pop(0),
            "SPARK_LOCAL_IP",
        ),  # fmt: skip
    ],
    ids=["account", "template", "overridden", "prefix", "binding", "verbs", "local_ip"],
)
def test_a_disagreement_is_named(edit, expected: str) -> None:
    conf, values, rbac = spark_defaults(DEFAULTS.read_text()), merged_values(), manifest_docs(RBAC)
    edit(conf, values, rbac)
    assert any(expected in p for p in agreement_problems(conf, values, rbac))


def _template() -> dict[str, Any]:
    return yaml.safe_load(TEMPLATE.read_text())


def _local_lake(values: dict[str, Any]) -> dict[str, Any]:
    """The values with the lake on the shared volume instead of the object store."""
    env = values["dagster-user-deployments"]["deployments"][0]["env"]
    next(e for e in env if e["name"] == "RECASSETS_LAKE")["value"] = "/data/recassets/lake"
    return values


def _executor(t: dict[str, Any]) -> dict[str, Any]:
    return t["spec"]["containers"][0]


def _mount(t: dict[str, Any], name: str) -> dict[str, Any]:
    return next(m for m in _executor(t)["volumeMounts"] if m["name"] == name)


def test_executors_get_every_path_credential_and_user_the_driver_hands_them() -> None:
    assert executor_problems(_template(), merged_values()) == []  # the s3a:// lake of the values
    assert executor_problems(_template(), _local_lake(merged_values())) == []
    # read-only would do for the landing zone alone, not for a lake on the volume
    template = _template()
    _mount(template, "recassets-data")["readOnly"] = True
    assert executor_problems(template, merged_values()) == []
    assert any("read-only" in p for p in executor_problems(template, _local_lake(merged_values())))  # fmt: skip


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            lambda t: _executor(t)["volumeMounts"].remove(_mount(t, "recassets-data")),
            "do not mount RECASSETS_LANDING",
        ),  # fmt: skip
        (
            lambda t: _mount(t, "recassets-data").update({"mountPath": "/mnt/data"}),
            "do not mount RECASSETS_LAKE",
        ),  # fmt: skip
        (
            lambda t: t["spec"]["volumes"][-1]["persistentVolumeClaim"].update(
                {"claimName": "other"}
            ),
            "not the run pods' volume",
        ),  # fmt: skip
        (lambda t: t["spec"]["volumes"].pop(), "has no volume"),
        (lambda t: t["spec"]["securityContext"].update({"runAsUser": 185}), "runAsUser 185"),
        (lambda t: _executor(t)["envFrom"].pop(0), "recassets-object-store Secret"),
        (lambda t: _executor(t)["envFrom"].pop(1), "recassets-object-store-config ConfigMap"),
        (lambda t: _executor(t)["volumeMounts"].remove(_mount(t, "work-dir")), "work-dir"),
    ],
    ids=[
        "no-landing",
        "other-path",
        "other-claim",
        "no-volume",
        "uid",
        "secret",
        "config",
        "work-dir",
    ],  # fmt: skip
)
def test_an_executor_template_missing_one_is_named(
    edit: Callable[[dict[str, Any]], Any], expected: str
) -> None:
    template = _template()
    edit(template)
    found = executor_problems(template, _local_lake(merged_values()))
    assert any(expected in p for p in found), found


def test_the_executor_image_lets_the_run_pods_user_read_its_jars() -> None:
    # a remote ADD is mode 600, owned by 185 here: the executors run as the run pods' user
    adds = [rest for word, rest in instructions((DOCKER / "Dockerfile.spark").read_text()) if word == "ADD"]  # fmt: skip
    assert len(adds) == 4
    assert all("--chmod=644 " in rest for rest in adds), adds


def test_a_mismatched_executor_image_is_named() -> None:
    text = (DOCKER / "Dockerfile.spark").read_text()
    assert any("DELTA_VERSION" in p for p in executor_image_problems(text.replace("DELTA_VERSION=4.4.0", "DELTA_VERSION=3.3.0")))  # fmt: skip
    assert any("SPARK_IMAGE" in p for p in executor_image_problems(text.replace(":4.2.0-", ":3.5.1-")))  # fmt: skip


# --- pyspark reads SPARK_CONF_DIR, and get_spark's settings win -----------------------------

CHILD = """
from recassets.spark import get_spark
from tests.conftest import TEST_SPARK_CONF
s = get_spark(conf=TEST_SPARK_CONF)
print("marker=" + s.conf.get("spark.recassets.marker", "unset"))
print("partitions=" + s.conf.get("spark.sql.shuffle.partitions"))
"""


def test_pyspark_reads_spark_conf_dir_under_get_spark(tmp_path: Path) -> None:
    (tmp_path / "spark-defaults.conf").write_text(
        "spark.recassets.marker   from-conf-dir\nspark.sql.shuffle.partitions 999\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SPARK_CONF_DIR"}
    out = subprocess.run(
        [sys.executable, "-c", CHILD], cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**env, "SPARK_CONF_DIR": str(tmp_path)},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert "marker=from-conf-dir" in out.stdout  # the file is read
    assert "partitions=2" in out.stdout  # get_spark's own (here the suite's) setting wins


def test_the_driver_loads_the_users_packages_and_the_s3a_jars_the_executor_image_has() -> None:
    from recassets.spark import S3A_PACKAGES, extra_packages

    mine = "org.apache.spark:spark-avro_2.13:4.2.0"
    # a local lake: only what the user configured, kept (Delta's helper used to drop it)
    assert extra_packages(f" {mine}, ", {"RECASSETS_LAKE": "/data/lake"}) == [mine]
    assert extra_packages("", {}) == []
    # an s3a:// lake (or artifacts, or landing): hadoop-aws and its SDK bundle, once
    s3 = extra_packages(f"{mine},{S3A_PACKAGES[0]}", {"RECASSETS_ARTIFACTS": "s3a://b/art"})
    assert s3 == [mine, *S3A_PACKAGES]
    # the same versions the executor image adds (deploy/docker/Dockerfile.spark)
    args = build_args(instructions((DOCKER / "Dockerfile.spark").read_text()))
    assert S3A_PACKAGES == (
        f"org.apache.hadoop:hadoop-aws:{args['HADOOP_VERSION']}",
        f"software.amazon.awssdk:bundle:{args['AWS_SDK_VERSION']}",
    )


def test_a_package_list_survives_the_one_line_conf() -> None:
    from recassets.spark import parse_conf

    got = parse_conf("spark.jars.packages=a:b:1, c:d:2,spark.sql.shuffle.partitions=4")
    assert got == {"spark.jars.packages": "a:b:1,c:d:2", "spark.sql.shuffle.partitions": "4"}
    assert parse_conf("") == {} and parse_conf(None) == {}
    with pytest.raises(ValueError, match="not key=value"):
        parse_conf("a:b:1,spark.x=y")
