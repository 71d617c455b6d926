"""The training asset's cluster launch (recassets.training.k8s_job): the objects it renders
from deploy/k8s/training-job.yaml, and the launch against a Kubernetes API.

No Kubernetes cluster can exist on these machines (no container runtime, no kubelet, no
network out), so the API is a fake: a real HTTP server on 127.0.0.1, in this module, that
speaks the few paths the launcher uses (POST jobs, configmaps and services; PATCH and GET a
job; list pods; a pod's log; DELETE) with the API's JSON shapes, and the official
``kubernetes`` client is pointed at it (``Configuration(host=...)``, or a kubeconfig for the
path through ``policy.train_next``). It checks what the launcher sends and does with the
answers; not that a real API server admits the objects (the strict schemas stand in for that)
nor that pods are scheduled, rendezvous or train (no GPU, no nodes). The checkpoint the "Job"
writes is a real one, trained here on the planted days and copied to the spec's ``output`` when
the Job is resumed, as rank 0 would write it.

Each check has a broken case that fails it.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import torch
import yaml

from recassets.paths import Paths
from recassets.training import distributed, k8s_job, policy
from recassets.training.checkpoint import Checkpoint
from recassets.training.loop import train_two_tower
from support import planted
from tests.deploy.test_k8s_schemas import schema_problems
from tests.deploy.test_training_job import problems as template_problems
from tests.unit.training.tiny import DAYS, N_CATEGORIES, TINY

NS = "recassets"
IMAGE = "registry.example/recassets:1.2.3-gpu"


# --- rendering ------------------------------------------------------------------------------


def _spec(tmp_path: Path, config: Any = TINY) -> dict[str, Any]:
    path = distributed.write_spec(
        tmp_path / "spec.json", "two_tower", "s3a://bucket/lake/training_examples", DAYS[:3],
        config, output="/data/recassets/artifacts/training-jobs/x/checkpoint.pt",
    )  # fmt: skip
    return json.loads(Path(path).read_text())


def _args(job: dict[str, Any]) -> dict[str, str]:
    container = job["spec"]["template"]["spec"]["containers"][0]
    return dict(a.removeprefix("--").split("=", 1) for a in container["args"] if "=" in a)


def launch_problems(
    docs: dict[str, dict[str, Any]], name: str, nodes: int, spec: dict[str, Any]
) -> list[str]:
    """Ways the rendered objects are not this launch's (empty: they are)."""
    svc, cm, job = docs["Service"], docs["ConfigMap"], docs["Job"]
    pod = job["spec"]["template"]["spec"]
    found = []
    if (svc["metadata"]["name"], job["metadata"]["name"]) != (name, name):
        found.append("the Service or the Job is not named after the launch")
    mounted = [v["configMap"]["name"] for v in pod["volumes"] if "configMap" in v]
    if mounted != [cm["metadata"]["name"]]:
        found.append(f"the pods mount ConfigMap {mounted}, not {cm['metadata']['name']}")
    args = _args(job)
    if {job["spec"]["completions"], job["spec"]["parallelism"], int(args["nnodes"])} != {nodes}:
        found.append(f"the node count is not {nodes} everywhere")
    if args["master-addr"] != f"{name}-0.{name}":
        found.append(f"--master-addr {args['master-addr']} is not pod 0 of {name}")
    for where, meta in [*docs.items(), ("pod template", job["spec"]["template"]["metadata"])]:
        if meta.get("metadata", meta).get("labels", {}).get(k8s_job.INSTANCE) != name:
            found.append(f"{where} lacks the launch's {k8s_job.INSTANCE} label")
    if pod["containers"][0]["image"] != IMAGE:
        found.append("the trainer does not run the configured image")
    shipped = json.loads(cm["data"]["spec.json"])
    if shipped != spec:
        found.append("the ConfigMap's spec is not the launch's")
    distributed.config_from_dict(shipped["config"])  # the worker's reader: raises on a bad field
    return found


