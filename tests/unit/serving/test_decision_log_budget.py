"""The decision log's byte budget per worker (``RECASSETS_DECISION_LOG_MAX_BYTES_PER_S``):
a /rank of 1,000 ids logs about 84 KB, so repeated requests grew the landing folder by
6.5 MB/s a worker with nothing to bound the disk. Records within the budget (a minute of it
as a burst, refilled at the rate) all land; past it they are dropped, counted under
``byte_budget`` and warned at most once a minute, never in silence."""

from __future__ import annotations

import json
import logging

import pytest

from recassets.bento import decisions as D
from tests.unit.serving.test_decisions import _lines, _record

LINE = len(json.dumps(_record(0), separators=(",", ":")).encode()) + 1


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _log(tmp_path, per_s, clock, drops):
    settings = D.Settings(max_bytes_per_s=per_s)
    return D.DecisionLog(
        tmp_path, settings, background=False, clock=clock,
        on_drop=lambda n, reason: drops.append((n, reason)),
    )  # fmt: skip


def test_records_within_the_budget_all_land(tmp_path):
    clock, drops = _Clock(), []
    log = _log(tmp_path, LINE * 10 // D.BUDGET_WINDOW_S + 1, clock, drops)  # 10 lines a window
    assert all(log.append(_record(n)) for n in range(10))
    log.flush()
    assert [r["request_id"] for r in _lines(tmp_path)] == [f"r{n}" for n in range(10)]
    assert drops == []


def test_records_past_the_budget_are_dropped_counted_and_warned_once(tmp_path, caplog):
    clock, drops = _Clock(), []
    log = _log(tmp_path, LINE * 10 // D.BUDGET_WINDOW_S + 1, clock, drops)
    with caplog.at_level(logging.WARNING, logger=D.__name__):
        landed = [log.append(_record(n)) for n in range(25)]
    assert landed == [True] * 10 + [False] * 15
    assert drops == [(1, "byte_budget")] * 15 and "byte_budget" in D.DROP_REASONS
    warned = [r for r in caplog.records if D.MAX_BYTES_PER_S_ENV in r.getMessage()]
    assert len(warned) == 1  # once a minute, not once a record
    clock.now += D.BUDGET_WINDOW_S / 2  # half a window refills half the budget
    assert [log.append(_record(n)) for n in range(25, 31)] == [True] * 5 + [False]
    log.flush()
    assert len(_lines(tmp_path)) == 15


def test_the_budget_setting_is_bounded():
    assert D.Settings.from_env({}).max_bytes_per_s == 2 * 1024 * 1024
    got = D.Settings.from_env({D.MAX_BYTES_PER_S_ENV: "65536"})
    assert got.max_bytes_per_s == 65536
    for bad in ("0", "-5", "1e12", "lots", "1.5"):
        with pytest.raises(ValueError, match=D.MAX_BYTES_PER_S_ENV):
            D.Settings.from_env({D.MAX_BYTES_PER_S_ENV: bad})
