"""Embedding rows outside the serving process: a key-value store and a bounded cache of hot rows.

The talk's externalized embedding serving: a model whose tables do not fit in one server keeps
them in a store, and each replica holds only the rows its traffic touches. Here the store is
Redis (the one the online features use), and the switch is ``RECASSETS_SERVE_EMBEDDINGS=redis``
(default ``process``: the tables stay in the model, as before).

Layout, per model file (content-addressed by the checkpoint's sha256, which the bundle manifest
records, so two bentos of the same model share rows and two models never mix):

- ``recassets:emb:<sha256[:16]>:<table>``: a hash, field = row number (decimal), value = the
  row as little-endian float32 bytes;
- ``recassets:emb:<sha256[:16]>:meta``: JSON ``{table: [rows, dim]}``, written last, so its
  presence means every row is there (``publish``);
- ``recassets:emb:models``: a hash, field = ``<sha256[:16]>``, value = the Unix time the model
  was last published: what ``prune`` reads.

Models are pruned after each publish (``prune``, review of 2026-12-07: nothing was ever
deleted, every daily retrain added a model's rows to the Redis the online features share, and
under ``maxmemory-policy noeviction`` writes were refused on the third day of an 8 MB test
store). Kept: the models of the newest ``KEEP_BENTOS_ENV`` (3) bentos in the store, and any
model published within ``KEEP_HOURS_ENV`` (24) hours, so that a replica still rolling over
from an older bento finds its rows. A model is deleted meta first, so a replica that reads it
meanwhile is refused whole (``MissingRowsError``), never served half a table. Rolling back to
a bento older than that needs its rows again: build it again with the embeddings on. Size the
store for the kept models plus a day's builds.

At serving, ``externalize`` swaps a loaded model's ``EmbeddingTables`` for
``ExternalEmbeddingTables``: the same ``forward(kjt)`` and ``weight(table)`` the funnel calls,
backed by a ``RowStore`` (one ``HMGET`` per table and request for the rows not cached, an LRU of
at most ``capacity`` rows, hits and misses counted). The answers are identical either way: the
pooled lookups run the same kernel (``embedding_bag``, mean) over the same rows in the same
order, only gathered from the cache instead of the full table (tested against a real Redis).
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torchrec.sparse.jagged_tensor import KeyedJaggedTensor

from recassets.featurestore.online import OnlineStoreUnavailable, StoreHealth
from recassets.models.embeddings import TableSpec, complete_kjt
from recassets.run_settings import (  # the publishing settings, parsed at load too; re-exported
    EMBEDDINGS_ENV,  # process (default) | redis
    KEEP_BENTOS,
    KEEP_BENTOS_ENV,
    KEEP_HOURS,
    KEEP_HOURS_ENV,
    Publishing,
    publishing,
)

PREFIX = "recassets:emb"
REGISTRY_KEY = f"{PREFIX}:models"  # <sha256[:16]> -> Unix time of its last publish
WEIGHT_KEY = "embeddings.ebc.embedding_bags.{}.weight"  # the state-dict key of a table
CACHE_ROWS_ENV = "RECASSETS_SERVE_EMBEDDING_CACHE_ROWS"
DEFAULT_CACHE_ROWS = 100_000


class MissingRowsError(OnlineStoreUnavailable, LookupError):
    """The store lacks the rows of a model (never published, or evicted by Redis). At start
    the service refuses to start; in a request it is the store failing
    (``OnlineStoreUnavailable``): the answer falls back, and readiness says why."""


def model_key(sha256: str) -> str:
    return f"{PREFIX}:{sha256[:16]}"


def publish(
    client: Any, sha256: str, tables: Mapping[str, torch.Tensor], chunk: int = 5_000
) -> int:
    """Write every row of ``tables`` ({table: (rows, E) float32}) under the model's key, then
    its meta (last: its presence means the rows are complete). Idempotent. Returns rows."""
    key = model_key(sha256)
    total = 0
    for table, weight in tables.items():
        rows = weight.detach().to("cpu", torch.float32).contiguous().numpy()
        pipe = client.pipeline(transaction=False)
        for start in range(0, len(rows), chunk):
            block = rows[start : start + chunk]
            pipe.hset(
                f"{key}:{table}",
                mapping={str(start + i): r.astype("<f4").tobytes() for i, r in enumerate(block)},
            )
            _execute(pipe, f"{key}:{table}")
        total += len(rows)
    meta = {t: [int(w.shape[0]), int(w.shape[1])] for t, w in tables.items()}
    client.set(f"{key}:meta", json.dumps(meta, sort_keys=True))
    client.hset(REGISTRY_KEY, sha256[:16], str(time.time()))
    return total


def _execute(pipe: Any, key: str) -> None:
    """Run a pipeline of row writes; a failure is said in one line. Redis's error quoted the
    whole refused command, rows included: 635,564 characters in the run's log for one full
    store (review of 2026-12-07)."""
    try:
        pipe.execute()
    except Exception as e:
        first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
        raise RuntimeError(
            f"publishing embedding rows to {key} failed: {type(e).__name__}: {first}"
        ) from None


def prune(client: Any, keep: Iterable[str], keep_hours: float = KEEP_HOURS, now: float | None = None) -> list[str]:  # fmt: skip
    """Delete the rows of every published model but those of ``keep`` (sha256s, or their
    first 16 hex digits) and those published within ``keep_hours``; returns the models
    deleted. A model published before the registry existed is entered in it now (so it goes
    ``keep_hours`` later, as any other)."""
    now = time.time() if now is None else now
    kept = {str(sha)[:16] for sha in keep}
    registry = {_text(k): float(_text(v)) for k, v in client.hgetall(REGISTRY_KEY).items()}
    for meta_key in client.scan_iter(match=f"{PREFIX}:*:meta", count=1000):
        model = _text(meta_key)[len(PREFIX) + 1 : -len(":meta")]
        if model not in registry:
            registry[model] = now
            client.hsetnx(REGISTRY_KEY, model, str(now))
    gone = []
    for model, published in sorted(registry.items()):
        if model in kept or now - published < keep_hours * 3600:
            continue
        key = f"{PREFIX}:{model}"
        client.delete(f"{key}:meta")  # first: a reader is refused whole, never half-served
        tables = [k for k in client.scan_iter(match=f"{key}:*", count=1000)]
        if tables:
            client.delete(*tables)
        client.hdel(REGISTRY_KEY, model)
        gone.append(model)
    return gone


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def checkpoint_tables(state_dict: Mapping[str, torch.Tensor], tables: Sequence[TableSpec]) -> dict[str, torch.Tensor]:  # fmt: skip
    """The (rows, E) weight of each table, from a model's state dict."""
    return {t.name: state_dict[WEIGHT_KEY.format(t.name)] for t in tables}


