"""``BentoStoreResource``: where ``bentoml build`` puts the bentos it builds."""

from __future__ import annotations

import dataclasses

from dagster import ConfigurableResource
from pydantic import Field

from recassets.paths import Paths


class BentoStoreResource(ConfigurableResource):
    """The BentoML store (``BENTOML_HOME``): ``<home>/bentoml`` of the lake's paths by default
    (so a temporary ``LakeResource`` home is the test variant), or ``home`` when set.

    ``build_resources`` sets ``home`` to ``EnvVar("RECASSETS_BENTOML_HOME")`` when that is set,
    as ``Paths.from_env`` does for the CLI (``recassets serve`` finds what the assets built).
    """

    home: str | None = Field(default=None, description="BENTOML_HOME; None: <home>/bentoml")

    def paths(self, lake: Paths) -> Paths:
        """``lake`` with this store as its ``bentoml`` location (what ``recassets.bento.
        bundle`` builds into and reads from)."""
        return dataclasses.replace(lake, bentoml=self.home) if self.home else lake
