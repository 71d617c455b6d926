"""``recassets lineage --verify``: re-hash every file on a lineage path whose sha256 was
recorded (landing files, the checkpoints a bento copied, the Feast registry) and compare."""

from __future__ import annotations

import bz2
import datetime as dt
import gzip
import hashlib
import lzma
import re
import zlib
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from recassets.bento.code import REBUILD
from recassets.lineage.graph import Lineage
from recassets.paths import Paths


@dataclass(frozen=True)
class Verified:
    path: str
    what: str
    # ok | changed | missing | unverifiable (no sha256 recorded) | outside (recorded outside
    # this home's folders: a copied or restored home whose records name the original's files,
    # which would verify the original, not this one) | superseded (an ingestion's manifest
    # rewritten by a later ingestion of its day: the earlier files are not on record) | stale
    # (the manifest of an earlier ingestion: the later run died before writing its own) |
    # damaged (a lineage record cut short or not JSON: what it recorded cannot be read) |
    # archived (not at its place, but compressed beside it with the recorded bytes: said, ok) |
    # copied (a model's checkpoint gone from its place, a retention job's doing, whose recorded
    # bytes a bento on the path holds, verified there: said, ok) | rewritten (a shared file
    # later runs rewrite by design, the Feast registry, differs from the build: said, ok)
    status: str
    recorded: str | None = None
    actual: str | None = None
    recorded_as: str | None = None  # the record's own path, where ``path`` is this home's copy


def sha256_of(path: str | Path) -> str:
    with open(path, "rb") as f:
        return _digest(f)


def sha256_or_none(path: str | Path) -> str | None:
    """``sha256_of``, or None for a file that cannot be read (the trace goes on; ``verify``
    names the error)."""
    try:
        return sha256_of(path)
    except OSError:
        return None


def _digest(f: BinaryIO) -> str:
    h = hashlib.sha256()
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
            here = _in_this_home(a.path, roots)
            what = f"{a.what}, recorded in another home as {a.path}"
            if here is None:
                results[a.path] = Verified(a.path, a.what, "outside", a.sha256)
            elif not here.is_file():  # its place in this home is known, and empty
                results[a.path] = replace(_missing(here, what, a.sha256), recorded_as=a.path)
            else:  # this home's copy is what is checked; the record's path is said with it
                results[a.path] = _hashed(str(here), what, a.sha256, a.path)
        elif not Path(a.path).is_file():
            results[a.path] = _missing(Path(a.path), a.what, a.sha256)
        else:
            results[a.path] = _hashed(a.path, a.what, a.sha256)
        if a.mutable and results[a.path].status in (*FAILED, "unverifiable"):
            results[a.path] = _rewritten(results[a.path])
    for folder in _bentos(lineage):
        manifest = folder / "src" / "bundle" / "manifest.json"
        results[str(manifest)] = _digest_check(manifest, folder.name)
        for v in _code_check(manifest):  # its code and requirements, as the service's start
            results[v.path] = v
        if (built := _built_at(folder)) is not None:
            results[built.path] = built
    for node in lineage.nodes.values():
        if node.manifest is not None:  # a record that does not describe its node, or is damaged
            path, status, detail = node.manifest
            record = ("the Delta log" if path.endswith("_delta_log") else "the checkpoint"
                      if node.kind == "model" else "the lineage manifest")  # fmt: skip
            what = f"{record} of {node.id}: {detail}"
            if path not in results or results[path].status not in FAILED:  # the worst stays
                results[path] = Verified(path, what, status)
        for path, status, detail in node.problems:  # a commit outside recassets, a served time
            if path not in results or results[path].status not in FAILED:
                results[path] = Verified(path, f"{node.id}: {detail}", status)
    _in_a_bento(lineage, results)
    return [results[p] for p in sorted(results)]


def _rewritten(v: Verified) -> Verified:
    """A shared file that later runs rewrite by design (the Feast registry, which every
    feature-store materialization writes again from the feature definitions): its difference
    from the build's sha256 is said, never a failure, since it is not evidence of the data
    (every older bento and request failed as "changed" once a new day was materialized)."""
    return replace(v, status="rewritten", what=f"{v.what}; {v.status} since the build: "
                   "rewritten by a later feature-store run (a shared, mutable file derived from "
                   "the feature definitions): the registry is not evidence of the data; the "
                   "bento's own copy, where it has one (feast/registry.db), is checked as built")  # fmt: skip


