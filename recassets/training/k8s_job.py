"""Sharded training as a Kubernetes Job: the training asset's cluster launcher.

``RECASSETS_TRAIN_LAUNCHER=k8s`` (default ``local``: the ranks are local processes,
``distributed.train_distributed``) sends ``policy.train_next``'s training to the cluster:

1. the spec is written as ``distributed.write_spec`` writes it (no credentials: they come
   from the ``recassets-object-store`` Secret), into a run folder on shared storage
   (``<artifacts>/training-jobs/<job>/``: the checkpoint comes back there). In a Dagster run's
   pod the name is the same for every attempt of the step (``attempt_name``), and what an
   earlier attempt left under it (a Job still holding GPUs after its launcher was killed) is
   deleted first (``remove_earlier_attempt``);
2. the three objects of ``deploy/k8s/training-job.yaml`` (the one source of truth: a headless
   Service, a ConfigMap holding ``spec.json``, an Indexed ``batch/v1`` Job running torchrun)
   are rendered for this launch (``render``): the name ``recassets-train-<kind>-<8 hex>``,
   its labels (and the run's, ``recassets/run-id``), the node count (completions, parallelism,
   ``--nnodes``), pod 0's DNS name as the rendezvous address, the image and the spec;
   everything else is the template's;
3. they are created with the official ``kubernetes`` client: the Job first, suspended (owned by
   the launching pod when it is known, ``launcher_pod``: deleting that pod deletes the Job),
   then the ConfigMap and the Service owned by the Job (``ownerReferences``: the garbage
   collector removes them with it), then the Job is resumed, so no pod starts before its spec
   exists;
4. the Job is polled until its ``Complete`` or ``Failed`` condition or the timeout; a failure
   or a timeout raises ``ClusterTrainingError`` naming the Job and its failed pods (every pod
   when none failed) with the tail of their logs;
5. the objects are deleted (``propagationPolicy: Background``: the pods go too) unless
   ``RECASSETS_TRAIN_KEEP=1``; rank 0's checkpoint is loaded from the spec's ``output``, so the
   caller gets what ``train_distributed`` returns.

Settings (environment; an invalid value raises naming its variable):

- ``RECASSETS_TRAIN_IMAGE``: the user-code image built with ``--build-arg VARIANT=cuda`` (required);
- ``RECASSETS_TRAIN_NAMESPACE``: default the pod's own namespace in a cluster, else ``recassets``;
- ``RECASSETS_TRAIN_NODES``: pods, one rank (one GPU) each; default the manifest's (2);
- ``RECASSETS_TRAIN_KEEP``: ``1`` keeps the objects (the Job's ``ttlSecondsAfterFinished``
  removes them later) and the run folder;
- ``RECASSETS_TRAIN_TEMPLATE``: the manifest's path (default ``deploy/k8s/training-job.yaml``
  of this checkout).

Kubernetes credentials: in-cluster (the pod's service account) when ``KUBERNETES_SERVICE_HOST``
is set, else the kubeconfig. The account needs ``deploy/k8s/training-rbac.yaml``.
"""

from __future__ import annotations

import contextlib
import copy
import datetime as dt
import hashlib
import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recassets.training.checkpoint import Checkpoint
from recassets.training.distributed import (
    DistributedTrainingError,
    prior_and_days,
    row_wise_from_env,
    run_spec,
    up_to_date,
)
from recassets.training.examples import PathsOrTable
from recassets.training.loop import DEFAULT_CONFIG, TrainConfig
from recassets.training.settings import (  # their home (no torch); re-exported for callers
    DEFAULT_NAMESPACE,
    DNS_LABEL,
    ENV_IMAGE,
    ENV_KEEP,
    ENV_LAUNCHER,
    ENV_NAMESPACE,
    ENV_NODES,
    ENV_TEMPLATE,
    LAUNCHERS,
    SA_NAMESPACE,
    TEMPLATE,
    ClusterSettings,
    launcher_from_env,
    settings_from_env,
    template_objects,
)
from recassets.training.worker_spec import check_storage_options, config_to_dict

if TYPE_CHECKING:
    from kubernetes.client import ApiClient

SPEC_KEYS = set(
    {"kind", "table", "partitions", "config", "output", "checkpoint", "full_retrain",
     "storage_options", "version", "row_wise"}
)  # fmt: skip
INSTANCE = "app.kubernetes.io/instance"  # the label every object of one launch carries
_DNS_LABEL = DNS_LABEL  # RFC 1035: Service and Job names
_MAX_NAME = 52  # pod hostnames are <job>-<index>, at most 63 characters
_RETRIED = (429, 500, 502, 503, 504)  # API answers worth polling again
_TAIL_LINES = 40
RUN_LABEL = "recassets/run-id"  # the Dagster run that launched it (kubectl get jobs -l ...)
_LABEL_VALUE = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
log = logging.getLogger(__name__)


