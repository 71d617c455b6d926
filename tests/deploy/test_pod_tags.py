"""The assets' ``dagster-k8s/config`` op tags, validated by dagster-k8s itself.

``get_user_defined_k8s_config`` is what dagster-k8s runs on the tags before it builds a pod:
the tag's schema (container_config, pod_spec_config, ...) and every key against the Kubernetes
model it belongs to. The objects are then built as whole models (a container, a pod spec) so a
bad value type is refused too. The heavy assets must carry theirs: the two models a GPU, its
node selector and toleration; the Spark steps a memory request and limit.
"""

import json
from typing import Any

import kubernetes.client as k
import pytest
from dagster_k8s.job import USER_DEFINED_K8S_CONFIG_KEY, get_user_defined_k8s_config

from tests.deploy.kube import validate

GPU_STEPS = {"models__two_tower_model", "models__ranking_model"}
SPARK_STEPS = {"feature_tables", "lake__training_examples"}


@pytest.fixture(scope="module")
def step_tags() -> dict[str, dict[str, str]]:
    """Op name -> op tags of every executable asset node in the code location."""
    import definitions

    repo = definitions.defs.get_repository_def()
    return {
        ad.node_def.name: dict(ad.node_def.tags)
        for ad in repo.assets_defs_by_key.values()
        if ad.is_executable
    }


def check(tags: dict[str, str]) -> dict[str, Any]:
    """The validated config, as dagster-k8s will apply it; raises on anything invalid."""
    config = get_user_defined_k8s_config(tags)
    validate(k.V1Container, {"name": "step", **config.container_config})
    validate(k.V1PodSpec, {"containers": [], **config.pod_spec_config})
    return config.to_dict()


def test_every_k8s_tag_is_valid(step_tags: dict[str, dict[str, str]]) -> None:
    tagged = {name: t for name, t in step_tags.items() if USER_DEFINED_K8S_CONFIG_KEY in t}
    assert GPU_STEPS | SPARK_STEPS <= set(tagged)
    for tags in tagged.values():
        check(tags)


def test_the_training_steps_get_a_gpu_node(step_tags: dict[str, dict[str, str]]) -> None:
    for name in GPU_STEPS:
        config = check(step_tags[name])
        assert config["container_config"]["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert config["pod_spec_config"]["node_selector"]
        assert any(
            t["key"] == "nvidia.com/gpu" and t["effect"] == "NoSchedule"
            for t in config["pod_spec_config"]["tolerations"]
        )


def test_the_spark_steps_get_driver_memory(step_tags: dict[str, dict[str, str]]) -> None:
    for name in SPARK_STEPS:
        resources = check(step_tags[name])["container_config"]["resources"]
        assert resources["requests"]["memory"] and resources["limits"]["memory"]


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"container_confg": {}}, "Error in tags for dagster-k8s/config"),
        ({"container_config": {"resourcez": {}}}, "Unexpected keys in model class V1Container"),
        ({"pod_spec_config": {"nodeSelectors": {}}}, "Unexpected keys in model class V1PodSpec"),
        (
            {"pod_spec_config": {"tolerations": [{"key": "gpu", "efect": "NoSchedule"}]}},
            "Unexpected keys in model class V1Toleration",
        ),
        ({"container_config": {"resources": "1 GPU"}}, "must be a dict"),
    ],
)
def test_a_bad_tag_is_refused(config: dict[str, Any], expected: str) -> None:
    with pytest.raises(Exception, match=expected):
        check({USER_DEFINED_K8S_CONFIG_KEY: json.dumps(config)})