def _hashed(path: str, what: str, sha256: str, recorded_as: str | None = None) -> Verified:
    """``path`` re-hashed against ``sha256``: ``ok`` or ``changed``; ``missing``, naming the OS
    error, when it cannot be read (a record naming ``movielens.jsonl/``, which ``Path`` reads as
    the file, or a file without read permission: the trace stopped with "Not a directory")."""
    try:
        actual = sha256_of(path)
    except OSError as e:
        return Verified(path, f"{what}; it cannot be read: {e}", "missing", sha256,
                        recorded_as=recorded_as)  # fmt: skip
    status = "ok" if actual == sha256 else "changed"
    return Verified(path, what, status, sha256, actual, recorded_as)


def _bentos(lineage: Lineage) -> list[Path]:
    """The bento folders on the path: the bentos traced, and those whose checkpoint copy a
    model version was read from (``bento/src/bundle/models/<file>``)."""
    folders = {Path(n.dataset) for n in lineage.nodes.values() if n.kind == "bento" and n.dataset}
    folders |= {Path(a.path).parents[3] for _, a in lineage.artifacts() if _copy(a.what)}
    return sorted(folders)


def _copy(what: str) -> bool:
    return what.endswith(" checkpoint copy")


def _in_a_bento(lineage: Lineage, results: dict[str, Verified]) -> None:
    """A missing checkpoint whose recorded bytes a bento's copy on the path holds, verified
    ``ok`` there in a bento whose manifest passed its digest check (an edited record vouches
    for nothing), is ``copied``: the served copy is the recorded model, so the trace from what
    is served to the model holds. Old checkpoints are what a retention job deletes first;
    before, one deleted made the audit fail though the bento kept its copy."""

    def intact(copy: str) -> bool:  # its bento's manifest passed the digest check
        check = results.get(str(Path(copy).parents[1] / "manifest.json"))
        return check is not None and check.status == "ok"

    held = {
        v.recorded: v.path
        for _, a in lineage.artifacts()
        if _copy(a.what) and (v := results.get(a.path)) and v.status == "ok" and intact(v.path)
    }
    for _, a in lineage.artifacts():
        v = results.get(a.path)
        if v and v.status == "missing" and a.what.endswith(" checkpoint") and v.recorded in held:
            copy = lineage.relative(held[v.recorded])
            what = f"{v.what}; gone from its place, the bento's copy {copy} holds its bytes"
            results[a.path] = replace(v, what=what, status="copied", actual=v.recorded)


def bento_copy(paths: Paths, kind: str, name: str) -> tuple[Path, str] | None:
    """A bento's copy of the checkpoint ``kind/name`` (``two_tower``, ``0003.pt``) and its
    sha256, for when the checkpoint itself is gone (old checkpoints are what a retention job
    deletes first, and the served model is what an auditor traces and reproduces). Only a
    bento the store holds whole (its ``bento.yaml``) whose manifest passes its digest check
    (``_digest_check``: an edited record vouches for nothing), newest first; in it, the copy
    at the one place a build writes it (``models/<key><suffix>`` of its own bundle, as its
    manifest's ``files`` says), whose lineage section names that checkpoint (by its last two
    path parts: a home restored elsewhere records the original's paths) and whose bytes are
    the recorded sha256. None when no bento holds one."""
    import json

    from recassets.bento.store import BENTO_NAME, bentoml_home

    store = Path(bentoml_home(paths)) / "bentos" / BENTO_NAME
    held = [b for b in store.iterdir() if (b / "bento.yaml").is_file()] if store.is_dir() else []
    for bento in sorted(held, key=lambda b: b.name, reverse=True):
        manifest = bento / "src" / "bundle" / "manifest.json"
        if _digest_check(manifest, bento.name).status != "ok":
            continue
        m = json.loads(manifest.read_text())  # it passed the check: a dict with a lineage
        for key, section in m["lineage"].items():
            recorded = (
                Path(str(section.get("checkpoint", ""))) if isinstance(section, dict) else None
            )
            if recorded is None or (recorded.parent.name, recorded.name) != (kind, name):
                continue
            place = f"models/{key}{recorded.suffix}"
            if (m.get("files") or {}).get(key) != place:
                continue
            copy = manifest.parent / place
            try:
                sha = sha256_of(copy)
            except OSError:  # gone or unreadable: vouches for nothing
                continue
            if sha == section.get("sha256"):
                return copy, sha
    return None


def model_version(paths: Paths, name: str) -> tuple[str, str | None, Path | None]:
    """The checkpoint of model version ``name`` (``two_tower/0003``) as the trace reads it:
    (its path, the sha256 and path of a bento's copy when the checkpoint is gone), or
    ``LookupError`` when neither is there."""
    kind, _, number = name.partition("/")
    path = Path(paths.artifacts) / "models" / kind / f"{number}.pt"
    found = None if path.is_file() else bento_copy(paths, kind, path.name)
    if not path.is_file() and found is None:
        raise LookupError(f"no checkpoint {name} ({path}), nor a bento's copy")
    copy, sha = found or (None, None)
    return str(path), sha, copy


