"""landing_sensor, one test per cursor scenario, driven with build_sensor_context and explicit
cursors on a temporary home. Each asserts the exact run requests (partition, assets, key).
tests/dagster/test_sensors_landing_recovery.py has the failure modes (lost changes, unreadable
folders, clocks, the cursor's size)."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, SensorResult, build_sensor_context
from dagster._core.test_utils import create_run_for_test

from assets.partitions import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from recassets.freshness import (
    CURSOR_VERSION,
    LandingCursor,
    LandingNotSettledError,
    plan_landing,
    wait_until_settled,
)
from recassets.landing_state import load_cursor, state_dir
from recassets.paths import partition_window
from resources import LakeResource
from sensors.landing import landing_sensor
from tests.conftest import home_at

RAW, USERS, ITEMS = (AssetKey(["lake", t]) for t in ("raw_events", "users", "items"))
# Every landing run carries its days on to the online store (sensors/landing.py).
ONLINE = [AssetKey(["lake", t]) for t in ("user_features", "item_features", "cohort_features")]
ONLINE += [AssetKey(["featurestore", "feature_store"])]
ALL = [RAW, USERS, ITEMS, *ONLINE]
D1, D2, D3, D5 = "2026-01-01", "2026-01-02", "2026-01-03", "2026-01-05"
T0 = 1_767_225_600  # a fixed mtime (2026-01-01), so fingerprints are reproducible


def land(home: Path, dataset: str, day: str, name: str = "part-00000.jsonl", body: bytes = b"{}\n", mtime: int = T0) -> Path:  # fmt: skip
    folder = home / "landing" / dataset / f"dt={day}"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(body)
    os.utime(path, (mtime, mtime))
    return path


def land_day(home: Path, day: str) -> None:
    for dataset in ("events", "users", "items"):
        land(home, dataset, day)


def write_lineage(home: Path, dataset: str, day: str) -> None:
    """What ingestion writes after a partition (recassets.ingest.write_lineage): the files read."""
    table = {"events": "raw_events", "users": "users", "items": "items"}[dataset]
    folder = home / "landing" / dataset / f"dt={day}"
    inputs = [
        {"path": str(p), "size": p.stat().st_size, "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
        for p in sorted(folder.iterdir())
    ]  # fmt: skip
    target = home / "lineage" / table / f"dt={day}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps({"table": table, "partition": day, "inputs": inputs}))


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path


SETTLE = "RECASSETS_LANDING_SETTLE_SECONDS"


@pytest.fixture(autouse=True)
def _no_settling(monkeypatch):
    # The sensor counts a day settled once it has seen it unchanged for the settle time by its
    # own clock (one tick more); these scenarios are about cursors, and go at once. The
    # settling tests below set it, with a clock of their own.
    monkeypatch.setenv(SETTLE, "0")


class Clock:
    """The sensor's clock (recassets.freshness's ``time``), moved by hand."""

    def __init__(self, now: float):
        self.now = now

    def time(self) -> float:
        return self.now

    @staticmethod
    def monotonic() -> float:
        return time.monotonic()


@pytest.fixture
def clock(monkeypatch) -> Clock:
    import recassets.freshness as freshness

    fake = Clock(time.time())
    monkeypatch.setattr(freshness, "time", fake)
    return fake


def state(home: Path, result: SensorResult) -> LandingCursor:
    """What the tick's cursor stands for: the state file it names under the home."""
    cursor, problem = load_cursor(result.cursor, state_dir(home_at(home)))
    assert cursor is not None, problem
    return cursor


@pytest.fixture
def instance():
    with DagsterInstance.ephemeral() as inst:
        yield inst


def tick(home: Path, instance, cursor: str | None, log_handler=None) -> SensorResult:
    context = build_sensor_context(
        cursor=cursor, instance=instance, resources={"lake": LakeResource(home=str(home))}
    )
    if log_handler is not None:  # the tick log the UI shows (an InstigationLogger)
        context.log.addHandler(log_handler)
    result = landing_sensor(context)
    assert isinstance(result, SensorResult)
    return result


