"""``LakeResource``: where landing files, Delta tables, artifacts and lineage live."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from recassets.paths import Paths


class LakeResource(ConfigurableResource):
    """Storage locations, as ``recassets.paths.Paths``. Every field None: the embedded default,
    ``.recassets/`` under the working directory (the repo root for ``make`` and the code
    location). Each location can be moved on its own; ``lake`` may be an object-store URL that
    Spark understands (``s3a://bucket/lake``: credentials reach Spark through its own
    environment, ``AWS_*``, never through this config). For tests: ``LakeResource(home=tmp)``.

    ``build_resources`` feeds each field from its variable (``recassets.paths.LOCATION_ENV``:
    ``RECASSETS_HOME``, ``RECASSETS_LANDING``, ``RECASSETS_LAKE``, ``RECASSETS_ARTIFACTS``,
    ``RECASSETS_LINEAGE``) through an ``EnvVar`` when it is set.
    """

    home: str | None = Field(default=None, description="root of every location (.recassets)")
    landing: str | None = Field(default=None, description="landing files; None: <home>/landing")
    lake: str | None = Field(
        default=None, description="Delta tables, a path or an s3a:// URL; None: <home>/lake"
    )
    artifacts: str | None = Field(
        default=None, description="checkpoints, indexes, the Feast repo; None: <home>/artifacts"
    )
    lineage: str | None = Field(default=None, description="lineage manifests; None: <home>/lineage")

    def paths(self) -> Paths:
        return Paths.at(
            self.home,
            landing=self.landing,
            lake=self.lake,
            artifacts=self.artifacts,
            lineage=self.lineage,
        )
