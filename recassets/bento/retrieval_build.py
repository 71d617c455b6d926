"""The retrieval steps before a bundle: the item embeddings and the FAISS index over them.

Both are versioned folders under ``<artifacts>/retrieval/`` (``embeddings/0001``,
``index/0001``, ...), each written to a staging folder of its own (``.tmp-*``) and renamed into
place, so a failed step never leaves a half-written version that a later step (or a serving
process) would pick up. ``recassets.bento.bundle`` re-exports what it always did from here.

What a failed or overlapping build leaves (review of 2026-12-07):

- a step that fails removes its staging folder (a full disk had left 360 kB per failure, and
  a 10M-item index would leave gigabytes); one killed outright leaves it, and the next build
  sweeps staging folders older than ``STALE_TMP_S``;
- two builds that publish together both get a version: the second rename finds the first's
  folder in place (``ENOTEMPTY``) and takes the next number, where it used to fail;
- the index's files are hashed when it is built (its manifest's ``files``), and the bundle
  refuses a copy whose bytes differ (``recassets.bento.bundle``): a truncated ``index.faiss``
  was bundled, hash-certified and failed only when the service started.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.compute as pc

from recassets.featurestore.store import served_day
from recassets.funnel.config import FunnelConfig
from recassets.paths import Paths
from recassets.retrieval.index import INDEX_FILE, IndexInfo, ItemIndex, build_index, measure_recall
from recassets.training import inference as T
from recassets.training import policy as P

_VERSION = re.compile(r"^\d{4,}$")
# The depth the index is tuned and checked at: what serving asks the index for, the funnel's
# candidates (500 by default, ``RECASSETS_SERVE_CANDIDATES``) and a margin of 100 for the
# user's seen items, dropped after the search. An index tuned at recall@100 reached 0.984 there
# and 0.941 at 500 (review of 2026-12-07): the check certified a depth serving never used.
CHECK_K = FunnelConfig().candidates + 100
STALE_TMP_S = 6 * 3600.0  # a staging folder this old is a killed build's (a build takes minutes)
UNIT_NORM_TOLERANCE = 1e-3  # the towers end in F.normalize: |norm - 1| beyond this is a bug


def retrieval_dir(paths: Paths, what: str) -> Path:
    return Path(paths.artifacts) / "retrieval" / what


def versions(folder: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return sorted(
        (p for p in folder.iterdir() if _VERSION.match(p.name)), key=lambda p: int(p.name)
    )


def latest_version(folder: Path) -> Path | None:
    found = versions(folder)
    return found[-1] if found else None


def _new_version(folder: Path) -> Path:
    found = versions(folder)
    return folder / f"{int(found[-1].name) + 1 if found else 1:04d}"


def _publish(tmp: Path, folder: Path, attempts: int = 100) -> Path:
    """Rename a completed temporary folder to the next version (atomic on one filesystem).
    Another build that published the same number first wins it; this one takes the next."""
    for _ in range(attempts):
        target = _new_version(folder)
        try:
            os.rename(tmp, target)  # onto an existing non-empty folder: ENOTEMPTY or EEXIST
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            continue
        return target
    raise RuntimeError(f"could not publish {tmp} under {folder}: {attempts} versions taken")


def _staging(folder: Path, prefix: str = ".tmp-") -> Path:
    """A new folder of this process's own under ``folder`` (never shared with another build);
    staging folders left by killed builds (older than ``STALE_TMP_S``) are removed first."""
    folder.mkdir(parents=True, exist_ok=True)
    for stale in folder.glob(f"{prefix}*"):
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime >= STALE_TMP_S:
                shutil.rmtree(stale, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=folder))


@contextlib.contextmanager
def _staged(folder: Path) -> Generator[Path, None, None]:
    """A staging folder under ``folder`` that is removed if the block raises (the block
    publishes it on success, which moves it away)."""
    tmp = _staging(folder)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _read_json(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def serving_policy(paths: Paths) -> dict[str, Any]:
    """The current policy; a model policy whose checkpoint files are gone is an error."""
    policy = P.current_policy(paths)
    if policy.get("policy") == P.MODEL:
        for kind in P.KINDS:
            if not Path(policy[kind]).exists():
                raise FileNotFoundError(
                    f"the promoted {kind} checkpoint {policy[kind]} is missing: restore it or "
                    "re-run the model assets"
                )
    return policy


def _features_day(paths: Paths) -> str:
    day = served_day(paths)
    if day is None:
        raise ValueError(
            "the online store serves no day yet: materialize featurestore/feature_store first"
        )
    return day


def _feature_rows(paths: Paths, table: str, day: str) -> Any:
    from recassets.lake import open_delta

    dt_ = open_delta(paths.table(table))
    rows = dt_.to_pyarrow_dataset().to_table(filter=pc.field("dt") == dt.date.fromisoformat(day))
    return rows, dt_.version()


# --- item_embeddings ------------------------------------------------------------------------


@dataclass
class EmbeddingsResult:
    folder: str | None  # None: skipped (popularity policy)
    manifest: dict[str, Any]


def check_embeddings(ids: np.ndarray, vecs: np.ndarray, source: str) -> None:
    """Refuse item vectors that are not finite or not unit-norm, naming the items and the
    checkpoint: a NaN vector vanished from every exact answer, and made IVF's k-means fail
    inside FAISS naming nothing; the index's inner product is the towers' cosine only for
    unit vectors."""
    norms = np.linalg.norm(vecs.astype(np.float64), axis=1)
    bad = ~np.isfinite(vecs).all(axis=1) | ~(np.abs(norms - 1.0) <= UNIT_NORM_TOLERANCE)
    if bad.any():
        raise ValueError(
            f"{int(bad.sum())} of {len(ids)} item embeddings from {source} are not finite "
            f"unit vectors (item ids {ids[bad][:10].tolist()}): nothing indexed; retrain or "
            "restore the checkpoint"
        )


def compute_item_embeddings(paths: Paths, *, device: Any = None) -> EmbeddingsResult:
    """The promoted two-tower's item tower over every item of ``item_features`` on the day the
    online store serves (the whole catalog: that table holds every item ever seen)."""
    policy = serving_policy(paths)
    if policy.get("policy") != P.MODEL:
        return EmbeddingsResult(None, {"skipped": "popularity policy: no model to embed with"})
    day = _features_day(paths)
    rows, version = _feature_rows(paths, "item_features", day)
    if rows.num_rows == 0:
        raise ValueError(f"item_features has no rows for {day}, the day the online store serves")
    ids, vecs = T.item_embeddings(policy["two_tower"], rows, device=device)
    check_embeddings(ids, vecs, policy["two_tower"])
    folder = retrieval_dir(paths, "embeddings")
    with _staged(folder) as tmp:
        np.save(tmp / "item_ids.npy", ids)
        np.save(tmp / "embeddings.npy", vecs)
        manifest = {
            "two_tower": policy["two_tower"],
            "two_tower_sha256": _sha256(Path(policy["two_tower"])),
            "features_day": day,
            "item_features_version": version,
            "items": int(len(ids)),
            "dim": int(vecs.shape[1]),
            "norm_min": float(np.linalg.norm(vecs, axis=1).min()) if len(vecs) else None,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        _write_json(tmp / "manifest.json", manifest)
        return EmbeddingsResult(str(_publish(tmp, folder)), manifest)


def load_embeddings(folder: str | Path) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    folder = Path(folder)
    return (
        np.load(folder / "item_ids.npy"),
        np.load(folder / "embeddings.npy"),
        _read_json(folder / "manifest.json"),
    )


# --- item_index -----------------------------------------------------------------------------


@dataclass
class IndexResult:
    folder: str | None
    info: IndexInfo | None
    check: dict[str, Any]  # recall@k against exact search on held-out sampled users
    manifest: dict[str, Any]


def sampled_user_vectors(
    paths: Paths, two_tower: str, day: str, n: int, seed: int = 0
) -> np.ndarray:
    """Embeddings of up to ``n`` users drawn (seeded) from ``user_features`` of ``day``."""
    rows, _ = _feature_rows(paths, "user_features", day)
    if rows.num_rows == 0:
        return np.zeros((0, 0), np.float32)
    rng = np.random.default_rng(seed)
    take = np.sort(rng.choice(rows.num_rows, min(n, rows.num_rows), replace=False))
    _, vecs = T.user_embeddings(two_tower, rows.take(take))
    return vecs


def index_files(folder: Path) -> dict[str, str]:
    """sha256 of each file an index folder serves from (what the bundle's copy must match)."""
    return {f.name: _sha256(f) for f in sorted(folder.iterdir()) if f.is_file()}


def build_item_index(
    paths: Paths,
    *,
    factory: str | None = None,
    sample_users: int = 2000,
    k: int = CHECK_K,
    target_recall: float = 0.97,
    seed: int = 0,
) -> IndexResult:
    """Index the latest embeddings (which must come from the promoted two-tower). Half of the
    sampled users tune nprobe; the other half, unseen by the tuning, measure the recall@k
    that the blocking check reads (``k``: the depth serving asks for, ``CHECK_K``)."""
    policy = serving_policy(paths)
    if policy.get("policy") != P.MODEL:
        return IndexResult(None, None, {}, {"skipped": "popularity policy: nothing to index"})
    emb = latest_version(retrieval_dir(paths, "embeddings"))
    if emb is None:
        raise FileNotFoundError("no item embeddings: materialize retrieval/item_embeddings first")
    ids, vecs, emb_manifest = load_embeddings(emb)
    if P.in_home(paths, emb_manifest["two_tower"]) != policy["two_tower"]:
        raise ValueError(
            f"the latest embeddings ({emb}) come from {emb_manifest['two_tower']}, but the "
            f"policy serves {policy['two_tower']}: materialize retrieval/item_embeddings first"
        )
    check_embeddings(ids, vecs, f"{emb} (of {emb_manifest['two_tower']})")
    users = sampled_user_vectors(
        paths, policy["two_tower"], emb_manifest["features_day"], sample_users, seed
    )
    half = len(users) // 2
    tune, held_out = (users[:half], users[half:]) if half else (None, users)
    index, info = build_index(
        vecs, factory=factory, queries=tune, k=k, target_recall=target_recall, seed=seed
    )
    item_index = ItemIndex(index, ids.astype(np.int64), info)
    check = measure_recall(item_index, vecs, held_out, k) if len(held_out) else {}
    folder = retrieval_dir(paths, "index")
    with _staged(folder) as tmp:
        item_index.save(tmp)
        manifest = {
            "embeddings": str(emb),
            "two_tower": policy["two_tower"],
            "two_tower_sha256": emb_manifest.get("two_tower_sha256"),
            "features_day": emb_manifest["features_day"],
            "item_features_version": emb_manifest["item_features_version"],
            "check": check,
            "files": index_files(tmp),  # before the manifest: it is not one of them
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        }
        _write_json(tmp / "manifest.json", manifest)
        return IndexResult(str(_publish(tmp, folder)), info, check, manifest)


def verify_index_copy(source: Path, copy: Path, manifest: dict[str, Any]) -> None:
    """The bundle's copy of an index folder holds the bytes hashed at its build, else it is
    refused naming the source folder and file. An index built before the hashes were kept is
    loaded instead (``ItemIndex.load`` refuses a damaged or inconsistent one)."""
    expected = manifest.get("files")
    if not expected:
        try:
            ItemIndex.load(copy)
        except (ValueError, FileNotFoundError) as e:
            raise ValueError(
                f"the latest index ({source}) cannot be served: {e}; rebuild retrieval/item_index"
            ) from e
        return
    got = index_files(copy)
    for name, digest in expected.items():
        if got.get(name) != digest:
            raise ValueError(
                f"the latest index ({source}): {name} is not the file built there (sha256 "
                f"{str(got.get(name))[:12]} against {digest[:12]} at build): damaged or "
                "replaced; rebuild retrieval/item_index"
            )
    if INDEX_FILE not in expected:
        raise ValueError(f"the latest index ({source}) lists no {INDEX_FILE} among its files")
