"""A bento's code against this install's (``recassets.bento.code``), review of 2026-12-07.

A home upgraded in place served its old bento (old head bounds, no ad fields in its decision
records) with ``serving/recommender_bento`` FRESH, and ``recassets lineage --verify`` said
"all ok" for a bento built before the code record even after its ``service.py`` was edited.
Now the asset's code version is the installed code's digest, the comparison names the files
that differ, and verify says such a bento's code is unchecked (a failure with ``--strict``)."""

from __future__ import annotations

import json
from pathlib import Path

from recassets.bento import code as C
from recassets.lineage import verify as V
from tests.unit.serving.test_bundle_digest import _bundle, _examples, bento  # noqa: F401


def _manifest(bento_root: Path) -> dict:
    return json.loads((bento_root / "src" / "bundle" / "manifest.json").read_text())


def test_the_installed_files_are_the_ones_a_bento_built_from_them_records(bento):  # noqa: F811
    src = bento / "src"
    installed = C.code_files(src / "service.py", src / "recassets")
    assert installed == _manifest(bento)["code"]["files"]
    assert C.differs(_manifest(bento), installed) is None
    (src / "recassets" / "__pycache__").mkdir()
    (src / "recassets" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    assert C.code_files(src / "service.py", src / "recassets") == installed  # caches are no code


def test_a_bento_of_other_code_or_without_the_record_differs_naming_why(bento):  # noqa: F811
    src = bento / "src"
    (src / "service.py").write_text("MAX_RANK_ITEMS = 7\n")  # the upgrade's new service.py
    (src / "recassets" / "new.py").write_text("x = 1\n")
    why = C.differs(_manifest(bento), C.code_files(src / "service.py", src / "recassets"))
    assert why is not None and "2 file(s)" in why and "service.py" in why and "new.py" in why
    older = {k: v for k, v in _manifest(bento).items() if k != "code"}
    assert "built before" in str(C.differs(older, {}))


def test_the_digest_changes_with_any_code_file_and_is_the_bento_assets_code_version(tmp_path):
    (tmp_path / "serving").mkdir()
    (tmp_path / "recassets").mkdir()
    (tmp_path / "serving" / "service.py").write_text("A = 1\n")
    (tmp_path / "recassets" / "a.py").write_text("B = 1\n")
    before = C.installed_digest(tmp_path)
    assert C.installed_digest(tmp_path) == before  # deterministic
    (tmp_path / "recassets" / "a.py").write_text("B = 2\n")
    assert C.installed_digest(tmp_path) != before
    assert C.installed_digest(tmp_path / "absent") == "1"  # no serving/: the definitions load

    from assets.serving import recommender_bento

    versions = set(recommender_bento.code_versions_by_key.values())
    assert versions == {C.installed_digest()} and versions != {"1"}


def test_verify_says_a_bento_without_a_code_record_is_unchecked_and_strict_fails_it(
    paths, tmp_path
):
    _examples(paths)
    _bundle(paths, tmp_path / "b" / "src" / "bundle")
    manifest = tmp_path / "b" / "src" / "bundle" / "manifest.json"
    (found,) = V._code_check(manifest)
    assert found.status == V.UNCHECKED and found.path.endswith("service.py")
    assert C.REBUILD in found.what
    assert V.failures([found]) == [] and V.failures([found], strict=True) == [found]
    assert "never recorded" in V.said([found])


def test_verify_checks_a_recorded_bento_as_before(bento):  # noqa: F811
    manifest = bento / "src" / "bundle" / "manifest.json"
    assert V._code_check(manifest) == []
    (bento / "src" / "service.py").write_text("MAX_RANK_ITEMS = 100000\n")
    (changed,) = V._code_check(manifest)
    assert changed.status == "changed" and V.failures([changed], strict=False) == [changed]


def _stored(paths, tag: str, manifest: dict) -> None:
    """A built bento ``tag`` in ``paths``' store holding ``manifest`` (marked built)."""
    from recassets.bento.store import bento_folder, mark_built

    folder = bento_folder(paths, tag)
    (folder / "src" / "bundle").mkdir(parents=True)
    (folder / "bento.yaml").write_text("name: recassets_recommender\n")
    (folder / "src" / "bundle" / "manifest.json").write_text(json.dumps(manifest))
    mark_built(paths, tag)


def test_status_says_when_the_newest_bento_carries_other_code_than_this_install(paths):
    from recassets.cli_status import _bentos

    tag = "recassets_recommender:20260104t030000-model-aa"
    _stored(paths, tag, {"code": {"files": C.installed_files()}})
    lines = _bentos(paths)
    assert lines[0] == f"  newest bento: {tag}" and not any("its code" in x for x in lines)
    newer = "recassets_recommender:20260105t030000-model-bb"
    _stored(paths, newer, {"policy": "model"})  # an upgraded home's bento: no code record
    (said,) = [x for x in _bentos(paths) if "its code" in x]
    assert "built before recassets recorded" in said and C.REBUILD in said
