"""The range pass (``recassets.features.backfill``) against the per-day path: the same landed
data in two homes, ``build_features(mode="daily")`` in one and the range pass in the other,
all three tables compared row for row.

Ints, strings, arrays, dates and timestamps must be equal; doubles within 1e-9 relative,
because the range pass sums watch time per day and then per window where the per-day path sums
events: Spark's floating-point addition order differs (every other double comes from the same
integers through the same expression, and is in practice bit-equal).

One layout of days (D1 = 2026-01-01; the range is D30..D36), two scenarios: the range starts
with no user_features of D29 (sequences bootstrap from D3..D29), or after a per-day D29."""

from __future__ import annotations

import datetime as dt
import math
import shutil
from pathlib import Path

import pytest

from recassets.features.pipelines import build_features, contiguous_runs
from recassets.features.schema import KEYS, SEQUENCE_LENGTH, TABLES
from recassets.lake import recent_commits
from tests.unit.features.test_pipelines import at, ev, ingest_all, item, land, user

D1 = dt.date(2026, 1, 1)


def day(k: int) -> dt.date:
    """D<k>: day k of the layout (D1 = 2026-01-01)."""
    return D1 + dt.timedelta(days=k - 1)


RANGE = [day(k) for k in range(30, 35)]
GAP = day(32)  # nothing landed: no event on that day at all
RATINGS_ONLY = day(34)
SEEDED = RANGE[2:]  # the seeded scenario's range: D32..D34, after a per-day D31


def landed_events() -> dict[dt.date, list[dict]]:
    """Events by day; each day's comment says what it exercises."""
    n = iter(range(1, 10_000))
    out: dict[dt.date, list[dict]] = {}
    # D3: user 5 (no dimension row) and user 6 (a dimension row) engage, then go idle > 28 days.
    out[day(3)] = [
        ev(next(n), at(day(3), 8), 5, 10, "click"),
        ev(next(n), at(day(3), 9), 6, 11, "click"),
    ]
    # D20: a little of everything, inside D30's bootstrap window.
    out[day(20)] = [
        ev(next(n), at(day(20), 10), 1, 10, "impression"),
        ev(next(n), at(day(20), 10, 0, 1), 1, 10, "click"),
        ev(next(n), at(day(20), 11), 2, 11, "impression", country="GB"),
        ev(next(n), at(day(20), 12), 2, 12, "watch", 41.25, country="GB"),
    ]
    # D29: user 1 clicks SEQUENCE_LENGTH + 10 items (truncation); user 2's engagements tie on
    # ts (the tie-break: event_type desc, item_id desc).
    out[day(29)] = [
        ev(next(n), at(day(29), 1, 0, i), 1, 100 + i, "click") for i in range(SEQUENCE_LENGTH + 10)
    ] + [
        ev(next(n), at(day(29), 9), 2, 11, "click", country="GB"),
        ev(next(n), at(day(29), 9), 2, 10, "like", country="GB"),
        ev(next(n), at(day(29), 9), 2, 10, "click", country="GB"),
        ev(next(n), at(day(29), 9), 2, 12, "share", country="GB"),
        ev(next(n), at(day(29), 10), 3, 12, "impression"),
    ]
    out[day(30)] = [
        ev(next(n), at(day(30), 0), 1, 12, "impression"),
        ev(next(n), at(day(30), 0, 0, 3), 1, 12, "click"),
        ev(next(n), at(day(30), 5), 2, 10, "impression", country=None),
        ev(next(n), at(day(30), 5, 1), 2, 10, "watch", 17.5, country=None),
        ev(next(n), at(day(30), 23, 59, 59, 999_999), 3, 11, "like"),
    ]
    # D31: item 77 seen in events; its dimension row only lands on D33. User 5 drops out
    # (its D3 click leaves the window).
    out[day(31)] = [
        ev(next(n), at(day(31), 7), 2, 77, "impression", country="GB"),
        ev(next(n), at(day(31), 7, 0, 2), 2, 77, "click", country="GB"),
        ev(next(n), at(day(31), 8), 1, 77, "impression"),
        ev(next(n), at(day(31), 9), 1, 10, "like"),
    ] + [ev(next(n), at(day(31), 12, 0, i), 1, 200 + i, "click") for i in range(5)]
    # D32 (GAP): nothing. D33: user 5 back after 30 idle days (no dimension row: its D3
    # engagement is gone), user 6 back (a dimension row: its sequence kept it); user 7 rates
    # before its dimension row (D34).
    out[day(33)] = [
        ev(next(n), at(day(33), 3), 5, 12, "impression"),
        ev(next(n), at(day(33), 3, 0, 1), 5, 12, "click"),
        ev(next(n), at(day(33), 4), 6, 12, "share"),
        ev(next(n), at(day(33), 5), 2, 77, "like", country="GB"),
        ev(next(n), at(day(33), 6), 3, 10, "impression"),
        ev(next(n), at(day(33), 6, 0, 1), 3, 10, "watch", 3.0),
        ev(next(n), at(day(33), 6, 0, 2), 3, 10, "watch", 0.1),
        ev(next(n), at(day(33), 7), 7, 77, "rating", 3.0, country=None),
    ]
    # D34 (RATINGS_ONLY): no impression at all.
    out[day(34)] = [
        ev(next(n), at(day(34), 1), 1, 10, "rating", 4.0, country=None),
        ev(next(n), at(day(34), 2), 7, 11, "rating", 1.0, country=None),
        ev(next(n), at(day(34), 2), 3, 11, "rating", 5.0, country=None),
    ]
    return out