# an archiving job's compressions that the standard library reads
_ARCHIVED = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}


def _missing(path: Path, what: str, sha256: str) -> Verified:
    """A file not at its recorded place: ``archived`` when it lies there compressed (an
    operator's job gzipped old landing files) and its bytes, decompressed, are the recorded
    ones; ``changed`` when they are not; else ``missing``. Before, an archived file was
    "missing", with nothing to say where it went."""
    for suffix, opener in _ARCHIVED.items():
        packed = path.with_name(path.name + suffix)
        if not packed.is_file():
            continue
        what = f"{what}; compressed beside its place as {packed.name}"
        try:
            with opener(packed, "rb") as f:
                actual = _digest(f)
        except (OSError, EOFError, lzma.LZMAError, zlib.error) as e:  # a damaged body: zlib's
            return Verified(str(path), f"{what}, which cannot be read: {e}", "changed", sha256)
        # the recorded place stays the path: the tree marks the file it drew by it
        return Verified(str(path), what, "archived" if actual == sha256 else "changed",
                        sha256, actual)  # fmt: skip
    return Verified(str(path), what, "missing", sha256)


def _in_this_home(recorded: str, roots: list[Path]) -> Path | None:
    """Where a file a record of another home names lies in this one: after the last part of
    its path named as one of this home's folders (``/old/landing/events/dt=D/f.jsonl`` is
    ``LANDING/events/dt=D/f.jsonl``; a home copied, moved or restored keeps its layout), or
    None (no such part, or a path with ``..`` or one that would leave the folder: a record
    edited to point elsewhere stays "outside"). Before, every such file was "outside" and an
    audit of a restored home failed, saying that 46 files differed (probe, 2026-12-06). Its
    sha256 must still match the record."""
    parts = Path(recorded).parts
    if ".." in parts:
        return None
    for root in roots:
        if root.name not in parts[:-1]:
            continue
        at = len(parts) - 1 - parts[::-1].index(root.name)
        candidate = root.joinpath(*parts[at + 1 :])
        if candidate.resolve().is_relative_to(root):
            return candidate
    return None


def said(bad: list[Verified]) -> str:
    """The failures in one line, by kind: ``2 changed, 1 missing: a, b, c`` (the audit called
    every one "differ", a missing landing file and another home's file included)."""
    kinds = {"changed": "changed", "missing": "missing", "outside": "outside this home",
             "damaged": "damaged records",
             "unverifiable": "without their recorded sha256",
             UNCHECKED: "bento code never recorded"}  # fmt: skip
    counts = [f"{sum(v.status == k for v in bad)} {word}" for k, word in kinds.items()
              if any(v.status == k for v in bad)]  # fmt: skip
    return ", ".join(counts)


def _digest_check(manifest: Path, version: str) -> Verified:
    """A bento's lineage against the digest taken of it at the build: the last part of its
    tag (``version``, its folder's name, ``bundle.bento_version``), never the manifest's own
    ``digest`` field, which a forger rewrites with the figures; and the policy it serves (the
    manifest's top-level ``policy``, which the service reads) against the lineage's copy of it.
    An edited figure, a removed sha256 or a changed served order all fail."""
    import json

    from recassets.bento.bundle import manifest_digest

    what = "the bento's recorded lineage against its build-time digest (its tag)"
    tagged = version.rsplit("-", 1)[-1]
    try:
        m = json.loads(manifest.read_text())
        lineage, served = m["lineage"], dict(m["policy"])
    except (OSError, ValueError, KeyError, TypeError):
        return Verified(str(manifest), what, "missing", tagged)
    if not re.fullmatch(r"[0-9a-f]{12}", tagged):  # not a version recassets builds: its record
        tagged, what = str(m.get("digest")), what.replace("(its tag)", "(its manifest)")
    # home-relative paths, times left out, the code record in (``bundle.manifest_digest``)
    actual = manifest_digest(m) if isinstance(lineage, dict) else ""
    served.pop("evaluation", None)  # the one part the lineage leaves out (bundle.build_bundle)
    ok = actual == tagged and str(m.get("digest")) == tagged
    if ok and served != lineage.get("policy"):
        what = "the policy the bento serves (its manifest's policy) against its recorded lineage"
        ok = False
    return Verified(str(manifest), what, "ok" if ok else "changed", tagged, actual)


