"""A serving bundle whose files changed after it was written is refused at load, naming the
file, before a model is unpickled: ``Bundle.load`` checks each model file's sha256 against the
manifest (``bundle.write_bundle`` records it). The service then never starts, so the bento that
served before keeps serving."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from recassets.bento.bundle import lineage_digest
from recassets.funnel.recommender import Bundle
from recassets.landing import file_digest
from recassets.training.checkpoint import DamagedArtifactError

BYTES = {"two_tower": b"two-tower weights " * 1000, "ranking": b"ranker weights " * 1000}


@pytest.fixture
def bundle(tmp_path: Path) -> Path:
    """A bundle laid out as write_bundle lays one out (contents need not be checkpoints: the
    check is on bytes)."""
    (tmp_path / "models").mkdir()
    files, lineage = {}, {}
    for kind, data in BYTES.items():
        path = tmp_path / "models" / f"{kind}.pt"
        path.write_bytes(data)
        files[kind] = f"models/{kind}.pt"
        lineage[kind] = {"checkpoint": f"/elsewhere/{kind}/0001.pt", "sha256": file_digest(path)[1]}
    (tmp_path / "index").mkdir()
    (tmp_path / "index" / "item_ids.npy").write_bytes(b"ids " * 100)
    files["index"] = "index"
    lineage["feast"] = {"registry_sha256": None}
    lineage["contents"] = {"index/item_ids.npy": file_digest(tmp_path / "index/item_ids.npy")[1]}
    _write(tmp_path, {"policy": {"policy": "model"}, "files": files, "lineage": lineage})
    return tmp_path


def _write(folder: Path, manifest: dict) -> None:
    """The manifest with its lineage's digest, as ``write_bundle`` writes it."""
    digest = lineage_digest(manifest["lineage"])
    (folder / "manifest.json").write_text(json.dumps({**manifest, "digest": digest}))


def _manifest(folder: Path) -> dict:
    return json.loads((folder / "manifest.json").read_text())


def test_an_intact_bundle_loads(bundle):
    loaded = Bundle.load(bundle)
    assert loaded.path("ranking") == bundle / "models" / "ranking.pt"


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: p.write_bytes(p.read_bytes()[:100]), "is damaged: sha256"),  # truncated
        (lambda p: p.write_bytes(b"X" + p.read_bytes()[1:]), "is damaged: sha256"),  # a byte
        (lambda p: p.unlink(), "is missing"),
    ],
    ids=["truncated", "one_byte", "missing"],
)
def test_a_changed_model_file_is_refused_naming_it(bundle, damage, message):
    damage(bundle / "models" / "ranking.pt")
    with pytest.raises(DamagedArtifactError, match=message) as err:
        Bundle.load(bundle)
    assert str(bundle / "models" / "ranking.pt") in str(err.value)


def test_a_manifest_that_is_not_json_is_refused_naming_it(bundle):
    (bundle / "manifest.json").write_text('{"policy": {"policy": "mo')
    with pytest.raises(DamagedArtifactError, match=f"bundle manifest {bundle}/manifest.json"):
        Bundle.load(bundle)


def test_the_index_copy_and_the_manifest_itself_are_checked(bundle):
    """A reordered or another build's index served other items with every check passing; a
    manifest edited after the build (a policy spelled "Model", a sha256 removed) loaded."""
    ids = bundle / "index" / "item_ids.npy"
    kept = ids.read_bytes()
    ids.write_bytes(kept[::-1])
    with pytest.raises(DamagedArtifactError, match=f"bundle file {ids} is damaged"):
        Bundle.load(bundle)
    ids.write_bytes(kept)
    manifest = _manifest(bundle)
    del manifest["lineage"]["ranking"]["sha256"]
    (bundle / "manifest.json").write_text(json.dumps(manifest))  # the digest left as it was
    with pytest.raises(DamagedArtifactError, match="edited after the build"):
        Bundle.load(bundle)
    _write(bundle, manifest)  # re-digested: still no sha256 of a model file
    with pytest.raises(DamagedArtifactError, match="records no sha256 of ranking"):
        Bundle.load(bundle)


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda m: m["files"].update(ranking="../../ranking.pt"), "lies outside the bundle"),
        (lambda m: m["files"].update(ranking="/tmp/ranking.pt"), "lies outside the bundle"),
        (lambda m: m["policy"].update(policy="Model"), "policy.policy is not one of"),
        (lambda m: m["files"].pop("two_tower"), "names no file of two_tower"),
        (lambda m: m.update(files=None), "files is not an object"),
    ],
)
def test_a_manifest_of_another_shape_is_refused_naming_the_field(bundle, edit, says):
    manifest = _manifest(bundle)
    edit(manifest)
    _write(bundle, {k: v for k, v in manifest.items() if k != "digest"})
    with pytest.raises(DamagedArtifactError, match=says):
        Bundle.load(bundle)


def test_a_list_for_a_manifest_is_refused_naming_it(bundle):
    (bundle / "manifest.json").write_text("[]")
    with pytest.raises(DamagedArtifactError, match="the manifest is not a JSON object"):
        Bundle.load(bundle)


def test_an_index_of_another_size_than_the_two_tower_is_refused():
    from types import SimpleNamespace

    from recassets.funnel.stages import Retrieval

    tower = SimpleNamespace(config=SimpleNamespace(dim=16))
    index = SimpleNamespace(info=SimpleNamespace(dim=8))
    with pytest.raises(ValueError, match="holds 8-dimensional vectors and the two-tower makes 16"):
        Retrieval(tower, None, index, None)  # type: ignore[arg-type]