def landed_dimensions() -> tuple[dict, dict]:
    users = {day(1): [user(1, day(1)), user(2, day(1), "GB", "<18"), user(3, day(1), None, "65+"),
                      user(6, day(1))],
             day(34): [user(7, day(34), "FR", "35-44")]}  # fmt: skip
    items = {day(1): [item(10, day(1), "music"), item(11, day(1), "news", "c2"),
                      item(12, day(1), "music", "c3")],
             day(33): [item(77, day(33), "sports", "c7")]}  # fmt: skip
    return users, items


@pytest.fixture(scope="module")
def source(make_home, spark):
    """The layout landed and ingested once; each scenario copies its lake into fresh homes."""
    paths = make_home("backfill-src")
    users, items = landed_dimensions()
    land(paths, landed_events(), users, items)
    every_day = [day(k) for k in range(1, 35)]
    ingest_all(spark, paths, every_day, every_day)  # days without files: empty partitions
    return paths


def copy_home(source, make_home, name):
    paths = make_home(name)
    shutil.copytree(source.lake, paths.lake)
    return paths


def read_table(spark, paths, table, days):
    """Rows of the days as plain values, sorted by (dt, key)."""
    where = "dt IN (" + ", ".join(f"DATE'{d}'" for d in days) + ")"
    rows = [
        r.asDict(recursive=True)
        for r in spark.read.format("delta").load(paths.table(table)).where(where).collect()
    ]
    return sorted(rows, key=lambda r: (r["dt"], *[r[k] for k in KEYS[table]]))


def differences(a, b, where="") -> list[str]:
    """Where two values differ: exact, except doubles within 1e-9 relative (see the module)."""
    if isinstance(a, float) and isinstance(b, float):
        return (
            [] if math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) else [f"{where}: {a!r} != {b!r}"]
        )
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where}: fields {sorted(a)} != {sorted(b)}"]
        return [x for k in a for x in differences(a[k], b[k], f"{where}.{k}")]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} elements != {len(b)}"]
        return [
            x
            for i, (p, q) in enumerate(zip(a, b, strict=True))
            for x in differences(p, q, f"{where}[{i}]")
        ]
    return [] if type(a) is type(b) and a == b else [f"{where}: {a!r} != {b!r}"]


