"""``recassets lineage --verify``: re-hash every file on a lineage path whose sha256 was
recorded (landing files, the checkpoints a bento copied, the Feast registry) and compare."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from recassets.lineage.graph import Lineage


@dataclass(frozen=True)
class Verified:
    path: str
    what: str
    # ok | changed | missing | unverifiable (no sha256 recorded) | outside (recorded outside
    # this home's folders: a copied or restored home whose records name the original's files,
    # which would verify the original, not this one)
    status: str
    recorded: str | None = None
    actual: str | None = None


def sha256_of(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(lineage: Lineage) -> list[Verified]:
    """One result per distinct file on the path, sorted by path."""
    results: dict[str, Verified] = {}
    roots = [Path(r).resolve() for r in lineage.roots or (lineage.home,)]
    for _, a in lineage.artifacts():
        if a.path in results and results[a.path].recorded is not None:
            continue
        if a.sha256 is None:
            results[a.path] = Verified(a.path, a.what, "unverifiable")
        elif not any(Path(a.path).resolve().is_relative_to(r) for r in roots):
            results[a.path] = Verified(a.path, a.what, "outside", a.sha256)
        elif not Path(a.path).is_file():
            results[a.path] = Verified(a.path, a.what, "missing", a.sha256)
        else:
            actual = sha256_of(a.path)
            status = "ok" if actual == a.sha256 else "changed"
            results[a.path] = Verified(a.path, a.what, status, a.sha256, actual)
    for node in lineage.nodes.values():
        if node.kind == "bento" and node.dataset:
            manifest = Path(node.dataset) / "src" / "bundle" / "manifest.json"
            results[str(manifest)] = _digest_check(manifest)
    return [results[p] for p in sorted(results)]


def _digest_check(manifest: Path) -> Verified:
    """A bento's lineage against the digest taken of it at the build (the tag's last part,
    ``bundle.build_bundle``): an edited figure or a removed sha256 in the manifest changes it.
    Before, a forged ``recall@50`` and a removed checkpoint digest were reported as recorded."""
    import json

    from recassets.bento.bundle import lineage_digest

    what = "the bento's recorded lineage against its build-time digest"
    try:
        m = json.loads(manifest.read_text())
        lineage = m["lineage"]
        recorded = str(m["digest"])
    except (OSError, ValueError, KeyError, TypeError):
        return Verified(str(manifest), what, "missing")
    actual = lineage_digest(lineage) if isinstance(lineage, dict) else ""
    return Verified(
        str(manifest), what, "ok" if actual == recorded else "changed", recorded, actual
    )


FAILED = ("changed", "missing", "outside")


def failures(results: list[Verified]) -> list[Verified]:
    """The files that fail: changed, missing, outside the home, and unverifiable ones whose
    record always holds a sha256 (a landing file, a bento's checkpoint copy, the Feast
    registry): one without it was edited (a forged landing file passed once its record's
    sha256 was removed). A model version's own checkpoint is unverifiable by design (its sha256
    is recorded in a bento's lineage only)."""
    return [
        r for r in results
        if r.status in FAILED or (r.status == "unverifiable" and not r.what.endswith(" checkpoint"))
    ]  # fmt: skip


__all__ = ["FAILED", "Verified", "failures", "sha256_of", "verify"]