def _paths(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for k, v in tree.items():
            out.update(_paths(v, f"{prefix}.{k}" if prefix else str(k)))
        return out
    if isinstance(tree, list):
        out = {}
        for i, v in enumerate(tree):
            out.update(_paths(v, f"{prefix}[{i}]"))
        return out
    return {prefix: tree}


def changed(docs: dict[str, dict[str, Any]]) -> set[str]:
    """Leaves that differ from the template's (added, removed or changed)."""
    template = k8s_job._template()
    a = {f"{k}.{p}": v for k, d in template.items() for p, v in _paths(d).items()}
    b = {f"{k}.{p}": v for k, d in docs.items() for p, v in _paths(d).items()}
    return {p for p in a.keys() | b.keys() if a.get(p, object()) != b.get(p, object())}


LABELS = ("app.kubernetes.io/instance", "app.kubernetes.io/component")
EXPECTED_CHANGES = {
    "Service.metadata.name",
    "Service.spec.selector.job-name",
    "ConfigMap.metadata.name",
    "ConfigMap.data.spec.json",
    "Job.metadata.name",
    "Job.spec.completions",
    "Job.spec.parallelism",
    "Job.spec.template.spec.subdomain",
    "Job.spec.template.spec.containers[0].image",
    "Job.spec.template.spec.containers[0].args[0]",  # --nnodes
    "Job.spec.template.spec.containers[0].args[3]",  # --master-addr
    "Job.spec.template.spec.volumes[0].configMap.name",
    *(f"{k}.metadata.labels.{label}" for k in ("Service", "ConfigMap", "Job") for label in LABELS),
    *(f"Job.spec.template.metadata.labels.{label}" for label in LABELS),
}


@pytest.fixture
def rendered(tmp_path: Path) -> tuple[dict[str, dict[str, Any]], dict[str, Any]]:
    spec = _spec(tmp_path)
    return k8s_job.render(
        spec, name="recassets-train-two-tower-0a1b2c3d", nodes=3, image=IMAGE
    ), spec


def test_the_rendered_objects_validate_and_agree(rendered) -> None:
    docs, spec = rendered
    assert [p for kind, d in docs.items() for p in schema_problems(d, kind)] == []
    assert template_problems(docs) == []  # the template's own agreement checks
    assert launch_problems(docs, "recassets-train-two-tower-0a1b2c3d", 3, spec) == []
    # the worker reads back the launch's config (JSON turns its tuples into lists)
    shipped = distributed.config_from_dict(
        json.loads(docs["ConfigMap"]["data"]["spec.json"])["config"]
    )
    as_json = json.loads(json.dumps(distributed.config_to_dict(TINY)))
    assert distributed.config_to_dict(shipped) == as_json
    assert changed(docs) == EXPECTED_CHANGES  # everything else is the template's


def test_names_are_unique_and_valid(tmp_path: Path) -> None:
    names = {k8s_job.job_name("two_tower") for _ in range(50)}
    assert len(names) == 50
    spec = _spec(tmp_path)
    for name in names:
        docs = k8s_job.render(spec, name=name, nodes=2, image=IMAGE)
        assert schema_problems(docs["Service"], "Service") == []
    with pytest.raises(ValueError, match="job name"):
        k8s_job.render(spec, name="recassets_train", nodes=2, image=IMAGE)
    with pytest.raises(ValueError, match="job name"):
        k8s_job.render(spec, name="recassets-train-" + "x" * 40, nodes=2, image=IMAGE)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["ConfigMap"]["metadata"].__setitem__("name", "recassets-train-spec"), "mount ConfigMap"),
        (lambda d: d["Job"]["spec"].__setitem__("parallelism", 2), "node count"),
        (lambda d: d["Job"]["spec"]["template"]["spec"]["containers"][0]["args"].__setitem__(3, "--master-addr=recassets-train-0.recassets-train"), "is not pod 0"),
        (lambda d: d["Job"]["spec"]["template"]["metadata"]["labels"].pop(k8s_job.INSTANCE), "pod template lacks"),
        (lambda d: d["Job"]["spec"]["template"]["spec"]["containers"][0].__setitem__("image", "REGISTRY/recassets:TAG"), "image"),
        (lambda d: d["ConfigMap"]["data"].__setitem__("spec.json", json.dumps({**json.loads(d["ConfigMap"]["data"]["spec.json"]), "partitions": []})), "spec is not"),
    ],
    ids=["configmap-name", "node-count", "stale-dns", "pod-label", "image", "spec"],
)  # fmt: skip
def test_a_render_that_is_not_the_launch_is_caught(rendered, edit, expected) -> None:
    docs, spec = copy.deepcopy(rendered)
    edit(docs)
    found = launch_problems(docs, "recassets-train-two-tower-0a1b2c3d", 3, spec)
    assert any(expected in p for p in found), found


