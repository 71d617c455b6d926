"""Feature pipelines on tiny hand-made events: exact counters, windows, point-in-time
correctness across a day boundary, the sequence roll-forward, and degraded inputs."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from recassets.events import EVENTS, ITEMS, USERS
from recassets.features import seen
from recassets.features.pipelines import build_features
from recassets.features.schema import PRIOR_STRENGTH, SEQUENCE_LENGTH
from recassets.ingest import ingest
from recassets.landing import write_landing_file

D1, D2, D30 = dt.date(2026, 1, 1), dt.date(2026, 1, 2), dt.date(2026, 1, 30)
UTC = dt.UTC


def at(day: dt.date, h: int, m: int = 0, s: int = 0, us: int = 0) -> dt.datetime:
    return dt.datetime(day.year, day.month, day.day, h, m, s, us, tzinfo=UTC)


def ev(i, ts, user, item, kind, value=None, country="US"):
    return {"event_id": f"e{i}", "ts": ts, "user_id": user, "item_id": item, "event_type": kind,
            "value": value, "surface": "home", "request_id": None, "country": country, "device": "ios"}  # fmt: skip


def land(paths, events_by_day, users, items):
    for day, rows in events_by_day.items():
        write_landing_file(
            paths, "events", day, pa.Table.from_pylist(rows, schema=EVENTS.pyarrow_schema())
        )
    for day, rows in users.items():
        write_landing_file(
            paths, "users", day, pa.Table.from_pylist(rows, schema=USERS.pyarrow_schema())
        )
    for day, rows in items.items():
        write_landing_file(
            paths, "items", day, pa.Table.from_pylist(rows, schema=ITEMS.pyarrow_schema())
        )


def user(uid, day, country="US", age="25-34"):
    return {"user_id": uid, "first_seen": at(day, 0), "country": country, "device": "ios", "age_bucket": age,
            "gender": None, "occupation": None}  # fmt: skip


def item(iid, day, category, creator="c1"):
    return {
        "item_id": iid,
        "first_seen": at(day, 0),
        "category": category,
        "creator": creator,
        "title": None,
    }


def ingest_all(spark, paths, days, dims_days):
    ingest(spark, paths, "events", days)
    ingest(spark, paths, "users", dims_days, allow_missing_days=True)
    ingest(spark, paths, "items", dims_days, allow_missing_days=True)


def read(spark, paths, table, day):
    rows = spark.read.format("delta").load(paths.table(table)).where(f"dt = DATE'{day}'").collect()
    key = {"user_features": "user_id", "item_features": "item_id"}.get(table)
    return {r[key]: r for r in rows} if key else rows


@pytest.fixture(scope="module")
def boundary(make_home, spark):
    """Events on both sides of the D1/D2 boundary; features built for D1 only, then D2."""
    paths = make_home("pit")
    d1 = [
        ev(1, at(D1, 9), 1, 10, "impression"),
        ev(2, at(D1, 9, 0, 5), 1, 10, "click"),
        ev(3, at(D1, 9, 1), 1, 10, "watch", 30.0),
        ev(4, at(D1, 10), 1, 11, "impression"),
        ev(5, at(D1, 23, 59, 59, 999_999), 1, 11, "click"),  # the last microsecond of D1
    ]
    d2 = [
        ev(6, at(D2, 0), 1, 12, "click"),  # the first microsecond of D2
        ev(7, at(D2, 0, 0, 1), 2, 12, "impression"),
        ev(8, at(D2, 5), 2, 12, "like"),
    ]
    land(
        paths,
        {D1: d1, D2: d2},
        {D1: [user(1, D1), user(2, D1, "GB", "<18")]},
        {D1: [item(10, D1, "music"), item(11, D1, "news"), item(12, D1, "music", "c2")]},
    )
    ingest_all(spark, paths, [D1, D2], [D1, D2])
    build_features(spark, paths, [D1])
    day1 = {
        t: read(spark, paths, t, D1) for t in ("user_features", "item_features", "cohort_features")
    }
    build_features(spark, paths, [D2])
    day2 = {
        t: read(spark, paths, t, D2) for t in ("user_features", "item_features", "cohort_features")
    }
    return paths, day1, day2


def test_features_of_day_d_contain_nothing_from_later_days(boundary):
    _, day1, _ = boundary
    u1 = day1["user_features"][1]
    assert (u1.impressions_1d, u1.clicks_1d, u1.engagements_1d, u1.watch_time_1d) == (2, 2, 3, 30.0)
    assert u1.history_item_ids == [10, 10, 11]  # not 12, clicked at D2 00:00
    assert u1.seen_item_ids == [10, 11]  # each engaged item once, by first engagement
    assert [e.ts for e in u1.last_engagements][-1] == dt.datetime(2026, 1, 1, 23, 59, 59, 999_999)
    u2 = day1["user_features"][2]  # exists (first seen D1) but did nothing on D1
    assert (u2.impressions_28d, u2.likes_28d, u2.history_item_ids) == (0, 0, [])
    i12 = day1["item_features"][12]
    assert (i12.impressions_28d, i12.clicks_28d, i12.likes_28d) == (0, 0, 0)
    assert all(r.category != "music" or r.clicks_28d == 1 for r in day1["cohort_features"])


def test_the_next_day_rolls_the_sequence_forward_and_counts_both_days(boundary):
    _, _, day2 = boundary
    u1 = day2["user_features"][1]
    assert u1.history_item_ids == [10, 10, 11, 12]
    assert u1.seen_item_ids == [10, 11, 12]  # D1's list with D2's new item appended
    assert [e.event_type for e in u1.last_engagements] == ["click", "watch", "click", "click"]
    assert (u1.clicks_1d, u1.clicks_7d, u1.impressions_7d) == (1, 3, 2)
    u2 = day2["user_features"][2]
    assert (u2.impressions_1d, u2.likes_1d, u2.history_item_ids) == (1, 1, [12])
    assert [(c.category, c.weight) for c in u2.top_categories] == [("music", 1.0)]


def test_smoothed_ctr_and_trending_are_exact(boundary):
    _, day1, day2 = boundary
    # D1: 2 impressions, 2 clicks globally -> prior 1.0 (clamped); user 1: (2 + 20*1)/(2 + 20)
    assert day1["user_features"][1].ctr_7d == pytest.approx(
        (2 + PRIOR_STRENGTH * 1.0) / (2 + PRIOR_STRENGTH)
    )
    # D2 window (D1..D2): 3 impressions, 3 clicks -> prior 1.0; user 2: (0 + 20)/(1 + 20)
    assert day2["user_features"][2].ctr_7d == pytest.approx(PRIOR_STRENGTH / (1 + PRIOR_STRENGTH))
    i12 = day2["item_features"][12]  # engagements: click + like on D2, none before
    assert i12.trending == pytest.approx((2 + 1.0) / (2 / 7 + 1.0))
    assert i12.age_days == pytest.approx(2.0)
    assert len(i12.embedding) == 16 and sum(x * x for x in i12.embedding) == pytest.approx(
        1.0, abs=1e-5
    )
    # same category, different creator: close but not equal embeddings
    i10 = day2["item_features"][10]
    cos = sum(a * b for a, b in zip(i10.embedding, i12.embedding, strict=True))
    assert 0.5 < cos < 0.999


def test_cohorts_split_by_country_age_and_category(boundary):
    _, _, day2 = boundary
    got = {(r.country, r.age_bucket, r.category): (r.impressions_28d, r.clicks_28d, r.engagements_28d)
           for r in day2["cohort_features"]}  # fmt: skip
    assert got == {
        ("US", "25-34", "music"): (1, 2, 3),
        ("US", "25-34", "news"): (1, 1, 1),
        ("US", "<18", "music"): (
            1,
            0,
            1,
        ),  # user 2's events carry country US, age from the dimension
    }


def test_sequence_keeps_the_last_50_in_time_order_and_windows_are_bounded(make_home, spark):
    paths = make_home("seq")
    many = [ev(i, at(D1, 1, 0, i), 1, 100 + i, "click") for i in range(SEQUENCE_LENGTH + 10)]
    old = [ev(1000, at(D1, 12), 1, 5, "like")]
    late = [ev(2000, at(D30, 12), 1, 6, "click")]
    land(paths, {D1: many + old, D30: late}, {D1: [user(1, D1)]}, {D1: [item(5, D1, "news")]})
    ingest_all(spark, paths, [D1, D30], [D1])
    build_features(spark, paths, [D1, D30])
    u_d1 = read(spark, paths, "user_features", D1)[1]
    assert u_d1.history_item_ids == [100 + i for i in range(11, SEQUENCE_LENGTH + 10)] + [5]
    # seen keeps all 61 engaged items, where the sequence keeps the last 50 engagements
    assert u_d1.seen_item_ids == [100 + i for i in range(SEQUENCE_LENGTH + 10)] + [5]
    u_d30 = read(spark, paths, "user_features", D30)[1]
    # D30's window is D3..D30: D1 is outside every counter; D29 has no partition, so the
    # sequence bootstraps from the window and holds only D30's click.
    assert (u_d30.clicks_28d, u_d30.likes_28d, u_d30.clicks_1d) == (1, 0, 1)
    assert u_d30.history_item_ids == [6]


def test_ratings_only_data_degrades_without_failing(make_home, spark):
    paths = make_home("ratings")
    rows = [
        ev(1, at(D1, 8), 1, 10, "rating", 4.0, country=None),
        ev(2, at(D1, 9), 2, 10, "rating", 2.0, country=None),
    ]
    land(
        paths,
        {D1: rows},
        {D1: [user(1, D1, country=None), user(2, D1, country=None)]},
        {D1: [item(10, D1, "drama", None)]},
    )
    ingest_all(spark, paths, [D1], [D1])
    build_features(spark, paths, [D1])
    u = read(spark, paths, "user_features", D1)[1]
    assert (u.impressions_28d, u.engagements_28d, u.ctr_28d, u.country) == (0, 1, 0.0, None)
    assert [e.value for e in u.last_engagements] == [4.0]
    cohorts = {
        (r.country, r.age_bucket, r.category): r.engagements_28d
        for r in read(spark, paths, "cohort_features", D1)
    }
    assert cohorts == {("unknown", "25-34", "drama"): 2}
    i = read(spark, paths, "item_features", D1)[10]
    assert i.creator is None and len(i.embedding) == 16


def test_seen_keeps_the_newest_first_engagements_up_to_its_limit(make_home, spark, monkeypatch):
    monkeypatch.setattr(seen, "SEEN_LIMIT", 20)
    paths = make_home("seen")
    clicks = [ev(i, at(D1, 1, 0, i), 1, 100 + i, "click") for i in range(30)]
    again = [
        ev(100, at(D2, 1), 1, 100, "click"),  # fell off D1's list: new again
        ev(101, at(D2, 2), 1, 200, "rating", 1.0),  # a low rating is an interaction
        ev(102, at(D2, 3), 1, 201, "impression"),  # shown is not seen
        ev(103, at(D2, 4), 1, 129, "like"),  # already listed: stays where it is
    ]
    land(paths, {D1: clicks, D2: again}, {D1: [user(1, D1)]}, {D1: [item(5, D1, "news")]})
    ingest_all(spark, paths, [D1, D2], [D1])
    build_features(spark, paths, [D1, D2])
    assert read(spark, paths, "user_features", D1)[1].seen_item_ids == [
        100 + i for i in range(10, 30)
    ]
    assert read(spark, paths, "user_features", D2)[1].seen_item_ids == [
        *[100 + i for i in range(12, 30)],
        100,
        200,
    ]
