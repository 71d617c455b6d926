"""The retrieval steps' versioned folders (``recassets.bento.retrieval_build``): what a failed,
killed or concurrent build leaves, and what reaches a bundle (review of 2026-12-07)."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from recassets.bento import retrieval_build as RB
from recassets.retrieval import index as I
from tests.unit.retrieval.test_index import clustered


def test_two_builds_publishing_the_same_version_both_get_one(tmp_path, monkeypatch):
    """Both saw 0001 as the last version; the second rename found 0002 taken (ENOTEMPTY) and
    failed the run, where it now takes 0003."""
    (tmp_path / "0001").mkdir()
    first, second = RB._staging(tmp_path), RB._staging(tmp_path)
    for folder in (first, second):
        (folder / "index.faiss").write_bytes(folder.name.encode())
    assert RB._publish(first, tmp_path).name == "0002"
    calls, real = [], RB.versions

    def listing(folder: Path) -> list[Path]:
        calls.append(1)
        return [tmp_path / "0001"] if len(calls) == 1 else real(folder)

    monkeypatch.setattr(RB, "versions", listing)
    assert RB._publish(second, tmp_path).name == "0003"
    assert (tmp_path / "0002" / "index.faiss").read_bytes() == first.name.encode()
    assert (tmp_path / "0003" / "index.faiss").read_bytes() == second.name.encode()


def test_a_failed_step_removes_its_staging_folder_and_a_killed_ones_is_swept(tmp_path):
    with pytest.raises(OSError, match="No space left"), RB._staged(tmp_path) as tmp:
        (tmp / "embeddings.npy").write_bytes(b"half")
        raise OSError(28, "No space left on device")
    assert not tmp.exists()
    killed, running = tmp_path / ".tmp-killed", tmp_path / ".tmp-running"
    for folder in (killed, running):
        folder.mkdir()
    long_ago = time.time() - RB.STALE_TMP_S - 5
    os.utime(killed, (long_ago, long_ago))
    with RB._staged(tmp_path) as tmp:
        assert not killed.exists() and running.exists()  # one that may still be building: kept
        shutil.rmtree(tmp)


def test_embeddings_that_are_not_finite_unit_vectors_are_refused_naming_the_items():
    ids = np.arange(100, 110, dtype=np.int64)
    vecs = clustered(10)
    RB.check_embeddings(ids, vecs, "two_tower/0003.pt")
    vecs[2] = np.nan
    vecs[5] *= 3
    with pytest.raises(ValueError, match=r"2 of 10 .* from two_tower/0003.pt .*\[102, 105\]"):
        RB.check_embeddings(ids, vecs, "two_tower/0003.pt")


def _index_folder(folder: Path) -> dict:
    vecs = clustered(200)
    index, info = I.build_index(vecs)
    I.ItemIndex(index, np.arange(200, dtype=np.int64), info).save(folder)
    return {"files": RB.index_files(folder)}


def test_a_bundles_index_copy_must_hold_the_bytes_hashed_at_its_build(tmp_path):
    source, copy = tmp_path / "0001", tmp_path / "copy"
    manifest = _index_folder(source)
    shutil.copytree(source, copy)
    RB.verify_index_copy(source, copy, manifest)  # whole: accepted
    data = (copy / I.INDEX_FILE).read_bytes()
    (copy / I.INDEX_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"\(.*0001\): index.faiss is not the file built there"):
        RB.verify_index_copy(source, copy, manifest)


def test_an_index_built_before_its_hashes_were_kept_is_loaded_instead(tmp_path):
    source = tmp_path / "0001"
    _index_folder(source)
    RB.verify_index_copy(source, source, {})  # loads: accepted
    data = (source / I.INDEX_FILE).read_bytes()
    (source / I.INDEX_FILE).write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match=r"latest index .*0001.* cannot be served: .*damaged"):
        RB.verify_index_copy(source, source, {})


def test_the_newest_bentos_models_are_the_ones_kept_published(paths):
    """What embedding rows must stay in Redis: the models of the newest n completed bentos
    (a half-copied one, never marked, and older ones are not counted)."""
    import json

    from recassets.bento import store as S

    def bento(version: str, shas: dict, marked: bool = True) -> None:
        folder = S.bento_folder(paths, f"{S.BENTO_NAME}:{version}") / "src" / "bundle"
        folder.mkdir(parents=True)
        (folder.parents[1] / "bento.yaml").write_text("name: recassets_recommender\n")
        lineage = {kind: {"sha256": sha} for kind, sha in shas.items()}
        (folder / "manifest.json").write_text(json.dumps({"lineage": {**lineage, "feast": {}}}))
        if marked:
            S.mark_built(paths, f"{S.BENTO_NAME}:{version}")

    bento("20260101T000000-model-a", {"two_tower": "t1", "ranking": "r1"})
    bento("20260102T000000-model-b", {"two_tower": "t2", "ranking": "r1"})
    bento("20260103T000000-model-c", {"two_tower": "t3", "ranking": "r3"})
    bento("20260104T000000-model-d", {"two_tower": "t4", "ranking": "r4"}, marked=False)
    assert S.recent_model_sha256s(paths, 2) == {"t2", "r1", "t3", "r3"}
    assert S.recent_model_sha256s(paths, 0) == set()
