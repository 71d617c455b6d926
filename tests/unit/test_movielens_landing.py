"""How a MovieLens import reaches the landing zone (``recassets.movielens_landing``): staged
whole, then moved in, so that a failure half-way lands nothing and the landing sensor never
sees half an import; the leftovers of a killed import are swept by the next one."""

from __future__ import annotations

import errno
import os
import time
from pathlib import Path

import pytest

from recassets import atomic
from recassets.movielens import import_movielens
from recassets.paths import Paths
from tests.unit.test_movielens import BASIC_DATA, BASIC_ITEMS, BASIC_USERS, snapshot, write_ml

DATASETS = ("events", "users", "items")
# a second history: other users' ratings a year on, and a bad age (u.user.nulled.jsonl)
LATER_DATA = ["1\t10\t4\t895536000", "3\t20\t2\t895622400", "3\t30\t5\t895708800"]


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths.from_env(str(tmp_path / "home"))


def seen(paths: Paths) -> tuple:
    """What the landing sensor and a reader of the records see: each dataset's day folders
    and their files, and the records."""
    root = Path(paths.landing)
    days = tuple(
        (d, day.isoformat(), tuple(sorted(os.listdir(paths.landing_dir(d, day)))))
        for d in DATASETS
        for day in paths.landed_days(d)
    )
    records = root / "_rejected" / "movielens"
    return days, tuple(sorted(p.name for p in records.rglob("*"))) if records.is_dir() else ()


def test_the_sensor_sees_the_earlier_import_until_the_new_one_is_whole(
    tmp_path: Path, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    """While files are written the zone shows the earlier import, records included; after,
    the new one alone. Before, each day was written straight into the zone."""
    src = write_ml(tmp_path / "a", BASIC_DATA, BASIC_ITEMS, BASIC_USERS)
    import_movielens(src, paths)
    before = seen(paths)
    states: list[tuple] = []
    real = atomic.write_bytes

    def watched(
        path: Path, data: bytes
    ) -> Path:  # every file written: what the zone shows at that moment
        states.append(seen(paths))
        return real(path, data)

    monkeypatch.setattr(atomic, "write_bytes", watched)
    later = write_ml(tmp_path / "b", LATER_DATA, BASIC_ITEMS, [*BASIC_USERS, "4|999|F|x|0"])
    summary = import_movielens(later, paths)
    assert set(states) == {before}
    assert len(states) == 3 + 2 + 3  # a file a day of events, users, items: each one seen
    after = seen(paths)
    assert [(d, day) for d, day, _ in after[0] if d == "events"] == [
        ("events", "1998-05-19"), ("events", "1998-05-20"), ("events", "1998-05-21")
    ]  # fmt: skip
    assert after[1] == ("u.user.nulled.jsonl",) and summary.events == 3
    assert not list(Path(paths.landing).glob(".movielens-staging-*"))


def test_a_full_disk_half_way_lands_nothing_and_says_so(
    tmp_path: Path, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = write_ml(tmp_path / "a", BASIC_DATA, BASIC_ITEMS, BASIC_USERS)
    import_movielens(src, paths)
    before = snapshot(paths)
    real, calls = atomic.write_bytes, list[Path]()

    def full_disk(path: Path, data: bytes) -> Path:
        calls.append(path)
        if len(calls) == 3:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(atomic, "write_bytes", full_disk)
    later = write_ml(tmp_path / "b", LATER_DATA, BASIC_ITEMS, BASIC_USERS)
    with pytest.raises(OSError, match="No space left on device; nothing was landed") as err:
        import_movielens(later, paths)
    assert err.value.errno == errno.ENOSPC
    assert snapshot(paths) == before  # the earlier import whole, its records with it
    assert not list(Path(paths.landing).glob(".movielens-staging-*"))
    # a first import failing so leaves no landing zone at all
    fresh = Paths.from_env(str(tmp_path / "fresh"))
    calls.clear()
    with pytest.raises(OSError, match="nothing was landed"):
        import_movielens(src, fresh)
    assert not Path(fresh.landing).exists()


def test_a_move_failing_part_way_says_the_zone_is_partly_replaced_and_a_rerun_repairs_it(
    tmp_path: Path, paths: Paths, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = write_ml(tmp_path / "a", BASIC_DATA, BASIC_ITEMS, BASIC_USERS)
    later = write_ml(tmp_path / "b", LATER_DATA, BASIC_ITEMS, BASIC_USERS)
    clean = Paths.from_env(str(tmp_path / "clean"))
    import_movielens(later, clean)
    import_movielens(src, paths)
    from recassets import movielens_landing

    real, calls = os.rename, list[Path]()

    def failing(a: Path, b: Path) -> None:
        calls.append(a)
        if len(calls) == 2:
            raise OSError(errno.EIO, "Input/output error")
        return real(a, b)

    monkeypatch.setattr(movielens_landing.os, "rename", failing)
    with pytest.raises(OSError, match="partly replaced; importing again repairs it"):
        import_movielens(later, paths)
    monkeypatch.setattr(movielens_landing.os, "rename", real)
    assert not list(Path(paths.landing).glob(".movielens-staging-*"))
    import_movielens(later, paths)
    assert snapshot(paths) == snapshot(clean)


def test_a_killed_imports_staging_and_unpacked_folders_are_swept_by_the_next(
    tmp_path: Path, paths: Paths
) -> None:
    """A staging folder and an unpacked archive's copy are swept whatever their age: imports
    run one at a time under the zone's lock, so neither can be a live import's (a recent copy
    was kept for an hour, and the rerun unpacked a second: about 1 GB each for ml-25m)."""
    landing = Path(paths.landing)
    staged = landing / ".movielens-staging-x1" / "events" / "dt=1997-05-18" / "movielens.jsonl"
    staged.parent.mkdir(parents=True)
    staged.write_text("{}\n")
    scratch = landing / "_rejected" / ".unpacked"
    old, recent = scratch / "movielens-zip-old", scratch / "movielens-zip-new"
    for folder in (old, recent):
        folder.mkdir(parents=True)
        (folder / "u.data").write_text("1\t10\t3\t863999999\n")
    two_hours_ago = time.time() - 7_200
    os.utime(old, (two_hours_ago, two_hours_ago))
    src = write_ml(tmp_path / "ml", BASIC_DATA, BASIC_ITEMS, BASIC_USERS)
    said: list[str] = []
    summary = import_movielens(src, paths, progress=said.append)
    assert summary.events == 4
    assert not list(landing.glob(".movielens-staging-*"))
    assert not old.exists() and not recent.exists()
    assert "removed 1 staging folder(s) a killed import left" in said
    assert "removed 2 unpacked archive folder(s) a killed import left" in said
