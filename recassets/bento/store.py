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


def checkpoint_copy(paths: Paths, kind: str, name: str) -> tuple[Path | None, str | None]:
    """A bento's copy of the checkpoint ``kind/name`` (``two_tower``, ``0003.pt``) and its
    recorded sha256, for when the checkpoint itself is gone (old checkpoints are what a
    retention job deletes first, and the served model is what an auditor traces and
    reproduces): the copy whose bundle's lineage records that checkpoint (by its last two path
    parts: a home restored elsewhere records the original's paths) and whose bytes are the
    recorded sha256, in the newest such bento. ``(None, None)`` when none holds one."""
    import hashlib
    import json

    for manifest in sorted(
        Path(bentoml_home(paths)).glob("bentos/*/*/src/bundle/manifest.json"),
        key=lambda m: m.parents[2].name,
        reverse=True,
    ):
        try:
            m = json.loads(manifest.read_text())
            sections, files = dict(m["lineage"]), dict(m["files"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged bento vouches for nothing; `lineage --verify` names it
        for key, section in sections.items():
            if not isinstance(section, dict) or not isinstance(files.get(key), str):
                continue
            recorded = Path(str(section.get("checkpoint", "")))
            if (recorded.parent.name, recorded.name) != (kind, name):
                continue
            copy = manifest.parent / files[key]
            if copy.is_file() and copy.resolve().is_relative_to(manifest.parent.resolve()):
                sha = hashlib.sha256(copy.read_bytes()).hexdigest()
                if sha == section.get("sha256"):
                    return copy, sha
    return None, None


__all__ = [
    "BENTO_NAME",
    "bento_folder",
    "bentoml_home",
    "check_tag",
    "checkpoint_copy",
    "latest_bento",
    "mark_built",
]
