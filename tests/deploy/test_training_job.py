"""deploy/k8s/training-job.yaml: the Indexed Job that runs sharded training with torchrun.

Its schema is checked with every manifest (test_k8s_schemas.py); here, that its parts agree:
the rendezvous address is pod 0's DNS name under the headless Service, the node count is the
same in the Job and in torchrun's arguments, the ports match, and the spec in the ConfigMap is
one the worker reads (``recassets.training.distributed.config_from_dict``). Each check has a
broken copy that fails it."""

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_k8s_schemas import schema_problems

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "training-job.yaml"


def _docs() -> dict[str, dict[str, Any]]:
    return {d["kind"]: d for d in yaml.safe_load_all(MANIFEST.read_text()) if d}


def _args(container: dict[str, Any]) -> dict[str, str]:
    return dict(a.removeprefix("--").split("=", 1) for a in container["args"] if "=" in a)


def problems(docs: dict[str, dict[str, Any]]) -> list[str]:
    """Ways the Service, the ConfigMap and the Job disagree (empty: they agree)."""
    from recassets.training.distributed import config_from_dict

    job, svc, cm = docs["Job"], docs["Service"], docs["ConfigMap"]
    pod = job["spec"]["template"]["spec"]
    container = pod["containers"][0]
    args = _args(container)
    name, service = job["metadata"]["name"], svc["metadata"]["name"]
    found = []
    if job["spec"].get("completionMode") != "Indexed":
        found.append("not an Indexed Job: no JOB_COMPLETION_INDEX for the node rank")
    nodes = {job["spec"]["completions"], job["spec"]["parallelism"], int(args["nnodes"])}
    if len(nodes) != 1:
        found.append(f"completions, parallelism and --nnodes differ: {sorted(nodes)}")
    if args.get("node-rank") != "$(JOB_COMPLETION_INDEX)":
        found.append("--node-rank is not the completion index")
    if pod.get("subdomain") != service or svc["spec"]["selector"] != {"job-name": name}:
        found.append("the headless Service does not name the Job's pods")
    if svc["spec"].get("clusterIP") != "None":
        found.append("the Service is not headless")
    if args["master-addr"] != f"{name}-0.{service}":
        found.append(f"--master-addr {args['master-addr']} is not pod 0 ({name}-0.{service})")
    port = int(args["master-port"])
    if port != svc["spec"]["ports"][0]["port"] or port != container["ports"][0]["containerPort"]:
        found.append("the rendezvous port differs between torchrun, the Service and the pod")
    if container["args"][-2:] != ["recassets.training.distributed", "/etc/recassets/spec.json"]:
        found.append("torchrun does not start the sharded trainer on the mounted spec")
    spec = json.loads(cm["data"]["spec.json"])
    config_from_dict(spec["config"])  # raises on a field the code does not know
    if spec["kind"] not in ("two_tower", "ranking"):
        found.append(f"unknown model kind {spec['kind']}")
    return found


def test_the_job_validates_and_its_parts_agree() -> None:
    docs = _docs()
    assert [p for kind, d in docs.items() for p in schema_problems(d, kind)] == []
    assert problems(docs) == []


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["Job"]["spec"].__setitem__("completions", 3), "--nnodes differ"),
        (lambda d: d["Job"]["spec"].pop("completionMode"), "not an Indexed Job"),
        (lambda d: d["Service"]["metadata"].__setitem__("name", "other"), "headless Service"),
        (lambda d: d["Service"]["spec"]["ports"][0].__setitem__("port", 1), "rendezvous port"),
    ],
    ids=["node-count", "not-indexed", "service-name", "port"],
)
def test_a_disagreeing_copy_is_caught(edit, expected) -> None:
    docs = copy.deepcopy(_docs())
    edit(docs)
    assert any(expected in p for p in problems(docs)), problems(docs)


def test_a_spec_the_worker_cannot_read_is_caught() -> None:
    docs = copy.deepcopy(_docs())
    spec = json.loads(docs["ConfigMap"]["data"]["spec.json"])
    spec["config"]["epochz"] = 3
    docs["ConfigMap"]["data"]["spec.json"] = json.dumps(spec)
    with pytest.raises(TypeError, match="epochz"):
        problems(docs)


def test_a_misspelt_field_fails_the_schema() -> None:
    docs = copy.deepcopy(_docs())
    docs["Job"]["spec"]["completionmode"] = docs["Job"]["spec"].pop("completionMode")
    assert any("completionmode" in p for p in schema_problems(docs["Job"], "Job"))
