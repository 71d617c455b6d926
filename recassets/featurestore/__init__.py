"""The Feast feature store: the lake's daily feature tables, served online.

    Delta partition ──export_offline_snapshot──► <artifacts>/feast/offline/<table>/dt=DAY.parquet
                                                    │ (Feast FileSources, repo.py)
    apply ─► registry.db            materialize_day ─► online store (SQLite, or Redis when
                                                        given a redis_url)
    skew_check: online values == the Delta rows of the day, value for value
    OnlineFeatureReader: the serving read path (items in memory, users per request)

Nothing here imports Feast at import time (``import feast`` takes seconds: it imports
torch): ``store`` imports it inside the functions that need it, ``repo`` (the Feast
definitions) is loaded only by them, and ``online`` never imports it.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> submodule. Loaded on first use (PEP 562), so the serving path
# (``from recassets.featurestore.online import OnlineFeatureReader``) pays for NumPy only, not
# for pyarrow and deltalake.
_EXPORTS = {
    "feast_dir": "config",
    "online_store_settings": "config",
    "repo_config": "config",
    "FOUND": "online",
    "OnlineFeatureReader": "online",
    "Snapshot": "snapshot",
    "cohort_id": "snapshot",
    "end_of_day": "snapshot",
    "export_offline_snapshot": "snapshot",
    "flatten": "snapshot",
    "offline_rows": "snapshot",
    "read_partition": "snapshot",
    "ENTITY_VIEWS": "store",
    "ApplyResult": "store",
    "MaterializeSummary": "store",
    "Mismatch": "skew",
    "SkewReport": "skew",
    "apply": "store",
    "feature_refs": "store",
    "get_store": "store",
    "materialize_day": "store",
    "online_features": "store",
    "same_value": "skew",
    "served_day": "store",
    "skew_check": "skew",
}
# Computed, so a checker cannot read it; the names are loaded by __getattr__ below.
__all__ = sorted(_EXPORTS)  # pyright: ignore[reportUnsupportedDunderAll]


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_EXPORTS])