class ClusterTrainingError(DistributedTrainingError):
    """The training Job failed or ran out of time (the message names it, with its pods' logs)."""


def job_name(kind: str) -> str:
    """``recassets-train-<kind>-<8 hex>``: unique per launch, a valid Service and Job name."""
    return f"recassets-train-{kind.replace('_', '-')}-{uuid.uuid4().hex[:8]}"


# --- rendering ----------------------------------------------------------------------------------


_template = template_objects


def _set_arg(args: list[str], flag: str, value: str) -> None:
    hits = [i for i, a in enumerate(args) if a.startswith(f"{flag}=")]
    if len(hits) != 1:
        raise ValueError(f"the template's torchrun arguments hold {len(hits)} {flag}= (want 1)")
    args[hits[0]] = f"{flag}={value}"


def render(
    spec: Mapping[str, Any],
    *,
    name: str,
    nodes: int,
    image: str,
    template: str | os.PathLike[str] = TEMPLATE,
    labels: Mapping[str, str] | None = None,
) -> dict[str, dict[str, Any]]:
    """The Service, ConfigMap and Job (by kind) of one launch: the template's objects with this
    launch's name, labels (and ``labels``), node count, rendezvous address, image and ``spec``
    (what ``distributed.write_spec`` writes); every other field as the template has it. A spec
    whose storage options look like credentials is refused: the ConfigMap is plain text."""
    if not _DNS_LABEL.match(name) or len(name) > _MAX_NAME:
        raise ValueError(
            f"job name {name!r}: lowercase letters, digits and '-', at most {_MAX_NAME}"
        )
    if nodes < 1:
        raise ValueError(f"nodes must be >= 1, got {nodes}")
    if set(spec) != SPEC_KEYS:
        raise ValueError(f"not a training spec: keys {sorted(set(spec) ^ SPEC_KEYS)} differ")
    check_storage_options(spec["storage_options"])
    docs = copy.deepcopy(_template(Path(template)))
    svc, cm, job = docs["Service"], docs["ConfigMap"], docs["Job"]
    old_job, old_cm = job["metadata"]["name"], cm["metadata"]["name"]
    labels = {**(labels or {}), INSTANCE: name, "app.kubernetes.io/component": "training"}
    for doc in docs.values():
        doc["metadata"].setdefault("labels", {}).update(labels)
    svc["metadata"]["name"] = job["metadata"]["name"] = name
    cm["metadata"]["name"] = f"{name}-spec"
    svc["spec"]["selector"] = {
        k: (name if v == old_job else v) for k, v in svc["spec"]["selector"].items()
    }
    job["spec"]["completions"] = job["spec"]["parallelism"] = nodes
    pod_template = job["spec"]["template"]
    pod_template.setdefault("metadata", {}).setdefault("labels", {}).update(labels)
    pod = pod_template["spec"]
    pod["subdomain"] = name
    for volume in pod.get("volumes", []):
        if volume.get("configMap", {}).get("name") == old_cm:
            volume["configMap"]["name"] = cm["metadata"]["name"]
    container = pod["containers"][0]
    container["image"] = image
    _set_arg(container["args"], "--nnodes", str(nodes))
    _set_arg(container["args"], "--master-addr", f"{name}-0.{name}")  # pod 0 under the Service
    (key,) = cm["data"]  # spec.json: the file torchrun's worker is given
    cm["data"][key] = json.dumps(dict(spec), indent=1)
    return docs


# --- the launch ---------------------------------------------------------------------------------


def api_client_from_env(env: Mapping[str, str] | None = None) -> ApiClient:
    """In-cluster credentials when ``KUBERNETES_SERVICE_HOST`` is set, else the kubeconfig."""
    from kubernetes import client, config

    e = os.environ if env is None else env
    cfg = client.Configuration()
    if e.get("KUBERNETES_SERVICE_HOST"):
        config.load_incluster_config(client_configuration=cfg)
    else:  # KUBECONFIG as now set (the client reads it once, when it is imported)
        config.load_kube_config(config_file=e.get("KUBECONFIG") or None, client_configuration=cfg)
    return client.ApiClient(cfg)


