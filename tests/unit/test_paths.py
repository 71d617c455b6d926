"""Paths and the daily partition window: explicit locations, the environment read at the
edge only, and the days the data covers (open up to today for live data)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from recassets.paths import (
    DEFAULT_START_DATE,
    LIVE_WITHIN_DAYS,
    LOCATION_ENV,
    MAX_DAYS_AHEAD,
    PartitionWindow,
    Paths,
    partition_days,
    partition_window,
)

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


def test_a_live_feed_paused_when_the_definitions_load_stays_open(paths):
    """A live feed silent for 3 days when the code location (re)started was taken for a
    history closed at its last day, and every day landed after the pause was skipped by the
    landing sensor until someone reloaded the code location. Up to 30 days of silence is a
    pause; a history imported from an archive ends long before that."""
    last = TODAY - dt.timedelta(days=3)
    land_days(paths, *(last - dt.timedelta(days=i) for i in range(27)))
    assert partition_window(paths, today=TODAY).is_open
    month = last + dt.timedelta(days=LIVE_WITHIN_DAYS)
    assert partition_window(paths, today=month).is_open
    later = partition_window(paths, today=month + dt.timedelta(days=1))
    assert (later.is_open, later.last) == (False, last)


def test_the_deployment_says_its_feed_is_live():
    """The chart's code location (and its runs) never close the window, however long the feed
    pauses: RECASSETS_END_DATE=open in deploy/helm/values.yaml."""
    import yaml

    values = yaml.safe_load((Path(__file__).parents[2] / "deploy/helm/values.yaml").read_text())
    env = values["dagster-user-deployments"]["deployments"][0]["env"]
    assert {"name": "RECASSETS_END_DATE", "value": "open"} in env


def test_a_landed_day_ahead_of_today_stays_inside_an_open_window(paths):
    land_days(paths, TODAY, TODAY + dt.timedelta(days=2))
    assert partition_window(paths, today=TODAY).days_ahead == 2


def test_a_stray_day_far_ahead_or_before_1970_opens_no_partition(paths):
    """A typo or a sentinel (dt=2099-01-01, dt=9999-12-31, dt=1969-12-31) beside a 1997
    history: the history stays closed at its own last day (was: open up to 2099, tens of
    thousands of partitions); a day within a week ahead still counts."""
    history = (dt.date(1997, 9, 20), dt.date(1998, 4, 22))
    stray = (dt.date(1969, 12, 31), dt.date(2099, 1, 1), dt.date(9999, 12, 31))
    land_days(paths, *history, *stray)
    window = partition_window(paths, today=TODAY)
    assert (window.first, window.last) == history
    near = TODAY + dt.timedelta(days=MAX_DAYS_AHEAD)
    land_days(paths, near)
    assert partition_days(paths.landed_days("events"), TODAY) == (
        [*history, near],
        list(stray),
    )
    assert partition_window(paths, today=TODAY).days_ahead == MAX_DAYS_AHEAD


def test_nothing_landed_is_open_from_the_default_start(paths):
    window = partition_window(paths, today=TODAY)
    assert (window.first, window.last) == (DEFAULT_START_DATE, None)


def test_explicit_ends_override_the_landed_days(paths):
    land_days(paths, dt.date(1997, 9, 20), dt.date(1998, 4, 22))
    window = partition_window(paths, today=TODAY, start="1998-01-01", end="1998-02-01")
    assert (window.first, window.last) == (dt.date(1998, 1, 1), dt.date(1998, 2, 1))
    assert partition_window(paths, today=TODAY, end="open").last is None
    # the function reads no variable: the environment changes nothing
    assert partition_window(paths, today=TODAY).last == dt.date(1998, 4, 22)


def test_the_edge_reads_both_ends_from_the_environment(paths, monkeypatch):
    land_days(paths, dt.date(1997, 9, 20), dt.date(1998, 4, 22))
    monkeypatch.setenv("RECASSETS_START_DATE", "1998-01-01")
    monkeypatch.setenv("RECASSETS_END_DATE", "1998-02-01")
    window = PartitionWindow.from_env(paths, today=TODAY)
    assert (window.first, window.last) == (dt.date(1998, 1, 1), dt.date(1998, 2, 1))
    monkeypatch.setenv("RECASSETS_END_DATE", "open")
    assert PartitionWindow.from_env(paths, today=TODAY).last is None


@pytest.mark.parametrize(
    ("start", "end", "says"),
    [
        ("abc", None, "RECASSETS_START_DATE='abc': expected a date YYYY-MM-DD"),
        (None, "2026-13-01", "RECASSETS_END_DATE='2026-13-01': expected a date YYYY-MM-DD"),
        (None, "9999-12-31", "RECASSETS_END_DATE=9999-12-31: expected a date from 1970-01-01"),
        (None, "Tomorrow", "RECASSETS_END_DATE='Tomorrow': expected"),  # as written
        ("1998-02-01", "1998-01-01", "RECASSETS_END_DATE=1998-01-01 is before the first day"),
    ],
)
def test_a_bad_end_names_its_variable(paths, monkeypatch, start, end, says):
    """Before: an unnamed ValueError or OverflowError when the definitions loaded, and an end
    before the start silently became a one-day window."""
    for name, value in (("RECASSETS_START_DATE", start), ("RECASSETS_END_DATE", end)):
        if value is not None:
            monkeypatch.setenv(name, value)
    with pytest.raises(ValueError, match=says):
        PartitionWindow.from_env(paths, today=TODAY)


LOCATIONS = ("RECASSETS_HOME", "RECASSETS_LANDING", "RECASSETS_LAKE", "RECASSETS_ARTIFACTS",
             "RECASSETS_LINEAGE", "RECASSETS_BENTOML_HOME", "DAGSTER_HOME")  # fmt: skip


def test_paths_at_is_the_layout_under_the_home_and_reads_no_variable(tmp_path, monkeypatch):
    for name in LOCATIONS:
        monkeypatch.setenv(name, "/elsewhere")
    p = Paths.at(tmp_path, lake="s3a://bucket/lake")
    assert p == Paths(
        home=str(tmp_path),
        landing=str(tmp_path / "landing"),
        lake="s3a://bucket/lake",
        artifacts=str(tmp_path / "artifacts"),
        lineage=str(tmp_path / "lineage"),
        dagster_home=str(tmp_path / "dagster"),
        bentoml=str(tmp_path / "bentoml"),
    )


def test_from_env_is_the_edge_that_reads_each_location(tmp_path, monkeypatch):
    for name in LOCATIONS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RECASSETS_HOME", str(tmp_path))
    assert Paths.from_env() == Paths.at(tmp_path)
    monkeypatch.setenv("RECASSETS_LAKE", "s3a://bucket/lake")
    monkeypatch.setenv("RECASSETS_BENTOML_HOME", "/srv/bentoml")
    monkeypatch.setenv("DAGSTER_HOME", "/srv/dagster")
    p = Paths.from_env()
    assert (p.lake, p.bentoml, p.dagster_home) == (
        "s3a://bucket/lake",
        "/srv/bentoml",
        "/srv/dagster",
    )
    assert p.landing == str(tmp_path / "landing")
    assert Paths.from_env(str(tmp_path / "other")).home == str(tmp_path / "other")  # wins


def test_a_location_is_read_as_a_shell_would_give_it_unquoted(tmp_path, monkeypatch):
    """``RECASSETS_HOME=" "`` and a quoted ``"~/h"`` made folders named `` `` and ``~`` in the
    working directory: blank is unset, ``~`` is the user's home, white space is dropped."""
    for name in LOCATIONS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("RECASSETS_HOME", "  ")
    assert Paths.from_env() == Paths.at(".recassets")
    monkeypatch.setenv("RECASSETS_HOME", "~/h ")
    monkeypatch.setenv("RECASSETS_LAKE", " s3a://bucket/~lake")
    p = Paths.from_env()
    assert (p.home, p.landing, p.lake) == (
        str(tmp_path / "h"),
        str(tmp_path / "h" / "landing"),
        "s3a://bucket/~lake",
    )


