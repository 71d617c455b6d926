"""Dagster resources: where recassets meets configuration.

``build_resources()`` is the one place resources are chosen. The embedded default needs no
configuration; every field can be set from the environment (``EnvVar``) or from run config in
the UI, so the same assets run on a laptop, a Spark cluster or Kubernetes.
"""

from __future__ import annotations

import os

from resources.lake import LakeResource
from resources.spark import SparkResource


def build_resources() -> dict[str, object]:
    """Resources for the code location, from the environment.

    ``RECASSETS_SPARK_MASTER`` (``local[*]``, ``spark://...``, ``k8s://...``, ``sc://...``) and
    ``RECASSETS_SPARK_CONF`` ("k=v,k2=v2") shape Spark; ``RECASSETS_HOME`` and the
    ``RECASSETS_LANDING/LAKE/ARTIFACTS`` variables place the data.
    """
    return {
        "spark": SparkResource(master=os.environ.get("RECASSETS_SPARK_MASTER") or None),
        "lake": LakeResource(home=os.environ.get("RECASSETS_HOME") or None),
    }


__all__ = ["LakeResource", "SparkResource", "build_resources"]