def publish_bundle(client: Any, manifest: Mapping[str, Any], files: Mapping[str, str]) -> dict[str, int]:  # fmt: skip
    """Publish the tables of every model file of a bundle (``files``: kind -> path; the
    manifest's lineage gives each one's sha256). Returns rows written per kind."""
    from recassets.training.checkpoint import Checkpoint

    out = {}
    for kind, path in files.items():
        sha = manifest["lineage"][kind]["sha256"]
        ckpt = Checkpoint.load(path)
        specs = [TableSpec.from_dict(t) for t in ckpt.config["model"]["tables"]]
        out[kind] = publish(client, sha, checkpoint_tables(ckpt.state_dict, specs))
    return out


def publish_if_asked(
    folder: Any,
    manifest: Mapping[str, Any],
    env: Mapping[str, str],
    kept_bentos: Callable[[int], Iterable[str]] | None = None,
    settings: Publishing | None = None,
) -> dict[str, int] | None:
    """At a bento build: when ``env`` says ``RECASSETS_SERVE_EMBEDDINGS=redis``, publish the
    bundle's model rows to ``RECASSETS_REDIS_URL`` (None otherwise, or for a bundle without
    models), then ``prune`` the models that neither the newest ``KEEP_BENTOS_ENV`` bentos
    (``kept_bentos(n)``: their models' sha256s) nor the last ``KEEP_HOURS_ENV`` hours
    published. The caller passes its environment (this module reads none itself), or
    ``settings`` it parsed before its side effects (``run_settings.publishing``): every
    setting is parsed before a row is written, ``RECASSETS_SERVE_EMBEDDINGS`` by the rule the
    serving workers apply (``redsi`` is refused, where it had published nothing)."""
    from pathlib import Path

    settings = settings or publishing(env, need_url=False)
    models = ("two_tower", "ranking")  # a popularity bundle has none (its counts file at most)
    if not settings.to_redis or not all(k in (manifest.get("files") or {}) for k in models):
        return None
    import redis

    client = redis.Redis.from_url(settings.url(), socket_timeout=10, socket_connect_timeout=5)
    files = {k: str(Path(folder) / manifest["files"][k]) for k in models}
    published = publish_bundle(client, manifest, files)
    keep = {manifest["lineage"][k]["sha256"] for k in models}
    keep |= set(kept_bentos(settings.keep_bentos) if kept_bentos else ())
    prune(client, keep, settings.keep_hours)
    return published


