"""Two bento builds at once never share a staging folder, so neither can bundle one run's
models with the other's index; the asset's staging folder is gone after its build."""

from __future__ import annotations

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
