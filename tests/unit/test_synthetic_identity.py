"""One synthetic world per landing zone (``recassets.synthetic.identity``): another seed or
start is refused also in days the first world never landed, naming both; a longer horizon of
the same world passes; the campaigns file counts as a landed file."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from dataclasses import replace
from pathlib import Path

import pytest

from recassets.synthetic import generate
from recassets.synthetic.identity import RECORD, world_identity
from tests.unit.test_synthetic import TINY, _landed, _paths

LATER = TINY.start + dt.timedelta(days=TINY.days)  # the first day TINY did not land


@pytest.fixture
def landed(tmp_path: Path):
    paths = _paths(tmp_path)
    generate(paths, TINY)
    return paths, _landed(tmp_path)


@pytest.mark.parametrize(
    ("other", "named"),
    [
        (
            replace(TINY, seed=8, start=LATER),
            "this generation is another (seed 8, start 2026-01-03)",
        ),
        (replace(TINY, start=LATER), "this generation is another (seed 7, start 2026-01-03)"),
        (replace(TINY, initial_users=61), "(seed 7, start 2026-01-01, initial_users 61)"),
    ],
)
def test_another_world_is_refused_in_days_the_first_never_landed(landed, tmp_path, other, named):
    paths, before = landed
    with pytest.raises(FileExistsError) as caught:
        generate(paths, other)
    message = str(caught.value)
    assert "holds the synthetic world of seed 7, start 2026-01-01" in message
    assert named in message
    assert "another RECASSETS_HOME" in message and "make clean-home" in message
    assert "generate it again with --seed 7 --start 2026-01-01 and a larger --days" in message
    assert _landed(tmp_path) == before  # campaigns.json included: nothing written


def test_a_longer_horizon_of_the_same_world_passes_and_is_recorded_without_it(landed, tmp_path):
    paths, before = landed
    generate(paths, replace(TINY, days=TINY.days + 1))
    after = _landed(tmp_path)
    assert {k: after[k] for k in before} == before  # the first days as they were
    assert any(f"dt={LATER}" in k for k in after)
    record = json.loads((Path(paths.landing) / RECORD).read_text())
    assert record == world_identity(TINY) and "days" not in record
    assert record["seed"] == 7 and record["start"] == "2026-01-01"


def test_a_changed_campaigns_file_counts_as_a_conflict(landed, tmp_path):
    """Same world and days, fewer campaigns: ``campaigns.json`` was silently replaced."""
    paths, before = landed
    with pytest.raises(FileExistsError, match=r"ads/campaigns\.json"):
        generate(paths, replace(TINY, campaigns=3))
    assert _landed(tmp_path) == before


def test_a_record_whose_files_are_gone_no_longer_binds(landed, tmp_path):
    paths, _ = landed
    for folder in ("events", "users", "items", "ads"):
        shutil.rmtree(Path(paths.landing) / folder)
    generate(paths, replace(TINY, seed=8))
    assert json.loads((Path(paths.landing) / RECORD).read_text())["seed"] == 8


def test_an_unrecorded_zone_passes_and_its_record_then_binds(landed, tmp_path):
    """A zone landed before the record existed, or holding a producer's own files in other
    days (``tests/unit/test_ingest.py``'s home): nothing tells those apart from another world,
    so the generation passes as it did, records its world, and the next other world is
    refused."""
    paths, _ = landed
    (Path(paths.landing) / RECORD).unlink()
    generate(paths, replace(TINY, days=TINY.days + 1))  # the same world, longer: passes
    assert (Path(paths.landing) / RECORD).is_file()
    with pytest.raises(FileExistsError, match="holds the synthetic world of"):
        generate(paths, replace(TINY, seed=8, start=LATER))
