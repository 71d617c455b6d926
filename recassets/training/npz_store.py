"""Numbered ``.npz`` model files under ``<artifacts>/models/<kind>/`` (``0001.npz``,
``0002.npz``, ...), the store of the item similarity, co-occurrence and the light ranker:
listed oldest first, and each new file saved under the next free number, never over one that
another fit wrote meanwhile (the save is exclusive: a taken number is tried again)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from recassets.paths import Paths

VERSION = re.compile(r"^(\d{4,})\.npz$")


def versions(paths: Paths, kind: str) -> list[Path]:
    """The files of ``kind``, oldest first."""
    folder = Path(paths.artifacts) / "models" / kind
    found = [(int(m.group(1)), p) for p in folder.glob("*.npz") if (m := VERSION.match(p.name))]
    return [p for _, p in sorted(found)]


def last_if(
    paths: Paths, kind: str, load: Callable[[Path], Any], wanted: Mapping[str, Any]
) -> tuple[Any, str] | None:
    """(the newest file of ``kind``, loaded, and its path) when its ``meta`` holds every
    (key, value) of ``wanted``: a fit of the same inputs and settings is not repeated. None
    when there is none, or it was fitted otherwise."""
    saved = versions(paths, kind)
    if not saved:
        return None
    last = load(saved[-1])
    return (last, str(saved[-1])) if all(last.meta.get(k) == v for k, v in wanted.items()) else None


def save_next(paths: Paths, kind: str, save: Callable[[Path], str]) -> str:
    """``save(path)`` at the next number of ``kind`` (``save`` must raise ``FileExistsError``
    when the file exists: the number is then taken again); returns what ``save`` returns."""
    folder = Path(paths.artifacts) / "models" / kind
    while True:
        have = versions(paths, kind)
        last = VERSION.match(have[-1].name) if have else None
        n = int(last.group(1)) + 1 if last else 1
        try:
            return save(folder / f"{n:04d}.npz")
        except FileExistsError:
            continue  # another fit took this number meanwhile


__all__ = ["VERSION", "last_if", "save_next", "versions"]