def table_differences(spark, by_day, by_range, table, days, ranged_days=None) -> list[str]:
    a = read_table(spark, by_day, table, days)
    b = read_table(spark, by_range, table, ranged_days or days)
    if ranged_days:  # the deliberate shift: compare as if they were the same day
        for r in b:
            r["dt"] = days[ranged_days.index(r["dt"])]
    return differences(a, b, table)


@pytest.fixture(scope="module")
def daily(spark, source, make_home):
    """The per-day path over RANGE; the seeded scenario's home is a copy of its lake taken
    after D31, so that its range D32..D34 starts on a per-day D31 partition."""
    paths = copy_home(source, make_home, "daily")
    first = build_features(spark, paths, RANGE[:2], mode="daily")
    seeded_home = copy_home(paths, make_home, "seeded-range")
    rest = build_features(spark, paths, SEEDED, mode="daily")
    for table in TABLES:
        first.rows[table].update(rest.rows[table])
    first.inputs.update(rest.inputs)
    return paths, first, seeded_home


def ranged(spark, home, days):
    """The range pass over ``days``, with its progress messages."""
    messages: list[str] = []
    result = build_features(spark, home, days, mode="range", progress=messages.append, run_id="r1")
    return home, result, messages


@pytest.fixture(scope="module")
def fresh(spark, source, make_home):
    """RANGE with no user_features of D29: sequences bootstrap from D3..D29."""
    return ranged(spark, copy_home(source, make_home, "fresh-range"), RANGE)


@pytest.fixture(scope="module")
def seeded(spark, daily):
    """D32..D34 after the per-day D31: sequences roll D31's forward."""
    return ranged(spark, daily[2], SEEDED)


SCENARIOS = {"fresh": RANGE, "seeded": SEEDED}


@pytest.mark.parametrize("table", list(TABLES))
@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_range_pass_writes_the_tables_of_the_per_day_path(
    spark, request, daily, scenario, table
):
    home = request.getfixturevalue(scenario)[0]
    days = SCENARIOS[scenario]
    assert read_table(spark, daily[0], table, days), "nothing to compare"
    assert table_differences(spark, daily[0], home, table, days) == []


@pytest.mark.parametrize("table", list(TABLES))
def test_the_comparison_notices_a_day_shifted_by_one(spark, daily, fresh, table):
    # D33 of the per-day path against D34 of the range pass: the comparison is able to fail
    assert table_differences(spark, daily[0], fresh[0], table, [day(33)], ranged_days=[day(34)])