def test_the_bento_store_defaults_under_the_home():
    p = Paths(home="/h", landing="/h/l", lake="/h/k", artifacts="/h/a", lineage="/h/g",
              dagster_home="/h/d")  # fmt: skip
    assert p.bentoml == "/h/bentoml"


def test_only_the_lake_may_be_an_object_store_url(tmp_path):
    lake = Paths.at(tmp_path, lake="s3a://bucket/lake")
    assert lake.lake == "s3a://bucket/lake"
    for name in ("landing", "artifacts", "lineage", "bentoml"):
        with pytest.raises(ValueError, match=f"{LOCATION_ENV[name]}='s3a://b/x'.*mounted folder"):
            Paths.at(tmp_path, **{name: "s3a://b/x"})
    # the home too, though Path() would fold its "//" before the check saw it
    with pytest.raises(ValueError, match="RECASSETS_HOME='s3a://bucket/x'.*mounted folder"):
        Paths.at("s3a://bucket/x")


def test_a_relative_location_is_made_absolute_where_it_is_read(tmp_path, monkeypatch):
    """Only the home was made absolute: ``RECASSETS_LAKE=mylake`` was the CLI's ``./mylake``
    and, in the run it launched from the repository's folder, another one there."""
    from recassets.cli import dagster_env

    for name in LOCATIONS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("RECASSETS_LAKE", "mylake")
    monkeypatch.setenv("DAGSTER_HOME", "mydag")
    p = Paths.from_env()
    assert (p.lake, p.dagster_home) == (str(tmp_path / "mylake"), str(tmp_path / "mydag"))
    env = dagster_env(p)  # what the launched run reads, wherever it starts
    assert (env["RECASSETS_LAKE"], env["DAGSTER_HOME"]) == (p.lake, p.dagster_home)
    assert env["RECASSETS_LANDING"] == str(tmp_path / ".recassets" / "landing")
