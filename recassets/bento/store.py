"""The Bento store the platform builds into and serves from (``BENTOML_HOME``, under the
home): where a tag's folder is, which builds completed, the newest one, and whether a tag is
one it holds. Plain paths: no BentoML import (``recassets serve`` checks a tag before BentoML
starts)."""

from __future__ import annotations

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
    """The newest bento tag in the store whose build completed (by version, which starts with
    a UTC timestamp): a folder a killed build left half-copied is never taken."""
    folder = Path(bentoml_home(paths)) / "bentos" / BENTO_NAME
    marks = _built_marks(paths)
    if not folder.is_dir():
        return None
    if marks.is_dir():
        names = [m.name for m in (marks / BENTO_NAME).glob("*")]
    else:  # a store from before builds were marked: every bento with its bento.yaml, as then
        names = [p.name for p in folder.iterdir() if p.is_dir()]
    found = sorted(n for n in names if (folder / n / "bento.yaml").exists())
    return f"{BENTO_NAME}:{found[-1]}" if found else None


def recent_model_sha256s(paths: Paths, n: int) -> set[str]:
    """The sha256 of every model file of the newest ``n`` completed bentos in the store (their
    bundles' lineage): what serving replicas may still run, so their rows stay published."""
    import json

    folder = Path(bentoml_home(paths)) / "bentos" / BENTO_NAME
    marks = _built_marks(paths) / BENTO_NAME
    names = sorted(m.name for m in marks.glob("*")) if marks.is_dir() else []
    out: set[str] = set()
    for name in names[-n:] if n > 0 else []:
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
    "latest_bento",
    "mark_built",
]