def requests(result: SensorResult) -> list[tuple[str | None, list[AssetKey], dict]]:
    return [(r.partition_key, list(r.asset_selection), dict(r.tags)) for r in result.run_requests]


def test_first_tick_ingests_every_landed_day_as_one_range(home, instance):
    land_day(home, D1)
    land_day(home, D2)
    result = tick(home, instance, None)
    [(partition, assets, tags)] = requests(result)
    assert partition is None and assets == ALL
    assert tags[PARTITION_RANGE_START_TAG] == D1
    assert tags[PARTITION_RANGE_END_TAG] == D2
    assert result.run_requests[0].run_key.startswith(f"landing:{D1}..{D2}:events+users+items:")
    assert json.loads(result.cursor)["version"] == CURSOR_VERSION
    assert sorted(state(home, result).fingerprints) == [f"{d}/{day}" for d in ("events", "items", "users") for day in (D1, D2)]  # fmt: skip


def test_first_tick_over_an_ingested_home_launches_nothing(home, instance):
    # The daemon starts over a home `recassets demo` built: the lineage says it is in the lake.
    land_day(home, D1)
    for dataset in ("events", "users", "items"):
        write_lineage(home, dataset, D1)
    result = tick(home, instance, None)
    assert result.run_requests == []
    assert "no new or changed" in result.skip_reason.skip_message
    assert len(state(home, result).fingerprints) == 3


def test_no_change_launches_nothing_and_keeps_the_cursor(home, instance):
    land_day(home, D1)
    first = tick(home, instance, None)
    again = tick(home, instance, first.cursor)
    assert again.run_requests == []
    assert json.loads(again.cursor) == json.loads(first.cursor)


def test_new_day_launches_exactly_that_partition(home, instance):
    land_day(home, D1)
    cursor = tick(home, instance, None).cursor
    land_day(home, D2)
    result = tick(home, instance, cursor)
    assert [(p, a) for p, a, _ in requests(result)] == [(D2, ALL)]
    assert result.run_requests[0].run_key.startswith(f"landing:{D2}:events+users+items:")


def test_late_file_in_an_old_day_reingests_only_that_day_and_dataset(home, instance):
    land_day(home, D1)
    land_day(home, D2)
    cursor = tick(home, instance, None).cursor
    land(home, "events", D1, name="part-00001.jsonl", mtime=T0 + 86_400)
    result = tick(home, instance, cursor)
    assert [(p, a) for p, a, _ in requests(result)] == [(D1, [RAW, *ONLINE])]
    assert "events/2026-01-01 (files changed)" in result.run_requests[0].tags["recassets/landing"]


def test_changed_file_relaunches_with_a_new_run_key(home, instance):
    land_day(home, D1)
    first = tick(home, instance, None)
    cursor = first.cursor
    land(home, "users", D1, body=b'{"user_id": 1}\n', mtime=T0 + 60)  # rewritten in place
    result = tick(home, instance, cursor)
    assert [(p, a) for p, a, _ in requests(result)] == [(D1, [USERS, *ONLINE])]
    assert result.run_requests[0].run_key != first.run_requests[0].run_key


def test_files_withdrawn_to_a_state_launched_before_launch_again(home, instance):
    """A late file landed and ingested, then withdrawn: the day's files were as at the first
    launch, so was its run key, and Dagster skipped the run as done; the withdrawn file's rows
    stayed in the lake. The key now carries the ingestion the lake holds, which changed."""
    land(home, "events", D1)
    first = tick(home, instance, None)
    write_lineage(home, "events", D1)  # as the first run leaves it: its run in the manifest
    manifest = home / "lineage" / "raw_events" / f"dt={D1}.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "run_id": "r1"}))
    late = land(home, "events", D1, name="part-00001.jsonl", mtime=T0 + 60)
    second = tick(home, instance, first.cursor)
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "run_id": "r2"}))
    late.unlink()  # withdrawn: the files are as at the first launch
    third = tick(home, instance, second.cursor)
    keys = [r.run_requests[0].run_key for r in (first, second, third)]
    assert len(set(keys)) == 3
    again = tick(home, instance, second.cursor)  # the same tick again (a restart): same key
    assert again.run_requests[0].run_key == keys[2]


