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
        does not start, so the bento serving before it keeps serving. (The index folder is
        checked by ``ItemIndex.load``.)"""
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
        bundle = cls(folder, manifest)
        for kind, record in manifest.get("lineage", {}).items():
            path = bundle.path(kind)
            if path is None or not isinstance(record, dict) or "sha256" not in record:
                continue
            if not path.is_file():
                raise DamagedArtifactError(f"bundle file {path} is missing")
            _, digest = file_digest(path)
            if digest != record["sha256"]:
                raise DamagedArtifactError(
                    f"bundle file {path} is damaged: sha256 {digest[:12]}..., the manifest "
                    f"recorded {record['sha256'][:12]}..."
                )
        return bundle

    @property
    def policy(self) -> dict[str, Any]:
        return self.manifest["policy"]

    def path(self, key: str) -> Path | None:
        rel = self.manifest.get("files", {}).get(key)
        return self.folder / rel if rel else None


__all__ = ["Bundle"]