class RowStore:
    """Rows of one model's tables from the store, through an LRU of at most ``capacity`` rows.
    ``on_lookup(hits, misses)`` is told about each lookup (the service counts them)."""

    def __init__(
        self,
        client: Any,
        sha256: str,
        capacity: int = DEFAULT_CACHE_ROWS,
        on_lookup: Callable[[int, int], None] | None = None,
    ) -> None:
        self.client, self.key, self.capacity = client, model_key(sha256), max(int(capacity), 1)
        raw = client.get(f"{self.key}:meta")
        if raw is None:
            raise MissingRowsError(
                f"no embedding rows for model {sha256[:16]} in the store ({self.key}:meta "
                f"missing): build the bento with {EMBEDDINGS_ENV}=redis, which publishes them"
            )
        self.shapes: dict[str, tuple[int, int]] = {t: (r, d) for t, (r, d) in json.loads(raw).items()}  # fmt: skip
        self._cache: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self.hits = self.misses = 0
        self.on_lookup = on_lookup
        self.health = StoreHealth()  # the last row reads' outcome, for readiness
        self._last: Exception | None = None  # what the last failed read raised
        import redis

        self._error = redis.RedisError

    def ping(self) -> bool:
        """Whether the rows can be read now (readiness): False while the last read failed and
        the store still does not answer, or lost a row (it stays lost until a read finds it)."""
        if self.health.degraded and not isinstance(self._last, MissingRowsError):
            try:
                self.client.ping()
            except self._error as e:
                self._failed(
                    OnlineStoreUnavailable(
                        f"Redis embedding rows {self.key}: {type(e).__name__}: {e}"
                    )
                )
                return False
            self.health.ok()
        return not self.health.degraded

    @property
    def hit_rate(self) -> float:
        n = self.hits + self.misses
        return self.hits / n if n else 0.0

    def __len__(self) -> int:
        return len(self._cache)

    def _failed(self, e: OnlineStoreUnavailable) -> OnlineStoreUnavailable:
        self._last = e
        self.health.failed(e)
        return e

    def rows(self, table: str, ids: np.ndarray) -> torch.Tensor:
        """``(len(ids), E)`` float32: the rows ``ids`` of ``table``, in order."""
        n_rows, dim = self.shapes[table]
        ids = np.asarray(ids, dtype=np.int64).reshape(-1)
        unique, inverse = np.unique(ids, return_inverse=True)
        found: dict[int, np.ndarray] = {}
        missing = []
        for row in unique.tolist():
            hit = self._cache.get((table, row))
            if hit is None:
                missing.append(row)
            else:
                self._cache.move_to_end((table, row))
                found[row] = hit
        if missing:
            bad = [r for r in missing if not 0 <= r < n_rows]
            if bad:
                raise IndexError(f"{table}: rows {bad[:5]} outside 0..{n_rows - 1}")
            try:
                values = self.client.hmget(f"{self.key}:{table}", [str(r) for r in missing])
            except self._error as e:  # a connection refused or lost, a timeout
                raise self._failed(OnlineStoreUnavailable(
                    f"Redis embedding rows {self.key}:{table}: {type(e).__name__}: {e}"
                )) from e  # fmt: skip
            for row, value in zip(missing, values, strict=True):
                if value is None:  # evicted or flushed: a store that lost data
                    raise self._failed(MissingRowsError(f"{self.key}:{table} has no row {row}"))
                vec = np.frombuffer(value, dtype="<f4")
                found[row] = vec
                self._cache[(table, row)] = vec
            self.health.ok()
            self._last = None
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)
        hits, misses = len(unique) - len(missing), len(missing)
        self.hits += hits
        self.misses += misses
        if self.on_lookup is not None:
            self.on_lookup(hits, misses)
        if not len(unique):
            return torch.zeros((0, dim), dtype=torch.float32)
        block = np.stack([found[r] for r in unique.tolist()])
        return torch.from_numpy(block[inverse])


