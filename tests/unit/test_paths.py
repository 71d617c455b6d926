"""The daily partition window: the days the data covers, open up to today for live data."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from recassets.paths import DEFAULT_START_DATE, LIVE_WITHIN_DAYS, partition_window

TODAY = dt.date(2026, 12, 3)


@pytest.fixture(autouse=True)
def _unpinned(monkeypatch):
    # tests/conftest.py pins the window for the rest of the suite; this file tests the rule.
    monkeypatch.delenv("RECASSETS_START_DATE", raising=False)
    monkeypatch.delenv("RECASSETS_END_DATE", raising=False)


def land_days(paths, *days: dt.date) -> None:
    for day in days:
        Path(paths.landing_dir("events", day)).mkdir(parents=True)


def test_a_history_covers_its_landed_days_only(paths):
    land_days(paths, dt.date(1997, 9, 20), dt.date(1997, 9, 21), dt.date(1998, 4, 22))
    window = partition_window(paths, today=TODAY)
    assert (window.first, window.last, window.is_open) == (
        dt.date(1997, 9, 20),
        dt.date(1998, 4, 22),
        False,
    )


def test_live_data_runs_up_to_today(paths):
    recent = TODAY - dt.timedelta(days=LIVE_WITHIN_DAYS)
    land_days(paths, recent - dt.timedelta(days=5), recent)
    window = partition_window(paths, today=TODAY)
    assert (window.first, window.last, window.days_ahead) == (
        recent - dt.timedelta(days=5),
        None,
        0,
    )
    # one day older than the live horizon: a history, closed at its last day
    older = partition_window(paths, today=TODAY + dt.timedelta(days=1))
    assert older.last == recent


def test_a_landed_day_ahead_of_today_stays_inside_an_open_window(paths):
    land_days(paths, TODAY, TODAY + dt.timedelta(days=2))
    assert partition_window(paths, today=TODAY).days_ahead == 2


def test_nothing_landed_is_open_from_the_default_start(paths):
    window = partition_window(paths, today=TODAY)
    assert (window.first, window.last) == (DEFAULT_START_DATE, None)


def test_environment_overrides_both_ends(paths, monkeypatch):
    land_days(paths, dt.date(1997, 9, 20), dt.date(1998, 4, 22))
    monkeypatch.setenv("RECASSETS_START_DATE", "1998-01-01")
    monkeypatch.setenv("RECASSETS_END_DATE", "1998-02-01")
    window = partition_window(paths, today=TODAY)
    assert (window.first, window.last) == (dt.date(1998, 1, 1), dt.date(1998, 2, 1))
    monkeypatch.setenv("RECASSETS_END_DATE", "open")
    assert partition_window(paths, today=TODAY).last is None
