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
    def load(cls, folder: str | Path, code: str | Path | None = None) -> Bundle:
        """Read the bundle's manifest and check the files it names: each model file's sha256
        against the one the manifest recorded when the bundle was written. A manifest that is
        not JSON, a file missing, or a file whose bytes changed (truncated, corrupted, swapped)
        raises ``DamagedArtifactError`` naming it, before anything is loaded: the service
        does not start, so the bento serving before it keeps serving. The index copy and the
        Feast files are checked the same way (``lineage.contents``: bundles built before it
        have none, and their index is checked by ``ItemIndex.load`` alone); the manifest's
        shape, its digest (a manifest edited after the build) and that every file lies inside
        the bundle are checked first. ``code``: the bento's ``src`` folder, whose code files and
        requirements are checked against the manifest's ``code`` record (``code_problems``:
        an edited ``service.py`` served under the same tag and digest)."""
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
            from recassets.bento.bundle import manifest_digest

            if manifest_digest(manifest) != manifest["digest"]:
                raise DamagedArtifactError(
                    f"bundle manifest {manifest_path} was edited after the build: its lineage "
                    f"no longer hashes to its digest {manifest['digest']!r}"
                )
        if code is not None and (problems := code_problems(manifest, Path(code))):
            raise DamagedArtifactError(problems[0][1])
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


def pins_digest(text: str) -> str:
    """The sha256 of a requirements file's requirement lines (comments, blank lines and
    indentation dropped; sorted, once each): BentoML rewrites the bento's copy of the lock
    (its comments unindented, ``bentoml`` appended again), so the file's own bytes differ from
    the build's while every pin is the same."""
    import hashlib

    lines = {line.split("#", 1)[0].strip() for line in text.splitlines()}
    return hashlib.sha256("\n".join(sorted(lines - {""})).encode()).hexdigest()


def code_problems(manifest: dict[str, Any], src: Path) -> list[tuple[str, str]]:
    """(path, what is wrong) for each code file of a bento (``src``: its ``src`` folder) whose
    sha256 is not the one its manifest's ``code`` record took at the build
    (``bento.bundle.code_record``), each file under ``src/recassets`` it does not name (bytecode
    caches aside), and its requirements' pins or uv overrides (``env/python``) when they
    differ. Empty for a manifest without the record (a bento built before it), and for a
    bundle outside a bento."""
    record = manifest.get("code")
    if not isinstance(record, dict):
        return []
    files: dict[str, Any] = record["files"] if isinstance(record.get("files"), dict) else {}
    found: list[tuple[str, str]] = []
    for rel, recorded in sorted(files.items()):
        path = _inside(src, rel)
        if not path.is_file():
            found.append((str(path), f"bento code file {path} is missing"))
        elif (digest := file_digest(path)[1]) != recorded:
            found.append((str(path), f"bento code file {path} was changed after the build: "
                          f"sha256 {digest[:12]}..., the manifest recorded {str(recorded)[:12]}..."))  # fmt: skip
    package = src / "recassets"
    for path in sorted(package.rglob("*")) if package.is_dir() else ():
        rel = path.relative_to(src).as_posix()
        if path.is_file() and "__pycache__" not in path.parts and rel not in files:
            found.append((str(path), f"bento code file {path} was added after the build"))
    env = src.parent / "env" / "python"
    for name, key in (("requirements.txt", "requirements"), ("overrides.txt", "overrides")):
        if key not in record:
            continue
        path = env / name
        try:
            same = pins_digest(path.read_text()) == record[key]
        except (OSError, UnicodeDecodeError):
            found.append((str(path), f"bento {key} file {path} is missing or unreadable"))
            continue
        if not same:
            found.append((str(path), f"bento {key} file {path} was changed after the build: "
                          "its pins are not the ones recorded"))  # fmt: skip
    return found


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
    if not isinstance(manifest.get("home", ""), str):
        raise bad("home", "a path")
    if not isinstance(manifest.get("code", {}), dict):
        raise bad("code", "an object")
    return manifest


__all__ = ["Bundle", "code_problems", "pins_digest"]