class RemoteWeight:
    """What the funnel does with a table's weight (``users.UserInputs``), answered from the
    store: ``index_select(0, rows)``, ``w[row : row + 1]``, ``new_zeros``, ``shape``."""

    def __init__(self, store: RowStore, table: str, device: torch.device | None = None) -> None:
        self.store, self.table = store, table
        self.device = device or torch.device("cpu")
        self.shape = torch.Size(store.shapes[table])

    def index_select(self, dim: int, index: torch.Tensor) -> torch.Tensor:
        if dim != 0:
            raise ValueError("rows only (dim 0)")
        return self.store.rows(self.table, index.cpu().numpy()).to(self.device)

    def __getitem__(self, key: slice | int) -> torch.Tensor:
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            rows = self.store.rows(self.table, np.arange(start, stop, step))
        else:
            rows = self.store.rows(self.table, np.asarray([key]))[0]
        return rows.to(self.device)

    def new_zeros(self, size: Sequence[int]) -> torch.Tensor:
        return torch.zeros(tuple(size), dtype=torch.float32, device=self.device)


class ExternalEmbeddingTables(nn.Module):
    """``EmbeddingTables`` for inference with the rows in a ``RowStore``: ``forward(kjt)`` ->
    ``{feature: (B, E)}``, mean-pooled like the tables (an empty bag is zeros)."""

    def __init__(
        self, tables: Sequence[TableSpec], store: RowStore, device: torch.device | None = None
    ) -> None:
        super().__init__()
        self.tables, self.store = tuple(tables), store
        self.device = device or torch.device("cpu")
        self.feature_names = [f for t in self.tables for f in t.features]
        self._table_of = {f: t.name for t in self.tables for f in t.features}

    def forward(self, sparse: KeyedJaggedTensor) -> dict[str, torch.Tensor]:
        if set(sparse.keys()) != set(self.feature_names):
            sparse = complete_kjt(sparse, self.feature_names)
        out = {}
        for feature, jt in sparse.to_dict().items():
            table = self._table_of[feature]
            values = jt.values().cpu()
            unique, local = torch.unique(values, return_inverse=True)
            weight = self.store.rows(table, unique.numpy()) if len(unique) else torch.zeros(
                (1, self.store.shapes[table][1])
            )  # fmt: skip
            # the kernel and the bag layout of the tables' own nn.EmbeddingBag (torchrec passes
            # the B + 1 offsets): the same sums in the same order, over the same rows
            out[feature] = F.embedding_bag(
                local if len(unique) else values,
                weight,
                jt.offsets().cpu(),
                mode="mean",
                include_last_offset=True,
            ).to(self.device)
        return out

    def weight(self, table: str) -> RemoteWeight:
        return RemoteWeight(self.store, table, self.device)


def externalize(model: nn.Module, store: RowStore, device: torch.device | None = None) -> None:
    """Swap ``model.embeddings`` for the store-backed tables; the in-process weights go."""
    tables: Sequence[TableSpec] = model.embeddings.tables  # type: ignore[union-attr,assignment]
    model.embeddings = ExternalEmbeddingTables(tables, store, device)


__all__ = [
    "CACHE_ROWS_ENV",
    "EMBEDDINGS_ENV",
    "KEEP_BENTOS",
    "KEEP_BENTOS_ENV",
    "KEEP_HOURS",
    "KEEP_HOURS_ENV",
    "ExternalEmbeddingTables",
    "MissingRowsError",
    "RemoteWeight",
    "RowStore",
    "externalize",
    "publish",
    "publish_bundle",
    "publish_if_asked",
]
