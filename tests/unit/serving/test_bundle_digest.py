"""The digest a bento is tagged with (``bundle.manifest_digest``) and its code record
(``bundle.code_record``, ``funnel.bundle.code_problems``), review of 2026-12-07.

The digest was taken over the lineage as written: the home's absolute paths and the times of
the promotion and the index, so the same files in two homes, or a gate run again over the same
models, gave another digest where the docs said "the same inputs give the same suffix". It is
now taken with the paths under the build's ``home`` made relative to it and those times left
out, and still fails an edited sha256 or policy field. And the bento's code was outside every
check: an edited ``service.py`` served under the same tag with ``--verify`` saying ok."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recassets.bento import bundle as B
from recassets.bento.popularity import POPULARITY_FILE
from recassets.funnel.bundle import Bundle, code_problems, pins_digest
from recassets.paths import Paths
from recassets.training import policy as P
from recassets.training.checkpoint import DamagedArtifactError
from tests.unit.serving.test_bundle_popularity import _examples

POLICY = {"policy": "popularity", "variant": "all_time"}


def _bundle(paths: Paths, out: Path, promoted_at: str = "2026-12-07T10:00:00+00:00") -> dict:
    """A popularity bundle of ``paths`` (its counts from planted training examples, its
    lineage naming the home's Feast registry) written to ``out``; its manifest."""
    P.write_policy(paths, {**POLICY, "promoted_at": promoted_at})
    B.write_bundle(paths, out)
    return json.loads((out / "manifest.json").read_text())


def test_the_same_inputs_in_two_homes_give_the_same_digest(make_home, tmp_path):
    one, two = make_home("digest-one"), make_home("digest-two")
    for home in (one, two):
        _examples(home)
    first, second = _bundle(one, tmp_path / "one"), _bundle(two, tmp_path / "two")
    # the lineages name each home's own files (so the old digest of them differed)
    assert first["lineage"]["feast"]["registry"].startswith(one.home)
    assert B.lineage_digest(first["lineage"]) != B.lineage_digest(second["lineage"])
    assert first["home"] == one.home and second["home"] == two.home
    assert first["digest"] == second["digest"] == B.manifest_digest(first)
    Bundle.load(tmp_path / "one")  # and it is the digest the load checks


def test_a_gate_run_again_over_the_same_models_gives_the_same_digest(paths, tmp_path):
    _examples(paths)
    before = _bundle(paths, tmp_path / "before")
    again = _bundle(paths, tmp_path / "again", promoted_at="2026-12-08T09:30:00+00:00")
    assert before["lineage"]["policy"]["promoted_at"] != again["lineage"]["policy"]["promoted_at"]
    assert before["created_at"] and before["digest"] == again["digest"]
    # another policy is another digest
    P.write_policy(paths, {**POLICY, "variant": "trailing_7d"})
    assert B.write_bundle(paths, tmp_path / "other") and (
        json.loads((tmp_path / "other" / "manifest.json").read_text())["digest"] != before["digest"]
    )


@pytest.mark.parametrize(
    "edit",
    [
        lambda m: m["lineage"]["popularity"].update(sha256="0" * 64),
        lambda m: m["lineage"]["policy"].update(variant="trailing_7d"),
        lambda m: m["lineage"]["feast"].update(registry="/elsewhere/registry.db"),
        lambda m: m.pop("home"),  # read as a manifest from before the record: its old digest
        lambda m: m.update(home="/elsewhere"),
    ],
    ids=["sha256", "policy", "path", "home_removed", "home_changed"],
)
def test_an_edited_manifest_still_fails_its_digest(paths, tmp_path, edit):
    _examples(paths)
    manifest = _bundle(paths, tmp_path / "b")
    edit(manifest)
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DamagedArtifactError, match="edited after the build"):
        Bundle.load(tmp_path / "b")


