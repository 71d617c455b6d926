"""The three feature tables are written all or none (``undo_features``): a run interrupted after
user_features committed, on the per-day path and on the range pass, leaves each table at its
version before the run (the same data files, not only the same rows), and the run made again
afterwards builds the days as a clean run does."""

from __future__ import annotations

import datetime as dt

import pytest
from deltalake import DeltaTable

from recassets.features import backfill, pipelines
from recassets.features.pipelines import FEATURE_TABLES, build_features
from tests.unit.features.test_pipelines import at, ev, ingest_all, item, land, user

DAYS = [dt.date(2026, 1, k) for k in range(1, 6)]
D1, D2, D3, D4, D5 = DAYS


@pytest.fixture(scope="module")
def home(make_home, spark):
    """Five days of a few events, ingested; the features of D1 and D2 built."""
    paths = make_home("features_all_or_none")
    events = {
        d: [
            ev(10 * k + 1, at(d, 9), 1, 10, "impression"),
            ev(10 * k + 2, at(d, 9, 1), 1, 10, "click"),
            ev(10 * k + 3, at(d, 10), 2, 11, "like", country="GB"),
        ]
        for k, d in enumerate(DAYS)
    }
    land(paths, events, {D1: [user(1, D1), user(2, D1, "GB")]}, {D1: [item(10, D1, "news"),
         item(11, D1, "music")]})  # fmt: skip
    ingest_all(spark, paths, DAYS, DAYS)
    build_features(spark, paths, [D1, D2], mode="daily")
    return paths


def _state(paths) -> dict[str, list[str]]:
    """Each table's data files as of its latest version: what a reader reads."""
    return {t: sorted(DeltaTable(paths.table(t)).file_uris()) for t in FEATURE_TABLES}


def _days(spark, paths) -> dict[str, list[str]]:
    out = {}
    for t in FEATURE_TABLES:
        rows = spark.read.format("delta").load(paths.table(t)).select("dt").distinct().collect()
        out[t] = sorted(r["dt"].isoformat() for r in rows)
    return out


def _interrupted_on(module, call: int, monkeypatch) -> list[str]:
    """``module.replace_partitions`` raising KeyboardInterrupt on its ``call``-th write (the
    writes before it commit); the tables written, in order."""
    real, calls = module.replace_partitions, []

    def replace(df, path, where, meta):
        calls.append(path)
        if len(calls) == call:
            raise KeyboardInterrupt
        return real(df, path, where, meta)

    monkeypatch.setattr(module, "replace_partitions", replace)
    return calls


@pytest.mark.parametrize(
    ("mode", "module", "days"),
    [("daily", pipelines, [D2, D3]), ("range", backfill, [D1, D2, D3, D4])],
)
def test_an_interrupt_after_user_features_committed_leaves_all_three_tables_as_they_were(
    home, spark, monkeypatch, mode, module, days
):
    before, held = _state(home), _days(spark, home)
    calls = _interrupted_on(module, 2, monkeypatch)  # user_features written, item_features not

    with pytest.raises(KeyboardInterrupt):
        build_features(spark, home, days, mode=mode)

    assert calls[0].endswith("user_features") and calls[1].endswith("item_features")
    assert _state(home) == before
    assert _days(spark, home) == held


def test_the_run_made_again_after_an_interrupt_builds_the_days(home, spark, monkeypatch):
    _interrupted_on(backfill, 3, monkeypatch)  # two tables committed, cohort_features not
    with pytest.raises(KeyboardInterrupt):
        build_features(spark, home, DAYS, mode="range")
    monkeypatch.undo()

    result = build_features(spark, home, DAYS, mode="range")

    days = [d.isoformat() for d in DAYS]
    assert _days(spark, home) == {t: days for t in FEATURE_TABLES}
    assert sorted(result.rows["user_features"]) == days
