"""``SparkResource``: the process's Spark session (local with Delta by default)."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from recassets.spark import DEFAULT_MASTER, get_spark, parse_conf


class SparkResource(ConfigurableResource):
    """Spark with the Delta extensions.

    ``master``: ``local[*]`` by default; ``spark://...``, ``k8s://...``, or ``sc://...`` (a
    Spark Connect client). ``remote``: a Spark Connect server's ``sc://host:port``, which wins
    over ``master`` (the server holds Delta's extension; docs/operations.md, "Spark Connect"). ``conf`` entries override the embedded defaults (UTC, small
    shuffles, UI off); ``conf_line`` is the same as one ``"k=v,k2=v2"`` string (what an
    environment variable can carry), ``conf`` winning over it. ``jars``: local delta-spark and
    delta-storage jars for an offline machine. One session per process: the first asset to ask
    creates it. For tests: ``SparkResource(conf=...)`` with tiny shuffles.

    ``build_resources`` feeds ``master``, ``remote``, ``conf_line`` and ``jars`` from
    ``RECASSETS_SPARK_MASTER``, ``RECASSETS_SPARK_REMOTE``, ``RECASSETS_SPARK_CONF`` and
    ``RECASSETS_SPARK_JARS`` through ``EnvVar``s when they are set.
    """

    master: str = Field(default=DEFAULT_MASTER, description="Spark master URL")
    remote: str | None = Field(default=None, description="Spark Connect URL, sc://host:port")
    conf: dict[str, str] = Field(default_factory=dict, description="extra Spark conf")
    conf_line: str = Field(default="", description='extra Spark conf as "k=v,k2=v2"')
    jars: str | None = Field(default=None, description="local delta-spark jars (comma-separated)")

    def spark_conf(self) -> dict[str, str]:
        """The conf overrides this resource gives ``get_spark`` (``conf`` over ``conf_line``)."""
        return {**parse_conf(self.conf_line), **self.conf}

    def session(self):
        return get_spark(
            self.master, self.spark_conf(), jars=self.jars or None, remote=self.remote or None
        )
