"""``QualityResource``: the tolerances of the Great Expectations checks."""

from __future__ import annotations

from dagster import ConfigurableResource
from pydantic import Field

from recassets.quality.checks import DEFAULT_VOLUME_BAND, parse_volume_band


class QualityResource(ConfigurableResource):
    """``volume_band``: a day of raw_events may hold this fraction more or fewer rows than the
    trailing 7-day mean (``"0.5"``: +-50 %), or ``"off"`` for no volume expectation (historical
    imports such as MovieLens, whose volume swings in bursts; ``recassets demo --movielens``
    sets it). A string, so that one environment variable carries either form.

    ``build_resources`` feeds it from ``RECASSETS_VOLUME_BAND`` through an ``EnvVar`` when set.
    """

    volume_band: str = Field(
        default=str(DEFAULT_VOLUME_BAND), description='fraction, e.g. "0.5", or "off"'
    )

    def band(self) -> float | None:
        """The band as ``recassets.quality.check_raw_events_range`` takes it (None: off)."""
        return parse_volume_band(self.volume_band)
