"""``recassets materialize --first X``: the runs planned ahead of X..last, so that the features
and examples of X find their inputs (``recassets.cli_plan``; the guard is
``recassets.ingested``)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from recassets import cli
from recassets.cli_plan import inputs_before
from recassets.ingest.lineage import lineage_path

DAILY = list(cli.DEMO_SELECTION[:8])  # ingestion, the feature tables, feature_store, examples
START = dt.date(2026, 1, 1)


def _day(i: int) -> str:
    return (START + dt.timedelta(days=i)).isoformat()


def _land(paths, dataset: str, days: range) -> None:
    for i in days:
        folder = Path(paths.landing_dir(dataset, _day(i)))
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "part.jsonl").write_text("{}\n")


def _ingested(paths, table: str, days: range) -> None:
    for i in days:
        target = Path(lineage_path(paths, table, _day(i)))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps({"rows": 1}))


@pytest.fixture
def history(paths, monkeypatch):
    """60 days of events; users on every 10th day, items on the first only."""
    monkeypatch.delenv("RECASSETS_START_DATE", raising=False)
    _land(paths, "events", range(60))
    _land(paths, "users", range(0, 60, 10))
    _land(paths, "items", range(1))
    return paths


def test_starting_later_ingests_the_window_and_every_dimension_day_then_the_day_before(history):
    plan = inputs_before(history, DAILY, _day(40))
    assert plan == [
        {"select": ["lake/users"], "first": _day(0), "last": _day(30)},
        {"select": ["lake/items"], "first": _day(0), "last": _day(0)},
        # the features of day 39 (the examples of 40 read them) read events from day 12
        {"select": ["lake/raw_events"], "first": _day(12), "last": _day(39)},
        {"select": ["lake/user_features", "lake/item_features", "lake/cohort_features"],
         "first": _day(39), "last": _day(39)},
    ]  # fmt: skip
    without_examples = [k for k in DAILY if k != "lake/training_examples"]
    assert inputs_before(history, without_examples, _day(40))[2] == {
        "select": ["lake/raw_events"], "first": _day(13), "last": _day(39)}  # fmt: skip


def test_what_is_ingested_and_built_already_is_not_planned_again(history):
    _ingested(history, "users", range(0, 60, 10))
    _ingested(history, "items", range(1))
    _ingested(history, "raw_events", range(20, 40))
    plan = inputs_before(history, DAILY, _day(40))
    assert plan[0] == {"select": ["lake/raw_events"], "first": _day(12), "last": _day(19)}
    _ingested(history, "raw_events", range(12, 20))
    built = Path(history.table("item_features")) / f"dt={_day(39)}"
    built.mkdir(parents=True)
    (built / "part-0.parquet").write_bytes(b"")
    assert inputs_before(history, DAILY, _day(40)) == []


def test_from_the_first_day_or_ingestion_alone_nothing_is_planned_before(history):
    assert inputs_before(history, DAILY, _day(0)) == []
    assert inputs_before(history, ["lake/raw_events", "lake/users", "lake/items"], _day(40)) == []
    # the features alone: nothing ingested for them (the guard names what to ingest), but the
    # examples' day before is built
    features = ["lake/user_features", "lake/item_features", "lake/cohort_features",
                "lake/training_examples"]  # fmt: skip
    assert inputs_before(history, features, _day(40)) == [
        {"select": features[:3], "first": _day(39), "last": _day(39)}]  # fmt: skip


def test_the_cli_runs_them_ahead_of_the_range_asked_for(history, monkeypatch):
    plans = []
    monkeypatch.setattr(cli, "_launch", lambda _paths, plan, settings=None: plans.append(plan))
    cli.materialize(history, DAILY, _day(40), _day(59))
    (plan,) = plans
    assert [e["first"] for e in plan] == [_day(0), _day(0), _day(12), _day(39), _day(40)]
    assert plan[-1] == {"select": DAILY, "first": _day(40), "last": _day(59)}
