"""Where the Feast repository lives and which online store it talks to, from ``Paths``.

Feast-free on purpose: the serving read path (``online.py``) resolves the same online store
as ``feature_store.yaml`` without paying for ``import feast`` (seconds: it imports torch).

Layout under ``<artifacts>/feast/``::

    feature_store.yaml              generated from Paths at every apply (never edited by hand)
    registry.db                     Feast's file registry
    online.db                       the SQLite online store (embedded default)
    offline/<table>/dt=DAY.parquet  Feast-friendly snapshots of the Delta partitions
    catalog.json                    views, features and services, for readers without Feast
    materialized.json               the marker: which day the online store serves

The online store is SQLite by default and Redis when a ``redis_url``
(``redis://[:password@]host:port[/db]``, ``rediss://`` for TLS) is passed. Every function that
reaches the online store takes that URL as an argument; none reads the environment. The edges
read it from ``RECASSETS_REDIS_URL`` (``REDIS_URL_ENV``): the Dagster ``FeatureStoreResource``
through an ``EnvVar``, the BentoML service (``serving/service.py``) when it starts.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from recassets import atomic
from recassets.paths import Paths

PROJECT = "recassets"
# Feast 0.67's current (and default) entity key encoding; versions < 3 are deprecated.
ENTITY_KEY_SERIALIZATION_VERSION = 3
# The variable the edges read the Redis URL from (a secret: it may hold the password).
REDIS_URL_ENV = "RECASSETS_REDIS_URL"
# The marker (``materialized.json``) is also kept in Redis under this key (``{project}``: the
# Feast project): a serving pod reads the online store with no home of its own (deploy/k8s/
# recommender.yaml: an emptyDir), so the store itself says which day it serves.
REDIS_MARKER_KEY = "recassets:{project}:materialized"


def feast_dir(paths: Paths) -> Path:
    """The Feast repository folder: ``feature_store.yaml`` and everything it points at."""
    return Path(paths.artifacts) / "feast"


def registry_path(paths: Paths) -> Path:
    return feast_dir(paths) / "registry.db"


def sqlite_path(paths: Paths) -> Path:
    return feast_dir(paths) / "online.db"


def offline_dir(paths: Paths, table: str) -> Path:
    return feast_dir(paths) / "offline" / table


def snapshot_path(paths: Paths, table: str, day: dt.date | str) -> Path:
    return offline_dir(paths, table) / f"dt={_iso(day)}.parquet"


def catalog_path(paths: Paths) -> Path:
    return feast_dir(paths) / "catalog.json"


def marker_path(paths: Paths) -> Path:
    return feast_dir(paths) / "materialized.json"


@dataclass(frozen=True)
class OnlineStoreSettings:
    """The online store: ``kind`` "sqlite" (``path``) or "redis" (``url``)."""

    kind: str
    path: str | None = None
    url: str | None = None

    def describe(self) -> str:
        """For metadata and logs: never shows a password."""
        if self.kind == "sqlite":
            return f"sqlite:{self.path}"
        return f"redis:{_redact(self.url or '')}"


def online_store_settings(paths: Paths, redis_url: str | None = None) -> OnlineStoreSettings:
    """Redis at ``redis_url`` when given, else SQLite under the artifacts (the embedded
    default)."""
    if redis_url:
        return OnlineStoreSettings(kind="redis", url=redis_url)
    return OnlineStoreSettings(kind="sqlite", path=str(sqlite_path(paths)))


def redis_connection_string(url: str) -> str:
    """``redis://:pw@host:6379/2`` -> Feast's ``host:6379,db=2,password=pw`` format."""
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss"):
        raise ValueError(f"{REDIS_URL_ENV} must be redis:// or rediss://, got {_redact(url)}")
    parts = [f"{parsed.hostname or '127.0.0.1'}:{parsed.port or 6379}"]
    db = parsed.path.lstrip("/")
    if db:
        parts.append(f"db={int(db)}")
    if parsed.scheme == "rediss":
        parts.append("ssl=true")
    if parsed.username:
        parts.append(f"username={_feast_value(unquote(parsed.username))}")
    if parsed.password:
        parts.append(f"password={_feast_value(unquote(parsed.password))}")
    return ",".join(parts)


def _feast_value(text: str) -> str:
    """``text`` as Feast reads it back: Feast splits the string on commas and ``json.loads``
    each value, so a password ``s3cr,et`` became ``s3cr`` and a host ``et``, and ``1e3``, ``null``
    or ``true`` became a number, None or True (serving, which reads the URL, authenticated;
    Feast's materialization did not). A JSON string with its commas escaped reads back whole."""
    return json.dumps(text).replace(",", "\\u002c")


def repo_config(paths: Paths, redis_url: str | None = None) -> dict[str, Any]:
    """The content of ``feature_store.yaml`` as a dict (``feast.RepoConfig(**this)``)."""
    online = online_store_settings(paths, redis_url)
    if online.kind == "sqlite":
        online_store: dict[str, Any] = {"type": "sqlite", "path": online.path}
    else:
        online_store = {
            "type": "redis",
            "connection_string": redis_connection_string(online.url or ""),
            # Feast skips a row whose event time is not newer than the stored one, and every
            # row of a day carries that day's end: a day materialized again after its data was
            # corrected wrote nothing, while the marker said it had (the skew check then failed
            # with no way out but a flush). Which day may be written is decided by
            # ``store.materialize_day`` (never an older day over a newer one), not by Feast.
            "skip_dedup": True,
        }
    return {
        "project": PROJECT,
        "provider": "local",
        "registry": {
            "registry_type": "file",
            "path": str(registry_path(paths)),
            # Serving processes re-read the registry at most once a minute; apply() refreshes
            # its own process explicitly.
            "cache_ttl_seconds": 60,
        },
        # The DuckDB offline store reads the Parquet snapshots (never the Delta folders:
        # replaced partitions leave tombstoned files there that a plain Parquet reader would
        # include), pruning by event_timestamp: a day's materialization reads that day only.
        "offline_store": {"type": "duckdb"},
        "online_store": online_store,
        "entity_key_serialization_version": ENTITY_KEY_SERIALIZATION_VERSION,
    }


def write_feature_store_yaml(paths: Paths, redis_url: str | None = None) -> Path:
    """Write ``<artifacts>/feast/feature_store.yaml`` for the Feast CLI and UI (``feast -c
    <folder> feature-views list``). The running code builds its RepoConfig from the same dict
    in memory; a Redis password is written as ``${RECASSETS_REDIS_PASSWORD}`` (Feast expands
    environment variables in this file), never in clear."""
    import yaml

    config = repo_config(paths, redis_url)
    online = config["online_store"]
    if online["type"] == "redis":
        online["connection_string"] = ",".join(
            "password=${RECASSETS_REDIS_PASSWORD}" if p.startswith("password=") else p
            for p in online["connection_string"].split(",")
        )
    target = feast_dir(paths) / "feature_store.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    header = "# Generated by recassets.featurestore from Paths at every apply: do not edit.\n"
    atomic.write_text(target, header + yaml.safe_dump(config, sort_keys=False))
    return target


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None


def write_json(path: Path, payload: dict[str, Any], sort_keys: bool = True) -> None:
    # Readers (the serving process) poll these files: they must never see half a file.
    atomic.write_json(path, payload, sort_keys=sort_keys)


def _redact(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
        return parsed._replace(netloc=netloc).geturl()
    return url


def _iso(day: dt.date | str) -> str:
    return day if isinstance(day, str) else day.isoformat()