def test_a_rendered_object_off_the_schema_or_the_template_is_caught(rendered) -> None:
    docs = copy.deepcopy(rendered[0])
    docs["Job"]["spec"]["template"]["spec"]["tolerations"][0]["effect"] = 7
    assert any("effect" in p for p in schema_problems(docs["Job"], "Job"))
    docs = copy.deepcopy(rendered[0])
    del docs["Job"]["spec"]["template"]["spec"]["tolerations"]  # a field of the template lost
    assert "Job.spec.template.spec.tolerations[0].key" in changed(docs) - EXPECTED_CHANGES


def test_a_spec_the_worker_cannot_read_is_refused(tmp_path: Path, rendered) -> None:
    spec = _spec(tmp_path)
    with pytest.raises(ValueError, match="not a training spec"):
        k8s_job.render({**spec, "epochz": 3}, name="recassets-train-x", nodes=2, image=IMAGE)
    docs = copy.deepcopy(rendered[0])
    bad = json.loads(docs["ConfigMap"]["data"]["spec.json"])
    bad["config"]["epochz"] = 3
    docs["ConfigMap"]["data"]["spec.json"] = json.dumps(bad)
    with pytest.raises(TypeError, match="epochz"):
        launch_problems(docs, "recassets-train-two-tower-0a1b2c3d", 3, bad)


# --- settings -------------------------------------------------------------------------------


def test_settings_from_the_environment() -> None:
    assert k8s_job.launcher_from_env({}) == "local"
    assert k8s_job.launcher_from_env({k8s_job.ENV_LAUNCHER: "k8s"}) == "k8s"
    s = k8s_job.settings_from_env({k8s_job.ENV_IMAGE: IMAGE})
    assert (s.image, s.namespace, s.nodes, s.keep) == (IMAGE, "recassets", 2, False)
    s = k8s_job.settings_from_env(
        {k8s_job.ENV_IMAGE: IMAGE, k8s_job.ENV_NAMESPACE: "ml", k8s_job.ENV_NODES: "4",
         k8s_job.ENV_KEEP: "1"}
    )  # fmt: skip
    assert (s.namespace, s.nodes, s.keep) == ("ml", 4, True)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({k8s_job.ENV_LAUNCHER: "kubernetes"}, k8s_job.ENV_LAUNCHER),
        ({}, k8s_job.ENV_IMAGE),
        ({k8s_job.ENV_IMAGE: IMAGE, k8s_job.ENV_NODES: "0"}, k8s_job.ENV_NODES),
        ({k8s_job.ENV_IMAGE: IMAGE, k8s_job.ENV_NODES: "two"}, k8s_job.ENV_NODES),
        ({k8s_job.ENV_IMAGE: IMAGE, k8s_job.ENV_NAMESPACE: "Ml_1"}, k8s_job.ENV_NAMESPACE),
        ({k8s_job.ENV_IMAGE: IMAGE, k8s_job.ENV_KEEP: "yes"}, k8s_job.ENV_KEEP),
        ({k8s_job.ENV_IMAGE: IMAGE, k8s_job.ENV_TEMPLATE: "/nonexistent.yaml"}, k8s_job.ENV_TEMPLATE),
    ],
    ids=["launcher", "no-image", "zero-nodes", "nodes-word", "namespace", "keep", "template"],
)  # fmt: skip
def test_an_invalid_setting_names_its_variable(env: dict[str, str], variable: str) -> None:
    with pytest.raises(ValueError, match=variable):
        k8s_job.launcher_from_env(env)
        k8s_job.settings_from_env(env)


# --- a fake Kubernetes API ------------------------------------------------------------------


