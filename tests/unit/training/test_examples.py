"""training_examples: labels from the same request, features of the day before, the ratings
recipe with deterministic sampled negatives."""

from __future__ import annotations

import pytest

from recassets.features.pipelines import build_features
from recassets.training.examples import build_training_examples
from recassets.training.schema import NEGATIVES_PER_POSITIVE
from tests.unit.features.test_pipelines import D1, D2, at, ev, ingest_all, item, land, user


def req(e, request_id):
    return {**e, "request_id": request_id}


def rows(spark, paths, day):
    got = (
        spark.read.format("delta")
        .load(paths.table("training_examples"))
        .where(f"dt = DATE'{day}'")
        .collect()
    )
    return {r.example_id: r for r in got}


@pytest.fixture(scope="module")
def impressions(make_home, spark):
    paths = make_home("examples")
    d1 = [
        req(ev(1, at(D1, 9), 1, 10, "impression"), "r1"),
        req(ev(2, at(D1, 9, 1), 1, 10, "click"), "r1"),
    ]
    d2 = [
        req(ev(10, at(D2, 9), 1, 10, "impression"), "r2"),
        req(ev(11, at(D2, 9, 0, 2), 1, 10, "like"), "r2"),  # engaged in the same request
        req(ev(12, at(D2, 9), 1, 11, "impression"), "r2"),
        req(ev(13, at(D2, 9, 1), 1, 11, "watch", 5.0), "r2"),  # a watch below 10 s: not engaged
        req(ev(14, at(D2, 10), 2, 11, "impression"), "r3"),
        req(ev(15, at(D2, 10, 1), 2, 11, "watch", 45.0), "r3"),  # a long watch: engaged
        req(ev(16, at(D2, 11), 2, 10, "impression"), "r4"),
        req(ev(17, at(D2, 12), 2, 10, "click"), "r5"),  # another request: r4 stays negative
    ]
    land(
        paths,
        {D1: d1, D2: d2},
        {D1: [user(1, D1), user(2, D1, "GB", "<18")]},
        {D1: [item(10, D1, "music"), item(11, D1, "news")]},
    )
    ingest_all(spark, paths, [D1, D2], [D1, D2])
    build_features(spark, paths, [D1, D2])
    result = build_training_examples(spark, paths, [D1, D2])
    return paths, result


def test_labels_come_from_engagement_in_the_same_request(impressions, spark):
    paths, result = impressions
    got = {k: (r.user_id, r.item_id, r.label) for k, r in rows(spark, paths, D2).items()}
    assert got == {"e10": (1, 10, 1), "e12": (1, 11, 0), "e14": (2, 11, 1), "e16": (2, 10, 0)}
    assert (result.rows[str(D2)], result.positives[str(D2)]) == (4, 2)
    assert result.recipe[str(D2)] == "impressions"


def test_features_are_those_of_the_day_before(impressions, spark):
    paths, result = impressions
    r = rows(spark, paths, D2)["e10"]
    assert result.features_day[str(D2)] == str(D1)
    # user 1 on D1: 1 impression, 1 engagement; item 10 on D1: the same
    assert (r.u_impressions_7d, r.u_engagements_7d, r.i_engagements_7d) == (1.0, 1.0, 1.0)
    assert r.history_item_ids == [10]  # D2's like is not there yet
    assert (r.country, r.category) == ("US", "music")
    first = rows(spark, paths, D1)["e1"]
    assert result.features_day[str(D1)] is None
    assert (first.label, first.u_engagements_7d, first.history_item_ids) == (1, 0.0, [])


def test_ratings_recipe_samples_negatives_deterministically(make_home, spark):
    paths = make_home("ratings_examples")
    d1 = [ev(1, at(D1, 8), 1, 10, "rating", 5.0)]
    d2 = [ev(2, at(D2, 8), 1, 11, "rating", 5.0), ev(3, at(D2, 9), 2, 12, "rating", 2.0)]
    catalog = [item(i, D1, "drama") for i in range(10, 40)]
    land(paths, {D1: d1, D2: d2}, {D1: [user(1, D1), user(2, D1)]}, {D1: catalog})
    ingest_all(spark, paths, [D1, D2], [D1, D2])
    build_features(spark, paths, [D1])
    build_training_examples(spark, paths, [D2])
    first = rows(spark, paths, D2)
    build_training_examples(spark, paths, [D2])
    assert {k: tuple(r) for k, r in rows(spark, paths, D2).items()} == {
        k: tuple(r) for k, r in first.items()
    }
    by_source = {}
    for r in first.values():
        by_source.setdefault(r.source, []).append(r)
    assert sorted((r.user_id, r.item_id, r.label) for r in by_source["rating"]) == [
        (1, 11, 1),
        (2, 12, 0),
    ]
    negs = by_source["sampled_negative"]
    assert 1 <= len(negs) <= NEGATIVES_PER_POSITIVE
    assert all(
        r.user_id == 1 and r.label == 0 and r.item_id != 11 and 10 <= r.item_id < 40 for r in negs
    )
    assert all(r.example_id.startswith("e2#neg") for r in negs)


def test_a_negative_is_never_an_item_the_user_engaged_with_before(make_home, spark):
    """User 1 rated 20 of the 24 catalog items on D1 (ratings of any value count as seen), then
    three more on D2: only the one item never rated may stay a negative. Without the features
    of D1, only the day's ratings exclude (the draws that are then kept prove they hit D1's)."""
    paths = make_home("seen_negatives")
    catalog = [item(i, D1, "drama") for i in range(10, 34)]
    d1 = [ev(100 + i, at(D1, 8, i), 1, i, "rating", 2.0 + (i % 4)) for i in range(10, 30)]
    d2 = [ev(k, at(D2, 8, k), 1, 30, "rating", 5.0) for k in range(1, 4)]  # three positives
    d2 = [{**e, "item_id": 30 + i} for i, e in enumerate(d2)]  # items 30, 31, 32
    land(paths, {D1: d1, D2: d2}, {D1: [user(1, D1)]}, {D1: catalog})
    ingest_all(spark, paths, [D1, D2], [D1, D2])

    # no features of D1 (allowed only here): same-day exclusion only
    build_training_examples(spark, paths, [D2], features_required=False)
    before = [r for r in rows(spark, paths, D2).values() if r.source == "sampled_negative"]
    assert {r.item_id for r in before} & set(range(10, 30))  # the draws do hit D1's items

    build_features(spark, paths, [D1])
    build_training_examples(spark, paths, [D2])
    after = [r for r in rows(spark, paths, D2).values() if r.source == "sampled_negative"]
    assert {r.item_id for r in after} <= {33}  # 30-32 rated that day, 10-29 before
    kept = {r.example_id for r in before if r.item_id == 33}
    assert {r.example_id for r in after} == kept  # the others dropped, not redrawn
    positives = [r for r in rows(spark, paths, D2).values() if r.source == "rating"]
    assert sorted(r.item_id for r in positives) == [30, 31, 32]