def test_a_file_name_that_is_no_utf8_does_not_stop_the_sensor(home, instance):
    """A Latin-1 name (b"caf\xe9.jsonl") failed every tick with UnicodeEncodeError, and every
    other day waited behind it."""
    land_day(home, D1)
    folder = home / "landing" / "items" / f"dt={D2}"
    folder.mkdir(parents=True)
    with open(os.fsencode(folder) + b"/caf\xe9.jsonl", "wb") as f:
        f.write(b"{}\n")
    result = tick(home, instance, None)
    assert [(p, a) for p, a, _ in requests(result)][0][0] == D1  # the days go on


def test_temporary_and_hidden_files_are_not_landings(home, instance):
    land_day(home, D1)
    cursor = tick(home, instance, None).cursor
    land(home, "events", D1, name=".part-00001.jsonl.tmp")  # a producer mid-write
    land(home, "events", D1, name="_SUCCESS")
    (home / "landing" / "events" / f"dt={D2}").mkdir()  # a folder before its first file
    assert tick(home, instance, cursor).run_requests == []


def test_cursor_from_a_previous_daemon_survives_a_restart(home, instance):
    land_day(home, D1)
    stored = tick(home, instance, None).cursor  # what the old daemon stored
    land_day(home, D3)
    with DagsterInstance.ephemeral() as fresh:  # a new daemon process, same stored cursor
        result = tick(home, fresh, stored)
    assert [(p, a) for p, a, _ in requests(result)] == [(D3, ALL)]


def test_run_keys_are_idempotent_when_the_cursor_is_lost(home, instance):
    land_day(home, D1)
    first = tick(home, instance, None)
    lost = tick(home, instance, None)  # cursor lost before the run wrote its lineage
    assert [r.run_key for r in lost.run_requests] == [r.run_key for r in first.run_requests]


@pytest.mark.parametrize(
    "cursor, problem",
    [
        ("not json at all", "cursor is not JSON"),
        (json.dumps({"2026-01-01": "abc"}), "cursor version None is not 2"),  # legacy shape
        (json.dumps({"version": 99, "fingerprints": {}}), "cursor version 99 is not 2"),
        (json.dumps({"version": 1, "fingerprints": ["a"]}), "cursor has no fingerprints"),
        (json.dumps({"version": 2, "state": "0123456789abcdef"}), "cursor's state file"),
    ],
)
def test_corrupt_or_legacy_cursor_is_reported_and_rebuilt_from_lineage(home, instance, cursor, problem, caplog):  # fmt: skip
    land_day(home, D1)
    for dataset in ("events", "users", "items"):
        write_lineage(home, dataset, D1)  # D1 is in the lake
    land_day(home, D2)  # D2 is not
    result = tick(home, instance, cursor, log_handler=caplog.handler)
    assert [(p, a) for p, a, _ in requests(result)] == [(D2, ALL)]
    assert problem in caplog.text
    assert json.loads(result.cursor)["version"] == CURSOR_VERSION


def test_one_batch_per_tick_oldest_first_and_the_rest_not_forgotten(home, instance):
    land_day(home, D1)
    cursor = tick(home, instance, None).cursor
    land(home, "events", D1, name="late.jsonl", mtime=T0 + 99)
    land_day(home, D5)
    first = tick(home, instance, cursor)
    assert [(p, a) for p, a, _ in requests(first)] == [(D1, [RAW, *ONLINE])]
    assert "events/2026-01-05" not in state(home, first).fingerprints  # owed, not launched
    assert "events/2026-01-05" in state(home, first).owed
    second = tick(home, instance, first.cursor)
    assert [(p, a) for p, a, _ in requests(second)] == [(D5, ALL)]


def test_waits_while_an_ingest_run_is_in_flight(home, instance):
    land_day(home, D1)
    cursor = tick(home, instance, None).cursor
    land_day(home, D2)
    create_run_for_test(instance, job_name="ingest_job", status=DagsterRunStatus.STARTED)
    waiting = tick(home, instance, cursor)
    assert waiting.run_requests == []
    assert "in flight" in waiting.skip_reason.skip_message
    assert "events/2026-01-02" not in state(home, waiting).fingerprints
    assert "events/2026-01-02" in state(home, waiting).owed


