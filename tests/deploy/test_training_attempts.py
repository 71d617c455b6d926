"""The cluster launch (recassets.training.k8s_job) against a launcher that dies: the Job is
owned by the launching pod, carries its Dagster run, and a retried step first deletes the Job
its earlier attempt left (an OOM-killed step pod never ran its cleanup, and the Job held its
GPUs up to activeDeadlineSeconds while the retry started a second one). And no credential goes
into the spec the ConfigMap carries.

The fake Kubernetes API is test_training_launch's, taught here to find a pod by name (a field
selector: how the launcher reads its own pod) and to keep a Job deleted in the foreground for a
few reads, as a real one stays until its pods are gone."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from recassets.training import k8s_job
from tests.deploy import test_training_launch as launch
from tests.deploy.test_training_launch import (
    IMAGE,
    NAME,
    NS,
    SETTINGS,
    FakeKube,
    _client,
    _cond,
    _spec,
    _write_checkpoint,
)
from tests.unit.training.tiny import DAYS, TINY

# the fake API, a lake and a real checkpoint that the "Job" writes: test_training_launch's
kube, lake, made = launch.kube, launch.lake, launch.made

RUN = "3f2a9c1e-0b7d-4e55-9a51-6c1f0e2d4b10"
STEP_POD = "dagster-step-5d1e0c7a9b-x7k2p"
# a step pod of dagster-k8s's k8s_job_executor, as this process sees itself
ENV = {"KUBERNETES_SERVICE_HOST": "10.96.0.1", "HOSTNAME": STEP_POD, "POD_NAMESPACE": NS}
OWNER = {"apiVersion": "v1", "kind": "Pod", "name": STEP_POD, "uid": "uid-step-pod"}


def _labels(op: str = "two_tower") -> dict[str, str]:
    return {"dagster/run-id": RUN, "dagster/op": op, "dagster/job": "__ASSET_JOB"}


def _pods_by_name(fake: FakeKube) -> list[tuple[str, Any]]:
    """Teach ``fake`` the pod list by ``metadata.name`` and a Job deleted in the foreground
    that stays for 2 reads; returns the log of deletes, reads and creates, in order."""
    events: list[tuple[str, Any]] = []
    by_label, delete, read_job, create = fake.list_pods, fake.delete, fake.read_job, fake.create
    terminating: dict[str, int] = {}

    def list_pods(query: dict[str, list[str]], **kw: Any) -> tuple[int, Any]:
        if "fieldSelector" not in query:
            return by_label(query=query, **kw)
        (selector,) = query["fieldSelector"]
        assert selector.startswith("metadata.name="), selector
        items = [p for p in fake.pods if p["metadata"]["name"] == selector.split("=", 1)[1]]
        return 200, {"kind": "PodList", "apiVersion": "v1", "metadata": {}, "items": items}

    def deleting(res: str, name: str, query: dict[str, list[str]], **kw: Any) -> tuple[int, Any]:
        code, body = delete(res=res, name=name, query=query, **kw)
        events.append(("delete", (fake.KINDS[res], name, query.get("propagationPolicy"), code)))
        if code == 200 and res == "jobs" and query.get("propagationPolicy") == ["Foreground"]:
            terminating[name] = 2  # until its pods are gone
        return code, body

    def reading(name: str, **kw: Any) -> tuple[int, Any]:
        if terminating.get(name):
            terminating[name] -= 1
            events.append(("read", (name, 200)))
            return 200, {"metadata": {"name": name, "deletionTimestamp": "2026-01-01T00:00:00Z"}}
        code, body = read_job(name=name, **kw)
        events.append(("read", (name, code)))
        return code, body

    def creating(res: str, body: bytes, **kw: Any) -> tuple[int, Any]:
        code, made_ = create(res=res, body=body, **kw)
        events.append(("create", (fake.KINDS[res], json.loads(body)["metadata"]["name"], code)))
        return code, made_

    fake.list_pods, fake.delete, fake.read_job, fake.create = list_pods, deleting, reading, creating
    fake.pods = [{"metadata": {"name": STEP_POD, "namespace": NS, "uid": OWNER["uid"],
                               "labels": _labels()}, "status": {"phase": "Running"}}]  # fmt: skip
    return events


def _launch(tmp_path: Path, host: str, **kw: Any) -> Any:
    return k8s_job.train_on_cluster(
        "two_tower", "s3a://bucket/lake/training_examples", DAYS[:3], TINY,
        shared_dir=tmp_path / "shared", settings=SETTINGS, api_client=_client(host),
        poll_s=0.01, env=kw.pop("env", ENV), **kw,
    )  # fmt: skip


def test_the_job_is_owned_by_the_launching_pod_and_carries_its_run(kube, made, tmp_path):
    fake, host = kube
    _pods_by_name(fake)
    fake.script = [{"conditions": [_cond("Complete")]}]
    fake.on_resume = _write_checkpoint(made)
    _launch(tmp_path, host)
    bodies = dict(fake.created)
    pod = k8s_job.LauncherPod(STEP_POD, OWNER["uid"], NS, _labels())
    name = k8s_job.attempt_name("two_tower", pod, TINY)
    assert bodies["Job"]["metadata"]["name"] == name
    assert bodies["Job"]["metadata"]["ownerReferences"] == [OWNER]  # the pod, not the Job's
    for kind in ("ConfigMap", "Service"):  # these stay the Job's, and go with it
        assert [o["kind"] for o in bodies[kind]["metadata"]["ownerReferences"]] == ["Job"]
    for kind, body in fake.created:
        assert body["metadata"]["labels"][k8s_job.RUN_LABEL] == RUN, kind
    pod_labels = bodies["Job"]["spec"]["template"]["metadata"]["labels"]
    assert pod_labels[k8s_job.RUN_LABEL] == RUN
    assert fake.objects == {}  # deleted at the end as before
    # every attempt of this step gets that name; another step, kind or config of the run not
    other = [k8s_job.LauncherPod(STEP_POD, "uid-2", NS, _labels("sequence_ranking")), pod]
    assert (
        k8s_job.attempt_name("two_tower", k8s_job.LauncherPod("p2", "u2", NS, _labels()), TINY)
        == name
    )
    assert len({name, k8s_job.attempt_name("two_tower", other[0], TINY),
                k8s_job.attempt_name("ranking", pod, TINY),
                k8s_job.attempt_name("two_tower", pod, TINY.__class__(batch_size=8))}) == 4  # fmt: skip
    assert k8s_job.attempt_name("two_tower", None, TINY) is None


def test_an_owner_in_another_namespace_or_none_known_is_left_out(kube, made, tmp_path, monkeypatch):
    # The garbage collector takes an owner in another namespace for a missing one and deletes
    # the Job at once: the run label stays, the ownerReference goes
    fake, host = kube
    fake.script = [{"conditions": [_cond("Complete")]}]
    fake.on_resume = _write_checkpoint(made)
    elsewhere = k8s_job.LauncherPod(STEP_POD, "uid-step-pod", "dagster", _labels())
    monkeypatch.setattr(k8s_job, "launcher_pod", lambda core, env: elsewhere)
    _launch(tmp_path, host)
    job = dict(fake.created)["Job"]
    assert "ownerReferences" not in job["metadata"]
    assert job["metadata"]["labels"][k8s_job.RUN_LABEL] == RUN
    # the pod not readable (403: another namespace than the fake's): launched unowned, a new name
    monkeypatch.undo()
    fake.created.clear()
    _launch(tmp_path, host, env={**ENV, "POD_NAMESPACE": "dagster"})
    job = dict(fake.created)["Job"]
    assert (
        "ownerReferences" not in job["metadata"]
        and k8s_job.RUN_LABEL not in job["metadata"]["labels"]
    )
    # outside a cluster the API is not asked at all
    fake.created.clear()
    _launch(tmp_path, host, env={})
    assert "ownerReferences" not in dict(fake.created)["Job"]["metadata"]


def test_a_retry_first_deletes_the_job_its_earlier_attempt_left(kube, made, tmp_path):
    fake, host = kube
    events = _pods_by_name(fake)
    fake.script = [{"conditions": [_cond("Complete")]}]
    fake.on_resume = _write_checkpoint(made)
    pod = k8s_job.LauncherPod(STEP_POD, OWNER["uid"], NS, _labels())
    name = k8s_job.attempt_name("two_tower", pod, TINY)
    assert name is not None
    other = k8s_job.attempt_name("two_tower", k8s_job.LauncherPod("p", "u", NS, _labels("x")), TINY)
    # attempt 1: its step pod OOM-killed mid-training; the Job runs on, and so does another step's
    for kind, n in (
        ("Job", name),
        ("Service", name),
        ("ConfigMap", f"{name}-spec"),
        ("Job", other),
    ):
        fake.objects[(kind, n)] = {"kind": kind, "metadata": {"name": n}, "spec": {}}
    stale = tmp_path / "shared" / name
    stale.mkdir(parents=True)
    (stale / "checkpoint.pt").write_text("half written by attempt 1")

    _launch(tmp_path, host)  # attempt 2

    fg = ["Foreground"]
    assert events[:7] == [
        ("delete", ("Job", name, fg, 200)),
        ("delete", ("Service", name, fg, 200)),
        ("delete", ("ConfigMap", f"{name}-spec", fg, 200)),
        ("read", (name, 200)),  # still there: its pods are being stopped
        ("read", (name, 200)),
        ("read", (name, 404)),  # gone, and its GPUs free
        ("create", ("Job", name, 201)),
    ]
    assert ("Job", other) in fake.objects  # another step's training is not touched
    assert fake.objects.keys() == {("Job", other)} and not stale.exists()


def test_credentials_are_refused_before_anything_is_made(kube, tmp_path):
    fake, host = kube
    with pytest.raises(ValueError, match="recassets-object-store Secret") as err:
        _launch(tmp_path, host, env={}, name=NAME,
                storage_options={"aws_region": "eu-west-1", "AWS_SECRET_ACCESS_KEY": "wJalr"})  # fmt: skip
    assert "AWS_SECRET_ACCESS_KEY" in str(err.value) and "wJalr" not in str(err.value)
    assert fake.created == [] and not (tmp_path / "shared").exists()
    # render refuses such a spec however it was written; the other options travel
    spec = {**_spec(tmp_path), "storage_options": {"aws_session_token": "x"}}
    with pytest.raises(ValueError, match="aws_session_token"):
        k8s_job.render(spec, name=NAME, nodes=2, image=IMAGE)
    fine = {
        "aws_region": "eu-west-1",
        "aws_endpoint": "http://minio:9000",
        "aws_allow_http": "true",
    }
    docs = k8s_job.render({**spec, "storage_options": fine}, name=NAME, nodes=2, image=IMAGE)
    assert json.loads(docs["ConfigMap"]["data"]["spec.json"])["storage_options"] == fine
