"""retrain_sensor after the gate refused a candidate: the days count against the served
checkpoint, not the refused one (which became the latest). Before, the refused candidate's days
counted as trained: the sensor said "0 new training partition(s)" while what served fell
behind, and the next retraining grew out of the refused weights."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import DagsterInstance, RunRequest

from recassets.freshness import retrain_run_key
from recassets.training import policy as P
from tests.conftest import home_at

from .test_sensors_retrain import DAYS, sensor_tick, write_checkpoint, write_examples

KINDS = ("two_tower", "ranking")


def _served_then_refused(root: Path) -> None:
    """0001 of each kind promoted (days 1-2), 0002 refused (days 1-3): the latest."""
    for kind in KINDS:
        write_checkpoint(root, kind, DAYS[:2])
        write_checkpoint(root, kind, DAYS[:3])
    paths = home_at(root)
    served = {k: str(P.checkpoint_versions(paths, k)[0]) for k in KINDS}
    P.write_policy(paths, {"policy": "model", **served})


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def test_a_refused_candidates_days_stay_pending_with_the_next_day(tmp_path, instance):
    write_examples(tmp_path, [*DAYS, "2026-01-05"])  # day 4 trainable now, day 5 held out
    _served_then_refused(tmp_path)
    result = sensor_tick(tmp_path, instance)
    assert isinstance(result, RunRequest)
    assert result.run_key == retrain_run_key(["2026-01-03", "2026-01-04"])
    assert result.tags["recassets/new_partitions"] == "2026-01-03..2026-01-04 (2)"


def test_the_refused_set_alone_is_the_refused_runs_key(tmp_path, instance):
    """No new day yet: the pending set is the refused run's own (its key was seen, so Dagster
    does not run the same refusal again); the next day makes a new set."""
    write_examples(tmp_path, DAYS)
    _served_then_refused(tmp_path)
    result = sensor_tick(tmp_path, instance)
    assert isinstance(result, RunRequest)
    assert result.run_key == retrain_run_key(["2026-01-03"])  # the set it was launched for


@pytest.mark.parametrize(
    "pointer",
    [
        None,  # never promoted: popularity serves
        {
            "policy": "popularity",
            "variant": "trailing_7d",
            "replaced": {"two_tower": "x", "reasons": ["..."]},
        },  # fmt: skip
    ],
)
def test_while_no_learned_model_serves_the_latest_checkpoint_counts(tmp_path, instance, pointer):
    write_examples(tmp_path, [*DAYS, "2026-01-05"])
    _served_then_refused(tmp_path)
    paths = home_at(tmp_path)
    if pointer is None:
        P.pointer_path(paths).unlink()
    else:
        P.write_policy(paths, pointer)
    result = sensor_tick(tmp_path, instance)
    assert isinstance(result, RunRequest)
    assert result.run_key == retrain_run_key(["2026-01-04"])