def test_days_outside_the_partitions_are_skipped_with_a_warning(home, instance, caplog):
    land_day(home, "1999-01-01")
    result = tick(home, instance, None, log_handler=caplog.handler)
    assert result.run_requests == []
    assert "events/1999-01-01 skipped: not a daily partition" in caplog.text


def test_odd_folders_and_far_future_days_are_named_not_passed_over(home, instance, caplog):
    """``dt=banana``, ``dt=20260111`` (which Python reads as a day whose folder would be
    ``dt=2026-01-11``), a day of subfolders only and a day of 2099 were passed over in
    silence, the 2099 one opening 26,325 partitions ahead (each partition check 0.4 s)."""
    for name in ("dt=banana", "dt=20260111"):
        (home / "landing" / "events" / name).mkdir(parents=True)
    (home / "landing" / "users" / f"dt={D3}" / "hour=10").mkdir(parents=True)
    land_day(home, "2099-01-01")
    land_day(home, D1)  # the good day goes through
    first = tick(home, instance, None, log_handler=caplog.handler)
    assert [p for p, _, _ in requests(first)] == [D1]
    for said in ("events/dt=banana skipped: not a day folder", "events/dt=20260111 skipped",
                 f"users/{D3} skipped: holds folders only (hour=10)",
                 "events/2099-01-01 skipped: more than 7 days after today"):  # fmt: skip
        assert said in caplog.text
    quiet = tick(home, instance, first.cursor)  # nothing new: the skip reason says them too
    said = quiet.skip_reason.skip_message if quiet.skip_reason else ""
    assert "; 6 skipped: " in said and "events/dt=banana: not a day folder" in said
    assert partition_window(home_at(home)).days_ahead == 0


# --- files still being written (recassets.landing_scan.settled) ---------------------------------


def test_a_file_written_in_place_is_ingested_once_whole(home, instance, monkeypatch, clock):
    # A producer without the dot-name-and-rename convention: the file grows in place.
    monkeypatch.setenv(SETTLE, "60")
    land_day(home, D1)
    first = tick(home, instance, None)  # the sensor sees D1 for the first time: it waits
    assert first.run_requests == [] and "3 not settled yet: events/2026-01-01" in first.skip_reason.skip_message  # fmt: skip
    clock.now += 60
    cursor = tick(home, instance, first.cursor).cursor  # unchanged for 60 s: launched
    late = land(home, "events", D1, name="part-00001.jsonl", body=b'{"event_id": "e1", "ts', mtime=int(clock.now))  # fmt: skip
    writing = tick(home, instance, cursor)
    assert writing.run_requests == []
    assert "not settled yet: events/2026-01-01" in writing.skip_reason.skip_message
    assert "events/2026-01-01" in state(home, writing).pending
    clock.now += 30
    late.write_bytes(b'{"event_id": "e1", "ts": "2026-01-01T00:00:00Z"}\n{"event_id": "e2"')
    os.utime(late, (int(clock.now), int(clock.now)))
    still = tick(home, instance, writing.cursor)
    assert still.run_requests == []
    # The producer is done; its file is stamped two minutes ago (its clock), which proves
    # nothing: the sensor waits until it has seen the file unchanged for 60 s itself.
    late.write_bytes(b'{"event_id": "e1", "ts": "2026-01-01T00:00:00Z"}\n{"event_id": "e2"}\n')
    os.utime(late, (int(clock.now) - 120, int(clock.now) - 120))
    done = tick(home, instance, still.cursor)
    assert done.run_requests == []
    clock.now += 59
    assert tick(home, instance, done.cursor).run_requests == []
    clock.now += 1
    settled = tick(home, instance, done.cursor)
    assert [(p, a) for p, a, _ in requests(settled)] == [(D1, [RAW, *ONLINE])]
    assert state(home, settled).pending == {}
    assert tick(home, instance, settled.cursor).run_requests == []  # never twice


