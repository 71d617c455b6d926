"""``FeatureStoreResource``: which online store Feast materializes into and serves from."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from recassets.featurestore.config import OnlineStoreSettings, online_store_settings
from recassets.paths import Paths


class FeatureStoreResource(ConfigurableResource):
    """The Feast online store: SQLite under the lake's artifacts (the embedded default, and
    the test variant: a temporary ``LakeResource`` home holds it), or Redis at ``redis_url``
    (``redis://[:password@]host:port[/db]``, ``rediss://`` for TLS).

    ``build_resources`` sets ``redis_url`` to ``EnvVar("RECASSETS_REDIS_URL")`` when that is
    set: the URL may carry a password, so it is never written into config. The library takes
    it as the ``redis_url`` argument of ``recassets.featurestore.store``'s functions.
    """

    redis_url: str | None = Field(default=None, description="Redis URL; None: SQLite")

    def online_store(self, paths: Paths) -> OnlineStoreSettings:
        return online_store_settings(paths, self.redis_url)
