"""training_examples for a range of days in one pass: the same table, row for row, as the
per-day path over the same range (first day, gap day, impressions and ratings days, a growing
catalog, an item in events before its dimension row, a day whose d-1 features are missing)."""

from __future__ import annotations

import datetime as dt
import json
import math
import shutil
from pathlib import Path

import pytest

from recassets.features.pipelines import build_features
from recassets.ingest import LandingMissingError, ingest
from recassets.lake import ensure_table, latest_version, recent_commits
from recassets.training.examples import READS, build_training_examples
from recassets.training.schema import TRAINING_EXAMPLES_DDL
from tests.conftest import home_at
from tests.unit.features.test_pipelines import at, ev, ingest_all, item, land, user

D = [dt.date(2026, 1, 1) + dt.timedelta(days=i) for i in range(6)]
D1, D2, D3, D4, D5, D6 = D
GAP = D3  # no events at all
FEATURE_DAYS = [D1, D3, D5]  # so D3 and D5 (mid-range) have no features of d-1: zeros


def req(e, request_id):
    return {**e, "request_id": request_id}


def table_rows(spark, paths, version=None):
    reader = spark.read.format("delta")
    if version is not None:
        reader = reader.option("versionAsOf", version)
    rows = [r.asDict() for r in reader.load(paths.table("training_examples")).collect()]
    return sorted(rows, key=lambda r: repr(sorted((k, v) for k, v in r.items() if k != "dt")))


def differences(expected, got, rel=1e-9):
    """What differs between two tables of rows (dicts), doubles within ``rel``; empty if none."""
    if len(expected) != len(got):
        return [f"{len(expected)} rows, got {len(got)}"]
    out = []
    for a, b in zip(expected, got, strict=True):
        for k in a.keys() | b.keys():
            x, y = a.get(k), b.get(k)
            close = (
                math.isclose(x, y, rel_tol=rel, abs_tol=1e-12)
                if isinstance(x, float) and isinstance(y, float)
                else x == y
            )
            if not close:
                out.append(f"{a.get('example_id')} {k}: {x!r} != {y!r}")
    return out


def _events():
    return {
        D1: [  # impressions day, the first day: no features before it
            req(ev(1, at(D1, 9), 1, 10, "impression"), "r1"),
            req(ev(2, at(D1, 9, 1), 1, 10, "click"), "r1"),
            req(ev(3, at(D1, 10), 2, 11, "impression"), "r2"),
            ev(4, at(D1, 11), 1, 12, "rating", 5.0),  # kept: each event by its own recipe
        ],
        D2: [  # ratings only; catalog {10, 11, 12}: draws often hit an item rated that day
            ev(20, at(D2, 8), 1, 10, "rating", 5.0),
            ev(21, at(D2, 8, 1), 1, 11, "rating", 4.0),
            ev(22, at(D2, 8, 2), 1, 12, "rating", 2.0),
            ev(23, at(D2, 9), 2, 13, "rating", 5.0),  # 13: first seen D2, not in D2's catalog
            ev(24, at(D2, 10), 3, 10, "rating", 4.5),  # user 3: no dimension row before D4
        ],
        D4: [  # ratings only; catalog {10..14}: 13 (first seen D2) and 14 (D3) joined it;
            # features of the gap day
            ev(40, at(D4, 8), 1, 13, "rating", 5.0),
            ev(41, at(D4, 9), 2, 14, "rating", 4.0),
            ev(42, at(D4, 9, 5), 2, 10, "rating", 4.0),
            ev(43, at(D4, 10), 3, 11, "rating", 1.0),
        ],
        D5: [  # impressions; item 99 has no dimension row before D6; no features of D4
            req(ev(50, at(D5, 9), 1, 99, "impression"), "r5"),
            req(ev(51, at(D5, 9, 1), 1, 99, "like"), "r5"),
            req(ev(52, at(D5, 10), 2, 13, "impression"), "r6"),
            req(ev(53, at(D5, 10, 1), 2, 13, "watch", 20.0), "r6"),
            req(ev(54, at(D5, 11), 3, 14, "impression"), "r7"),
        ],
        D6: [  # impressions and a rating (kept, with its negatives); 99 has its dimension row
            req(ev(60, at(D6, 9), 1, 99, "impression"), "r8"),
            req(ev(61, at(D6, 10), 2, 10, "impression"), "r9"),
            req(ev(62, at(D6, 12), 2, 10, "click"), "r10"),  # another request: r9 stays 0
            ev(63, at(D6, 13), 3, 12, "rating", 5.0),
        ],
    }


