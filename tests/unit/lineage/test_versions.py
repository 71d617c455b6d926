"""Partition content versions (``recassets.lineage.versions``) and the column lineage map
(``recassets.lineage.columns``), on hand-written manifests: no Spark."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from recassets.features.schema import TABLES
from recassets.ingest import INGESTED_TABLES
from recassets.lineage.columns import COLUMN_LINEAGE
from recassets.lineage.versions import VersionReader, ingest_version, manifest_version
from recassets.training.schema import TRAINING_EXAMPLES_DDL
from tests.conftest import home_at


def _manifest(paths, table: str, day: str, files: dict[str, str]) -> None:
    target = Path(paths.lineage, table, f"dt={day}.json")
    target.parent.mkdir(parents=True, exist_ok=True)
    inputs = [
        {"path": f"{paths.landing}/{table}/dt={day}/{n}", "sha256": s} for n, s in files.items()
    ]
    target.write_text(json.dumps({"table": table, "partition": day, "inputs": inputs}))


@pytest.fixture
def home(tmp_path):
    paths = home_at(tmp_path / "home")
    for i in range(40):
        day = (dt.date(2026, 1, 1) + dt.timedelta(days=i)).isoformat()
        _manifest(paths, "raw_events", day, {"part-0.jsonl": f"{i:064x}"})
        _manifest(paths, "users", day, {"part-0.jsonl": f"{i + 100:064x}"})
        _manifest(paths, "items", day, {"part-0.jsonl": f"{i + 200:064x}"})
    return paths


def test_an_ingest_version_is_its_files_wherever_the_home_lies(tmp_path):
    a, b = home_at(tmp_path / "a"), home_at(tmp_path / "b")
    files = [(f"{a.landing}/events/dt=2026-01-01/x.jsonl", "1" * 64), (f"{a.landing}/y", "2" * 64)]
    moved = [(p.replace(a.home, b.home), s) for p, s in reversed(files)]
    assert ingest_version(a, "raw_events", files) == ingest_version(b, "raw_events", moved)
    changed = [files[0], (files[1][0], "3" * 64)]
    assert ingest_version(a, "raw_events", files) != ingest_version(a, "raw_events", changed)
    assert ingest_version(a, "raw_events", []) != ingest_version(a, "users", [])


def test_a_manifest_gives_the_version_the_ingest_recorded(home):
    day = "2026-01-05"
    files = [(f"{home.landing}/raw_events/dt={day}/part-0.jsonl", f"{4:064x}")]
    assert manifest_version(home, "raw_events", day) == ingest_version(home, "raw_events", files)
    assert manifest_version(home, "raw_events", "2027-01-01") is None


def test_a_feature_day_changes_with_its_window_and_only_with_it(home):
    before = {d: VersionReader(home).features(d) for d in ("2026-01-30", "2026-02-08")}
    assert len(set(before.values())) == 2
    # raw_events of 2026-01-05 is in the window of 2026-01-30 (d-27..d), not of 2026-02-08
    _manifest(home, "raw_events", "2026-01-05", {"part-0.jsonl": "f" * 64})
    after = {d: VersionReader(home).features(d) for d in before}
    assert after["2026-01-30"] != before["2026-01-30"]
    assert after["2026-02-08"] == before["2026-02-08"]
    # a user first seen after the day changes nothing; one before, everything from then on
    _manifest(home, "users", "2026-02-05", {"part-0.jsonl": "e" * 64})
    assert VersionReader(home).features("2026-01-30") == after["2026-01-30"]
    assert VersionReader(home).features("2026-02-08") != after["2026-02-08"]


def test_an_example_day_follows_its_events_and_the_previous_days_features(home):
    before = VersionReader(home).examples("2026-01-20")
    _manifest(home, "raw_events", "2026-01-19", {"part-0.jsonl": "d" * 64})  # features of d-1
    assert VersionReader(home).examples("2026-01-20") != before
    again = VersionReader(home).examples("2026-01-20")
    _manifest(home, "raw_events", "2026-01-21", {"part-0.jsonl": "c" * 64})  # a later day
    assert VersionReader(home).examples("2026-01-20") == again


def _columns(ddl: str) -> set[str]:
    depth, names, current = 0, set(), ""
    for ch in ddl + ",":
        depth += ch == "<"
        depth -= ch == ">"
        if ch == "," and depth == 0:
            names.add(current.strip().split(" ")[0])
            current = ""
        else:
            current += ch
    return names


def test_the_column_lineage_names_real_columns_on_both_sides():
    from recassets.events import CONTRACTS

    schemas = {name: _columns(ddl) for name, ddl in TABLES.items()}
    schemas["training_examples"] = _columns(TRAINING_EXAMPLES_DDL)
    for dataset, table in INGESTED_TABLES.items():
        if dataset in CONTRACTS:
            schemas[table] = {f.name for f in CONTRACTS[dataset].fields}
    for table, lineage in COLUMN_LINEAGE.items():
        assert set(lineage) <= schemas[table], table
        for column, deps in lineage.items():
            assert deps, (table, column)
            for upstream, name in deps:
                assert name in schemas[upstream], (table, column, upstream, name)
    assert {"clicks_7d", "ctr_28d"} <= set(COLUMN_LINEAGE["item_features"])
    assert ("raw_events", "event_type") in COLUMN_LINEAGE["training_examples"]["label"]
