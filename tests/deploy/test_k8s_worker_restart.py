"""deploy/k8s/recommender.yaml keeps answering while a serving worker restarts.

A worker killed outright (SIGKILL, the OOM killer) is started again by BentoML's arbiter and
loads torch, FAISS and the bundle before it accepts anything (about 20 s); a replica with one
worker answers nothing meanwhile (a fault review's clients hit their 10 s timeouts,
2026-12-07). The manifest's cover: 2 workers a pod, at least 2 replicas, a readiness probe on
``/readyz`` (docs/retrieval-and-serving.md, "Threads and workers")."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.deploy.test_k8s import _container, _env, by_kind, load


def uncovered(docs: list[dict[str, Any]]) -> list[str]:
    """What leaves a replica, or the Service, without an answering worker during a restart."""
    found = []
    workers = int(_env(docs, "RECASSETS_SERVE_WORKERS").get("value", "1"))
    if workers < 2:
        found.append(f"{workers} worker a pod: none answers while it restarts")
    if by_kind(docs, "HorizontalPodAutoscaler")["spec"].get("minReplicas", 1) < 2:
        found.append("fewer than 2 replicas")
    if _container(docs).get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
        found.append("no readiness probe on /readyz")
    return found


def test_the_manifest_keeps_a_worker_answering_during_a_restart() -> None:
    assert uncovered(load()) == []


def _one_worker(docs):
    _env(docs, "RECASSETS_SERVE_WORKERS")["value"] = "1"


def _one_replica(docs):
    by_kind(docs, "HorizontalPodAutoscaler")["spec"]["minReplicas"] = 1


def _no_readiness(docs):
    del _container(docs)["readinessProbe"]


@pytest.mark.parametrize(
    ("breaker", "said"),
    [(_one_worker, "1 worker a pod"), (_one_replica, "fewer than 2"), (_no_readiness, "/readyz")],
)
def test_each_cover_missing_is_found(breaker, said: str) -> None:
    docs = copy.deepcopy(load())
    breaker(docs)
    assert [p for p in uncovered(docs) if said in p]