def test_a_manifest_from_before_the_home_was_recorded_verifies_as_before(paths, tmp_path):
    _examples(paths)
    manifest = _bundle(paths, tmp_path / "b")
    del manifest["home"]
    manifest["digest"] = B.lineage_digest(manifest["lineage"])  # as write_bundle wrote it then
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    assert B.manifest_digest(manifest) == manifest["digest"]
    Bundle.load(tmp_path / "b")
    manifest["lineage"]["policy"]["promoted_at"] = "forged"  # its times are still covered
    (tmp_path / "b" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(DamagedArtifactError, match="edited after the build"):
        Bundle.load(tmp_path / "b")


def test_only_paths_under_the_home_are_made_relative():
    lineage = {"a": "/h/artifacts/x.pt", "b": "sqlite:/h/artifacts/online.db", "c": "/hx/y",
               "d": ["/h/z"], "e": "s3://bucket/h/x", "created_at": "now"}  # fmt: skip
    assert B._normalized(lineage, "/h") == {
        "a": "$RECASSETS_HOME/artifacts/x.pt",
        "b": "sqlite:$RECASSETS_HOME/artifacts/online.db",
        "c": "/hx/y",
        "d": ["$RECASSETS_HOME/z"],
        "e": "s3://bucket/h/x",
    }


# --- the code record --------------------------------------------------------------------------

LOCK = "numpy==2.2.6\n    # via\n    #   torch\ntorch==2.7.1\n"
OVERRIDES = "# why\nfbgemm-gpu ; sys_platform == 'never'\n"


@pytest.fixture
def bento(paths, tmp_path) -> Path:
    """A bento's layout as ``build_bento`` leaves it: ``src`` with service.py, the library and
    the bundle whose manifest holds the code record; ``env/python`` with the requirements as
    BentoML rewrites them (comments unindented, bentoml appended) and the overrides."""
    _examples(paths)
    root = tmp_path / "bento"
    src = root / "src"
    _bundle(paths, src / "bundle")
    (src / "recassets" / "funnel").mkdir(parents=True)
    (src / "service.py").write_text("MAX_RANK_ITEMS = 1000\n")
    (src / "recassets" / "__init__.py").write_text('__version__ = "0.1.0"\n')
    (src / "recassets" / "funnel" / "ranking.py").write_text("K = 1\n")
    manifest = json.loads((src / "bundle" / "manifest.json").read_text())
    manifest["code"] = B.code_record(src, LOCK, OVERRIDES, "cpu")
    manifest["digest"] = B.manifest_digest(manifest)
    (src / "bundle" / "manifest.json").write_text(json.dumps(manifest))
    (root / "env" / "python").mkdir(parents=True)
    rewritten = "numpy==2.2.6\n# via\n#   torch\ntorch==2.7.1\nnumpy==2.2.6\n"
    (root / "env" / "python" / "requirements.txt").write_text(rewritten)
    (root / "env" / "python" / "overrides.txt").write_text(OVERRIDES)
    return root


def test_the_code_record_names_each_code_file_and_the_environment(bento):
    record = json.loads((bento / "src/bundle/manifest.json").read_text())["code"]
    assert set(record["files"]) == {"service.py", "recassets/__init__.py",
                                    "recassets/funnel/ranking.py"}  # fmt: skip
    assert record["torch"] == "cpu" and record["recassets"] and record["bentoml"]
    assert record["requirements"] == pins_digest(LOCK) and record["overrides"]
    Bundle.load(bento / "src" / "bundle", code=bento / "src")  # whole: loads


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda b: (b / "src/service.py").write_text("MAX_RANK_ITEMS = 100000\n"), "service.py"),
        (lambda b: (b / "src/recassets/funnel/ranking.py").unlink(), "ranking.py is missing"),
        (lambda b: (b / "src/recassets/funnel/extra.py").write_text("x = 1\n"), "extra.py was add"),
        (lambda b: (b / "env/python/requirements.txt").write_text("torch==2.8.0\n"), "requirem"),
        (lambda b: (b / "env/python/overrides.txt").unlink(), "overrides file"),
    ],
    ids=["service", "library_file_gone", "file_added", "requirements", "overrides"],
)
def test_a_changed_code_file_or_environment_is_refused_naming_it(bento, change, named):
    change(bento)
    with pytest.raises(DamagedArtifactError, match=named):
        Bundle.load(bento / "src" / "bundle", code=bento / "src")
    Bundle.load(bento / "src" / "bundle")  # the bundle's own files are as built


def test_bytecode_caches_are_no_code_change(bento):
    cache = bento / "src" / "recassets" / "__pycache__"
    cache.mkdir()
    (cache / "__init__.cpython-311.pyc").write_bytes(b"\x00")
    assert code_problems(json.loads((bento / "src/bundle/manifest.json").read_text()),
                         bento / "src") == []  # fmt: skip


def test_the_code_record_is_covered_by_the_digest(bento):
    path = bento / "src" / "bundle" / "manifest.json"
    manifest = json.loads(path.read_text())
    (bento / "src" / "service.py").write_text("MAX_RANK_ITEMS = 100000\n")
    manifest["code"]["files"]["service.py"] = pins_digest("")  # the record edited to match
    path.write_text(json.dumps(manifest))
    with pytest.raises(DamagedArtifactError, match="edited after the build"):
        Bundle.load(bento / "src" / "bundle", code=bento / "src")


def test_a_bundle_without_a_code_record_is_not_checked_for_code(paths, tmp_path):
    _examples(paths)
    _bundle(paths, tmp_path / "b")
    assert code_problems(json.loads((tmp_path / "b/manifest.json").read_text()), tmp_path) == []
    (tmp_path / "b" / POPULARITY_FILE).unlink()  # its own files still are
    with pytest.raises(DamagedArtifactError, match="is missing"):
        Bundle.load(tmp_path / "b", code=tmp_path)
