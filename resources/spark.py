"""``SparkResource``: the process's Spark session (local with Delta by default)."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from recassets.spark import get_spark


class SparkResource(ConfigurableResource):
    """Spark with the Delta extensions.

    ``master`` None means ``RECASSETS_SPARK_MASTER`` or ``local[*]``. A ``sc://`` master builds
    a Spark Connect client. ``conf`` entries override the embedded defaults (UTC, small
    shuffles, UI off). One session per process: the first asset to ask creates it.
    """

    master: str | None = Field(default=None, description="Spark master URL; None: local[*]")
    conf: dict[str, str] = Field(default_factory=dict, description="extra Spark conf")

    def session(self):
        return get_spark(self.master, self.conf)
