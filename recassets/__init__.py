"""recassets: the domain library of the recommendation asset platform.

Nothing in this package imports Dagster (enforced by ruff's banned-api rule and a test):
assets/, sensors/, resources/ and serving/ wire these functions into Dagster and BentoML.
"""

__version__ = "0.1.0"
