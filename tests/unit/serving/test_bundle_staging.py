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