def run_job(
    objects: Mapping[str, dict[str, Any]],
    *,
    namespace: str,
    api_client: ApiClient | None = None,
    timeout_s: float | None = None,
    poll_s: float = 10.0,
    keep: bool = False,
    owner: Mapping[str, str] | None = None,
) -> None:
    """Create the rendered objects, wait for the Job, delete them (unless ``keep``); raise
    ``ClusterTrainingError`` on a failed Job or after ``timeout_s`` (default: the Job's
    ``activeDeadlineSeconds`` and 10 minutes to schedule). ``owner``: the launching pod's
    ``ownerReference`` (``LauncherPod.reference``), so that the Job goes with that pod."""
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = api_client if api_client is not None else api_client_from_env()
    # Any: the generated client declares every call's result as a union of its return shapes
    core: Any = client.CoreV1Api(api)
    batch: Any = client.BatchV1Api(api)
    name = objects["Job"]["metadata"]["name"]
    if timeout_s is None:
        timeout_s = float(objects["Job"]["spec"].get("activeDeadlineSeconds", 86400)) + 600.0
    where = f"training job {namespace}/{name}"
    done, made_kinds = False, []  # deleted at the end: only what this launch created
    try:
        job = copy.deepcopy(objects["Job"])
        job["spec"]["suspend"] = True  # no pod before its ConfigMap and Service exist
        if owner is not None:
            # cleanup below is this process's: killed (OOM), it never runs, and the Job would
            # hold its GPUs until activeDeadlineSeconds. Owned by the launching pod, the garbage
            # collector deletes it when that pod is deleted (a terminated Dagster run's steps).
            job["metadata"]["ownerReferences"] = [dict(owner)]
        made = batch.create_namespaced_job(namespace, job)
        made_kinds.append("Job")
        by_job = [{"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": made.metadata.uid}]
        for kind, create in (
            ("ConfigMap", core.create_namespaced_config_map),
            ("Service", core.create_namespaced_service),
        ):
            body = copy.deepcopy(objects[kind])
            body["metadata"]["ownerReferences"] = by_job
            create(namespace, body)
            made_kinds.append(kind)
        batch.patch_namespaced_job(
            name, namespace, {"spec": {"suspend": False}},
            _content_type="application/merge-patch+json",
        )  # fmt: skip
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                status = batch.read_namespaced_job(name, namespace).status
            except ApiException as e:
                if e.status not in _RETRIED or time.monotonic() > deadline:
                    raise
                status = None
            true = {c.type: c for c in (status and status.conditions) or [] if c.status == "True"}
            if "Complete" in true:
                done = True
                return
            if "Failed" in true:
                c = true["Failed"]
                raise ClusterTrainingError(
                    f"{where} failed ({c.reason}: {c.message})\n"
                    + _pods_report(core, namespace, name)
                )
            if time.monotonic() > deadline:
                raise ClusterTrainingError(
                    f"{where} did not finish in {timeout_s:.0f} s\n"
                    + _pods_report(core, namespace, name)
                )
            time.sleep(poll_s)
    finally:
        if not keep and done:
            _delete(core, batch, objects, namespace, made_kinds)
        elif not keep:  # however it failed (an interrupt too): the first error is the one raised
            with contextlib.suppress(Exception):
                _delete(core, batch, objects, namespace, made_kinds)


def _pods_report(core: Any, namespace: str, name: str) -> str:
    """Each failed pod of the Job (every pod when none failed): its phase and its log's tail."""
    from kubernetes.client.exceptions import ApiException

    try:
        pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={name}").items
    except ApiException as e:
        return f"(its pods could not be listed: {e.status} {e.reason})"
    failed = [p for p in pods if p.status is not None and p.status.phase == "Failed"]
    lines: list[str] = []
    for p in sorted(failed or pods, key=lambda p: p.metadata.name):
        pod = p.metadata.name
        phase = p.status.phase if p.status is not None else "?"
        try:
            log = core.read_namespaced_pod_log(pod, namespace, tail_lines=_TAIL_LINES)
        except ApiException as e:
            log = f"(no log: {e.status} {e.reason})"
        lines.append(f"pod {pod} ({phase}), last {_TAIL_LINES} log lines:\n{log}")
    return "\n".join(lines) if lines else "(no pods)"


def _delete(
    core: Any,
    batch: Any,
    objects: Mapping[str, dict[str, Any]],
    namespace: str,
    kinds: Sequence[str],
) -> None:
    """Delete the objects of ``kinds`` (a 404 is fine: the garbage collector may be first)."""
    from kubernetes.client.exceptions import ApiException

    for delete, kind in (
        (batch.delete_namespaced_job, "Job"),
        (core.delete_namespaced_service, "Service"),
        (core.delete_namespaced_config_map, "ConfigMap"),
    ):
        if kind not in kinds:
            continue
        try:
            delete(objects[kind]["metadata"]["name"], namespace, propagation_policy="Background")
        except ApiException as e:
            if e.status != 404:
                raise