def test_settling_days_wait_while_settled_days_of_the_same_tick_go(home, instance, monkeypatch, clock):  # fmt: skip
    monkeypatch.setenv(SETTLE, "60")
    land_day(home, D1)
    path = land(home, "events", D2, mtime=int(clock.now))  # still being written
    first = tick(home, instance, None)
    assert first.run_requests == []
    clock.now += 60
    path.write_bytes(b"{}\n{}\n")  # D2 grew meanwhile: its wait starts over
    result = tick(home, instance, first.cursor)
    assert [(p, a) for p, a, _ in requests(result)] == [(D1, ALL)]
    assert "events/2026-01-02" not in state(home, result).fingerprints
    assert tick(home, instance, result.cursor).run_requests == []  # D2 still settling
    clock.now += 60
    assert [(p, a) for p, a, _ in requests(tick(home, instance, result.cursor))] == [(D2, [RAW, *ONLINE])]  # fmt: skip


def test_settle_seconds_zero_ingests_at_once(home, instance, monkeypatch):
    monkeypatch.setenv(SETTLE, "0")
    land(home, "events", D1, mtime=int(time.time()))
    assert [(p, a) for p, a, _ in requests(tick(home, instance, None))] == [(D1, [RAW, *ONLINE])]


def test_quiet_time_seen_by_the_sensor_settles_files_stamped_ahead_of_its_clock(home):
    # A file server whose clock runs an hour ahead: mtimes cannot tell quiet time, the
    # sensor's own observations (the cursor's pending) do.
    now = time.time()
    land(home, "events", D1, mtime=int(now) + 3600)
    first = plan_landing(home_at(home), None, settle_seconds=5, now=now)
    assert first.batches == [] and list(first.waiting) == ["events/2026-01-01"]
    cursor = first.cursor_after([]).to_json()
    soon = plan_landing(home_at(home), cursor, settle_seconds=5, now=now + 2)
    assert soon.batches == []
    later = plan_landing(home_at(home), soon.cursor_after([]).to_json(), settle_seconds=5, now=now + 5)  # fmt: skip
    assert [b.days for b in later.batches] == [(D1,)]
    # A change while settling starts the wait over.
    land(home, "events", D1, body=b"{}\n{}\n", mtime=int(now) + 3600)
    changed = plan_landing(home_at(home), soon.cursor_after([]).to_json(), settle_seconds=5, now=now + 5)  # fmt: skip
    assert changed.batches == [] and changed.pending["events/2026-01-01"][1] == now + 5


# --- a run launched by hand waits (recassets.landing_scan.wait_until_settled) ----------------


