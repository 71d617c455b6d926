"""landing_sensor's failure modes (review of 2026-12-07), one test each: a correction landing
while its day is being ingested, an unreadable folder, a landing machine's clock ahead or
behind, and what each tick stores and logs. Helpers from test_sensors_landing."""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.test_utils import create_run_for_test

from recassets.freshness import plan_landing
from tests.conftest import home_at
from tests.dagster.test_sensors_landing import (
    ALL,
    D1,
    D2,
    ONLINE,
    RAW,
    SETTLE,
    T0,
    land,
    land_day,
    requests,
    tick,
    write_lineage,
)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


@pytest.fixture(autouse=True)
def _no_settling(monkeypatch):
    monkeypatch.setenv(SETTLE, "0")  # as in test_sensors_landing: tests that settle set it


def _manifest(home: Path, dataset: str, day: str, read: dict[str, bytes], run_id: str) -> Path:
    """The lineage manifest an ingest run writes when it commits: the files as it read them."""
    table = {"events": "raw_events", "users": "users", "items": "items"}[dataset]
    folder = home / "landing" / dataset / f"dt={day}"
    inputs = [
        {"path": str(folder / name), "size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
        for name, body in read.items()
    ]
    target = home / "lineage" / table / f"dt={day}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"table": table, "run_id": run_id, "inputs": inputs}))
    return target


# --- 1. a change deferred while its day is ingested is not lost ----------------------------------


def test_a_same_size_correction_landing_while_its_day_is_ingested_is_ingested(home, instance):
    """The day's run read the files; the producer corrected a rating (3 -> 4, same size) before
    the run wrote its manifest. The sensor saw the change while the run was in flight, dropped
    the day from its cursor, and on the next tick took the manifest (same names and sizes,
    written after the correction) for the lake holding it: the correction was never ingested."""
    v1, v2 = b'{"user_id":1,"item_id":7,"rating":3}\n', b'{"user_id":1,"item_id":7,"rating":4}\n'
    path = land(home, "events", D1, body=v1)
    first = tick(home, instance, None)
    assert [p for p, _, _ in requests(first)] == [D1]
    run = create_run_for_test(instance, job_name="ingest_job", status=DagsterRunStatus.STARTED)
    path.write_bytes(v2)  # after the run read v1
    os.utime(path, (T0 + 60, T0 + 60))
    waiting = tick(home, instance, first.cursor)
    assert waiting.run_requests == [] and "in flight" in waiting.skip_reason.skip_message
    manifest = _manifest(home, "events", D1, {path.name: v1}, run.run_id)  # the run commits v1
    os.utime(manifest, (T0 + 120, T0 + 120))  # after the correction
    instance.report_run_failed(run)  # ended: no longer in flight
    again = tick(home, instance, waiting.cursor)
    assert [(p, a) for p, a, _ in requests(again)] == [(D1, [RAW, *ONLINE])]
    assert "events/2026-01-01 (files changed)" in again.run_requests[0].tags["recassets/landing"]
    # the cursor lost as well: the lineage is compared by content, and says the same
    assert [p for p, _, _ in requests(tick(home, instance, None))] == [D1]


# --- 3. one unreadable folder does not stop the others --------------------------------------------


def _refuse(monkeypatch, method: str, where: Path, err: int) -> None:
    """``Path.<method>`` raises ``OSError(err)`` for ``where``, as another user's 0700 folder
    (EACCES) or a stale NFS handle (ESTALE) does."""
    real = getattr(Path, method)

    def refusing(self, *args, **kwargs):
        if self == where:
            raise OSError(err, os.strerror(err), str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, method, refusing)


def test_an_unreadable_day_folder_is_named_and_the_other_days_go(home, instance, monkeypatch, caplog):  # fmt: skip
    land_day(home, D1)
    land(home, "events", D2)
    folder = home / "landing" / "events" / f"dt={D2}"
    with monkeypatch.context() as m:
        _refuse(m, "iterdir", folder, errno.EACCES)
        first = tick(home, instance, None, log_handler=caplog.handler)
    assert [(p, a) for p, a, _ in requests(first)] == [(D1, ALL)]
    assert f"events/{D2} skipped: cannot be read (Permission denied: {folder})" in caplog.text
    later = tick(home, instance, first.cursor)  # readable again: it goes
    assert [(p, a) for p, a, _ in requests(later)] == [(D2, [RAW, *ONLINE])]


def test_an_unreadable_file_or_dataset_folder_is_named_and_the_other_days_go(home, instance, monkeypatch, caplog):  # fmt: skip
    land_day(home, D1)
    stale = land(home, "events", D2, name="part-00009.jsonl")
    land(home, "users", D2)
    with monkeypatch.context() as m:
        _refuse(m, "stat", stale, errno.ESTALE)
        _refuse(m, "iterdir", home / "landing" / "items", errno.EACCES)
        first = tick(home, instance, None, log_handler=caplog.handler)
    assert [(p, a) for p, a, _ in requests(first)][0][0] == D1
    assert f"events/{D2} skipped: cannot be read (Stale file handle: {stale})" in caplog.text
    assert "items/ skipped: cannot be listed (Permission denied:" in caplog.text


# --- 6. the landing machine's clock is never compared with the sensor's or the lake's ------------


def test_a_cursor_rebuilt_over_a_landing_clock_ahead_reingests_nothing(home):
    """Files stamped 15 minutes ahead (the landing machine's clock), ingested an hour ago by the
    lake's: "file newer than its manifest" re-ingested every day when the cursor was rebuilt."""
    now = time.time()
    for day in ("2026-12-01", "2026-12-02", "2026-12-03"):
        path = land(home, "events", day, mtime=int(now + 900))
        manifest = _manifest(home, "events", day, {path.name: b"{}\n"}, "r1")
        os.utime(manifest, (now - 3000, now - 3000))
    plan = plan_landing(home_at(home), None, settle_seconds=5, now=now)
    assert (plan.batches, plan.waiting, len(plan.unchanged)) == ([], {}, 3)


def test_a_half_written_file_stamped_behind_the_sensors_clock_waits(home):
    """A landing clock a minute behind stamps a file being appended to a minute in the past:
    "unchanged for settle_seconds" by its mtime, it was ingested half-written."""
    now = time.time()
    path = land(home, "events", "2026-12-06", body=b'{"a":1}\n{"a":', mtime=int(now - 60))
    first = plan_landing(home_at(home), None, settle_seconds=5, now=now)
    assert first.batches == [] and list(first.waiting) == ["events/2026-12-06"]
    path.write_bytes(b'{"a":1}\n{"a":2}\n')  # the producer finishes, still stamped behind
    os.utime(path, (now - 55, now - 55))
    finished = plan_landing(home_at(home), first.cursor_after([]).to_json(), settle_seconds=5, now=now + 5)  # fmt: skip
    assert finished.batches == []  # changed since the sensor last looked: waits again
    quiet = plan_landing(home_at(home), finished.cursor_after([]).to_json(), settle_seconds=5, now=now + 10)  # fmt: skip
    assert [b.days for b in quiet.batches] == [("2026-12-06",)]


# --- 5. what a tick stores and logs -------------------------------------------------------------


class _Count(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record.getMessage())


def test_a_tick_stores_a_short_cursor_and_warns_once_per_skipped_day(home, instance):
    """Each tick (every 5 s) stored the whole map of fingerprints (126 KB over a 3-year
    history) with its tick row, and logged one warning per skipped day (2,265 records)."""
    import datetime as dt

    for i in range(120):
        land_day(home, (dt.date(2026, 1, 1) + dt.timedelta(days=i)).isoformat())
    for i in range(30):  # before the first partition (RECASSETS_START_DATE): skipped
        land_day(home, (dt.date(1999, 1, 1) + dt.timedelta(days=i)).isoformat())
    said = _Count()
    first = tick(home, instance, None, log_handler=said)
    assert len(first.cursor or "") < 200
    warned = [r for r in said.records if "skipped" in r]
    assert len(warned) == 21 and "and 70 more newly skipped" in warned[-1]  # 20, then one line
    (launch,) = [r for r in said.records if "ingest" in r]
    assert launch.startswith("landing_sensor: ingest 120 days 2026-01-01..2026-04-30 of events+users+items (360 day folders")  # fmt: skip
    assert len(launch) < 200
    said.records.clear()
    quiet = tick(home, instance, first.cursor, log_handler=said)
    assert quiet.run_requests == [] and said.records == []  # nothing new: nothing said
    assert len(quiet.skip_reason.skip_message) < 1200 and "; 90 skipped: " in quiet.skip_reason.skip_message  # fmt: skip
    assert len(quiet.cursor or "") < 200


def test_a_day_deferred_while_settling_keeps_its_fingerprint(home, instance, monkeypatch):
    """The same loss with settling on: the changed day waits, and the cursor keeps what was
    launched, so the next tick still sees it changed (before, it was dropped)."""
    from tests.dagster.test_sensors_landing import state

    land(home, "events", D1)
    first = tick(home, instance, None)
    monkeypatch.setenv(SETTLE, "60")
    land(home, "events", D1, body=b"[]\n", mtime=T0 + 60)  # same size, other bytes
    waiting = tick(home, instance, first.cursor)
    assert waiting.run_requests == []
    assert state(home, waiting).fingerprints == state(home, first).fingerprints


@pytest.mark.parametrize("budget, per_tick", [(0.0, 1), (60.0, 3)])
def test_the_lineage_check_hashes_within_a_budget_and_progresses(home, budget, per_tick):
    """A cursor lost over a large history: each tick compares at most its budget of files with
    their lineage (at least one day), records them, and the next tick goes on."""
    for day in ("2026-01-01", "2026-01-02", "2026-01-03"):
        land(home, "events", day)
        write_lineage(home, "events", day)
    cursor, known = None, []
    for _ in range(3):
        plan = plan_landing(home_at(home), cursor, hash_budget_s=budget)
        assert plan.batches == []
        known.append(len(plan.unchanged))
        cursor = plan.cursor_after([]).to_json()
    assert known == [min(3, per_tick * n) for n in (1, 2, 3)]