# --- the launching pod and its earlier attempts -------------------------------------------------


@dataclass(frozen=True)
class LauncherPod:
    """The pod this process runs in (a Dagster step or run pod), as the API has it."""

    name: str
    uid: str
    namespace: str
    labels: Mapping[str, str]

    @property
    def run_id(self) -> str | None:
        """Its Dagster run (the label dagster-k8s gives run and step pods)."""
        return self.labels.get("dagster/run-id") or None

    def reference(self) -> dict[str, str]:
        # no blockOwnerDeletion: that needs a permission on the pod's finalizers, and deleting
        # the pod need not wait for the Job
        return {"apiVersion": "v1", "kind": "Pod", "name": self.name, "uid": self.uid}


def launcher_pod(core: Any, env: Mapping[str, str] | None = None) -> LauncherPod | None:
    """This process's pod in a cluster (``KUBERNETES_SERVICE_HOST`` set), else None: named by
    ``POD_NAME`` (downward API, where the deployment sets it) or ``HOSTNAME`` (a pod's name
    unless its spec sets another hostname), in ``POD_NAMESPACE`` or the service account's
    namespace, read through the API with a field selector (the launch's Role lists pods; it
    does not get them). None too when the API does not answer: the launch goes on, unowned."""
    from kubernetes.client.exceptions import ApiException

    e = os.environ if env is None else env
    if not e.get("KUBERNETES_SERVICE_HOST"):
        return None
    name = (e.get("POD_NAME") or e.get("HOSTNAME") or "").strip()
    namespace = (e.get("POD_NAMESPACE") or "").strip()
    if not namespace and SA_NAMESPACE.is_file():
        namespace = SA_NAMESPACE.read_text().strip()
    if not name or not namespace:
        return None
    try:
        pods = core.list_namespaced_pod(namespace, field_selector=f"metadata.name={name}").items
    except ApiException as err:
        log.warning("pod %s/%s could not be read (%s): the training Job is not owned by it, "
                    "nor an earlier attempt's deleted", namespace, name, err.status)  # fmt: skip
        return None
    uid = e.get("POD_UID")
    if len(pods) != 1 or (uid and pods[0].metadata.uid != uid):
        return None  # not this pod (another hostname set in the pod spec)
    meta = pods[0].metadata
    return LauncherPod(meta.name, meta.uid, namespace, dict(meta.labels or {}))


def attempt_name(kind: str, pod: LauncherPod | None, config: TrainConfig) -> str | None:
    """The Job's name when the launching pod belongs to a Dagster run: the same for every
    attempt of one training step of that run (a retried step, a step pod started again), so a
    new attempt finds what the last left. From the run id, the step (``dagster/op``, on step
    pods), the model kind and its config (the ranker and the sequence-aware ranker are both
    ``ranking``, and may train in one run pod). None without a run id (``job_name``'s then)."""
    if pod is None or pod.run_id is None:
        return None
    key = json.dumps([pod.run_id, pod.labels.get("dagster/op", ""), kind,
                      config_to_dict(config)], sort_keys=True)  # fmt: skip
    return (
        f"recassets-train-{kind.replace('_', '-')}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
    )


def remove_earlier_attempt(
    core: Any, batch: Any, name: str, namespace: str, *, timeout_s: float = 600.0,
    poll_s: float = 2.0,
) -> bool:  # fmt: skip
    """Delete the Job (its pods first: ``Foreground``), Service and ConfigMap that an earlier
    attempt of this launch left under ``name``, and wait until the Job is gone: its pods then
    no longer hold the GPUs, and the name is free. Returns whether there was any."""
    from kubernetes.client.exceptions import ApiException

    found = False
    for delete, obj in (
        (batch.delete_namespaced_job, name),
        (core.delete_namespaced_service, name),
        (core.delete_namespaced_config_map, f"{name}-spec"),
    ):
        try:
            delete(obj, namespace, propagation_policy="Foreground")
            found = True
        except ApiException as e:
            if e.status != 404:
                raise
    deadline = time.monotonic() + timeout_s
    while found:
        try:
            batch.read_namespaced_job(name, namespace)
        except ApiException as e:
            if e.status == 404:
                break
            if e.status not in _RETRIED:
                raise
        if time.monotonic() > deadline:
            raise ClusterTrainingError(
                f"training job {namespace}/{name}, left by an earlier attempt, was still there "
                f"{timeout_s:.0f} s after its deletion"
            )
        time.sleep(poll_s)
    return found