def _code_check(manifest: Path) -> list[Verified]:
    """The bento's code files, requirements and uv overrides against its manifest's ``code``
    record (``funnel.bundle.code_problems``): a ``service.py`` edited in the bento served
    under the same tag while every check said ok. A bento built before the record is said
    ``unchecked`` on its ``service.py`` (its code cannot be compared: an upgraded home served
    such a bento, a ``service.py`` edited in it, with "all ok"); a failure only with
    ``--strict``. Nothing for a manifest that cannot be read (the digest check names it)."""
    import json

    from recassets.funnel.bundle import code_problems
    from recassets.training.checkpoint import DamagedArtifactError

    what = "a bento's code or environment file against its build-time sha256 (manifest's code)"
    try:
        m = json.loads(manifest.read_text())
    except (OSError, ValueError):
        return []
    try:
        if isinstance(m, dict) and not isinstance(m.get("code"), dict):
            return [Verified(str(manifest.parents[1] / "service.py"), "the bento's code "
                             "(service.py, recassets/) and environment: built before recassets "
                             "recorded a bento's code, so the code it serves cannot be checked; "
                             f"rebuild it ({REBUILD}) and restart the server", UNCHECKED)]  # fmt: skip
        found = code_problems(m, manifest.parents[1]) if isinstance(m, dict) else []
    except DamagedArtifactError as e:  # a record naming a file outside the bento's src
        return [Verified(str(manifest), f"{what}: {e}", "changed")]
    return [Verified(p, f"{what}: {problem}",
                     "missing" if "missing" in problem else "changed") for p, problem in found]  # fmt: skip


# How far a bento manifest's ``created_at`` (the bundle written) may lie from BentoML's own
# ``creation_time`` (``bentoml build`` done, seconds later) before it is no build time: 30
# minutes, room for a slow, loaded builder.
BUILT_AT_TOLERANCE = dt.timedelta(minutes=30)


def _built_at(folder: Path) -> Verified | None:
    """The bento manifest's top-level ``created_at`` (printed as when the bento was built, and
    what an answer's time is checked against) against the ``creation_time`` BentoML wrote in
    the bento's ``bento.yaml``: it lies outside the lineage digest, and a forged one passed
    (review, 2026-12-07). None when either is not there to compare (the manifest's own check
    names a manifest that cannot be read)."""
    import json

    yaml_path, manifest = folder / "bento.yaml", folder / "src" / "bundle" / "manifest.json"
    try:
        stamp = re.search(r"^creation_time:\s*['\"]?([^'\"\n]+)", yaml_path.read_text(), re.M)
        created = json.loads(manifest.read_text()).get("created_at")
    except (OSError, ValueError, AttributeError):
        return None
    if stamp is None or not isinstance(created, str):
        return None
    what = "the bento manifest's created_at against BentoML's creation_time in its bento.yaml"
    try:
        built = dt.datetime.fromisoformat(stamp.group(1).strip())
        said_at = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
        apart = abs((said_at if said_at.tzinfo else said_at.replace(tzinfo=dt.UTC)) -
                    (built if built.tzinfo else built.replace(tzinfo=dt.UTC)))  # fmt: skip
    except ValueError:
        return Verified(str(yaml_path), what, "changed", stamp.group(1), created)
    status = "ok" if apart <= BUILT_AT_TOLERANCE else "changed"
    return Verified(str(yaml_path), what, status, stamp.group(1).strip(), created)


# "superseded" and "stale" are said, no failure
FAILED = ("changed", "missing", "outside", "damaged")
# a bento's code that no record vouches for (built before the record): said, and a failure
# with ``--strict``; not by default, since every bento of a home built before 2026-12-07
# would fail and its data lineage is still checked
UNCHECKED = "unchecked"
# the recorded bytes found: as made, inside their archive, or in the bento that serves them
VOUCHED = ("ok", "archived", "copied")


def failures(results: list[Verified], strict: bool = False) -> list[Verified]:
    """The files that fail: changed, missing, outside the home, and unverifiable ones whose
    record always holds a sha256 (a landing file, a bento's checkpoint copy, the Feast
    registry): one without it was edited (a forged landing file passed once its record's
    sha256 was removed). A model version's own checkpoint is unverifiable by design (its sha256
    is recorded in a bento's lineage only). ``strict``: a bento's unrecorded code too."""
    return [
        r for r in results
        if r.status in FAILED or (r.status == "unverifiable" and not r.what.endswith(" checkpoint"))
        or (strict and r.status == UNCHECKED)
    ]  # fmt: skip


__all__ = [
    "FAILED",
    "UNCHECKED",
    "VOUCHED",
    "Verified",
    "bento_copy",
    "failures",
    "model_version",
    "said",
    "sha256_of",
    "sha256_or_none",
    "verify",
]
