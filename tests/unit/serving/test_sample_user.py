"""The demo's sample user (``server._modest_history``): a user with a history, of modest
length, so the page shows the model at work."""

from __future__ import annotations

from recassets.bento.server import _modest_history


def test_the_sample_has_a_history_even_when_most_users_have_none():
    ids = list(range(1, 11))
    seen = [0, 0, 0, 0, 0, 0, 0, 9, 3, 40]  # most users without a rating (u.user's others)
    assert _modest_history(ids, seen) == 8  # before: user 1, no history (the median was 0)
    assert _modest_history([5, 2, 7], [12, 30, 4]) == 5  # the longest history is passed over
    assert _modest_history([5, 2], [0, 0]) == 2  # nobody has one: the lowest id
