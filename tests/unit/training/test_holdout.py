"""How many of the newest days the models leave to the evaluation when the run does not say
(``examples.choose_holdout``): enough to hold the users a decision needs, within bounds, the
same for the trainer, EASE and the retrain sensor."""

from __future__ import annotations

from pathlib import Path

import pytest

from recassets.paths import Paths
from recassets.training import policy as P
from recassets.training import similarity as S
from recassets.training.examples import choose_holdout
from support import planted

from .tiny import TINY


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    return Paths.at(tmp_path / "home")


def day_rows(d: int, **kw: object):
    """Day d with its own 48 users (ids d x 1000 ...), so the users of several days add up."""
    return planted.make_day(d, n_users=48, user_offset=d * 1000, **kw)


def write(paths: Paths, days: range, **kw: object) -> None:
    for d in days:
        planted.write_day(paths.table("training_examples"), day_rows(d, **kw))


def positive_users(days: range) -> int:
    """Counted here from the rows written, not by the code under test."""
    users = set()
    for d in days:
        rows = day_rows(d).to_pylist()
        users |= {r["user_id"] for r in rows if r["label"] == 1}
    return len(users)


def test_a_day_with_enough_users_is_the_whole_window(paths):
    write(paths, range(12))
    newest = positive_users(range(11, 12))
    h = choose_holdout(paths, min_users=40)
    assert 40 <= newest and (h.days, h.users) == (1, newest) and f"{newest} users" in h.reason
    # the same table, more users wanted: the newest days add theirs until there are enough
    assert positive_users(range(10, 12)) < 100 <= positive_users(range(9, 12))
    h = choose_holdout(paths, min_users=100)
    assert (h.days, h.users) == (3, positive_users(range(9, 12)))


def test_the_window_stops_at_its_bounds_and_says_so(paths):
    write(paths, range(12))
    h = choose_holdout(paths, min_users=10_000)  # a quarter of 12 days
    assert h.days == 3 and h.users == positive_users(range(9, 12))
    assert "fewer than the 10000 wanted" in h.reason
    assert choose_holdout(paths, min_users=10_000, max_days=2).days == 2
    assert choose_holdout(paths, min_users=10_000, max_share=2).days == 6
    # the defaults: 300 users, at most 28 days and a quarter of them
    assert choose_holdout(paths).days == 3


def test_only_users_with_a_positive_count(paths):
    write(paths, range(10, 12), p_match=0.0, p_other=0.0)  # the newest two: no positive
    write(paths, range(10))
    h = choose_holdout(paths, min_users=40, max_share=1)
    # days 11 and 10 held no one, day 9 its users
    assert (h.days, h.users) == (3, positive_users(range(9, 10)))


def test_a_fixed_holdout_is_taken_as_asked_and_short_tables_hold_one_day(paths):
    assert choose_holdout(paths).days == 1  # no table yet: the trainer then says so
    write(paths, range(3))
    assert choose_holdout(paths, 5).days == 5 and choose_holdout(paths, 0).days == 0
    assert choose_holdout(paths, min_users=10_000).days == 1  # 3 days: a quarter is under one


def test_the_trainer_ease_and_the_retrain_sensor_hold_out_the_same_days(paths):
    from sensors.retrain import holdout_days

    write(paths, range(8))  # 48 users a day: 300 are out of reach, a quarter of 8 days is 2
    result = P.train_next(paths, "two_tower", TINY)
    assert result.holdout.days == 2 and result.holdout.users == positive_users(range(6, 8))
    assert result.partitions == [planted.day(d) for d in range(6)]
    assert holdout_days(paths) == 2
    sim, _, _ = S.train_next(paths, l2=5.0, beta=0.1)
    assert sim.meta["partitions"] == result.partitions
    # a run that fixes it trains on what it says
    fixed = P.train_next(paths, "ranking", TINY, holdout_days=1)
    assert fixed.partitions == [planted.day(d) for d in range(7)]
    assert fixed.holdout.users is None and "fixed" in fixed.holdout.reason


def test_a_table_whose_days_are_strings_is_read_alike(tmp_path: Path):
    """A hand-made table may partition by a string ``dt``; the lake writes dates."""
    import pyarrow as pa
    from deltalake import write_deltalake

    days = [f"2026-01-{d:02d}" for d in range(1, 9)]
    rows = pa.table({"user_id": [1, 2, 3, 4, 5, 6, 7, 8], "label": [1] * 8, "dt": days})
    write_deltalake(str(tmp_path / "t"), rows, partition_by=["dt"])
    h = choose_holdout(tmp_path / "t", min_users=2)
    assert (h.days, h.users) == (2, 2)
