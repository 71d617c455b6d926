"""Two bento builds at once never share a staging folder, so neither can bundle one run's
models with the other's index; the asset's staging folder is gone after its build."""

from __future__ import annotations

from pathlib import Path

from recassets.bento import bundle as B


def test_each_bundle_is_staged_in_a_folder_of_its_own(paths):
    first, second = B.write_bundle(paths), B.write_bundle(paths)
    assert first != second and first.parent == second.parent
    assert (first / "manifest.json").exists() and (second / "manifest.json").exists()
    # writing the second left the first whole (a shared folder was emptied by the next build)
    assert sorted(p.name for p in first.iterdir()) == sorted(p.name for p in second.iterdir())


def test_the_staged_bundle_is_removed_after_the_build_even_when_it_fails(paths):
    with B.staged_bundle(paths) as folder:
        assert (folder / "manifest.json").exists()
    assert not folder.exists()
    try:
        with B.staged_bundle(paths) as failing:
            raise RuntimeError("bentoml build failed")
    except RuntimeError:
        pass
    assert not failing.exists()
    assert list(failing.parent.iterdir()) == []


def test_a_bundle_whose_write_fails_leaves_no_staging_folder(paths, monkeypatch):
    """A write that failed half way (a full disk: "File too large" copying a checkpoint; a
    damaged checkpoint) left its staging folder behind, and each retry another (probe,
    2026-12-06)."""
    import pytest

    real = B._fill_bundle

    def half(paths_, policy, folder):
        (folder / "models").mkdir()
        (folder / "models" / "two_tower.pt").write_bytes(b"half a checkpoint")
        raise OSError(27, "File too large")

    monkeypatch.setattr(B, "_fill_bundle", half)
    bundles = Path(paths.artifacts) / "serving" / "bundles"
    with pytest.raises(OSError, match="File too large"):
        B.write_bundle(paths)
    assert list(bundles.iterdir()) == []
    monkeypatch.setattr(B, "_fill_bundle", real)
    assert (B.write_bundle(paths) / "manifest.json").exists()  # and the next write goes on


def test_a_killed_builds_staging_folder_is_swept_by_the_next_build(paths):
    import os
    import time

    bundles = Path(paths.artifacts) / "serving" / "bundles"
    old, recent = bundles / ".staging-killed", bundles / ".staging-building"
    for folder in (old, recent):
        (folder / "models").mkdir(parents=True)
    an_hour_ago = time.time() - B.STALE_STAGING_S - 5
    os.utime(old, (an_hour_ago, an_hour_ago))
    with B.staged_bundle(paths) as folder:
        assert not old.exists() and recent.exists()  # a build that may still be running: kept
    assert not folder.exists()


def test_a_damaged_served_checkpoint_is_named_as_served_not_as_its_staging_copy(tmp_path):
    """A bundle build over a damaged checkpoint named the staging copy, a path gone once the
    failed build removed its folder (probe, 2026-12-06)."""
    import pytest
    import torch

    from recassets.training.checkpoint import DamagedArtifactError
    from tests.unit.training.test_checkpoint import _checkpoint, flipped

    served = Path(_checkpoint().save(tmp_path / "ranking" / "0001.pt"))
    staging = tmp_path / ".staging-x" / "ranking.pt"
    staging.parent.mkdir()
    assert B._copied_checkpoint(str(served), staging).kind == "ranking"  # a sound one loads
    data = served.read_bytes()
    weights = torch.arange(6, dtype=torch.float32).numpy().tobytes()  # _checkpoint's own
    served.write_bytes(flipped(data, data.index(weights)))  # the zip intact, a weight changed
    with pytest.raises(DamagedArtifactError) as err:
        B._copied_checkpoint(str(served), staging)
    said = str(err.value)
    assert said.startswith(f"checkpoint {served} (served by current.json) is damaged: ")
    assert "CRC" in said and str(staging) not in said