@dataclass
class FakeKube:
    """The API paths the launcher uses, over objects kept in memory. ``script``: what each GET
    of the resumed Job answers, in turn (the last repeats): an HTTP status code, or the Job's
    ``status``. ``on_resume``: called with the objects when the Job is un-suspended."""

    script: list[Any]
    pods: list[dict[str, Any]] = field(default_factory=list)
    logs: dict[str, str] = field(default_factory=dict)
    on_resume: Callable[[dict[tuple[str, str], dict[str, Any]]], None] | None = None
    objects: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    created: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    deleted: list[tuple[str, str, dict[str, list[str]]]] = field(default_factory=list)
    patches: list[tuple[str, Any]] = field(default_factory=list)
    polls: int = 0
    pod_queries: list[dict[str, list[str]]] = field(default_factory=list)
    log_queries: list[tuple[str, dict[str, list[str]]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    ROUTES = [
        ("POST", r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/(?P<res>jobs)", "create"),
        ("POST", r"/api/v1/namespaces/(?P<ns>[^/]+)/(?P<res>services|configmaps)", "create"),
        ("GET", r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs/(?P<name>[^/]+)", "read_job"),
        ("PATCH", r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/jobs/(?P<name>[^/]+)", "patch_job"),
        ("DELETE", r"/apis/batch/v1/namespaces/(?P<ns>[^/]+)/(?P<res>jobs)/(?P<name>[^/]+)", "delete"),
        ("DELETE", r"/api/v1/namespaces/(?P<ns>[^/]+)/(?P<res>services|configmaps)/(?P<name>[^/]+)", "delete"),
        ("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods", "list_pods"),
        ("GET", r"/api/v1/namespaces/(?P<ns>[^/]+)/pods/(?P<name>[^/]+)/log", "pod_log"),
    ]  # fmt: skip
    KINDS = {"jobs": "Job", "services": "Service", "configmaps": "ConfigMap"}

    def handle(self, method: str, url: str, headers: Any, body: bytes) -> tuple[int, Any]:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        for m, pattern, action in self.ROUTES:
            match = re.fullmatch(pattern, parts.path)
            if m == method and match:
                args = match.groupdict()
                if args.pop("ns") != NS:
                    return 403, _status(403, "wrong namespace")
                with self.lock:
                    return getattr(self, action)(query=query, headers=headers, body=body, **args)
        return 404, _status(404, f"no route {method} {parts.path}")

    def create(self, res: str, body: bytes, **_: Any) -> tuple[int, Any]:
        obj = json.loads(body)
        kind = self.KINDS[res]
        if obj.get("kind") != kind:
            return 400, _status(400, f"a {obj.get('kind')} posted to {res}")
        key = (kind, obj["metadata"]["name"])
        if key in self.objects:
            return 409, _status(409, "AlreadyExists")
        self.created.append((kind, copy.deepcopy(obj)))
        obj["metadata"]["uid"] = f"uid-{kind.lower()}-{len(self.created)}"
        self.objects[key] = obj
        return 201, obj

    def patch_job(self, name: str, headers: Any, body: bytes, **_: Any) -> tuple[int, Any]:
        job = self.objects.get(("Job", name))
        if job is None:
            return 404, _status(404, "NotFound")
        patch = json.loads(body)
        self.patches.append((headers.get("Content-Type"), patch))
        if headers.get("Content-Type") != "application/merge-patch+json":
            return 415, _status(415, "UnsupportedMediaType")
        job["spec"].update(patch["spec"])
        if not job["spec"]["suspend"] and self.on_resume is not None:
            self.on_resume(self.objects)
        return 200, job

    def read_job(self, name: str, **_: Any) -> tuple[int, Any]:
        job = self.objects.get(("Job", name))
        if job is None:
            return 404, _status(404, "NotFound")
        if job["spec"].get("suspend"):
            status: Any = {"conditions": [_cond("Suspended")]}
        else:
            status = self.script[min(self.polls, len(self.script) - 1)]
            self.polls += 1
            if isinstance(status, int):
                return status, _status(status, "try again")
        return 200, {**job, "status": status}

    def delete(self, res: str, name: str, query: dict[str, list[str]], **_: Any) -> tuple[int, Any]:
        kind = self.KINDS[res]
        self.deleted.append((kind, name, query))
        if self.objects.pop((kind, name), None) is None:
            return 404, _status(404, "NotFound")
        return 200, _status(200, "Success")

    def list_pods(self, query: dict[str, list[str]], **_: Any) -> tuple[int, Any]:
        self.pod_queries.append(query)
        (selector,) = query["labelSelector"]
        key, value = selector.split("=")
        items = [p for p in self.pods if p["metadata"]["labels"].get(key) == value]
        return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}

    def pod_log(self, name: str, query: dict[str, list[str]], **_: Any) -> tuple[int, Any]:
        self.log_queries.append((name, query))
        if name not in self.logs:
            return 404, _status(404, "NotFound")
        lines = self.logs[name].splitlines()
        return 200, "\n".join(lines[-int(query["tailLines"][0]) :]) + "\n"


def _status(code: int, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "code": code, "message": message,
            "status": "Success" if code < 300 else "Failure"}  # fmt: skip


def _cond(kind: str, reason: str = "", message: str = "") -> dict[str, Any]:
    return {"type": kind, "status": "True", "reason": reason, "message": message}


def _pod(job: str, index: int, phase: str) -> dict[str, Any]:
    labels = {"job-name": job, "batch.kubernetes.io/job-completion-index": str(index)}
    return {
        "metadata": {"name": f"{job}-{index}-abcde", "labels": labels},
        "status": {"phase": phase},
    }


@pytest.fixture
def kube() -> Iterator[tuple[FakeKube, str]]:
    fake = FakeKube(script=[])

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            code, payload = fake.handle(
                self.command, self.path, self.headers, self.rfile.read(length)
            )
            text = payload if isinstance(payload, str) else json.dumps(payload)
            data = text.encode()
            self.send_response(code)
            ctype = "text/plain" if isinstance(payload, str) else "application/json"
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield fake, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _client(host: str) -> Any:
    from kubernetes import client

    return client.ApiClient(client.Configuration(host=host))


# --- a real checkpoint, as rank 0 writes it -------------------------------------------------


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> Paths:
    paths = Paths.at(tmp_path_factory.mktemp("home"))
    planted.write_days(paths.table("training_examples"), range(4), n_categories=N_CATEGORIES)
    return paths


@pytest.fixture(scope="module")
def made(lake: Paths, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rank0") / "checkpoint.pt"
    train_two_tower(lake.table("training_examples"), DAYS[:1], replace(TINY, epochs=1), output=out)
    return out


def _write_checkpoint(made: Path) -> Callable[[dict[tuple[str, str], dict[str, Any]]], None]:
    """On resume: copy the real checkpoint to the output of the spec the ConfigMap carries."""

    def resume(objects: dict[tuple[str, str], dict[str, Any]]) -> None:
        (cm,) = [o for (kind, _), o in objects.items() if kind == "ConfigMap"]
        shutil.copyfile(made, json.loads(cm["data"]["spec.json"])["output"])

    return resume


def _same(a: Checkpoint, b: Checkpoint) -> bool:
    return a.partitions == b.partitions and a.metrics == b.metrics and all(
        torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict
    ) and a.state_dict.keys() == b.state_dict.keys()  # fmt: skip


# --- the launch -----------------------------------------------------------------------------

NAME = "recassets-train-two-tower-feedc0de"
SETTINGS = k8s_job.ClusterSettings(image=IMAGE, namespace=NS, nodes=3)


def _train(tmp_path: Path, host: str, **kw: Any) -> Checkpoint:
    return k8s_job.train_on_cluster(
        "two_tower", "s3a://bucket/lake/training_examples", DAYS[:3], TINY,
        shared_dir=tmp_path / "shared", settings=kw.pop("settings", SETTINGS),
        api_client=_client(host), poll_s=0.01, name=NAME, **kw,
    )  # fmt: skip


def _assert_cleaned(fake: FakeKube, tmp_path: Path) -> None:
    assert fake.objects == {}
    assert sorted((k, n) for k, n, _ in fake.deleted) == sorted(
        [("Job", NAME), ("Service", NAME), ("ConfigMap", f"{NAME}-spec")]
    )
    job_delete = next(q for k, _, q in fake.deleted if k == "Job")
    assert job_delete["propagationPolicy"] == ["Background"]
    assert list((tmp_path / "shared").iterdir()) == []  # the run folder went too


def test_a_completed_job_returns_rank_0s_checkpoint(kube, made: Path, tmp_path: Path) -> None:
    fake, host = kube
    fake.script = [503, {"active": 3}, {"active": 3}, {"succeeded": 3, "conditions": [_cond("Complete")]}]  # fmt: skip
    fake.on_resume = _write_checkpoint(made)
    ckpt = _train(tmp_path, host)

    assert _same(ckpt, Checkpoint.load(made)) and ckpt.path is None  # as train_distributed's
    # created in this order, with the rendered bodies (the Job suspended until the others exist,
    # which the Job owns)
    assert [k for k, _ in fake.created] == ["Job", "ConfigMap", "Service"]
    bodies = dict(fake.created)
    spec = json.loads(bodies["ConfigMap"]["data"]["spec.json"])
    assert spec["output"] == str(tmp_path / "shared" / NAME / "checkpoint.pt")
    expected = k8s_job.render(spec, name=NAME, nodes=3, image=IMAGE)
    assert bodies["Job"] == {
        **expected["Job"],
        "spec": {**expected["Job"]["spec"], "suspend": True},
    }
    owner = [{"apiVersion": "batch/v1", "kind": "Job", "name": NAME, "uid": "uid-job-1"}]
    for kind in ("ConfigMap", "Service"):
        assert bodies[kind]["metadata"].pop("ownerReferences") == owner
        assert bodies[kind] == expected[kind]
    assert fake.patches == [("application/merge-patch+json", {"spec": {"suspend": False}})]
    assert fake.polls == 4  # through the 503 and the running Job, to Complete
    assert launch_problems(expected, NAME, 3, spec) == []
    _assert_cleaned(fake, tmp_path)


def test_a_failed_job_raises_with_its_failed_pod_and_log(kube, tmp_path: Path) -> None:
    fake, host = kube
    fake.script = [{"active": 3}, {"failed": 1, "conditions": [_cond("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")]}]  # fmt: skip
    fake.pods = [_pod(NAME, 0, "Running"), _pod(NAME, 1, "Failed"), _pod("other-job", 0, "Failed")]
    noise = "\n".join(f"step {i}" for i in range(200))
    fake.logs = {f"{NAME}-1-abcde": f"{noise}\nRuntimeError: NCCL error: unhandled system error"}
    with pytest.raises(k8s_job.ClusterTrainingError) as err:
        _train(tmp_path, host)
    text = str(err.value)
    assert f"training job {NS}/{NAME} failed (BackoffLimitExceeded" in text
    assert f"pod {NAME}-1-abcde (Failed)" in text and "NCCL error" in text
    assert "step 199" in text and "step 100" not in text  # the tail only
    assert f"{NAME}-0-abcde" not in text and "other-job" not in text  # only the failed pod
    assert fake.pod_queries == [{"labelSelector": [f"job-name={NAME}"]}]
    _assert_cleaned(fake, tmp_path)


def test_a_job_past_its_timeout_is_stopped(kube, tmp_path: Path) -> None:
    fake, host = kube
    fake.script = [{"active": 3}]  # never finishes
    fake.pods = [_pod(NAME, 0, "Running"), _pod(NAME, 1, "Pending")]
    fake.logs = {f"{NAME}-0-abcde": "waiting for the rendezvous"}
    with pytest.raises(k8s_job.ClusterTrainingError, match=f"{NAME} did not finish in 0 s") as err:
        _train(tmp_path, host, timeout_s=0.2)
    text = str(err.value)
    assert "waiting for the rendezvous" in text and f"{NAME}-1-abcde (Pending)" in text
    assert "no log: 404" in text  # the pending pod has none
    assert fake.polls >= 2
    _assert_cleaned(fake, tmp_path)


def test_keep_leaves_the_objects_and_a_completed_job_without_checkpoint_fails(kube, tmp_path: Path) -> None:  # fmt: skip
    fake, host = kube
    fake.script = [{"conditions": [_cond("Complete")]}]  # but nothing wrote the checkpoint
    with pytest.raises(k8s_job.ClusterTrainingError, match="wrote no checkpoint"):
        _train(tmp_path, host, settings=replace(SETTINGS, keep=True))
    assert sorted(fake.objects) == [("ConfigMap", f"{NAME}-spec"), ("Job", NAME), ("Service", NAME)]
    assert fake.deleted == []
    assert (tmp_path / "shared" / NAME / "spec.json").is_file()


def test_train_next_launches_the_job_with_the_launcher_set(
    kube, lake: Paths, made: Path, tmp_path: Path, monkeypatch
) -> None:
    """The asset's path: ``policy.train_next`` with RECASSETS_TRAIN_LAUNCHER=k8s, the settings
    and the client's configuration from the environment (a kubeconfig naming the fake API)."""
    fake, host = kube
    fake.script = [{"conditions": [_cond("Complete")]}]
    fake.on_resume = _write_checkpoint(made)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": host}}],
        "users": [{"name": "fake", "user": {"token": "t"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
    }))  # fmt: skip
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    for k, v in {"KUBECONFIG": str(kubeconfig), k8s_job.ENV_LAUNCHER: "k8s", k8s_job.ENV_IMAGE: IMAGE,
                 k8s_job.ENV_NAMESPACE: NS, k8s_job.ENV_NODES: "4"}.items():  # fmt: skip
        monkeypatch.setenv(k, v)
    home = Paths.at(tmp_path / "home", lake=lake.lake)
    result = policy.train_next(home, "two_tower", TINY, processes=1)
    assert result.new_version and result.path == str(
        Path(home.artifacts) / "models" / "two_tower" / "0001.pt"
    )
    assert _same(Checkpoint.load(result.path), Checkpoint.load(made))
    (job,) = [b for k, b in fake.created if k == "Job"]
    assert job["spec"]["completions"] == 4 and job["metadata"]["name"].startswith(
        "recassets-train-two-tower-"
    )
    spec = json.loads(next(b for k, b in fake.created if k == "ConfigMap")["data"]["spec.json"])
    assert spec["table"] == lake.table("training_examples") and spec["partitions"] == [
        str(d) for d in DAYS[:3]
    ]
    assert Path(spec["output"]).parent.parent == Path(home.artifacts) / "training-jobs"
    assert fake.objects == {} and list((Path(home.artifacts) / "training-jobs").iterdir()) == []
    # the default launcher (local) trains here and never calls the API
    monkeypatch.setenv(k8s_job.ENV_LAUNCHER, "local")
    local: list[Any] = []
    monkeypatch.setattr(
        "recassets.training.loop.train", lambda *a, **k: local.append(a) or Checkpoint.load(made)
    )
    monkeypatch.setattr(
        k8s_job, "train_on_cluster", lambda *a, **k: pytest.fail("launched on the cluster")
    )
    calls = len(fake.created)
    assert policy.train_next(home, "two_tower", TINY, processes=1, full_retrain=True).new_version
    assert len(local) == 1 and len(fake.created) == calls


def test_a_refused_create_deletes_only_what_this_launch_made(kube, tmp_path: Path) -> None:
    from kubernetes.client.exceptions import ApiException

    fake, host = kube
    fake.script = [{"conditions": [_cond("Complete")]}]
    theirs = {"kind": "Service", "metadata": {"name": NAME}}
    fake.objects[("Service", NAME)] = theirs  # the name is taken: the API answers 409
    with pytest.raises(ApiException) as err:
        _train(tmp_path, host)
    assert err.value.status == 409
    assert [k for k, _ in fake.created] == ["Job", "ConfigMap"]
    assert sorted((k, n) for k, n, _ in fake.deleted) == [
        ("ConfigMap", f"{NAME}-spec"),
        ("Job", NAME),
    ]
    assert fake.objects == {("Service", NAME): theirs} and fake.polls == 0
    assert list((tmp_path / "shared").iterdir()) == []


def carries_manifest(dockerfile: str) -> bool:
    """The image copies the Job manifest to the place beside the code the launcher reads by
    default (``k8s_job.TEMPLATE``, relative to the package's parent as ``recassets/`` is)."""
    from recassets.training.k8s_job import TEMPLATE

    rel = str(TEMPLATE.relative_to(Path(__file__).resolve().parents[2]))
    copies = [line.split()[1:] for line in dockerfile.splitlines() if line.startswith("COPY ")]
    return ["recassets/", "recassets/"] in copies and [rel, rel] in copies


def test_the_image_carries_the_manifest_where_the_launcher_looks():
    text = (Path(__file__).resolve().parents[2] / "deploy" / "docker" / "Dockerfile").read_text()
    assert carries_manifest(text)
    dropped = "\n".join(line for line in text.splitlines() if "k8s/training-job.yaml" not in line)
    assert not carries_manifest(dropped)
    elsewhere = text.replace("training-job.yaml deploy/k8s/", "training-job.yaml /opt/")
    assert not carries_manifest(elsewhere)
