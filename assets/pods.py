"""The pods the heavy steps ask for under dagster-k8s (``op_tags``; docs/deploy.md). They take
effect with ``RECASSETS_EXECUTOR=k8s`` (a pod per step); in-process, Dagster ignores them.
tests/deploy/test_pod_tags.py validates them against dagster-k8s's schema.

Every step that starts a Spark driver carries ``SPARK_DRIVER_POD``: every asset and asset check
that takes the ``spark`` resource (``SparkResource``, the only way a step of the code location
gets a session). The Helm values give the whole code location one driver heap
(``RECASSETS_SPARK_CONF=spark.driver.memory=10g``), which every run and step pod inherits; a
Spark step left at the run launcher's default (``runK8sConfig``, 8Gi) was OOM-killed.
tests/unit/test_deploy_hardening.py walks ``definitions.py`` for such a step without the tag,
and compares the heap in the values with the limit of each Spark step's pod.

The tags set no security context: dagster-k8s merges them deep into ``runK8sConfig``, whose
container and pod security contexts (restricted Pod Security Standard) the step pods keep; the
same test refuses a tag that would weaken them."""

# Training: one GPU, on a GPU node (nodes tainted for GPUs are tolerated).
GPU_POD = {
    "dagster-k8s/config": {
        "container_config": {
            "resources": {
                "requests": {"cpu": "4", "memory": "16Gi"},
                "limits": {"memory": "24Gi", "nvidia.com/gpu": "1"},
            }
        },
        "pod_spec_config": {
            "nodeSelector": {"nvidia.com/gpu.present": "true"},
            "tolerations": [
                {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}
            ],
        },
    }
}

# Spark steps (ingestion, the decision log, features, training examples, the quality checks):
# the driver runs local[*] in the pod. The limit holds the heap of the Helm values
# (RECASSETS_SPARK_CONF's spark.driver.memory=10g) with Spark's overhead on top (10 %, at least
# 384 MiB), and leaves the rest to the Python process (Arrow batches, pandas previews).
SPARK_DRIVER_POD = {
    "dagster-k8s/config": {
        "container_config": {
            "resources": {
                "requests": {"cpu": "4", "memory": "12Gi"},
                "limits": {"memory": "16Gi"},
            }
        }
    }
}
