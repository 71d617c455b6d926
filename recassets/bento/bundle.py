"""From the model store to a Bento: item embeddings, the index, the serving bundle, the build.

Layout under ``<artifacts>``::

    retrieval/embeddings/0001/   item_ids.npy, embeddings.npy, manifest.json
    retrieval/index/0001/        index.faiss, item_ids.npy, index.json, manifest.json
    serving/bundles/.staging-*/  a bundle being written (``write_bundle``): one folder per
                                 build, so two builds at once never share one and cannot mix one
                                 run's models with another's index; the asset removes its own
                                 after the build (``staged_bundle``): each bento keeps its copy
                                 under ``src/bundle``

and the Bento store at ``Paths.bentoml`` (``BENTOML_HOME``; ``<home>/bentoml`` unless moved,
as ``RECASSETS_BENTOML_HOME`` does at the edges: ``Paths.from_env``, the Dagster
``BentoStoreResource``).

Every step reads the current policy (``recassets.training.policy.current_policy``), never the
latest checkpoint: a model the gate refused is never embedded, indexed or bundled. While the
policy is popularity, embeddings and index are skipped and the bundle carries no model.

Versions are written to a temporary folder and renamed into place, so a failed step never
leaves a half-written version that a later step (or a serving process) would pick up. The
embeddings and the index are built in ``recassets.bento.retrieval_build`` (re-exported here).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Generator, Mapping
from pathlib import Path
from typing import Any

from recassets.bento.build_child import build_lock, failure
from recassets.bento.popularity import POPULARITY_FILE, write_counts
from recassets.bento.retrieval_build import (  # re-exported: the steps before the bundle
    CHECK_K,
    EmbeddingsResult,
    IndexResult,
    _read_json,
    _sha256,
    _staging,
    _write_json,
    build_item_index,
    compute_item_embeddings,
    index_files,
    latest_version,
    load_embeddings,
    retrieval_dir,
    sampled_user_vectors,
    serving_policy,
    verify_index_copy,
    versions,
)
from recassets.bento.store import (  # the store's helpers, re-exported
    BENTO_NAME,
    bento_folder,
    bentoml_home,
    check_tag,
    latest_bento,
    mark_built,
)
from recassets.featurestore import config as fcfg
from recassets.funnel import campaigns as C
from recassets.paths import Paths
from recassets.retrieval.index import MIN_RECALL
from recassets.run_settings import TORCH_ENV as TORCH_ENV  # RECASSETS_BENTO_TORCH: re-exported
from recassets.run_settings import TORCH_VARIANTS as TORCH_VARIANTS
from recassets.run_settings import torch_variant as torch_variant
from recassets.training import policy as P
from recassets.training.checkpoint import Checkpoint, DamagedArtifactError
from recassets.training.light import LightRanker
from recassets.training.similarity import ItemSimilarity

SERVICE_DIR = Path(__file__).resolve().parents[2] / "serving"


# --- the bundle and the bento ---------------------------------------------------------------


def write_bundle(paths: Paths, out: str | Path | None = None) -> Path:
    """The serving bundle of the current policy: models, index, Feast catalog, the landed ad
    campaigns when there are any, and a lineage manifest naming every input (checkpoints with
    the partitions and Delta versions they consumed, the index and its embeddings, the Feast
    registry and the day it serves, the campaigns file with its sha256)."""
    policy = serving_policy(paths)
    if out:
        folder = Path(out)
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
    else:
        folder = _staging(Path(paths.artifacts) / "serving" / "bundles", prefix=".staging-")
    try:
        return _fill_bundle(paths, policy, folder)
    except BaseException:  # a failed write leaves no staging folder behind (a full disk:
        if not out:  # each retry had left another, and the next build removed none)
            shutil.rmtree(folder, ignore_errors=True)
        raise


def _copied_checkpoint(served: str, target: Path) -> Checkpoint:
    """Copy the served checkpoint into the bundle and load the copy (the bytes the bundle
    ships are the bytes checked). A damaged one is named as the policy's file, not as the
    staging copy a reader cannot find once the failed build has removed it."""
    shutil.copy2(served, target)
    try:
        return Checkpoint.load(target)
    except DamagedArtifactError as e:
        raise DamagedArtifactError(
            f"checkpoint {served} (served by current.json) is damaged: "
            f"{str(e).replace(str(target), 'its copy')}"
        ) from e


def _fill_bundle(paths: Paths, policy: dict[str, Any], folder: Path) -> Path:
    files: dict[str, str] = {}
    lineage: dict[str, Any] = {"policy": {k: v for k, v in policy.items() if k != "evaluation"}}
    if policy.get("policy") == P.MODEL:
        index = latest_version(retrieval_dir(paths, "index"))
        if index is None:
            raise FileNotFoundError("no item index: materialize retrieval/item_index first")
        index_manifest = _read_json(index / "manifest.json")
        if P.in_home(paths, index_manifest["two_tower"]) != policy["two_tower"]:
            raise ValueError(
                f"the latest index ({index}) was built from {index_manifest['two_tower']}, but "
                f"the policy serves {policy['two_tower']}: materialize retrieval/item_index"
            )
        recall = next(
            (v for k, v in index_manifest.get("check", {}).items() if k.startswith("recall@")), None
        )
        if recall is None or recall < MIN_RECALL:
            raise ValueError(
                f"the latest index ({index}) has recall {recall} against exact search, below "
                f"{MIN_RECALL}: it is never served; rebuild retrieval/item_index"
            )
        (folder / "models").mkdir()
        for kind in P.KINDS:
            target = folder / "models" / f"{kind}.pt"
            ckpt = _copied_checkpoint(policy[kind], target)
            files[kind] = f"models/{kind}.pt"
            lineage[kind] = {
                "checkpoint": policy[kind],
                "sha256": _sha256(target),
                "partitions": ckpt.partitions,
                "delta_versions": ckpt.versions,
            }
        # the blend order reads the item similarity; the cascade's cut, the light ranker
        extras = {"item_similarity": ItemSimilarity.load if policy.get("order") == "blend" else None,
                  "light_ranker": LightRanker.load if policy.get("light_ranker") else None}  # fmt: skip
        for kind, load in extras.items():
            if load is None:
                continue
            target = folder / "models" / f"{kind}.npz"
            shutil.copy2(policy[kind], target)
            files[kind] = f"models/{kind}.npz"
            lineage[kind] = {
                "checkpoint": policy[kind],
                "sha256": _sha256(target),
                "partitions": load(target).meta.get("partitions", []),
            }
        shutil.copytree(index, folder / "index")
        verify_index_copy(index, folder / "index", index_manifest)
        files["index"] = "index"
        lineage["index"] = {"folder": str(index), **index_manifest}
        # what the gate judged: the candidate's figures, or co-occurrence's as it serves
        scored = policy.get("evaluation", {}).get("retrieval", {})
        lineage["evaluation"] = scored.get(
            "cooccurrence_served" if policy.get("fallback") == "cooccurrence" else "candidate"
        )
    elif counts := write_counts(paths, folder / POPULARITY_FILE, policy.get("variant")):
        files["popularity"], lineage["popularity"] = POPULARITY_FILE, counts
    feast = folder / "feast"
    feast.mkdir()
    # the registry copied too: the shared file is rewritten by every feature-store run (its
    # difference is said, not failed), so the feature definitions in force at the build are
    # vouched for by this copy, hashed strictly with the others (``contents``)
    registry = fcfg.registry_path(paths)
    for name in ("catalog.json", "feature_store.yaml", "materialized.json", registry.name):
        src = fcfg.feast_dir(paths) / name
        if src.exists():
            shutil.copy2(src, feast / name)
    lineage["feast"] = {
        "registry": str(registry),
        "registry_sha256": _sha256(registry) if registry.exists() else None,
        "registry_copy": f"feast/{registry.name}" if registry.exists() else None,
        "online": fcfg.read_json(fcfg.marker_path(paths)),
    }
    # Ad campaigns, read from the landing zone directly (no asset of their own: they are one
    # small file; a campaign change reaches serving with the next bento, or at once through
    # RECASSETS_ADS_CAMPAIGNS). Bad rows are set aside beside it; no file: an all-organic page.
    campaigns = C.bundle_campaigns(C.campaigns_path(paths.landing), folder)
    if campaigns is not None:
        files["campaigns"] = C.BUNDLE_FILE
        lineage["campaigns"] = campaigns
    # the index copy and the Feast files, hashed as the models are: a reordered or another
    # build's index served other items with every check passing (Bundle.load, --verify)
    lineage["contents"] = {str(f.relative_to(folder)): _sha256(f) for sub in ("index", "feast")
                           for f in sorted((folder / sub).rglob("*")) if f.is_file()}  # fmt: skip
    manifest = {
        "policy": policy,
        "files": files,
        "lineage": lineage,
        "home": paths.home,  # what the digest takes the lineage's paths relative to
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    manifest["digest"] = manifest_digest(manifest)
    _write_json(folder / "manifest.json", manifest)
    return folder


def lineage_digest(lineage: Mapping[str, Any]) -> str:
    """The 12 hex digits of a lineage as it is, absolute paths and times included: the digest
    of manifests written before ``home`` was recorded (``manifest_digest``)."""
    return _hash12(lineage)


def _hash12(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]


# When a record was made, not what it is made of: left out of the digest, so a gate run again
# over the same models (a new ``promoted_at``), an index or a bundle written again from the
# same files, give the same digest. Their values stay in the manifest, outside the tamper check.
VOLATILE = frozenset({"promoted_at", "created_at", "materialized_at"})
HOME_MARK = "$RECASSETS_HOME/"


def manifest_digest(manifest: Mapping[str, Any]) -> str:
    """The 12 hex digits a bento is known by (its tag's last part, the ``digest`` label):
    what ``Bundle.load`` and ``recassets lineage --verify`` recompute to find a manifest edited
    after the build. Taken over the lineage with every path under the build's ``home`` made
    relative to it and the ``VOLATILE`` times left out (the same files in two homes, or a gate
    run again with no model change, gave different digests), and over the bento's ``code``
    record (``code_record``: its code, requirements and torch build). A manifest with neither
    ``home`` nor ``code`` (written before both were recorded) is hashed as it was then."""
    lineage, home = manifest["lineage"], manifest.get("home")
    if home is None and "code" not in manifest:
        return lineage_digest(lineage)
    return _hash12({"lineage": _normalized(lineage, home), "code": manifest.get("code")})


def _normalized(value: Any, home: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _normalized(v, home) for k, v in value.items() if k not in VOLATILE}
    if isinstance(value, list):
        return [_normalized(v, home) for v in value]
    if isinstance(value, str) and isinstance(home, str) and home.strip("/"):
        # at the start, or after a scheme's colon (the store's "sqlite:/home/...")
        prefix = re.escape(home.rstrip("/") + "/")
        return re.sub(f"(^|(?<=:)){prefix}", lambda _: HOME_MARK, value)
    return value


def bento_version(bundle: Path) -> str:
    """``<UTC timestamp>-<policy>-<manifest digest>``: sortable, and the same inputs (the
    bundle's files, the code, the requirements and the torch build) give the same suffix."""
    m = _read_json(bundle / "manifest.json")
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    return f"{stamp}-{m['policy'].get('policy')}-{m['digest']}"


# ``lock_packages: false``: the serving lock is already the whole tree pinned by ``uv pip
# compile`` (``make lock``), so BentoML's own re-lock only re-resolves the same pins, and to do
# so uv downloads pyspark's 450 MB sdist for its metadata. The file host sends no cache headers,
# so every build downloaded it again and kept another 472 MB revision in uv's cache, which
# filled the disk. The bento's requirements are the lock's pins as they are (a test checks it).
BENTOFILE = """\
# Written by recassets.bento.bundle.build_bento: edit serving/service.py, not this.
service: "service:RecommenderService"
description: "recassets funnel: two-tower + FAISS retrieval, DCN-v2 ranking, rules"
labels:
  policy: {policy}
  digest: {digest}
  torch: {torch}
  recassets: "{version}"
include:
  - "service.py"
  - "bundle/**"
  - "recassets/**"
exclude:
  - "**/__pycache__"
python:
  requirements_txt: "requirements.lock"
  lock_packages: false
envs:
  - name: UV_OVERRIDE
    value: "{overrides}"
"""

# uv reads ``UV_OVERRIDE`` as its ``--override``: the overrides the serving lock was compiled
# and is installed with (overrides.txt drops torchrec's declared CUDA ``fbgemm-gpu``; serving
# runs ``fbgemm-gpu-cpu``), which a requirements file cannot carry. Without them the image's
# ``uv pip install -r requirements.txt`` pulled the 475 MB CUDA wheel beside the CPU one, both
# writing ``fbgemm_gpu/``. ``build_bento`` writes the file into the bento's ``env/python``,
# which the Dockerfile BentoML generates copies before its install step; the path is under
# ``BENTO_PATH``, ``/home/bentoml/bento`` in BentoML's images.
OVERRIDES = "overrides.txt"
IMAGE_OVERRIDES = f"/home/bentoml/bento/env/python/{OVERRIDES}"

# The torch the serving image installs (``RECASSETS_BENTO_TORCH``): ``pypi``, the serving lock
# as it is (PyPI's torch is the CUDA build, with its nvidia-* wheels: what a GPU pod serves
# with), or ``cpu``: the lock through deploy/docker/cpu-lock.sh (torch's CPU build, none of
# the CUDA wheels: about 3 GB less, what a CPU-only serving pod needs), with torch's CPU index
# given to the image's uv as environment variables, which both of BentoML's image templates
# put before their install step. ``unsafe-best-match``: that index also carries numpy, pillow
# and others, and uv's default (the first index that has a name) would take only its versions.
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
BENTOFILE_CPU = f"""\
  - name: UV_EXTRA_INDEX_URL
    value: "{TORCH_CPU_INDEX}"
  - name: UV_INDEX_STRATEGY
    value: "unsafe-best-match"
  - name: PIP_EXTRA_INDEX_URL
    value: "{TORCH_CPU_INDEX}"
"""


def serving_requirements(lock: Path, variant: str) -> str:
    """The bento's requirements: the serving lock, or for ``cpu`` the lock through
    deploy/docker/cpu-lock.sh (the one filter the user-code image uses too)."""
    if variant == "pypi":
        return lock.read_text()
    script = Path(__file__).resolve().parents[2] / "deploy" / "docker" / "cpu-lock.sh"
    done = subprocess.run(["sh", str(script), str(lock)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{script.name} {lock}: {done.stderr.strip()}")
    return done.stdout


@contextlib.contextmanager
def staged_bundle(paths: Paths) -> Generator[Path, None, None]:
    """``write_bundle`` into a staging folder of this build's own, removed afterwards (the
    bento keeps its own copy): what the asset builds its bento from. Staging folders an hour
    old are a killed build's (a build writes its bundle in seconds to minutes): swept first,
    where each had stayed for ever (100 MB a kill, probe of 2026-12-06)."""
    sweep_staging(Path(paths.artifacts) / "serving" / "bundles")
    folder = write_bundle(paths)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


STALE_STAGING_S = 3600.0


def sweep_staging(folder: Path, older_than_s: float = STALE_STAGING_S) -> list[str]:
    """Remove ``.staging-*`` folders under ``folder`` last changed ``older_than_s`` ago or
    more; returns their names."""
    import time

    gone = []
    for stale in folder.glob(".staging-*") if folder.is_dir() else ():
        with contextlib.suppress(OSError):
            if time.time() - stale.stat().st_mtime >= older_than_s:
                shutil.rmtree(stale, ignore_errors=True)
                gone.append(stale.name)
    return sorted(gone)


def build_bento(
    paths: Paths, bundle: Path, *, version: str | None = None, variant: str | None = None
) -> str:
    """``bentoml build`` of ``serving/service.py`` with ``bundle`` and the ``recassets``
    library inside; returns the tag. The bento is self-contained code-wise (its ``src``
    holds the library), and reads the online store named by ``RECASSETS_HOME`` /
    ``RECASSETS_REDIS_URL`` where it is served. ``variant``: the torch it installs (default
    ``torch_variant()``, read from the environment). The child runs under the store's build
    lock, which sweeps failed builds' folders first, and a failure raises with the child's
    cause on its first line (``build_child``)."""
    root = Path(__file__).resolve().parents[2]
    with tempfile.TemporaryDirectory(prefix="bento-ctx-") as ctx_name:
        ctx = Path(ctx_name)
        shutil.copy2(SERVICE_DIR / "service.py", ctx / "service.py")
        shutil.copytree(bundle, ctx / "bundle")
        shutil.copytree(
            root / "recassets", ctx / "recassets", ignore=shutil.ignore_patterns("__pycache__")
        )
        # deploy/serving.lock: requirements.lock's pins of what serving imports, no Spark,
        # Dagster or Great Expectations (`make lock`); the bentofile's name for it is kept.
        lock = root / "deploy" / "serving.lock"
        variant = variant or torch_variant()
        if not lock.is_file():  # the bentofile names it: bentoml build said only "not found"
            raise FileNotFoundError(
                f"{lock}: serving's lock is missing beside the package (an image must copy "
                "deploy/serving.lock to it; `make lock` writes it); no bento was built"
            )
        requirements = serving_requirements(lock, variant)
        if not (root / OVERRIDES).is_file():  # what the image's install step needs with the lock
            raise FileNotFoundError(f"{root / OVERRIDES}: the lock's overrides are missing beside "
                                    "the package (an image must copy it); no bento was built")  # fmt: skip
        overrides = (root / OVERRIDES).read_text()
        (ctx / "requirements.lock").write_text(requirements)
        # the bento's copy of the manifest records its code and environment, and its digest
        # (the tag's) covers them: an edited service.py is refused at start and by --verify
        manifest = _read_json(bundle / "manifest.json")
        manifest["code"] = code_record(ctx, requirements, overrides, variant)
        manifest["digest"] = manifest_digest(manifest)
        _write_json(ctx / "bundle" / "manifest.json", manifest)
        version = version or bento_version(ctx / "bundle")
        (ctx / "bentofile.yaml").write_text(
            BENTOFILE.format(
                policy=manifest["policy"].get("policy"),
                digest=manifest["digest"],
                torch=variant,
                version=manifest["code"]["recassets"],
                overrides=IMAGE_OVERRIDES,
            )
            + (BENTOFILE_CPU if variant == "cpu" else "")
        )
        # The child inherits this process's environment (PATH, the interpreter's), plus the store.
        env = {**os.environ, "BENTOML_HOME": bentoml_home(paths), "BENTOML_DO_NOT_TRACK": "True"}
        # the store's build lock, inherited by the child: failed builds' folders in BentoML's
        # tmp are swept when no build is running (``build_child``)
        with build_lock(Path(bentoml_home(paths))) as lock_fd:
            proc = subprocess.run(
                [sys.executable, "-m", "bentoml", "build", str(ctx), "--name", BENTO_NAME,
                 "--version", version, "--output", "tag"],
                capture_output=True, text=True, env=env, cwd=ctx, pass_fds=(lock_fd,),
            )  # fmt: skip
    if proc.returncode != 0:  # the cause first: BentoML's traceback ends with it
        raise RuntimeError(failure(proc.returncode, proc.stderr))
    match = re.search(r"__tag__:(\S+)", proc.stdout)
    tag = match.group(1) if match else f"{BENTO_NAME}:{version}"
    # before the mark: a build killed between the two is never taken (``store.latest_bento``
    # finds it incomplete: its record names this file)
    (bento_folder(paths, tag) / "env" / "python" / OVERRIDES).write_text(overrides)
    mark_built(paths, tag)
    return tag


def code_record(src: Path, requirements: str, overrides: str, variant: str) -> dict[str, Any]:
    """What a bento's code and environment are, from its build context ``src``: the sha256
    of each file it carries as code (``service.py`` and every file under ``recassets/``, by
    path under ``src``), the digests of its requirements' pins and of its uv overrides
    (``funnel.bundle.pins_digest``: BentoML rewrites the requirements file's layout), the
    recassets and BentoML versions and the torch build (``pypi`` or ``cpu``). Deterministic:
    the same checkout and variant give the same record. Checked by ``funnel.bundle.code_problems``
    at the service's start and by ``recassets lineage --verify``."""
    from importlib.metadata import version

    import recassets
    from recassets.bento.code import code_files
    from recassets.funnel.bundle import pins_digest

    return {
        "recassets": recassets.__version__,
        "bentoml": version("bentoml"),
        "torch": variant,
        "requirements": pins_digest(requirements),
        "overrides": pins_digest(overrides),
        "files": code_files(src / "service.py", src / "recassets"),
    }


# BentoML copies a new bento into its store folder file by file (``shutil.copytree`` under
# ``BentoStore.register``), so a build killed mid-copy leaves a folder that may already hold
# ``bento.yaml`` without the rest. A bento counts only once its build returned: an empty marker
# per built tag, created after ``bentoml build`` exited 0 (one file each, so two builds that
# finish together cannot lose each other's mark). ``latest_bento`` takes marked bentos only.
__all__ = [
    "BENTO_NAME",
    "CHECK_K",
    "EmbeddingsResult",
    "IndexResult",
    "latest_version",
    "index_files",
    "load_embeddings",
    "retrieval_dir",
    "sampled_user_vectors",
    "versions",
    "check_tag",
    "mark_built",
    "bento_folder",
    "bentoml_home",
    "build_bento",
    "build_item_index",
    "code_record",
    "manifest_digest",
    "compute_item_embeddings",
    "latest_bento",
    "serving_policy",
    "write_bundle",
]
