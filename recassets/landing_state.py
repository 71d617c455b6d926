"""The landing sensor's memory between ticks: what it launched, what it saw settling, what it
already warned about.

Where it is kept (decision, 2026-12-07)
    In a *state file* under the home (``<RECASSETS_HOME>/sensors/landing_sensor/<digest>.json``,
    written atomically), and only a reference to it in Dagster's cursor
    (``{"version": 2, "state": "<digest>", "days": N}``, about 60 bytes).

    Why: Dagster stores the cursor with every tick it records, and the landing sensor ticks
    every 5 s. The whole map of fingerprints (126 KB for a 3-year history) in each tick row
    grew the schedule storage by gigabytes a day. The other way out, keeping only the pending
    and changed days in the cursor, would send every other day through the lineage fallback on
    every tick, and that fallback now compares file contents (sha256, ``freshness.
    lineage_matches``): hashing every landed byte every 5 s is no option.

    Why content-addressed (the file's name is the digest of its content): Dagster commits a
    tick's cursor only once the tick is stored. A daemon that dies after the evaluation, before
    the commit, ticks again from the previous cursor, which must still name the state it was
    computed from, not the newer one. So a state file is never rewritten in place: a new state
    is a new file, the previous ones are kept (``KEEP_STATE_FILES``, and always the one the
    incoming cursor names), and the cursor says which one is current.

    A state file that is missing (a wiped home, a code server on another disk) counts as a lost
    cursor: the tick says so and falls back on the lineage manifests, as on a first tick. A home
    that cannot be written (read-only) keeps the whole state inline in Dagster's cursor, as
    version 1 did, and the tick says why.

Version 1 cursors (the whole map inline, releases before 2026-12-07) are still read: an upgrade
does not re-check history against the lineage.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from recassets import atomic
from recassets.paths import Paths

CURSOR_VERSION = 2
READABLE_VERSIONS = (1, 2)
# State files kept besides the current one and the one the incoming cursor names: a few ticks
# back, for a daemon restarted from an older cursor. Each is written only when the state
# changes (a day launched, a day starting to settle), not on every tick.
KEEP_STATE_FILES = 8
_DIGEST = re.compile(r"[0-9a-f]{16}")


def state_dir(paths: Paths) -> Path:
    """Where the landing sensor keeps its state files: under the home (``sensors/``)."""
    return Path(paths.home) / "sensors" / "landing_sensor"


@dataclass
class LandingCursor:
    """What the landing sensor knows between ticks.

    ``fingerprints``: ``dataset/day`` -> the fingerprint launched, or found in the lake (the
    lineage matched), or, for a day changed but not launched yet, the one it had before: a day
    stays in this map while it waits, so that the next tick still sees it changed (a day left
    out was judged by the lineage alone, and a correction landing while its day was being
    ingested was taken for what the lake held).

    ``pending``: days seen changed but not launched yet, ``dataset/day`` -> (fingerprint, when
    the sensor first saw it, epoch seconds by the sensor's clock): what ``settled`` measures
    quiet time with.

    ``owed``: days found different from the lake (by their lineage, or new) but not launched
    yet, with no fingerprint launched before: launched when they can be, without hashing their
    files again on each tick meanwhile.

    ``skipped``: the days and folders skipped on the last tick, each warned about once.
    """

    fingerprints: dict[str, str] = field(default_factory=dict)
    pending: dict[str, tuple[str, float]] = field(default_factory=dict)
    owed: set[str] = field(default_factory=set)
    skipped: set[str] = field(default_factory=set)

    def state_json(self) -> str:
        """The whole state, canonical (sorted, compact): what a state file holds."""
        data: dict = {
            "version": CURSOR_VERSION,
            "fingerprints": dict(sorted(self.fingerprints.items())),
        }
        if self.pending:
            data["pending"] = {k: [fp, seen] for k, (fp, seen) in sorted(self.pending.items())}
        if self.owed:
            data["owed"] = sorted(self.owed)
        if self.skipped:
            data["skipped"] = sorted(self.skipped)
        return json.dumps(data, separators=(",", ":"))

    def to_json(self) -> str:
        """The whole state as a Dagster cursor of its own (inline): what a home that cannot be
        written falls back on, and what tests hand ``plan_landing`` directly."""
        return self.state_json()

    @classmethod
    def from_data(cls, data: object) -> tuple[LandingCursor | None, str | None]:
        if not isinstance(data, dict) or data.get("version") not in READABLE_VERSIONS:
            version = data.get("version") if isinstance(data, dict) else None
            return None, f"cursor version {version!r} is not {CURSOR_VERSION}"
        fps = data.get("fingerprints")
        if not isinstance(fps, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in fps.items()
        ):
            return None, "cursor has no fingerprints mapping"
        pending: dict[str, tuple[str, float]] = {}
        raw_pending = data.get("pending", {})
        if isinstance(raw_pending, dict):  # anything else: forgotten, days wait anew
            for k, v in raw_pending.items():
                if (
                    isinstance(v, list)
                    and len(v) == 2
                    and isinstance(v[0], str)
                    and isinstance(v[1], int | float)
                ):
                    pending[k] = (v[0], float(v[1]))
        return cls(dict(fps), pending, _keys(data.get("owed")), _keys(data.get("skipped"))), None

    @classmethod
    def from_json(cls, raw: str | None) -> tuple[LandingCursor | None, str | None]:
        """(cursor, problem) from an inline cursor. No cursor at all is not a problem (first
        tick); an unreadable or foreign one is, and the caller says so before falling back on
        the lineage."""
        if not raw:
            return None, None
        data, problem = _parsed(raw)
        return (None, problem) if problem else cls.from_data(data)


def _parsed(raw: str) -> tuple[object, str | None]:
    """(the JSON of a cursor, None), or (None, why it is no JSON)."""
    try:
        return json.loads(raw), None
    except ValueError:
        return None, f"cursor is not JSON ({raw[:40]!r}...)"


def _keys(raw: object) -> set[str]:
    return {k for k in raw if isinstance(k, str)} if isinstance(raw, list) else set()


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _reference(raw: str | None) -> str | None:
    """The state digest a Dagster cursor names, if it is a reference."""
    try:
        data = json.loads(raw or "")
    except ValueError:
        return None
    state = data.get("state") if isinstance(data, dict) else None
    return state if isinstance(state, str) and _DIGEST.fullmatch(state) else None


def names_state_file(raw: str | None) -> bool:
    """Whether a Dagster cursor is a reference to a state file (not a whole state inline)."""
    return _reference(raw) is not None


def load_cursor(raw: str | None, folder: Path) -> tuple[LandingCursor | None, str | None]:
    """(cursor, problem) from a Dagster cursor: a reference to a state file in ``folder``
    (version 2) or a whole state inline (version 1, or a home that could not be written)."""
    if not raw:
        return None, None
    data, problem = _parsed(raw)
    if problem:
        return None, problem
    if isinstance(data, dict) and data.get("version") == CURSOR_VERSION and "state" in data:
        digest = _reference(raw)
        if digest is None:
            return None, f"cursor names no state file ({raw[:60]!r})"
        path = folder / f"{digest}.json"
        try:
            text = path.read_text()
        except OSError as e:
            return None, f"cursor's state file {path} cannot be read ({e.strerror or e})"
        if _digest(text) != digest:
            return None, f"cursor's state file {path} does not match its digest"
        try:
            return LandingCursor.from_data(json.loads(text))
        except ValueError:
            return None, f"cursor's state file {path} is not JSON"
    return LandingCursor.from_data(data)


def store_cursor(
    cursor: LandingCursor, folder: Path, previous: str | None
) -> tuple[str, str | None]:
    """(the Dagster cursor for ``cursor``, problem). Writes the state file (atomically) when
    this state has none yet, then prunes the older ones, keeping the one ``previous`` (the
    incoming Dagster cursor) names. A state that cannot be written goes inline, whole, and the
    problem says why."""
    text = cursor.state_json()
    digest = _digest(text)
    reference = json.dumps(
        {"version": CURSOR_VERSION, "state": digest, "days": len(cursor.fingerprints)},
        separators=(",", ":"),
    )
    target = folder / f"{digest}.json"
    try:
        if not target.is_file():
            atomic.write_text(target, text)
            _prune(folder, keep={digest, _reference(previous)})
    except OSError as e:
        return text, (
            f"the state file {target} cannot be written ({e.strerror or e}): the whole cursor "
            f"({len(text):,} bytes) is stored with each tick instead"
        )
    return reference, None


def _prune(folder: Path, keep: set[str | None]) -> None:
    """Remove the state files but the ``KEEP_STATE_FILES`` newest and those in ``keep``."""
    files = []
    for path in folder.glob("*.json"):
        try:
            files.append((path.stat().st_mtime_ns, path))
        except OSError:  # removed meanwhile
            continue
    files.sort(reverse=True)
    for _, path in files[KEEP_STATE_FILES:]:
        if path.stem not in keep:
            path.unlink(missing_ok=True)


__all__ = [
    "CURSOR_VERSION",
    "LandingCursor",
    "load_cursor",
    "names_state_file",
    "state_dir",
    "store_cursor",
]