class FakeClock:
    """time.time and time.sleep for wait_until_settled; ``during_sleep`` runs at each sleep
    (a producer writing meanwhile)."""

    def __init__(self, now: float, during_sleep=None):
        self.now, self.slept, self.during_sleep = now, [], during_sleep

    def time(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(s)
        self.now += s
        if self.during_sleep is not None:
            self.during_sleep(self)


def test_a_manual_wait_returns_at_once_for_files_quiet_long_enough(home):
    clock = FakeClock(T0 + 60)
    land(home, "events", D1)  # mtime T0: a minute old
    waited = wait_until_settled(home_at(home), ["events"], [D1], 5, 300, clock=clock.time, sleep=clock.sleep)  # fmt: skip
    assert (waited, clock.slept) == (0, [])


def test_a_manual_wait_lasts_until_the_writer_stops_then_settle_seconds(home):
    path = land(home, "events", D1, mtime=T0)
    body, last_write = [b"{}\n"], []

    def writer(clock):  # appends in place for 3 s of the clock, stamping the file as it goes
        if clock.now < T0 + 3:
            last_write.append(clock.now)
            body.append(b"{}\n")
            path.write_bytes(b"".join(body))
            os.utime(path, (int(clock.now), int(clock.now)))

    clock = FakeClock(T0, writer)
    waited = wait_until_settled(home_at(home), ["events"], [D1, D2], 5, 300, clock=clock.time, sleep=clock.sleep)  # fmt: skip
    quiet_from = last_write[-1] - T0
    assert quiet_from >= 2 and quiet_from + 5 <= waited <= quiet_from + 5 + 1  # then 5 quiet s
    assert path.read_bytes().count(b"\n") == len(body) == 1 + len(last_write)


def test_a_manual_wait_gives_up_naming_the_folder_still_changing(home):
    path = land(home, "events", D1, mtime=T0)
    land(home, "users", D1, mtime=T0 - 600)  # settled: not named

    def writer(clock):
        path.write_bytes(path.read_bytes() + b"{}\n")
        os.utime(path, (int(clock.now), int(clock.now)))

    clock = FakeClock(T0, writer)
    with pytest.raises(LandingNotSettledError) as err:
        wait_until_settled(home_at(home), ["events", "users"], [D1], 5, 30, clock=clock.time, sleep=clock.sleep)  # fmt: skip
    assert "1 landing folder(s) still changing after 30 s" in str(err.value)
    assert f"landing/events/dt={D1}: files changed less than 5 s ago" in str(err.value)
    assert "users" not in str(err.value)


def test_a_manual_wait_follows_the_success_marker_and_zero_turns_it_off(home):
    land(home, "events", D1, mtime=T0)
    land(home, "events", D1, name="_SUCCESS", body=b"", mtime=T0 - 1)  # older than the file
    clock = FakeClock(T0 + 3600)
    with pytest.raises(LandingNotSettledError, match="a file is newer than its _SUCCESS marker"):
        wait_until_settled(home_at(home), ["events"], [D1], 5, 10, clock=clock.time, sleep=clock.sleep)  # fmt: skip
    assert wait_until_settled(home_at(home), ["events"], [D1], 0, 10, clock=clock.time, sleep=clock.sleep) == 0  # fmt: skip


def test_success_marker_decides_when_the_producer_writes_one(home, instance, monkeypatch, caplog):
    monkeypatch.setenv(SETTLE, "0")  # without markers every day would go at once
    land_day(home, D1)
    marker = land(home, "events", D1, name="_SUCCESS", body=b"", mtime=T0 - 1)  # before a file
    result = tick(home, instance, None, log_handler=caplog.handler)
    assert [(p, a) for p, a, _ in requests(result)] == [(D1, [USERS, ITEMS, *ONLINE])]
    assert "events/2026-01-01 a file is newer than its _SUCCESS marker" in caplog.text
    os.utime(marker, (T0 + 1, T0 + 1))  # the producer finished the folder
    done = tick(home, instance, result.cursor)
    assert [(p, a) for p, a, _ in requests(done)] == [(D1, [RAW, *ONLINE])]
    # This producer writes markers: its next day waits for one, however old its files.
    land(home, "events", D2)
    waiting = tick(home, instance, done.cursor)
    assert waiting.run_requests == []
    assert "events/2026-01-02 waiting for its _SUCCESS marker" in waiting.skip_reason.skip_message
    land(home, "events", D2, name="_SUCCESS", body=b"")
    assert [(p, a) for p, a, _ in requests(tick(home, instance, waiting.cursor))] == [(D2, [RAW, *ONLINE])]  # fmt: skip


def test_daemon_restarted_mid_tick_requests_the_same_run_and_loses_no_day(home, instance):
    # The daemon dies after a tick asked for its run but before it stored the cursor: the next
    # daemon ticks from the previous cursor, asks for the same run key (Dagster launches a key
    # once), and the days the lost tick did not launch still come, oldest first.
    land_day(home, D1)
    stored = tick(home, instance, None).cursor
    land_day(home, D2)
    land(home, "events", D5)
    lost = tick(home, instance, stored)  # its cursor never reached storage
    with DagsterInstance.ephemeral() as fresh:
        again = tick(home, fresh, stored)
        assert [r.run_key for r in again.run_requests] == [r.run_key for r in lost.run_requests]
        assert [(p, a) for p, a, _ in requests(again)] == [(D2, ALL)]
        rest = tick(home, fresh, again.cursor)
    assert [(p, a) for p, a, _ in requests(rest)] == [(D5, [RAW, *ONLINE])]