def train_on_cluster(
    kind: str,
    paths_or_table_path: PathsOrTable,
    partitions: Sequence[dt.date | str],
    config: TrainConfig = DEFAULT_CONFIG,
    *,
    shared_dir: str | os.PathLike[str],
    checkpoint: Checkpoint | str | os.PathLike[str] | None = None,
    output: str | os.PathLike[str] | None = None,
    full_retrain: bool = False,
    storage_options: Mapping[str, str] | None = None,
    version: int | None = None,
    row_wise: Sequence[str] | None = None,
    timeout_s: float | None = None,
    settings: ClusterSettings | None = None,
    api_client: ApiClient | None = None,
    poll_s: float = 10.0,
    name: str | None = None,
    load: Callable[[Path], Checkpoint] = Checkpoint.load,
    env: Mapping[str, str] | None = None,
) -> Checkpoint:
    """``distributed.train_distributed``'s arguments and result, the ranks being the pods of a
    Kubernetes Job (module docstring). ``shared_dir``: a folder the Job's pods mount at the same
    path (the run folder, the checkpoint, a prior checkpoint that has no file); the table and a
    prior checkpoint's file must be there too. ``settings``: default ``settings_from_env()``.
    ``name``: default ``attempt_name`` in a Dagster run's pod (what an earlier attempt left
    under it is deleted first), else ``job_name``. ``env``: where ``launcher_pod`` looks."""
    from kubernetes import client

    from recassets.training.loop import _RUNS

    if kind not in _RUNS:
        raise ValueError(f"unknown model kind {kind!r}")
    check_storage_options(storage_options)  # before anything is made (render checks too)
    settings = settings_from_env() if settings is None else settings
    rows = row_wise_from_env() if row_wise is None else tuple(row_wise)
    prior, days = prior_and_days(checkpoint, partitions, full_retrain)
    if prior is not None and up_to_date(prior, days, output):
        return prior  # nothing new, as the loop does
    api = api_client if api_client is not None else api_client_from_env()
    pod = launcher_pod(client.CoreV1Api(api), env)
    again = attempt_name(kind, pod, config) if name is None else None
    name = again or name or job_name(kind)
    folder = Path(shared_dir).absolute() / name
    if again is not None:  # a retry: the last attempt's Job (and its GPUs), then its folder
        remove_earlier_attempt(client.CoreV1Api(api), client.BatchV1Api(api), name,
                               settings.namespace, poll_s=min(poll_s, 2.0))  # fmt: skip
        shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    run_id = pod.run_id if pod is not None else None
    labels = {RUN_LABEL: run_id} if run_id and _LABEL_VALUE.match(run_id) else {}
    # an ownerReference names an owner in the object's own namespace (one in another is taken
    # for a missing owner, and the garbage collector would delete the Job at once)
    owner = pod.reference() if pod is not None and pod.namespace == settings.namespace else None
    try:
        spec_file, out = run_spec(folder, kind, paths_or_table_path, days, config, prior,
                                  full_retrain=full_retrain, storage_options=storage_options,
                                  version=version, row_wise=rows)  # fmt: skip
        spec = json.loads(Path(spec_file).read_text())
        objects = render(spec, name=name, nodes=settings.nodes, image=settings.image,
                         template=settings.template, labels=labels)  # fmt: skip
        run_job(
            objects, namespace=settings.namespace, api_client=api,
            timeout_s=timeout_s, poll_s=poll_s, keep=settings.keep, owner=owner,
        )  # fmt: skip
        if not out.is_file():
            raise ClusterTrainingError(
                f"training job {settings.namespace}/{name} completed but wrote no checkpoint at "
                f"{out}: is {shared_dir} the same volume in its pods?"
            )
        ckpt = load(out)
        if output is not None:
            ckpt.save(output)
        else:
            ckpt.path = None  # the file goes with the run folder
        return ckpt
    finally:
        if not settings.keep:
            shutil.rmtree(folder, ignore_errors=True)


__all__ = [
    "DEFAULT_NAMESPACE",
    "ENV_IMAGE",
    "ENV_KEEP",
    "ENV_LAUNCHER",
    "ENV_NAMESPACE",
    "ENV_NODES",
    "ENV_TEMPLATE",
    "LAUNCHERS",
    "SA_NAMESPACE",
    "TEMPLATE",
    "ClusterSettings",
    "ClusterTrainingError",
    "LauncherPod",
    "api_client_from_env",
    "attempt_name",
    "job_name",
    "launcher_from_env",
    "launcher_pod",
    "remove_earlier_attempt",
    "render",
    "run_job",
    "settings_from_env",
    "train_on_cluster",
]
