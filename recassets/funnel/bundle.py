"""A serving bundle folder as the funnel reads it (``Bundle``): its manifest, the files it
names, and their sha256 checked before anything is loaded, so that a damaged bundle stops
the service at start and the bento serving before it keeps serving."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from recassets.landing import file_digest
from recassets.training.checkpoint import DamagedArtifactError


@dataclass
class Bundle:
    """A serving bundle folder (what ``bundle.write_bundle`` writes and the bento carries)."""

    folder: Path
    manifest: dict[str, Any]

    @classmethod
    def load(cls, folder: str | Path) -> Bundle:
        """Read the bundle's manifest and check the files it names: each model file's sha256
        against the one the manifest recorded when the bundle was written. A manifest that is
        not JSON, a file missing, or a file whose bytes changed (truncated, corrupted, swapped)
        raises ``DamagedArtifactError`` naming it, before anything is loaded: the service
        does not start, so the bento serving before it keeps serving. The index copy and the
        Feast files are checked the same way (``lineage.contents``: bundles built before it
        have none, and their index is checked by ``ItemIndex.load`` alone); the manifest's
        shape, its digest (a manifest edited after the build) and that every file lies inside
        the bundle are checked first."""
        folder = Path(folder)
        manifest_path = folder / "manifest.json"
        if not manifest_path.exists():
            raise FileNotFoundError(f"no manifest.json in serving bundle {folder}")
        try:
            manifest = json.loads(manifest_path.read_text())
        except (ValueError, UnicodeDecodeError) as exc:
            raise DamagedArtifactError(
                f"bundle manifest {manifest_path} is damaged: {exc}"
            ) from exc
        bundle = cls(folder, _shaped(manifest, manifest_path))
        lineage = manifest["lineage"]
        if "digest" in manifest:  # a manifest edited after the build (`lineage --verify` too)
            from recassets.bento.bundle import lineage_digest

            if lineage_digest(lineage) != manifest["digest"]:
                raise DamagedArtifactError(
                    f"bundle manifest {manifest_path} was edited after the build: its lineage "
                    f"no longer hashes to its digest {manifest['digest']!r}"
                )
        files = manifest["files"]
        hashed = {k: r.get("sha256") for k, r in lineage.items()
                  if isinstance(r, dict) and k in files and k != "index"}  # fmt: skip
        if manifest["policy"]["policy"] == "model":  # each model file there, and hashed
            if lost := [k for k in MODEL_FILES[:3] if k not in files]:
                raise DamagedArtifactError(f"bundle manifest {manifest_path} names no file of "
                                           f"{', '.join(lost)}, which the model policy serves")  # fmt: skip
            if unhashed := [
                k for k in MODEL_FILES if k in hashed and not isinstance(hashed[k], str)
            ]:
                raise DamagedArtifactError(f"bundle manifest {manifest_path} records no sha256 "
                                           f"of {', '.join(unhashed)}")  # fmt: skip
            if lost := [k for k in MODEL_FILES[:2] if k not in hashed]:
                raise DamagedArtifactError(f"bundle manifest {manifest_path} has no lineage "
                                           f"record of {', '.join(lost)}")  # fmt: skip
        checked = {str(bundle.path(k)): d for k, d in hashed.items()}
        contents = lineage.get("contents") or {}  # the index copy and the Feast files
        if not isinstance(contents, dict):
            raise DamagedArtifactError(f"bundle manifest {manifest_path}: lineage.contents is "
                                       "not an object")  # fmt: skip
        checked |= {str(_inside(folder, rel)): d for rel, d in contents.items()}
        for path, recorded in checked.items():
            if not isinstance(recorded, str):
                continue
            if not Path(path).is_file():
                raise DamagedArtifactError(f"bundle file {path} is missing")
            _, digest = file_digest(path)
            if digest != recorded:
                raise DamagedArtifactError(
                    f"bundle file {path} is damaged: sha256 {digest[:12]}..., the manifest "
                    f"recorded {recorded[:12]}..."
                )
        return bundle

    @property
    def policy(self) -> dict[str, Any]:
        return self.manifest["policy"]

    def path(self, key: str) -> Path | None:
        rel = self.manifest.get("files", {}).get(key)
        return _inside(self.folder, rel) if rel else None


def _inside(folder: Path, rel: Any) -> Path:
    """``folder / rel``, refused unless it stays inside the bundle (a manifest naming
    ``/tmp/x.pt`` or ``../../x.pt`` loaded a model from outside it)."""
    path = folder / str(rel)
    if not isinstance(rel, str) or not path.resolve().is_relative_to(folder.resolve()):
        raise DamagedArtifactError(f"bundle file {rel!r} lies outside the bundle {folder}")
    return path


POLICIES = ("model", "popularity")
# the files a model bundle serves: the two-tower, the ranker and the index always, the others
# when its policy names them
MODEL_FILES = ("two_tower", "ranking", "index", "item_similarity", "light_ranker")


def _shaped(manifest: Any, where: Path) -> dict[str, Any]:
    """``manifest`` when it has the shape the funnel reads, else ``DamagedArtifactError``
    naming the file and the field (a list, a null ``files`` or a string ``policy`` were bare
    ``AttributeError``s and ``KeyError``s)."""

    def bad(field: str, want: str) -> DamagedArtifactError:
        return DamagedArtifactError(f"bundle manifest {where}: {field} is not {want}")

    if not isinstance(manifest, dict):
        raise bad("the manifest", "a JSON object")
    for field in ("policy", "files", "lineage"):
        if not isinstance(manifest.get(field), dict):
            raise bad(field, "an object")
    if manifest["policy"].get("policy") not in POLICIES:
        raise bad("policy.policy", f"one of {', '.join(POLICIES)}")
    if not all(isinstance(v, str) for v in manifest["files"].values()):
        raise bad("each of files", "a path in the bundle")
    return manifest


__all__ = ["Bundle"]
