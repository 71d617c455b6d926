"""Partition versions (``recassets.lineage.versions``) of a home copied, moved or restored to
another folder: its manifests name the original home's files by absolute path, and the
versions must not move with the folder (they did: every model and feature day showed stale in
a copied home, the same files re-ingested). Manifests are written by ``write_lineage`` itself,
as an ingestion writes them; no Spark."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from recassets.ingest.files import LandedFile
from recassets.ingest.lineage import write_lineage
from recassets.ingest.results import INGESTED_TABLES, IngestResult, PartitionResult
from recassets.lineage.versions import VersionReader, ingest_version, landing_key, relative
from recassets.paths import Paths
from tests.conftest import home_at

TABLES = ("raw_events", "users", "items")  # those versions read (serving_log's: none)
DAYS = [(dt.date(2026, 1, 1) + dt.timedelta(days=i)).isoformat() for i in range(32)]


def _ingest(paths: Paths, dataset: str, day: str, sha: str, *, empty: bool = False) -> None:
    """One day's manifest as an ingestion writes it: each file by its absolute path in the
    landing ``paths`` names (``recassets.ingest.files``)."""
    folder = paths.landing_dir(dataset, day)
    files = [] if empty else [LandedFile(f"{folder}/part-00000.jsonl", day, 10, sha, "jsonl")]
    part = PartitionResult(day, rows=len(files), quarantined=0, files=files,
                           empty_folder=folder if empty else None)  # fmt: skip
    table = INGESTED_TABLES[dataset]
    write_lineage(paths, IngestResult(dataset, paths.table(table), 1, 0, {day: part}))


def _build(paths: Paths) -> None:
    for i, day in enumerate(DAYS):
        _ingest(paths, "events", day, f"{i:064x}", empty=day == "2026-01-07")
        _ingest(paths, "users", day, f"{i + 100:064x}")
        _ingest(paths, "items", day, f"{i + 200:064x}")


def _every_version(paths: Paths) -> dict:
    """Every version ``VersionReader`` computes, for every day."""
    r = VersionReader(paths)
    return {
        "ingest": {(t, d): r.ingest(t, d) for t in TABLES for d in DAYS},
        "features": {d: r.features(d) for d in DAYS},
        "examples": {d: r.examples(d) for d in DAYS},
        "training_data": r.training_data(DAYS[5:]),
    }


def _copy(paths: Paths, root: Path) -> Paths:
    """The home's manifests as a copy, a move or a restore leaves them: unchanged bytes, naming
    the original home's files."""
    moved = home_at(root)
    shutil.copytree(paths.lineage, moved.lineage)
    return moved


def test_every_version_is_the_same_in_a_copied_home(tmp_path: Path):
    original = home_at(tmp_path / "base-home")
    _build(original)
    copied = _copy(original, tmp_path / "restore" / "copy2")
    before = _every_version(original)
    assert None not in before["ingest"].values() and before["training_data"] is not None
    assert _every_version(copied) == before


def test_a_moved_landing_keeps_its_versions(tmp_path: Path):
    """``RECASSETS_LANDING`` outside the home, then moved, and one day ingested again from the
    same files: ``relative`` kept those paths absolute, so the day's version moved with them."""
    first = Paths.at(tmp_path / "h1", landing=str(tmp_path / "feeds" / "v1"))
    _build(first)
    later = Paths.at(tmp_path / "h2", landing=str(tmp_path / "mnt" / "landing"))
    shutil.copytree(first.lineage, later.lineage)
    _ingest(later, "events", "2026-01-13", f"{DAYS.index('2026-01-13'):064x}")
    assert _every_version(later) == _every_version(first)


def test_the_same_files_ingested_again_in_the_copy_change_no_version(tmp_path: Path):
    """The reviewer's case: in a copied home, a day ingested again from the same files (its
    manifest now names the copy's paths, the others the original's) and the features of a day
    rebuilt. No version may move: it turned the five models and ``model_evaluation`` stale."""
    original = home_at(tmp_path / "a")
    _build(original)
    copied = _copy(original, tmp_path / "b")
    day = "2026-01-13"
    sha = f"{DAYS.index(day):064x}"
    _ingest(copied, "events", day, sha)
    assert _every_version(copied) == _every_version(original)
    # what the ingest asset records for that day (``assets.ingest.data_versions``) is the
    # version the copy reads back from its manifest
    file = f"{copied.landing_dir('events', day)}/part-00000.jsonl"
    recorded = ingest_version(copied, "raw_events", [(file, sha)])
    assert recorded == VersionReader(copied).ingest("raw_events", day)


def test_a_changed_file_in_a_copied_home_still_changes_the_versions(tmp_path: Path):
    original = home_at(tmp_path / "a")
    _build(original)
    copied = _copy(original, tmp_path / "b")
    _ingest(copied, "events", "2026-01-13", "f" * 64)
    before, after = _every_version(original), _every_version(copied)
    assert (
        after["ingest"]["raw_events", "2026-01-13"] != before["ingest"]["raw_events", "2026-01-13"]
    )
    changed = {d for d in DAYS if after["features"][d] != before["features"][d]}
    assert changed == {d for d in DAYS if "2026-01-13" <= d <= "2026-02-09"}  # d-27..d holds it
    assert after["examples"]["2026-01-14"] != before["examples"]["2026-01-14"]
    assert after["examples"]["2026-01-12"] == before["examples"]["2026-01-12"]
    assert after["training_data"] != before["training_data"]
    # another name for the same bytes is another file
    _ingest(copied, "users", "2026-01-02", f"{101:064x}")
    renamed = Path(copied.lineage, "users", "dt=2026-01-02.json")
    renamed.write_text(renamed.read_text().replace("part-00000", "part-00001"))
    assert (
        VersionReader(copied).ingest("users", "2026-01-02")
        != before["ingest"]["users", "2026-01-02"]
    )


def test_a_home_built_before_keeps_its_versions(tmp_path: Path):
    """In the default layout a landing file's key is what ``relative`` gave: upgrading does not
    turn an existing home's features, examples and models stale."""
    paths = home_at(tmp_path / "h")
    file = f"{paths.landing_dir('events', '2026-01-05')}/part-00000.jsonl"
    assert (
        landing_key(paths, file)
        == relative(paths, file)
        == ("landing/events/dt=2026-01-05/part-00000.jsonl")
    )
    other = f"{tmp_path}/elsewhere/events/dt=2026-01-05/part-00000.jsonl"
    assert landing_key(paths, other) == landing_key(paths, file)
    assert landing_key(paths, f"{paths.landing}/odd") == relative(paths, f"{paths.landing}/odd")
