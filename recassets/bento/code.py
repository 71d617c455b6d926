"""The serving code this install would put in a bento, against the code a bento carries.

A bento is self-contained: its ``src`` holds ``service.py`` and the whole ``recassets``
library as they were at its build (``bundle.build_bento``), recorded file by file in its
manifest's ``code`` record (``bundle.code_record``). Upgrading recassets therefore changes
nothing a running or a stored bento serves: the new head bounds, readiness rules and decision
records reach the answers only through a new bento. An upgraded home kept serving its old
bento with every check ok and ``serving/recommender_bento`` FRESH in the UI (review,
2026-12-07). What says so now, from the comparison here:

- the asset's ``code_version`` is this install's digest (``installed_digest``), so the UI marks
  the bento "code version changed" after an upgrade (no automation rebuilds on it: a rebuild
  serves nothing until the server is restarted, which stays the operator's call);
- ``recassets status`` and ``recassets serve`` say when the bento differs from this install's
  code (``differs``), and how to rebuild it;
- ``recassets lineage --verify`` says when a bento predates the record, so its code cannot be
  checked (``UNCHECKED`` there; a failure with ``--strict``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any


def _sha256(path: Path) -> str:
    # hashlib alone: recassets.landing's file_digest imports pyarrow (0.3 s), and the
    # definitions import this module for the bento's code version
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


ROOT = Path(__file__).resolve().parents[2]  # the checkout (or install) build_bento copies from
REBUILD = "recassets materialize --select serving/recommender_bento"


def code_files(service: Path, library: Path) -> dict[str, str]:
    """{path under a bento's ``src``: sha256} of the code a bento carries: ``service`` as
    ``service.py`` and every file under ``library`` (the ``recassets`` package, bytecode caches
    aside) as ``recassets/...``: what ``build_bento`` copies into its build context."""
    files = {"service.py": _sha256(service)}
    for path in sorted(library.rglob("*")):
        if path.is_file() and "__pycache__" not in path.relative_to(library).parts:
            files[f"recassets/{path.relative_to(library).as_posix()}"] = _sha256(path)
    return files


def installed_files(root: Path = ROOT) -> dict[str, str]:
    """``code_files`` of this install: ``serving/service.py`` and ``recassets/``."""
    return code_files(root / "serving" / "service.py", root / "recassets")


def digest(files: Mapping[str, str]) -> str:
    """A short digest of a ``code_files`` map, the same for the same files in any order."""
    h = hashlib.sha256()
    for rel, sha in sorted(files.items()):
        h.update(f"{rel}\0{sha}\n".encode())
    return h.hexdigest()[:16]


def installed_digest(root: Path = ROOT) -> str:
    """``digest`` of this install's serving code: the bento asset's Dagster code version."""
    try:
        return digest(installed_files(root))
    except OSError:  # a packaged install without serving/: the definitions must still load
        return "1"


def differs(manifest: Mapping[str, Any], installed: Mapping[str, str]) -> str | None:
    """Why a bento (its bundle ``manifest``) does not carry ``installed``'s code, in a phrase;
    None when it carries the same files with the same bytes."""
    record = manifest.get("code")
    files = record.get("files") if isinstance(record, dict) else None
    if not isinstance(files, dict):
        return "built before recassets recorded a bento's code: its code cannot be compared"
    changed = sorted(
        rel for rel in set(files) | set(installed) if files.get(rel) != installed.get(rel)
    )
    if not changed:
        return None
    shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    return f"built from other recassets code than this install's ({len(changed)} file(s): {shown})"


def bento_differs(paths: Any, tag: str, installed: Mapping[str, str] | None = None) -> str | None:
    """``differs`` for the bento ``tag`` of ``paths``' store, read from its bundle's
    manifest; a manifest that cannot be read is said as such (the service refuses it). None
    too when this install's code cannot be read (a packaged install without ``serving/``, as
    ``installed_digest``): there is nothing to compare with, and no check of a note may fail
    ``recassets serve`` or ``status``."""
    import json

    from recassets.bento.store import bento_folder

    manifest = bento_folder(paths, tag) / "src" / "bundle" / "manifest.json"
    if not manifest.parent.parent.parent.is_dir():  # gone from the store: nothing to compare
        return None
    try:
        m = json.loads(manifest.read_text())
    except (OSError, ValueError) as e:
        return f"its manifest cannot be read ({e.__class__.__name__}: {manifest})"
    if not isinstance(m, dict):
        return f"its manifest is no JSON object ({manifest})"
    if installed is None:
        try:
            installed = installed_files()
        except OSError:
            return None
    return differs(m, installed)


__all__ = [
    "REBUILD",
    "bento_differs",
    "code_files",
    "differs",
    "digest",
    "installed_digest",
    "installed_files",
]
