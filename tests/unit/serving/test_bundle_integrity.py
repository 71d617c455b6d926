"""A serving bundle whose files changed after it was written is refused at load, naming the
file, before a model is unpickled: ``Bundle.load`` checks each model file's sha256 against the
manifest (``bundle.write_bundle`` records it). The service then never starts, so the bento that
served before keeps serving."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

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
    lineage["feast"] = {"registry_sha256": None}
    manifest = {"policy": {"policy": "model"}, "files": files, "lineage": lineage}
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path


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