def _ingest_events(spark, paths):
    try:  # a range with a day lacking landing files: an empty partition
        ingest(spark, paths, "events", D)
    except LandingMissingError:  # an ingest that still refuses it: the days with files only
        ingest(spark, paths, "events", [d for d in D if d != GAP])


@pytest.fixture(scope="module")
def homes(make_home, spark):
    """Two homes over the same landed data and features; examples by the per-day path in one,
    by the range pass in the other."""
    daily = make_home("examples_daily")
    land(
        daily,
        _events(),
        {D1: [user(1, D1), user(2, D1, "GB", "<18")], D4: [user(3, D4, "FR", "35-44")]},
        {
            D1: [item(10, D1, "music"), item(11, D1, "news"), item(12, D1, "music", "c2")],
            D2: [item(13, D2, "drama")],
            D3: [item(14, D3, "news", "c3")],
            D6: [item(99, D6, "music", "c9")],
        },
    )
    ingest_all(spark, daily, [D1], D)  # dimensions: every day, most of them empty
    _ingest_events(spark, daily)
    build_features(spark, daily, FEATURE_DAYS)
    ranged = home_at(Path(daily.home).parent / "examples_range")
    shutil.copytree(daily.home, ranged.home)
    # D3 and D5 without features of d-1 on purpose (features_required=False): the zeros path
    by_day = build_training_examples(
        spark, daily, D, run_id="daily", mode="daily", features_required=False
    )
    ensure_table(spark, ranged.table("training_examples"), TRAINING_EXAMPLES_DDL, ["dt"])
    before = latest_version(spark, ranged.table("training_examples"))
    ticks: list[str] = []
    by_range = build_training_examples(
        spark, ranged, D, run_id="range", progress=ticks.append, features_required=False
    )
    return daily, ranged, by_day, by_range, before, ticks


def test_the_range_pass_writes_the_per_day_table_row_for_row(homes, spark):
    daily, ranged, by_day, by_range, _, _ = homes
    expected, got = table_rows(spark, daily), table_rows(spark, ranged)
    assert differences(expected, got) == []
    assert (by_range.rows, by_range.positives) == (by_day.rows, by_day.positives)
    assert (by_range.recipe, by_range.features_day) == (by_day.recipe, by_day.features_day)


def test_the_range_covers_every_case_it_claims(homes, spark):
    daily, _, by_day, _, _, _ = homes
    day = {d: str(d) for d in D}
    assert by_day.features_day == {
        day[D1]: None,
        day[D2]: day[D1],
        day[D3]: None,
        day[D4]: day[D3],
        day[D5]: None,
        day[D6]: day[D5],
    }
    assert [by_day.recipe[day[d]] for d in D] == [
        "impressions+ratings", "ratings+sampled_negatives", "ratings+sampled_negatives",
        "ratings+sampled_negatives", "impressions", "impressions+ratings",
    ]  # fmt: skip
    assert (by_day.rows[day[GAP]], by_day.positives[day[GAP]]) == (0, 0)
    rows = table_rows(spark, daily)
    negs = {d: [r for r in rows if r["dt"] == d and r["source"] == "sampled_negative"] for d in D}
    # D2: 3 positives, 4 draws each from {10, 11, 12}, minus the (user, item) rated that day
    assert 0 < len(negs[D2]) < 3 * 4
    assert all(r["item_id"] in (10, 11, 12) for r in negs[D2])
    assert not {(r["user_id"], r["item_id"]) for r in negs[D2]} & {
        (1, 10),
        (1, 11),
        (1, 12),
        (3, 10),
    }
    assert {r["item_id"] for r in negs[D4]} & {13, 14}  # the catalog grew
    # D4 reads D3's seen lists (rebuilt from the window: D2 has no features): user 1 engaged
    # with 10, 11, 12 before D4, user 2 with 13; neither is ever drawn as a negative then
    assert not {(r["user_id"], r["item_id"]) for r in negs[D4]} & {
        (1, 10), (1, 11), (1, 12), (1, 13), (2, 10), (2, 13), (2, 14),
    }  # fmt: skip
    # a rating on a day of impressions is an example too (one stray impression once dropped
    # every rating of its day): D1's without negatives (no catalog before the first day)
    rated = {r["example_id"]: (r["dt"], r["label"]) for r in rows if r["source"] == "rating"}
    assert rated["e4"] == (D1, 1) and rated["e63"] == (D6, 1)
    assert [r["item_id"] for r in rows if r["example_id"].startswith("e63#neg")]
    assert not [r for r in rows if r["example_id"].startswith("e4#neg")]
    i99 = {r["dt"]: r for r in rows if r["item_id"] == 99}
    assert (i99[D5]["category"], i99[D5]["label"], i99[D6]["category"]) == (None, 1, "music")
    assert all(
        r["u_engagements_7d"] == 0.0 and r["history_item_ids"] == [] for r in rows if r["dt"] == D5
    )
    assert [r["history_item_ids"][-1] for r in rows if r["example_id"] == "e60"] == [
        99
    ]  # D5's like


