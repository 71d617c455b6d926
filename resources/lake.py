"""``LakeResource``: where landing files, Delta tables, artifacts and lineage live."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from recassets.paths import Paths


class LakeResource(ConfigurableResource):
    """Storage locations. ``home`` None means ``RECASSETS_HOME`` or ``.recassets/``; the
    individual locations follow ``RECASSETS_LANDING``, ``RECASSETS_LAKE``... (see
    ``recassets.paths``)."""

    home: str | None = Field(default=None, description="RECASSETS_HOME override")

    def paths(self) -> Paths:
        return Paths.from_env(self.home)
