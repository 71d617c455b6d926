"""The item index: FAISS over the item tower's unit-norm embeddings, inner product.

The index type follows the catalog size (``choose_index``):

- up to ``EXACT_MAX`` items: ``Flat`` (exact inner product). 100k x 64 floats is 25 MB and one
  query scans it in about a millisecond on one core; nothing approximate is worth its recall
  loss below that.
- up to ``PQ_MIN`` items: ``IVF{nlist},Flat`` with nlist about 2 sqrt(N), a power of two. IVF
  rather than HNSW: it builds in a k-means pass (HNSW's graph build on 1M vectors takes several
  times longer on two cores), it is rebuilt from scratch every retrain anyway, and its one knob
  (``nprobe``) is tuned at build time to reach the recall target (``tune_nprobe``).
- beyond: ``IVF{nlist},SQ8`` (8-bit scalar codes: 64 bytes per 64-d vector instead of 256, so
  100M items take 6.4 GB). Not ``PQ``: product quantization (16 bytes a vector) loses recall
  in the codes themselves, whatever ``nprobe``: on 200k vectors with the PQ16 codes of the 10M
  layout, recall@100 stayed at 0.55 with every list probed (review, 2026-12-07), below the
  0.95 a served index must reach, so every such index was refused and the bento never rebuilt.
  SQ8 loses about 0.003 of recall against IVF-Flat at the same nprobe (0.973 against 0.976 at
  k = 600 on 200k clustered vectors), and a PQ code refined by SQ8 costs more bytes than SQ8
  alone for less recall (0.964) and a build 15 times longer.

``nprobe`` is tuned, not guessed: build-time queries (sampled users' embeddings, or item
vectors when none are given) are searched exactly and approximately with nprobe doubling from
1 until recall@k reaches ``target_recall``. The blocking check of ``item_index`` then measures
recall@k on held-out sampled users with the tuned nprobe. ``k`` is the depth serving asks for
(``recassets.bento.bundle.CHECK_K``: the funnel's 500 candidates and a margin for the user's
seen items, which are dropped after the search): an index tuned at recall@100 reached 0.984
there and 0.941 at 500, with 13 of the 500 slots empty (review, 2026-12-07).

Only ``Flat`` and IVF layouts are built (``factory`` must name one): an HNSW graph has no
``nprobe`` to tune and its build on two cores costs several times a k-means pass.

Built on the GPU when faiss has GPU support and CUDA is visible (``faiss.get_num_gpus()``):
training and adding run there, the result is moved back to the CPU for writing, since a
serving process loads it with ``faiss.read_index`` (CPU) either way.

Positions, not ids: FAISS returns row positions (``-1`` where fewer than k neighbours were
found, e.g. an IVF search whose probed lists hold fewer than k items); ``item_ids[pos]`` maps
them back, and ``search`` drops the ``-1`` slots.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

EXACT_MAX = 100_000
MIN_RECALL = 0.95  # recall@k against exact search that an index must reach to be served
PQ_MIN = 10_000_000
INDEX_FILE, IDS_FILE, META_FILE = "index.faiss", "item_ids.npy", "index.json"


def _faiss() -> Any:
    import faiss

    return faiss


def choose_index(n: int, dim: int) -> str:
    """The FAISS factory string for ``n`` vectors of ``dim`` (see the module docstring)."""
    if n <= EXACT_MAX:
        return "Flat"
    nlist = 1 << max(4, round(math.log2(2 * math.sqrt(n))))
    if n < PQ_MIN:
        return f"IVF{nlist},Flat"
    return f"IVF{nlist},SQ8"


@dataclass
class IndexInfo:
    """What the index is, written beside it (``index.json``) and into asset metadata."""

    factory: str
    n: int
    dim: int
    nprobe: int | None
    build_recall: float | None  # recall@k at the tuned nprobe on the build-time queries
    k: int
    device: str
    build_s: float


def _on_gpu(faiss: Any) -> bool:
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:  # pragma: no cover - torch is part of the stack
        cuda = False
    return cuda and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """(Q, k) positions of the exact top-k inner products (FAISS ``IndexFlatIP``)."""
    faiss = _faiss()
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
    _, pos = flat.search(np.ascontiguousarray(queries, dtype=np.float32), min(k, len(vectors)))
    return pos


def recall_at_k(approx: np.ndarray, exact: np.ndarray) -> float:
    """Mean |approx ∩ exact| / |exact| per query row (``-1`` slots never match)."""
    if len(exact) == 0:
        return float("nan")
    hits = [
        len(set(a[a >= 0].tolist()) & set(e[e >= 0].tolist())) / max(1, int((e >= 0).sum()))
        for a, e in zip(approx, exact, strict=True)
    ]
    return float(np.mean(hits))


def set_nprobe(index: Any, nprobe: int) -> None:
    faiss = _faiss()
    faiss.extract_index_ivf(index).nprobe = int(nprobe)


def tune_nprobe(
    index: Any,
    queries: np.ndarray,
    exact: np.ndarray,
    k: int,
    target_recall: float,
) -> tuple[int, float]:
    """The smallest power-of-two nprobe whose recall@k on ``queries`` reaches
    ``target_recall`` (or nlist, which is exact search over the lists), with that recall."""
    faiss = _faiss()
    nlist = faiss.extract_index_ivf(index).nlist
    nprobe = 1
    while True:
        set_nprobe(index, nprobe)
        _, pos = index.search(queries, k)
        recall = recall_at_k(pos, exact)
        if recall >= target_recall or nprobe >= nlist:
            return nprobe, recall
        nprobe = min(nlist, nprobe * 2)


def build_index(
    vectors: np.ndarray,
    *,
    factory: str | None = None,
    queries: np.ndarray | None = None,
    k: int = 100,
    target_recall: float = 0.97,
    seed: int = 0,
    use_gpu: bool | None = None,
) -> tuple[Any, IndexInfo]:
    """Build the index over ``vectors`` (N, D) float32 (row i = position i).

    ``factory`` overrides ``choose_index``. ``queries``: vectors to tune nprobe on (defaults
    to up to 1,000 of the item vectors themselves); the tuning aims above the check's 0.95 so
    that held-out queries still clear it.
    """
    faiss = _faiss()
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n, dim = vectors.shape
    if n == 0:
        raise ValueError("no item vectors to index: the catalog is empty")
    bad = np.flatnonzero(~np.isfinite(vectors).all(axis=1))
    if len(bad):  # a NaN row vanished from every exact answer, and IVF's k-means died in C++
        raise ValueError(
            f"{len(bad)} of {n} item vectors are not finite (positions {bad[:10].tolist()}): "
            "refusing to index them"
        )
    factory = factory or choose_index(n, dim)
    started = time.perf_counter()
    index = _new_index(faiss, dim, factory)
    gpu = _on_gpu(faiss) if use_gpu is None else use_gpu
    work = index
    if gpu:  # train and add on the GPU, keep the CPU copy for writing
        resources = faiss.StandardGpuResources()
        work = faiss.index_cpu_to_gpu(resources, 0, index)
    if not work.is_trained:
        nlist = faiss.extract_index_ivf(index).nlist
        if n < nlist:
            raise ValueError(f"{factory} needs at least {nlist} vectors to train, got {n}")
        # faiss's k-means samples 256 points per centroid by default: the same here, seeded
        rng = np.random.default_rng(seed)
        sample = (
            vectors[rng.choice(n, min(n, 256 * nlist), replace=False)]
            if n > 256 * nlist
            else vectors
        )
        try:  # e.g. 8-bit PQ codes need 256 training points whatever nlist
            work.train(sample)
        except RuntimeError as exc:
            raise ValueError(
                f"index {factory!r} cannot be trained on {len(sample)} vectors: {_first_line(exc)}"
            ) from exc
    work.add(vectors)
    if gpu:
        index = faiss.index_gpu_to_cpu(work)
    nprobe, build_recall = None, None
    if factory != "Flat":
        if queries is None:
            rng = np.random.default_rng(seed + 1)
            queries = vectors[rng.choice(n, min(n, 1000), replace=False)]
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        exact = exact_search(vectors, queries, k)
        nprobe, build_recall = tune_nprobe(index, queries, exact, min(k, n), target_recall)
    info = IndexInfo(
        factory=factory,
        n=n,
        dim=dim,
        nprobe=nprobe,
        build_recall=build_recall,
        k=k,
        device="cuda" if gpu else "cpu",
        build_s=time.perf_counter() - started,
    )
    return index, info


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__


class IndexFactoryError(ValueError):
    """An index factory string FAISS does not read, or one this build does not serve: the
    run's own configuration, which a retry cannot mend (``assets.failures``)."""


