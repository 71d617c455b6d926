"""The Bento store the platform builds into and serves from (``BENTOML_HOME``, under the
home): where a tag's folder is, which builds completed, the newest one, and whether a tag is
one it holds. Plain paths: no BentoML import (``recassets serve`` checks a tag before BentoML
starts)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from recassets.paths import Paths

BENTO_NAME = "recassets_recommender"


def bentoml_home(paths: Paths) -> str:
    """The Bento store (``BENTOML_HOME``) of ``paths``."""
    return paths.bentoml


def _built_marks(paths: Paths) -> Path:
    return Path(bentoml_home(paths)) / "recassets-built"


def mark_built(paths: Paths, tag: str) -> None:
    name, _, version = tag.partition(":")
    mark = _built_marks(paths) / name / version
    mark.parent.mkdir(parents=True, exist_ok=True)
    mark.touch()


def bento_folder(paths: Paths, tag: str) -> Path:
    name, _, version = tag.partition(":")
    return Path(bentoml_home(paths)) / "bentos" / name / version


def check_tag(paths: Paths, tag: str) -> None:
    """Refuse a tag that is no bento of this store, before ``bentoml serve`` starts: its own
    error told of ``bentoml pull`` and of a Python module it could not import, and a tag
    with a space only the latter (probe, 2026-12-06). Names the store and what it holds."""
    import re

    store = Path(bentoml_home(paths)) / "bentos"
    part = r"[a-z0-9](?:[a-z0-9_.-]*[a-z0-9])?"  # BentoML's, and never "." or ".."
    if not re.fullmatch(f"{part}(?::{part})?", tag):
        raise ValueError(f"{tag[:80]!r} is not a bento tag (NAME:VERSION, lower-case)")
    name, _, version = tag.partition(":")
    if version:
        held_here = (bento_folder(paths, tag) / "bento.yaml").is_file()
    else:  # NAME alone: BentoML serves NAME:latest
        held_here = (store / name / "latest").is_file()
    if held_here:
        return
    held = sorted((p for p in store.glob("*/*") if (p / "bento.yaml").exists()),
                  key=lambda p: p.name, reverse=True)  # fmt: skip
    listed = ", ".join(f"{p.parent.name}:{p.name}" for p in held[:5]) or "no bento"
    raise FileNotFoundError(
        f"no bento {tag} in the store {store} (it holds {listed}"
        f"{', ...' if len(held) > 5 else ''}): serve one of those, point RECASSETS_BENTOML_HOME "
        "at the store that holds it, or `bentoml import FILE` into this one"
    )


def latest_bento(paths: Paths) -> str | None:
    """The newest bento tag in the store (by version, which starts with a UTC timestamp) that
    counts (``counted``): a folder a killed build left half-copied is never taken; a whole
    bento brought in with ``bentoml import`` is, as ``bentoml serve NAME`` would."""
    return next((f"{BENTO_NAME}:{n}" for n in counted(paths)), None)


def counted(paths: Paths) -> Iterator[str]:
    """The versions of the store's bentos that may be served, newest first: each one this
    home's builds marked as built (``mark_built``); each other one that is complete
    (``complete``: a bento imported with ``bentoml import``, which ``bentoml serve`` and
    ``recent_model_sha256s`` must agree on, where only marked bentos counted); and, in a
    store from before builds were marked (no marks at all), every one with its bento.yaml."""
    folder = Path(bentoml_home(paths)) / "bentos" / BENTO_NAME
    if not folder.is_dir():
        return
    marks = _built_marks(paths)
    marked = {m.name for m in (marks / BENTO_NAME).glob("*")} if marks.is_dir() else None
    held = (p.name for p in folder.iterdir() if (p / "bento.yaml").is_file())
    for name in sorted(held, reverse=True):
        if marked is None or name in marked or complete(folder / name):
            yield name


def complete(bento: Path) -> bool:
    """Whether the unmarked bento folder ``bento`` is whole: its bento.yaml, requirements,
    service.py and bundle manifest there, and every file the manifest lists (the models, the
    index copy, the Feast files; the code and requirements its ``code`` record names) there
    with its recorded sha256 (``Bundle.load``: what the service checks at start). BentoML
    copies a new bento into the store file by file, so a build killed mid-copy leaves a folder
    with some of them: never whole. Costs one read of the bundle, for unmarked bentos only."""
    from recassets.funnel.bundle import Bundle

    src = bento / "src"
    needed = (bento / "bento.yaml", bento / "env" / "python" / "requirements.txt",
              src / "service.py", src / "bundle" / "manifest.json")  # fmt: skip
    if not all(p.is_file() for p in needed):
        return False
    try:
        Bundle.load(src / "bundle", code=src)
    except (OSError, ValueError):  # DamagedArtifactError is a ValueError: a file missing, cut
        return False
    return True


def recent_model_sha256s(paths: Paths, n: int) -> set[str]:
    """The sha256 of every model file of the newest ``n`` bentos that count (``counted``:
    imported ones too) in the store (their bundles' lineage): what serving replicas may still
    run, so their rows stay published."""
    import itertools
    import json

    folder = Path(bentoml_home(paths)) / "bentos" / BENTO_NAME
    out: set[str] = set()
    for name in itertools.islice(counted(paths), max(n, 0)):
        manifest = folder / name / "src" / "bundle" / "manifest.json"
        try:
            lineage = json.loads(manifest.read_text()).get("lineage", {})
        except (OSError, ValueError):
            continue  # a bento pruned by hand, or older than its manifest: nothing to keep
        out |= {v["sha256"] for v in lineage.values() if isinstance(v, dict) and v.get("sha256")}
    return out


__all__ = [
    "BENTO_NAME",
    "recent_model_sha256s",
    "bento_folder",
    "bentoml_home",
    "check_tag",
    "complete",
    "counted",
    "latest_bento",
    "mark_built",
]
