"""Apply, materialize, read and check the Feast feature store.

Every function takes ``Paths`` (and optionally a Redis URL; default: the SQLite online store)
and builds the Feast config from them (``config.py``). Feast is imported inside the functions,
never at module import: ``import feast`` takes seconds.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import math
import random
import threading
import warnings
from collections.abc import Callable, Generator, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from recassets import __version__
from recassets.features.schema import TABLES
from recassets.featurestore import config as cfg
from recassets.featurestore.snapshot import (
    Snapshot,
    end_of_day,
    export_offline_snapshot,
    export_offline_snapshots,
    join_key,
    offline_rows,
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
    store = get_store(paths, redis_url)
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
    the check of the marker, the load and the marker's update happen as one step. (Across
    machines on Redis, Feast's own event-time comparison keeps an older day from overwriting
    a newer one.)

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
    marker = _store_marker(paths, redis_url)
    same_store = bool(marker)
    served = marker.get("day") if same_store else None
    wrote = online and (served is None or served <= iso)
    if wrote:
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
        if redis_url:
            _redis_marker(redis_url, pending)
        cfg.write_json(cfg.marker_path(paths), pending)
        store = get_store(paths, redis_url)
        start = dt.datetime.combine(dt.date.fromisoformat(iso), dt.time.min, tzinfo=dt.UTC)
        with warnings.catch_warnings():
            # ibis 12 calls DuckDB's fetch_arrow_table, which DuckDB 2 deprecates
            warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"ibis\.")
            store.materialize(
                start_date=start,
                end_date=end_of_day(iso),
                feature_views=list(VIEW_OF_TABLE.values()),
            )
        marker = {
            "day": iso,
            "online_store": applied.online_store,
            "materialized_at": dt.datetime.now(dt.UTC).isoformat(),
            "counts": {VIEW_OF_TABLE[t]: s.rows for t, s in snapshots.items()},
            "delta_versions": {t: s.delta_version for t, s in snapshots.items()},
            "generation": int(marker.get("generation", 0)) + 1 if same_store else 1,
        }
        if redis_url:  # first: a failure here leaves both markers on the day before
            _redis_marker(redis_url, marker)
        cfg.write_json(cfg.marker_path(paths), marker)
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


def served_day(paths: Paths) -> str | None:
    """The day the online store serves (from the marker), None before any materialization."""
    marker = cfg.read_json(cfg.marker_path(paths))
    return marker.get("day") if marker else None


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
    store = get_store(paths, redis_url)
    response = store.get_online_features(features=refs, entity_rows=[{key: i} for i in ids])
    return response.to_dict()


# -- training/serving skew ------------------------------------------------------------------


@dataclass(frozen=True)
class Mismatch:
    view: str
    key: Any
    feature: str
    offline: Any
    online: Any


@dataclass
class SkewReport:
    day: str
    online_store: str
    checked: dict[str, int] = field(default_factory=dict)  # view -> entities compared
    mismatches: list[Mismatch] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return bool(self.checked) and not self.mismatches

    def mismatched_entities(self) -> dict[str, int]:
        out: dict[str, set] = {}
        for m in self.mismatches:
            out.setdefault(m.view, set()).add(m.key)
        return {v: len(k) for v, k in out.items()}

    def markdown(self, limit: int = 20) -> str:
        if not self.mismatches:
            return "(no mismatch)"
        lines = ["| view | key | feature | offline | online |", "| --- | --- | --- | --- | --- |"]
        for m in self.mismatches[:limit]:
            lines.append(
                f"| {m.view} | {m.key} | {m.feature} | {_short(m.offline)} | {_short(m.online)} |"
            )
        if len(self.mismatches) > limit:
            lines.append(f"| ... {len(self.mismatches) - limit} more | | | | |")
        return "\n".join(lines)


def skew_check(
    paths: Paths,
    day: dt.date | str,
    sample: int = 100,
    seed: int = 0,
    redis_url: str | None = None,
) -> SkewReport:
    """Training/serving skew: for up to ``sample`` entities per view (drawn with ``seed``),
    the values Feast serves online must equal, value for value, the rows of ``day`` read
    straight from Delta (after the snapshot's flattening), and carry that day's event time.

    Floats are compared exactly (NaN equals NaN): the online store must hold the same bits.
    An entity missing online shows as a mismatch on every feature.
    """
    iso = _iso(day)
    expected_ts = int(end_of_day(iso).timestamp())  # the stores keep whole seconds
    report = SkewReport(
        day=iso, online_store=cfg.online_store_settings(paths, redis_url).describe()
    )
    for entity, (table, view) in ENTITY_VIEWS.items():
        rows = offline_rows(paths, table, iso)
        key = join_key(table)
        keys = rows.column(key).to_pylist()
        chosen = sorted(
            random.Random(f"{seed}:{view}").sample(range(len(keys)), min(sample, len(keys)))
        )
        picked = rows.take(chosen)
        refs = feature_refs(entity)
        store = get_store(paths, redis_url)
        online = store.get_online_features(
            features=refs, entity_rows=[{key: k} for k in picked.column(key).to_pylist()]
        ).to_dict(include_event_timestamps=True)
        offline = picked.to_pydict()
        for i, k in enumerate(offline[key]):
            for ref in refs:
                name = ref.split(":", 1)[1]
                if not same_value(offline[name][i], online[name][i]):
                    report.mismatches.append(
                        Mismatch(view, k, name, offline[name][i], online[name][i])
                    )
            stamps = {online[f"{r.split(':', 1)[1]}__ts"][i] for r in refs}
            if stamps != {expected_ts}:
                report.mismatches.append(
                    Mismatch(view, k, "event_timestamp", expected_ts, sorted(stamps))
                )
        report.checked[view] = len(chosen)
    return report


def same_value(a: Any, b: Any) -> bool:
    """Exact equality where NaN equals NaN, through lists (and numpy arrays)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    a, b = _tolist(a), _tolist(b)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def _tolist(value: Any) -> Any:
    """A numpy array or scalar (anything with ``tolist``) as plain Python, other values as is."""
    if hasattr(value, "tolist") and not isinstance(value, str | bytes):
        return value.tolist()
    return value


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _iso(day: dt.date | str) -> str:
    return day if isinstance(day, str) else day.isoformat()


def _store_marker(paths: Paths, redis_url: str | None) -> dict[str, Any]:
    """The marker of the store this materialization writes, which says the day it serves
    ({} for a store never written): Redis's own key, or the home's file while the home's
    SQLite file exists. Once the home's file was matched to the store by its description, an
    absolute path or a URL as written: a copied home, or the same Redis spelled ``localhost``
    instead of ``127.0.0.1``, then counted as a new store, and an older day rolled serving
    back."""
    if redis_url:
        import json

        import redis

        from recassets.featurestore.online import REDIS_TIMEOUT_S

        key = cfg.REDIS_MARKER_KEY.format(project=cfg.PROJECT)
        client: Any = redis.Redis.from_url(
            redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
        )
        try:
            held = client.get(key)
        finally:
            client.close()
        return json.loads(held) if held else {}
    marker = cfg.read_json(cfg.marker_path(paths)) or {}
    on_sqlite = str(marker.get("online_store", "")).startswith("sqlite:")
    return marker if on_sqlite and Path(cfg.sqlite_path(paths)).exists() else {}


def _redis_marker(redis_url: str, marker: dict[str, Any]) -> None:
    """The marker in Redis too (``cfg.REDIS_MARKER_KEY``), after the rows it describes: a
    serving pod without the home reads it there (``OnlineFeatureReader``)."""
    import json

    import redis

    from recassets.featurestore.online import REDIS_TIMEOUT_S

    key = cfg.REDIS_MARKER_KEY.format(project=cfg.PROJECT)
    client = redis.Redis.from_url(
        redis_url, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
    )
    try:
        client.set(key, json.dumps(marker, sort_keys=True))
    finally:
        client.close()