def _new_index(faiss: Any, dim: int, factory: str) -> Any:
    """An empty index of ``factory``, refused by name unless it is Flat or IVF (see the module
    docstring): an HNSW build ran to the end and then failed tuning, inside FAISS."""
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        raise IndexFactoryError(
            f"index factory {factory!r} is not one FAISS reads: {_first_line(exc)}"
        ) from exc
    if factory == "Flat":
        return index
    try:
        faiss.extract_index_ivf(index)
    except RuntimeError:
        raise IndexFactoryError(
            f"index factory {factory!r} is neither Flat nor an IVF index (IVF<nlist>,Flat, "
            "IVF<nlist>,SQ8, ...): only those are built, tuned and checked"
        ) from None
    return index


@dataclass
class ItemIndex:
    """A loaded index with its item ids: what serving and the check query."""

    index: Any
    item_ids: np.ndarray  # (N,) int64, position -> item id
    info: IndexInfo

    @property
    def size(self) -> int:
        return len(self.item_ids)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(Q, k') scores and positions, k' = min(k, size); ``-1`` positions mark empty
        slots (the caller drops them: ``ids_of``)."""
        k = min(int(k), self.size)
        if k <= 0:
            return np.zeros((len(queries), 0), np.float32), np.zeros((len(queries), 0), np.int64)
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)

    def ids_of(self, positions: np.ndarray) -> np.ndarray:
        """Item ids of one row of positions, ``-1`` slots dropped."""
        pos = positions[positions >= 0]
        return self.item_ids[pos]

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        faiss = _faiss()
        faiss.write_index(self.index, str(folder / INDEX_FILE))
        np.save(folder / IDS_FILE, self.item_ids.astype(np.int64))
        (folder / META_FILE).write_text(json.dumps(asdict(self.info), indent=2) + "\n")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ItemIndex:
        folder = Path(folder)
        for name in (INDEX_FILE, IDS_FILE, META_FILE):
            if not (folder / name).exists():
                raise FileNotFoundError(f"incomplete index folder {folder}: {name} is missing")
        faiss = _faiss()
        try:
            index = faiss.read_index(str(folder / INDEX_FILE))
            info = IndexInfo(**json.loads((folder / META_FILE).read_text()))
            ids = np.load(folder / IDS_FILE, allow_pickle=False)
            if info.nprobe is not None:  # on a Flat index: FAISS's own error, now named
                set_nprobe(index, info.nprobe)
        except Exception as exc:  # faiss raises RuntimeError, numpy ValueError/EOFError, ...
            raise IndexFactoryError(f"index {folder} is damaged: {exc}") from exc
        problem = None
        if len(ids) != index.ntotal:
            problem = f"{index.ntotal} vectors but {len(ids)} item ids (mixed files?)"
        elif ids.ndim != 1 or ids.dtype.kind not in "iu":
            problem = f"item ids are {ids.dtype} of shape {ids.shape}, not one column of integers"
        elif len(np.unique(ids)) != len(ids):
            problem = f"{len(ids) - len(np.unique(ids))} item ids appear more than once"
        elif index.d != info.dim:  # serving's dimension guard reads info.dim
            problem = f"the index holds {index.d}-dimensional vectors, {META_FILE} says {info.dim}"
        elif index.metric_type != faiss.METRIC_INNER_PRODUCT:
            problem = "the index is not an inner-product index (the towers score by dot product)"
        if problem:
            raise IndexFactoryError(f"index {folder}: {problem}")
        return cls(index=index, item_ids=ids.astype(np.int64), info=info)


def measure_recall(
    index: ItemIndex, vectors: np.ndarray, queries: np.ndarray, k: int = 100
) -> dict[str, Any]:
    """recall@k of ``index`` against exact search over ``vectors`` for ``queries``, and both
    searches' queries per second (same queries, same process)."""
    k = min(k, index.size)
    faiss = _faiss()
    flat = faiss.IndexFlatIP(vectors.shape[1])  # built outside the timed region
    flat.add(np.ascontiguousarray(vectors, dtype=np.float32))
    q32 = np.ascontiguousarray(queries, dtype=np.float32)
    t0 = time.perf_counter()
    _, exact = flat.search(q32, k)
    t1 = time.perf_counter()
    _, approx = index.search(q32, k)
    t2 = time.perf_counter()
    q = max(1, len(queries))
    return {
        f"recall@{k}": recall_at_k(approx, exact),
        "queries": len(queries),
        "exact_qps": q / max(t1 - t0, 1e-9),
        "index_qps": q / max(t2 - t1, 1e-9),
        "factory": index.info.factory,
        "nprobe": index.info.nprobe,
    }


def info_dict(info: IndexInfo) -> Mapping[str, Any]:
    return asdict(info)


__all__ = [
    "EXACT_MAX",
    "IndexFactoryError",
    "MIN_RECALL",
    "PQ_MIN",
    "IndexInfo",
    "ItemIndex",
    "build_index",
    "choose_index",
    "exact_search",
    "measure_recall",
    "recall_at_k",
    "tune_nprobe",
]
