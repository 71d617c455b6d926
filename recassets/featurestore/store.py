"""Apply, materialize, read and check the Feast feature store.

Every function takes ``Paths`` (and optionally a Redis URL; default: the SQLite online store)
and builds the Feast config from them (``config.py``). Feast is imported inside the functions,
never at module import: ``import feast`` takes seconds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
import warnings
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recassets import __version__
from recassets.features.schema import TABLES
from recassets.featurestore import config as cfg
from recassets.featurestore import upkeep, wire
from recassets.featurestore.errors import is_damage
from recassets.featurestore.errors import named_errors as _named_errors
from recassets.featurestore.snapshot import (
    Snapshot,
    end_of_day,
    export_offline_snapshot,
    export_offline_snapshots,
    join_key,
    refresh_stale,
)
from recassets.paths import Paths
from recassets.preload import settle

_log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from feast import FeatureStore

# Entity name -> (feature table, feature view): the vocabulary of online_features.
ENTITY_VIEWS = {
    "user": ("user_features", "user_daily_features"),
    "item": ("item_features", "item_daily_features"),
    "cohort": ("cohort_features", "cohort_daily_features"),
}
VIEW_OF_TABLE = {table: view for table, view in ENTITY_VIEWS.values()}

_stores: dict[tuple[str, str], FeatureStore] = {}
_stores_lock = threading.Lock()


def get_store(paths: Paths, redis_url: str | None = None) -> FeatureStore:
    """The process's ``FeatureStore`` for this home and online store (built once: the registry
    and the online store connection are cached inside it)."""
    import json
    from pathlib import Path

    settle()  # a background `import feast` (recassets.preload) finishes first
    from feast import FeatureStore, RepoConfig

    config = cfg.repo_config(paths, redis_url)
    key = (str(cfg.feast_dir(paths)), json.dumps(config, sort_keys=True))
    with _stores_lock:
        store = _stores.get(key)
        if store is None:
            repo_config = RepoConfig(**config)
            # FileSource paths are relative to the repository folder (see repo.py).
            repo_config.repo_path = Path(cfg.feast_dir(paths))
            store = FeatureStore(repo_path=str(cfg.feast_dir(paths)), config=repo_config)
            _stores[key] = store
        return store


@dataclass(frozen=True)
class ApplyResult:
    registry: str
    feature_store_yaml: str
    online_store: str
    feature_views: list[str]
    feature_services: list[str]
    deleted: list[str]


def apply(paths: Paths, redis_url: str | None = None) -> ApplyResult:
    """``feast apply`` of ``repo.py``: registers entities, sources, views and services, creates
    the online tables, and deletes what the registry holds but the repository no longer
    defines (as the CLI does). Also writes ``feature_store.yaml`` and ``catalog.json``."""
    settle()  # a background `import feast` (recassets.preload) finishes first
    from recassets.featurestore import repo

    repo.locate(cfg.feast_dir(paths))
    yaml_path = cfg.write_feature_store_yaml(paths, redis_url)
    _set_aside_damaged(paths, redis_url)
    store = _fresh_store(paths, redis_url)
    wanted = {(type(o).__name__, o.name) for o in repo.OBJECTS}
    stale = [
        o
        for o in (
            *_registered(store.list_feature_services),
            *_registered(store.list_feature_views),
            *_registered(store.list_data_sources),
            *_registered(store.list_entities),
        )
        if (type(o).__name__, o.name) not in wanted
    ]
    store.apply(repo.OBJECTS, objects_to_delete=stale, partial=not stale)
    store.refresh_registry()
    # feature order kept: it is the views' schema order
    cfg.write_json(
        cfg.catalog_path(paths), {"project": cfg.PROJECT, **repo.catalog()}, sort_keys=False
    )
    return ApplyResult(
        registry=str(cfg.registry_path(paths)),
        feature_store_yaml=str(yaml_path),
        online_store=cfg.online_store_settings(paths, redis_url).describe(),
        feature_views=[v.name for v in repo.FEATURE_VIEWS],
        feature_services=[s.name for s in repo.FEATURE_SERVICES],
        deleted=sorted(f"{type(o).__name__}:{o.name}" for o in stale),
    )


def _set_aside_damaged(paths: Paths, redis_url: str | None) -> None:
    """Move aside a registry or SQLite online store that cannot be read, before apply builds
    them again. A garbage registry failed every call with protobuf's ``DecodeError`` naming no
    file, and a garbage ``online.db`` with ``file is not a database``. Both are derived: the
    registry from ``repo.py`` (apply writes it whole), the online store from the lake's day
    (its marker then names a day over an empty store, and the day being materialized is
    loaded: ``_claim_store``). The damaged file is kept beside, renamed, never read again."""
    from google.protobuf.message import DecodeError

    registry = cfg.registry_path(paths)
    if registry.exists():
        settle()  # a background import of Feast (recassets.preload) finishes first
        from feast.protos.feast.core.Registry_pb2 import Registry as RegistryProto

        try:
            RegistryProto().ParseFromString(registry.read_bytes())
        except DecodeError as e:
            upkeep.set_aside(registry, str(e) or "not a Feast registry", "apply rebuilds it")
            _forget_stores(paths)  # each holds the registry it read
    if not redis_url:
        db = cfg.sqlite_path(paths)
        error = upkeep.sqlite_damage(db)
        # only damage, by SQLite's code: a file locked or unreadable now is sound
        if error is not None and is_damage(error):
            upkeep.set_aside(db, str(error), "materialization rebuilds it from its day")


def _forget_stores(paths: Paths) -> None:
    with _stores_lock:
        for key in [k for k in _stores if k[0] == str(cfg.feast_dir(paths))]:
            del _stores[key]


_feast_sqlite_files: dict[int, tuple] = {}


def _fresh_store(paths: Paths, redis_url: str | None) -> FeatureStore:
    """``get_store``, its SQLite connection reopened if the file at the path is no longer the
    one it opened (deleted, moved aside, rebuilt by another process): Feast keeps one
    connection per store and went on reading, and writing, a deleted file."""
    store = get_store(paths, redis_url)
    if redis_url:
        return store
    online: Any = store._get_provider().online_store
    try:
        st = Path(cfg.sqlite_path(paths)).stat()
        now: tuple = (st.st_dev, st.st_ino)
    except FileNotFoundError:
        now = (None,)
    conn = getattr(online, "_conn", None)
    if conn is not None and _feast_sqlite_files.get(id(online)) != now:
        conn.close()
        online._conn = None  # Feast opens the file at the path again at its next use
    _feast_sqlite_files[id(online)] = now
    return store


def _registered(lister: Callable[[], Iterable[Any]]) -> list[Any]:
    try:
        return list(lister())
    except Exception:  # an empty registry: nothing registered yet
        return []


# Days exported from one Delta read per table in a range materialization: the rows of a block
# are held in memory at once, so the block bounds the export's memory whatever the range.
EXPORT_BLOCK_DAYS = 30


@dataclass(frozen=True)
class MaterializeSummary:
    day: str
    counts: dict[str, int]  # feature view -> entities written for the day
    online_store: str
    registry: str
    snapshots: dict[str, str]  # table -> snapshot path
    delta_versions: dict[str, int]  # table -> Delta version read
    wrote_online: bool  # False when the online store already serves a later day
    served_day: str | None  # the day the online store serves afterwards (None: nothing yet)
    lineage: str
    applied: ApplyResult | None = None  # the repository applied (reused across a range)


def materialize_day(
    paths: Paths, day: dt.date | str, redis_url: str | None = None, online: bool = True
) -> MaterializeSummary:
    """Export day d's snapshots, apply, and load day d into the online store.

    The window is day d itself (00:00 to its last microsecond, UTC), which holds exactly the
    rows of partition d. A backfill of a day older than the one the online store serves
    writes the snapshots (history for offline retrieval) but leaves the online store alone:
    the SQLite store upserts without comparing event times, so loading an old day would roll
    serving back. The marker (``materialized.json``) records what the online store serves;
    serving readers watch it to refresh.

    Concurrent calls on one home (parallel partition runs) are serialized by a file lock, so
    the check of the marker, the load and the marker's update happen as one step. On Redis,
    a lock held in Redis itself (``upkeep.RedisWriterLock``) does the same across homes and
    machines: the marker is read again once it is held, so an older day that waited for a
    newer one is refused (``wrote_online`` False, ``served_day`` the newer). Feast's own
    event-time comparison does not: ``skip_dedup`` turns it off (``config.repo_config``).

    The store ends up holding exactly day d: entities of earlier days absent from d are
    removed, a store holding rows under no marker is cleared first, and a store emptied
    under its marker is rebuilt from d (``_claim_store``, ``_write_day``).

    ``online=False`` writes the snapshots only: a backfill over a range loads just its last
    day into the online store, which is all the online store can serve anyway.
    """
    with _materialize_lock(paths):
        return _materialize_day(paths, _iso(day), redis_url, online)


def materialize_days(
    paths: Paths,
    days: Sequence[dt.date | str],
    redis_url: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[MaterializeSummary]:
    """``materialize_day`` over a range, in day order: every day's snapshots and lineage, the
    repository applied once (not once a day: Feast's apply costs a second or more), and only
    the last day loaded online, which is all the online store can serve anyway."""
    say = progress or (lambda _m: None)
    ordered = sorted({_iso(d) for d in days})
    out: list[MaterializeSummary] = []
    with _materialize_lock(paths):
        applied = None
        # One Delta read per table for each block of days (memory bounded by the block)
        for first in range(0, len(ordered), EXPORT_BLOCK_DAYS):
            block = ordered[first : first + EXPORT_BLOCK_DAYS]
            exported = {t: export_offline_snapshots(paths, t, block) for t in TABLES}
            for iso in block:
                summary = _materialize_day(
                    paths,
                    iso,
                    redis_url,
                    online=iso == ordered[-1],
                    applied=applied,
                    snapshots={t: exported[t][iso] for t in TABLES},
                )
                applied = summary.applied
                out.append(summary)
            say(f"feature_store: {len(out)}/{len(ordered)} day(s) exported ({block[-1]})")
    return out


@contextlib.contextmanager
def _materialize_lock(paths: Paths) -> Generator[None, None, None]:
    import fcntl

    lock = cfg.feast_dir(paths) / ".materialize.lock"
    lock.parent.mkdir(parents=True, exist_ok=True)
    with open(lock, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _materialize_day(
    paths: Paths,
    iso: str,
    redis_url: str | None,
    online: bool = True,
    applied: ApplyResult | None = None,
    snapshots: dict[str, Snapshot] | None = None,
) -> MaterializeSummary:
    if snapshots is None:
        snapshots = {t: export_offline_snapshot(paths, t, iso) for t in TABLES}
    applied = applied or apply(paths, redis_url)
    wrote = False
    if not online:
        marker = _store_marker(paths, redis_url)
    else:
        with _writer_lock(paths, iso, redis_url) as lock:
            marker = _claim_store(paths, iso, redis_url)
            wrote = marker.get("day") is None or marker["day"] <= iso
            if wrote:
                marker = _write_day(paths, iso, redis_url, applied, snapshots, marker, lock)
            else:
                _log.warning(
                    "feature_store: %s not loaded online: the online store serves %s, a later "
                    "day (%s)", iso, marker["day"], applied.online_store,
                )  # fmt: skip
    lineage = _write_lineage(paths, iso, snapshots, applied, wrote)
    return MaterializeSummary(
        day=iso,
        counts={VIEW_OF_TABLE[t]: s.rows for t, s in snapshots.items()},
        online_store=applied.online_store,
        registry=applied.registry,
        snapshots={t: s.path for t, s in snapshots.items()},
        delta_versions={t: s.delta_version for t, s in snapshots.items()},
        wrote_online=wrote,
        served_day=marker.get("day"),
        lineage=lineage,
        applied=applied,
    )


@contextlib.contextmanager
def _writer_lock(
    paths: Paths, iso: str, redis_url: str | None
) -> Generator[upkeep.RedisWriterLock | None, None, None]:
    """On Redis, the store's own writer lock (``upkeep.RedisWriterLock``), held from the check
    of the marker to its update; SQLite belongs to one home, whose file lock is held already."""
    if not redis_url:
        yield None
        return
    with upkeep.RedisWriterLock(
        redis_url, cfg.PROJECT, {"home": str(paths.home), "day": iso}
    ) as lock:
        yield lock


def _claim_store(paths: Paths, iso: str, redis_url: str | None) -> dict[str, Any]:
    """The marker of the store, once what the store holds agrees with it. A marker over an
    empty store (a SQLite file deleted or set aside, a Redis flushed) is dropped: the store is
    rebuilt from the day being loaded, whichever day the marker named (before, an older day
    said "not loaded, serving <newer>" over an empty store). A store holding rows but no
    marker (``materialized.json`` lost, a Redis key deleted) holds rows of an unknown day:
    they are removed first, so the store ends up holding exactly the day loaded (before, an
    older day was loaded over the newer day's rows, and the skew check passed on the mix)."""
    settings = cfg.online_store_settings(paths, redis_url)
    marker = _store_marker(paths, redis_url)
    holds = upkeep.holds_rows(settings, cfg.PROJECT, _views())
    if marker.get("day") and not holds:
        _log.warning(
            "feature_store: the online store %s holds no row, though its marker names %s "
            "(deleted or emptied): rebuilding it from %s",
            settings.describe(), marker["day"], iso,
        )  # fmt: skip
        return {}
    if not marker and holds:
        removed = upkeep.clear(settings, cfg.PROJECT, _views())
        _log.warning(
            "feature_store: the online store %s holds %d entities but no marker says of which "
            "day: cleared before loading %s", settings.describe(), removed, iso,
        )  # fmt: skip
    return marker


def _write_day(
    paths: Paths,
    iso: str,
    redis_url: str | None,
    applied: ApplyResult,
    snapshots: dict[str, Snapshot],
    marker: dict[str, Any],
    lock: upkeep.RedisWriterLock | None,
) -> dict[str, Any]:
    """Load day ``iso`` into the online store and write its marker; returns the marker."""
    # Only a load reads the snapshot glob (DuckDB, with its first file's schema): a range
    # exports every day but loads its last, so the footers are read once, not once a day.
    for table, snapshot in snapshots.items():
        for day, done in refresh_stale(paths, table, snapshot).items():
            _log.warning(
                "feature_store: %s snapshot of %s, of another schema: %s", table, day, done
            )
    # Said before the rows are written: a run that fails half-way leaves the store holding
    # part of the day over the last, and readers (serving's /readyz) then say so, where they
    # said healthy. The marker that follows the rows replaces this one.
    pending = {**marker, "writing": iso, "writing_since": dt.datetime.now(dt.UTC).isoformat()}
    if lock is not None:
        lock.set_marker(cfg.REDIS_MARKER_KEY.format(project=cfg.PROJECT), pending)
    cfg.write_json(cfg.marker_path(paths), pending)
    store = _fresh_store(paths, redis_url)
    start = dt.datetime.combine(dt.date.fromisoformat(iso), dt.time.min, tzinfo=dt.UTC)
    with warnings.catch_warnings(), _named_errors(paths, redis_url):
        # ibis 12 calls DuckDB's fetch_arrow_table, which DuckDB 2 deprecates
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ibis\.")
        store.materialize(
            start_date=start,
            end_date=end_of_day(iso),
            feature_views=list(VIEW_OF_TABLE.values()),
        )
    # Entities of earlier days that the day does not hold (an item withdrawn, a user gone)
    # are removed: Feast only upserts, and they went on being served (by Feast and by the
    # reader, which loads every key) under the new day's marker. Its SQLite errors are named
    # as Feast's are (a full disk here too).
    with _named_errors(paths, redis_url):
        pruned = upkeep.prune(
            cfg.online_store_settings(paths, redis_url), cfg.PROJECT, _views(), _day_keys(snapshots)
        )
    if any(pruned.values()):
        _log.info("feature_store: removed from the online store, absent on %s: %s", iso, pruned)
    done = {
        "day": iso,
        "online_store": applied.online_store,
        "materialized_at": dt.datetime.now(dt.UTC).isoformat(),
        "counts": {VIEW_OF_TABLE[t]: s.rows for t, s in snapshots.items()},
        "delta_versions": {t: s.delta_version for t, s in snapshots.items()},
        "generation": int(marker.get("generation", 0)) + 1 if marker else 1,
    }
    if lock is not None:  # first: a failure here leaves both markers on the day before
        lock.set_marker(cfg.REDIS_MARKER_KEY.format(project=cfg.PROJECT), done)
    cfg.write_json(cfg.marker_path(paths), done)
    return done


def _views() -> list[upkeep.View]:
    """``(view, join key, features)`` of each entity's view."""
    settle()
    from recassets.featurestore import repo

    features = {v.name: [f.name for f in v.features] for v in repo.FEATURE_VIEWS}
    return [(view, join_key(table), features[view]) for table, view in ENTITY_VIEWS.values()]


def _day_keys(snapshots: dict[str, Snapshot]) -> dict[str, set[bytes]]:
    """view -> the serialized entity keys of the day's snapshot."""
    import pyarrow.parquet as pq

    out = {}
    for table, snapshot in snapshots.items():
        key = join_key(table)
        values = pq.read_table(snapshot.path, columns=[key]).column(key).to_pylist()
        out[VIEW_OF_TABLE[table]] = {wire.serialize_entity_key(key, v) for v in values}
    return out


def served_day(paths: Paths) -> str | None:
    """The day the online store serves (from the marker), None before any materialization;
    raises, naming the file, when the marker is damaged."""
    return upkeep.read_marker(cfg.marker_path(paths)).get("day")


def _write_lineage(
    paths: Paths, day: str, snapshots: dict[str, Snapshot], applied: ApplyResult, wrote: bool
) -> str:
    from pathlib import Path

    target = Path(paths.lineage) / "feature_store" / f"dt={day}.json"
    cfg.write_json(
        target,
        {
            "table": "feature_store",
            "partition": day,
            "inputs": [asdict(s) for s in snapshots.values()],
            "registry": applied.registry,
            "online_store": applied.online_store,
            "wrote_online": wrote,
            "code_version": __version__,
            "written_at": dt.datetime.now(dt.UTC).isoformat(),
        },
    )
    return str(target)


def feature_refs(entity: str, features: str | Sequence[str] | None = None) -> list[str]:
    """``view:feature`` references of ``entity``'s view: all its features (None), a feature
    service's share of them (its name), or the given names (``feature`` or ``view:feature``)."""
    settle()  # a background `import feast` (recassets.preload) finishes first
    from recassets.featurestore import repo

    if entity not in ENTITY_VIEWS:
        raise ValueError(f"unknown entity {entity!r}; expected one of {sorted(ENTITY_VIEWS)}")
    view_name = ENTITY_VIEWS[entity][1]
    view = next(v for v in repo.FEATURE_VIEWS if v.name == view_name)
    names = [f.name for f in view.features]
    if features is None:
        return [f"{view_name}:{n}" for n in names]
    if isinstance(features, str):
        service = next((s for s in repo.FEATURE_SERVICES if s.name == features), None)
        if service is None:
            raise ValueError(f"unknown feature service {features!r}")
        return [
            f"{view_name}:{f.name}"
            for p in service.feature_view_projections
            if p.name == view_name
            for f in p.features
        ]
    refs = []
    for f in features:
        name = f.split(":", 1)[1] if ":" in f else f
        if name not in names:
            raise ValueError(f"{view_name} has no feature {name!r}")
        refs.append(f"{view_name}:{name}")
    return refs


def online_features(
    paths: Paths,
    entity: str,
    ids: Sequence[Any],
    features: str | Sequence[str] | None = None,
    redis_url: str | None = None,
) -> dict[str, list[Any]]:
    """Feast's ``get_online_features(...).to_dict()`` for one entity kind: the join key and
    each feature, one value per id (None where the store has nothing). ``features``: see
    ``feature_refs``."""
    refs = feature_refs(entity, features)
    key = join_key(ENTITY_VIEWS[entity][0])
    store = _fresh_store(paths, redis_url)
    with _named_errors(paths, redis_url):
        response = store.get_online_features(features=refs, entity_rows=[{key: i} for i in ids])
        return response.to_dict()


def _iso(day: dt.date | str) -> str:
    return day if isinstance(day, str) else day.isoformat()


def _store_marker(paths: Paths, redis_url: str | None) -> dict[str, Any]:
    """The marker of the store this materialization writes, which says the day it serves
    ({} for a store never written): Redis's own key, or the home's file while it names the
    home's SQLite store. Once the home's file was matched to the store by its description, an
    absolute path or a URL as written: a copied home, or the same Redis spelled ``localhost``
    instead of ``127.0.0.1``, then counted as a new store, and an older day rolled serving
    back. A marker that cannot be read raises, naming it: what the store holds is then
    unknown, and only its owner can say whether to delete it (the next materialization then
    clears the store and loads its day: ``_claim_store``)."""
    if redis_url:
        import redis

        from recassets.featurestore.backends import REDIS_TIMEOUT_S

        key = cfg.REDIS_MARKER_KEY.format(project=cfg.PROJECT)
        client: Any = redis.Redis.from_url(
            redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
        try:
            held = client.get(key)
        finally:
            client.close()
        return upkeep.parse_marker(held, f"the Redis key {key}") if held else {}
    marker = upkeep.read_marker(cfg.marker_path(paths))
    on_sqlite = str(marker.get("online_store", "")).startswith("sqlite:")
    return marker if on_sqlite else {}


# The skew check lives in skew.py (imported last: it imports this module's functions).
from recassets.featurestore.skew import (  # noqa: E402
    ABSENT_FROM_DAY,
    Mismatch,
    SkewReport,
    same_value,
    skew_check,
)

__all__ = [
    "ABSENT_FROM_DAY",
    "ENTITY_VIEWS",
    "ApplyResult",
    "MaterializeSummary",
    "Mismatch",
    "SkewReport",
    "apply",
    "feature_refs",
    "get_store",
    "materialize_day",
    "materialize_days",
    "online_features",
    "same_value",
    "served_day",
    "skew_check",
]
