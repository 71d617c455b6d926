"""The guard of derived days (``recassets.ingested``): features and training examples of a day
whose inputs were never ingested are refused by name, with the command that ingests them; what
was ingested, landed or not, passes, also in a lake copied without its lineage folder."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest

from recassets.features.pipelines import build_features
from recassets.ingest import ingest
from recassets.ingested import NotIngestedError, ingested_days
from recassets.lake import is_delta_table
from recassets.training.examples import build_training_examples
from tests.unit.features.test_pipelines import at, ev, item, land, user

D1, D2, D3, D4 = (dt.date(2026, 1, k) for k in range(1, 5))
FEATURES = ("user_features", "item_features", "cohort_features")


def landed_world(paths) -> None:
    """Events on D1, D2 and D4 (none on D3), a user each day, the items on D1 only (as the
    synthetic world lands them)."""
    land(
        paths,
        {d: [ev(k, at(d, 9), 1, 10, "impression"), ev(10 + k, at(d, 9, 1), 1, 10, "click")]
         for k, d in enumerate((D1, D2, D4), start=1)},
        {d: [user(k, d)] for k, d in enumerate((D1, D2, D3, D4), start=1)},
        {D1: [item(10, D1, "music"), item(11, D1, "news")]},
    )  # fmt: skip


@pytest.fixture(scope="module")
def partly(make_home, spark):
    """The world landed, only D1 ingested."""
    paths = make_home("guard")
    landed_world(paths)
    ingest(spark, paths, "events", [D1])
    for dataset in ("users", "items"):
        ingest(spark, paths, dataset, [D1], allow_missing_days=True)
    return paths


def test_the_message_names_each_table_its_days_and_the_command():
    err = NotIngestedError("user_features of 2026-01-04", {"raw_events": [D4, D2], "users": []})
    assert str(err) == (
        "user_features of 2026-01-04 read raw_events 2026-01-02, 2026-01-04, not yet ingested: "
        "materialize lake/raw_events for 2026-01-02..2026-01-04 first (recassets materialize "
        "--select lake/raw_events --first 2026-01-02 --last 2026-01-04)"
    )
    same = NotIngestedError("training_examples of 2026-01-03", {t: [D2] for t in FEATURES})
    assert str(same).startswith(
        "training_examples of 2026-01-03 read user_features, item_features, cohort_features "
        "2026-01-02, not yet built: materialize lake/user_features,lake/item_features,"
    )


def test_a_fresh_home_is_refused_by_name_not_by_spark(make_home, spark):
    paths = make_home("guard-fresh")
    landed_world(paths)
    named = "read raw_events, users, items 2026-01-01, not yet ingested"
    with pytest.raises(NotIngestedError, match=named):
        build_features(spark, paths, [D1])
    with pytest.raises(NotIngestedError, match="--select lake/raw_events,lake/users,lake/items "):
        build_training_examples(spark, paths, [D1])
    assert not any(is_delta_table(spark, paths.table(t)) for t in (*FEATURES, "training_examples"))


def test_a_day_never_ingested_and_a_landed_gap_in_its_window_are_refused(partly, spark):
    """D4's own events, D2's (landed, in D4's window) and the users of D2..D4 (landed); not
    D3's events (nothing landed) nor the items of D2..D4 (none landed)."""
    with pytest.raises(NotIngestedError) as caught:
        build_features(spark, partly, [D4])
    assert caught.value.missing == {"raw_events": [D2, D4], "users": [D2, D3, D4]}
    assert str(caught.value).endswith(
        "(recassets materialize --select lake/raw_events,lake/users --first 2026-01-02 "
        "--last 2026-01-04)"
    )
    with pytest.raises(NotIngestedError) as caught:
        build_training_examples(spark, partly, [D4])
    assert caught.value.missing == {"raw_events": [D4], "users": [D2, D3, D4]}
    assert not is_delta_table(spark, partly.table("user_features"))  # nothing written


@pytest.fixture(scope="module")
def caught_up(partly, spark, make_home):
    """``partly`` with D2..D4 ingested (D3's events an empty partition: a range with files)."""
    ingest(spark, partly, "events", [D2, D3, D4])
    ingest(spark, partly, "users", [D2, D3, D4], allow_missing_days=True)
    return partly


def test_examples_need_the_features_of_the_day_before_except_on_the_first_day(caught_up, spark):
    with pytest.raises(NotIngestedError) as caught:
        build_training_examples(spark, caught_up, [D1, D4])  # D1: the first day, no d-1
    assert caught.value.missing == {t: [D3] for t in FEATURES}
    assert "not yet built" in str(caught.value)
    build_features(spark, caught_up, [D1, D2, D3, D4])  # items of D2..D4 never landed: fine
    result = build_training_examples(spark, caught_up, [D1, D4])
    assert result.features_day == {str(D1): None, str(D4): str(D3)}
    assert result.rows[str(D4)] == 1


def test_a_lake_copied_without_its_lineage_still_counts_what_it_ingested(
    caught_up, spark, make_home
):
    """No manifest in the copy: D4 counts by its rows, the empty D3 by the ingestion commit
    that names it; a day neither holds does not count, nor do manifests without their lake."""
    copy = make_home("guard-copy")
    shutil.copytree(caught_up.table("raw_events"), copy.table("raw_events"))
    assert ingested_days(spark, copy, "raw_events", [D3, D4, D4 + dt.timedelta(days=1)]) == {
        D3,
        D4,
    }
    assert ingested_days(spark, caught_up, "raw_events", [D3]) == {D3}  # its manifest
    moved = make_home("guard-lineage-only")  # manifests without their lake vouch for nothing
    shutil.copytree(caught_up.lineage, moved.lineage)
    assert ingested_days(spark, moved, "raw_events", [D3, D4]) == set()


def test_a_day_nothing_landed_on_is_no_gap_its_features_and_the_next_examples_build(
    make_home, spark
):
    """A live feed's day of outage: no events folder for D3, so nothing to ingest (a single
    day without files cannot be: ``ingest.files.empty_days_allowed``). Its features are its
    window without it, and D4's examples read them; requiring D3's events refused both for
    good."""
    paths = make_home("guard-outage")
    landed_world(paths)
    ingest(spark, paths, "events", [D1, D2])
    ingest(spark, paths, "events", [D4])  # the landing sensor's path: each day that landed
    ingest(spark, paths, "users", [D1, D2, D3, D4], allow_missing_days=True)
    ingest(spark, paths, "items", [D1], allow_missing_days=True)
    assert ingested_days(spark, paths, "raw_events", [D3]) == set()
    build_features(spark, paths, [D1, D2, D3, D4])
    result = build_training_examples(spark, paths, [D4])
    assert result.features_day == {str(D4): str(D3)} and result.rows[str(D4)] == 1


def test_a_real_historys_many_dimension_days_leave_the_command_in_the_line():
    """Users landed on 90 scattered days: the message named every run of them and the command
    came after 1,500 characters, past the 500 the CLI's failure line keeps."""
    days = [D1 + dt.timedelta(days=2 * i) for i in range(90)]
    err = str(NotIngestedError("user_features of 2026-07-01", {"users": days}))
    assert "users 2026-01-01, 2026-01-03, 2026-01-05 and 87 more runs of days, not yet" in err
    assert len(err) < 500 and err.endswith("--last 2026-06-28)")
