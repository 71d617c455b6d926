"""What an answer may say about files: absolute paths shown from the home folder they lie in
(``/info``, notes, errors), so that a caller never learns the layout of the machine."""

from __future__ import annotations

import re
from typing import Any

# Folders of a home (recassets.paths.Paths); a path inside one is shown from there on.
_HOME_PARTS = ("artifacts", "lake", "landing", "lineage", "bentoml")


def public(value: Any) -> Any:
    """``value`` with every absolute path shown from the home folder it lies in
    (``/srv/home/artifacts/models/x.pt`` -> ``artifacts/models/x.pt``), else by its name, also
    inside a string (``sqlite:/srv/.../online.db``): what an answer may say about files
    without telling a caller the layout of the machine."""
    if isinstance(value, dict):
        return {k: public(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [public(v) for v in value]
    if isinstance(value, str) and "/" in value:
        return _ABS_PATH.sub(lambda m: _from_home(m.group(0)), value)
    return value


# an absolute path: a "/" at the start or after whitespace, ":" or "=", not "//" (a URL)
_ABS_PATH = re.compile(r"(?<![^\s:=])/(?!/)[^\s:]*")


def _from_home(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    for j in range(len(parts) - 1, -1, -1):
        if parts[j] in _HOME_PARTS:
            return "/".join(parts[j:])
    return parts[-1] if parts else ""
