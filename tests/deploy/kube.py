"""Strict validation of Kubernetes objects against the API models of the `kubernetes` client.

dagster-k8s's own converters do the work (``dagster_k8s.models``): every key must be a field of
its model (camelCase as in a manifest, or snake_case), nested objects are checked against their
own models recursively, and the client's models refuse missing required fields and some bad
values. The models are those of the installed client (kubernetes 36: Kubernetes 1.36's API).
"""

from typing import Any

import kubernetes.client as k
from dagster_k8s.models import k8s_model_from_dict, k8s_snake_case_dict

MODELS: dict[tuple[str, str], type] = {
    ("apps/v1", "Deployment"): k.V1Deployment,
    ("v1", "Service"): k.V1Service,
    ("v1", "Secret"): k.V1Secret,
    ("v1", "ConfigMap"): k.V1ConfigMap,
    ("autoscaling/v2", "HorizontalPodAutoscaler"): k.V2HorizontalPodAutoscaler,
    ("policy/v1", "PodDisruptionBudget"): k.V1PodDisruptionBudget,
}


def validate(model: type, obj: dict[str, Any]) -> Any:
    """The model instance for ``obj``; raises (Exception / ValueError) on anything invalid."""
    return k8s_model_from_dict(model, k8s_snake_case_dict(model, obj))


def validate_manifest(doc: dict[str, Any]) -> Any:
    key = (doc.get("apiVersion", ""), doc.get("kind", ""))
    if key not in MODELS:
        raise ValueError(f"no model for apiVersion/kind {key}")
    return validate(MODELS[key], doc)