def _alter(rows, what):
    rows = [dict(r) for r in rows]
    if what == "drop a row":
        return rows[1:]
    pick = {
        "flip a label": lambda r: r["source"] == "impression",
        "another sampled item": lambda r: r["source"] == "sampled_negative",
        "a feature off by 1e-6": lambda r: r["u_ctr_28d"] > 0,
        "a history": lambda r: r["history_item_ids"] != [],
        "a day": lambda r: True,
    }[what]
    r = next(r for r in rows if pick(r))
    if what == "flip a label":
        r["label"] = 1 - r["label"]
    elif what == "another sampled item":
        r["item_id"] += 1
    elif what == "a feature off by 1e-6":
        r["u_ctr_28d"] *= 1 + 1e-6
    elif what == "a history":
        r["history_item_ids"] = r["history_item_ids"][:-1]
    else:
        r["dt"] += dt.timedelta(days=1)
    return rows


@pytest.mark.parametrize(
    "what",
    [
        "drop a row",
        "flip a label",
        "another sampled item",
        "a feature off by 1e-6",
        "a history",
        "a day",
    ],
)
def test_the_comparison_notices_a_difference(homes, spark, what):
    daily, _, _, _, _, _ = homes
    expected = table_rows(spark, daily)
    assert differences(expected, _alter(expected, what)) != []


def test_the_range_is_one_commit_with_its_days_and_progress(homes, spark):
    daily, ranged, _, _, before, ticks = homes
    commits = recent_commits(spark, ranged.table("training_examples"), 10)
    assert commits[0][0] == before + 1
    meta = json.loads(commits[0][1])
    assert (meta["run_id"], meta["days"]) == ("range", [str(d) for d in D])
    assert "code_version" in meta
    # the versions it read, each that table's newest at the time (lineage follows them)
    assert set(meta["read"]) == set(READS)
    assert meta["read"]["user_features"] == latest_version(spark, ranged.table("user_features"))
    daily_days = [
        json.loads(m)["day"]
        for _, m, _ in recent_commits(spark, daily.table("training_examples"), 10)
        if m
    ]
    # the per-day path: one commit a day (Delta skips the gap day's: nothing written or deleted)
    assert sorted(daily_days) == [str(d) for d in D if d != GAP]
    assert any("6 days" in t and "rows written" in t and "rows/s" in t for t in ticks)


def test_a_one_day_range_pass_without_features_matches_the_per_day_path(homes, spark):
    """D1 alone: the range pass's branch where no day has features of d-1."""
    daily, ranged, _, _, _, _ = homes
    result = build_training_examples(spark, ranged, [D1], mode="range")
    assert result.features_day == {str(D1): None}
    expected = [r for r in table_rows(spark, daily) if r["dt"] == D1]
    got = [r for r in table_rows(spark, ranged) if r["dt"] == D1]
    assert expected and differences(expected, got) == []


def test_one_day_takes_the_per_day_path_and_a_bad_mode_is_refused(homes, spark):
    _, ranged, _, _, _, _ = homes
    build_training_examples(spark, ranged, [D2], run_id="one")
    meta = json.loads(recent_commits(spark, ranged.table("training_examples"), 1)[0][1])
    assert (meta["run_id"], meta["day"]) == ("one", str(D2))
    assert meta["read"]["raw_events"] == latest_version(spark, ranged.table("raw_events"))
    with pytest.raises(ValueError, match="mode"):
        build_training_examples(spark, ranged, [D2], mode="weekly")
