"""The pods the heavy steps ask for under dagster-k8s (``op_tags``; docs/deploy.md). They take
effect with ``RECASSETS_EXECUTOR=k8s`` (a pod per step); in-process, Dagster ignores them.
tests/deploy/test_pod_tags.py validates them against dagster-k8s's schema."""

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

# Spark steps: the driver runs local[*] in the pod (RECASSETS_SPARK_CONF's
# spark.driver.memory=10g in the Helm values stays inside the limit).
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