def test_the_scenarios_exercise_what_they_claim(spark, fresh, seeded):
    users = {
        (r["dt"], r["user_id"]): r for r in read_table(spark, fresh[0], "user_features", RANGE)
    }
    items = {
        (r["dt"], r["item_id"]): r for r in read_table(spark, fresh[0], "item_features", RANGE)
    }
    # user 1: bootstrap from D29's 60 clicks, truncated to the last 50
    assert users[(day(30), 1)]["history_item_ids"] == [100 + i for i in range(11, 60)] + [12]
    # user 5 (no dimension row) drops out on D31 and comes back on D33 without its D3 click;
    # user 6 (a dimension row) keeps it through 29 idle days
    assert users[(day(30), 5)]["history_item_ids"] == [10]
    assert [d for d in RANGE if (d, 5) in users] == [day(30), day(33), day(34)]
    assert users[(day(33), 5)]["history_item_ids"] == [12]
    assert users[(day(33), 6)]["history_item_ids"] == [11, 12]
    # seen: all 60 clicked items (not the last 50), and user 5 starts again as its sequence does
    assert users[(day(30), 1)]["seen_item_ids"] == [10, *[100 + i for i in range(60)], 12]
    assert users[(day(33), 5)]["seen_item_ids"] == [12]
    # ties on ts, oldest first: event_type, then item_id ascending
    assert [(e["event_type"], e["item_id"]) for e in users[(day(30), 2)]["last_engagements"]][1:5] == [
        ("click", 10), ("click", 11), ("like", 10), ("share", 12)]  # fmt: skip
    # the gap day has rows, with nothing in its 1-day counters
    assert (users[(GAP, 1)]["impressions_1d"], users[(GAP, 1)]["clicks_7d"]) == (0, 66)
    # item 77 before its dimension row (D33), and user 7 before its own (D34)
    assert items[(day(31), 77)]["category"] is None and items[(day(33), 77)]["category"] == "sports"
    assert users[(day(33), 7)]["country"] is None and users[(day(34), 7)]["country"] == "FR"
    assert (
        users[(RATINGS_ONLY, 1)]["impressions_1d"],
        users[(RATINGS_ONLY, 1)]["engagements_1d"],
    ) == (0, 1)
    # the seeded range rolled D31's sequences forward
    assert any("seeded from user_features of 2026-01-31" in m for m in seeded[2])
    assert any("bootstrap from 2026-01-03..2026-01-29" in m for m in fresh[2])


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_the_result_reports_rows_and_inputs_per_day_like_the_per_day_path(request, daily, scenario):
    by_day, by_range = daily[1], request.getfixturevalue(scenario)[1]
    assert by_range.days == [d.isoformat() for d in SCENARIOS[scenario]]
    for table in TABLES:
        assert {d: by_day.rows[table][d] for d in by_range.days} == by_range.rows[table]
    assert {d: by_day.inputs[d] for d in by_range.days} == by_range.inputs


def test_each_table_is_written_for_the_range_in_one_commit(spark, seeded):
    home, result, messages = seeded
    for table in TABLES:
        (version, meta, _), (_, before, _) = recent_commits(spark, home.table(table), 2)
        assert version == result.versions[table]
        assert '"days": ["2026-02-01", "2026-02-03"]' in meta
        # the commit before it is the per-day D31: no day of the range went in on its own
        assert '"day": "2026-01-31"' in before
    assert any("user_features wrote" in m and "rows/s" in m for m in messages)


def test_contiguous_runs_split_a_day_list_in_order():
    days = [day(5), day(1), day(2), day(3), day(7), day(8), day(2)]
    assert contiguous_runs(days) == [[day(1), day(2), day(3)], [day(5)], [day(7), day(8)]]
    assert contiguous_runs([]) == []


def test_an_unknown_mode_is_refused(spark, tmp_path: Path):
    from tests.conftest import home_at

    with pytest.raises(ValueError, match="mode"):
        build_features(spark, home_at(tmp_path), [D1], mode="weekly")


def test_auto_takes_the_range_pass_from_range_min_days_on(spark, tmp_path: Path, monkeypatch):
    from recassets.features import backfill, pipelines
    from tests.conftest import home_at

    calls: list[tuple[str, list]] = []
    monkeypatch.setattr(
        backfill, "build_range", lambda _s, _p, run, *a, **k: calls.append(("range", run))
    )
    n = pipelines.RANGE_MIN_DAYS
    days = [D1 + dt.timedelta(days=i) for i in range(n)]
    gap = D1 + dt.timedelta(days=n + 5)  # a lone day after a gap: its own run

    def one_day(_spark, _paths, d, tables, result, *_args) -> None:
        calls.append(("day", [d]))
        for t in tables:
            result.rows.setdefault(t, {})[d.isoformat()] = 0

    monkeypatch.setattr(pipelines, "_build_day", one_day)
    # an empty home: the routing is under test, not the inputs (tests/unit/test_ingested.py)
    monkeypatch.setattr(pipelines, "require_feature_inputs", lambda *_a: None)
    build_features(spark, home_at(tmp_path), [*days, gap], mode="auto")
    assert calls == [("range", days), ("day", [gap])]
    calls.clear()
    build_features(spark, home_at(tmp_path), days[: n - 1], mode="auto")
    assert calls == [("day", [d]) for d in days[: n - 1]]
