"""The decision log's writer (``recassets.bento.decisions``) on its own: request ids, sampling,
files landed whole under their day, the bounded buffer, and a write that fails without
raising. The service's use of it: tests/unit/serving/test_service.py; over HTTP:
tests/integration/test_serving.py."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest

from recassets.bento import decisions as D

# How long a test waits for the thread's file. Each write is fsynced, and on a CI machine whose
# other worker runs Spark an fsync stalled past 10 s (stop 52's CI: nothing landed in 10 s);
# the tests that prove a flush came from records or bytes set an hour's interval, so a long
# wait cannot mistake the timed flush for them.
WAIT_S = 120


def _record(n: int, ts: str = "2026-01-03T10:00:00.000001Z") -> dict:
    return D.decision(
        request_id=f"r{n}", endpoint="recommend", user_id=n,
        items=[{"item_id": 7, "score": 0.5, "stages": ["retrieval", "ranking", "rules"]}],
        policy="model", features_day="2026-01-02",
        models={"two_tower": "two_tower/0001", "ranking": "ranking/0001"},
        bento="recassets_recommender:v1", ts=ts,
    )  # fmt: skip


def _files(landing: Path) -> list[Path]:
    return sorted((landing / D.DATASET).rglob("*"))


def _lines(landing: Path) -> list[dict]:
    out = []
    for f in _files(landing):
        if f.is_file():
            text = f.read_text()
            assert text.endswith("\n"), f  # whole lines only
            out += [json.loads(line) for line in text.splitlines()]
    return out


@pytest.mark.parametrize("header", ["abc", "A-b_9", "f" * 64, "0b6f1c2e11114a4a8b8b000000000001"])
def test_a_safe_header_is_the_request_id(header):
    assert D.request_id(header) == header


@pytest.mark.parametrize(
    "header",
    [None, "", "x" * 65, "caf\u00e9", "a\nb", "a\r\nX-Evil: 1", "a b", "a:b", "../x", "a@1"],
)
def test_a_missing_or_hostile_header_is_replaced(header):
    rid = D.request_id(header)
    assert rid != header and len(rid) == 32 and int(rid, 16) >= 0
    assert D.request_id(header) != rid  # a new one each time


@pytest.mark.parametrize(
    "header",
    ["latest", "users", "items", "raw_events", "serving_log", "training_examples",
     "user_features", "item_features", "cohort_features"],
)  # fmt: skip
def test_an_id_the_lineage_command_reads_as_something_else_is_replaced(header: str):
    from recassets.lineage.targets import TargetError, parse_target

    # the lineage command would not trace it as a request: a bento, or a table needing a day
    try:
        kind = parse_target(header).kind
    except TargetError:
        kind = None
    assert kind != "request"
    rid = D.request_id(header)
    assert rid != header and len(rid) == 32 and parse_target(rid).kind == "request"
    # near misses are ids like any other
    assert D.request_id(header + "-1") == header + "-1"


def test_a_batch_id_leaves_room_for_each_answers_id():
    from recassets.lineage.targets import parse_target

    assert D.batch_ids("b-7", 3) == ["b-7-0", "b-7-1", "b-7-2"]
    assert D.request_id("f" * 61, answers=10) == "f" * 61  # "-9": 63 characters
    too_long = D.request_id("f" * 63, answers=10)
    assert too_long != "f" * 63 and len(too_long) == 32
    assert D.request_id("f" * 62, answers=1) == "f" * 62  # "-0"
    for rid in (*D.batch_ids("f" * 61, 10), *D.batch_ids("latest-x", 2), *D.batch_ids("a", 64)):
        assert D.is_request_id(rid) and parse_target(rid).kind == "request", rid


def test_the_decision_record():
    r = _record(3)
    assert r["items"] == [
        {
            "item_id": 7,
            "score": 0.5,
            "stages": ["retrieval", "ranking", "rules"],
            "source": "retrieval",
        }
    ]
    assert (r["two_tower"], r["ranking"], r["bento"]) == ("two_tower/0001", "ranking/0001",
                                                          "recassets_recommender:v1")  # fmt: skip
    now = D.decision(request_id="x", endpoint="rank", user_id=1, items=[], policy=None,
                     features_day=None, models={}, bento=None)  # fmt: skip
    assert now["ts"].endswith("Z") and now["two_tower"] is None
    blended = {"item_id": 9, "score": 1.0, "stages": ["retrieval", "blend", "rules"],
               "sources": ("two_tower", "similarity")}  # fmt: skip
    got = D.decision(request_id="y", endpoint="recommend", user_id=1, items=[blended],
                     policy="model", features_day=None, models={}, bento=None)  # fmt: skip
    assert got["items"][0]["sources"] == ["two_tower", "similarity"]
    assert "sources" not in r["items"][0]  # the DCN-v2 order names none


def test_model_versions_and_the_bento_tag(tmp_path):
    manifest = {"lineage": {"two_tower": {"checkpoint": "/h/artifacts/models/two_tower/0003.pt"},
                            "ranking": {"checkpoint": "/h/artifacts/models/ranking/0002.pt"}}}  # fmt: skip
    assert D.model_versions(manifest) == {"two_tower": "two_tower/0003", "ranking": "ranking/0002"}
    assert D.model_versions({"lineage": {}}) == {"two_tower": None, "ranking": None}
    # a sequence-aware ranker that serves is named by its own store: what the lineage resolves
    seq = {"lineage": {"ranking": {"checkpoint": "/h/artifacts/models/sequence_ranking/0001.pt"}}}
    assert D.model_versions(seq)["ranking"] == "sequence_ranking/0001"
    src = tmp_path / "bento" / "src"
    src.mkdir(parents=True)
    assert D.bento_tag(src) is None  # not a built bento
    (src.parent / "bento.yaml").write_text(
        "name: recassets_recommender\nversion: 20260103T0-Model\n"
    )
    assert D.bento_tag(src) == "recassets_recommender:20260103t0-model"


def test_rate_zero_never_samples_and_one_always(tmp_path):
    draws = []

    def draw() -> float:
        draws.append(1)
        return 0.0

    off = D.DecisionLog(tmp_path, D.Settings(rate=0.0), draw=draw, background=False)
    assert not off.enabled and not any(off.sampled() for _ in range(100)) and draws == []
    on = D.DecisionLog(tmp_path, D.Settings(rate=1.0), draw=lambda: 0.999, background=False)
    assert all(on.sampled() for _ in range(100))
    seq = iter([0.1, 0.6, 0.29, 0.3, 0.95])
    half = D.DecisionLog(tmp_path, D.Settings(rate=0.3), draw=lambda: next(seq), background=False)
    assert [half.sampled() for _ in range(5)] == [True, False, True, False, False]


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({D.RATE_ENV: "1.5"}, D.RATE_ENV),
        ({D.RATE_ENV: "-0.1"}, D.RATE_ENV),
        ({D.RATE_ENV: "all"}, D.RATE_ENV),
        ({D.FLUSH_S_ENV: "0"}, D.FLUSH_S_ENV),
        # past threading.TIMEOUT_MAX the flush thread died at its first wait, and records
        # past the buffer were dropped; near zero it spun
        ({D.FLUSH_S_ENV: "inf"}, D.FLUSH_S_ENV),
        ({D.FLUSH_S_ENV: "1e300"}, D.FLUSH_S_ENV),
        ({D.FLUSH_S_ENV: "nan"}, D.FLUSH_S_ENV),
        ({D.FLUSH_S_ENV: "1e-320"}, D.FLUSH_S_ENV),
        ({D.FLUSH_RECORDS_ENV: "0"}, D.FLUSH_RECORDS_ENV),
        ({D.FLUSH_RECORDS_ENV: "ten"}, D.FLUSH_RECORDS_ENV),
    ],
)
def test_bad_settings_name_the_variable(env, name):
    with pytest.raises(ValueError, match=name):
        D.Settings.from_env(env)


def test_settings_from_env():
    assert D.Settings.from_env({}) == D.Settings(1.0, 500, 5.0)
    assert D.Settings.from_env({D.RATE_ENV: "0", D.FLUSH_S_ENV: "0.5"}).rate == 0.0
    assert D.Settings.from_env({D.FLUSH_S_ENV: "86400"}).flush_interval_s == 86_400.0


def test_the_longest_flush_interval_keeps_the_thread_waiting_and_close_lands(tmp_path):
    log = D.DecisionLog(tmp_path, D.Settings.from_env({D.FLUSH_S_ENV: "86400"}))
    try:
        for i in range(3):
            assert log.append(_record(i))
        time.sleep(0.2)  # the thread's first wait has begun (inf killed it there)
        assert log._thread is not None and log._thread.is_alive()
    finally:
        log.close()
    landed = [json.loads(line) for f in sorted(tmp_path.rglob("*.jsonl")) for line in f.open()]
    assert len(landed) == 3


def test_every_n_records_lands_a_whole_file_and_close_lands_the_rest(tmp_path):
    log = D.DecisionLog(tmp_path, D.Settings(flush_records=3, flush_interval_s=3600))
    try:
        for n in range(7):
            assert log.append(_record(n))
        deadline = time.monotonic() + WAIT_S
        while len(_lines(tmp_path)) < 6 and time.monotonic() < deadline:
            time.sleep(0.02)
        # the thread landed the first two batches of three without waiting for its interval
        assert len(_lines(tmp_path)) >= 6
    finally:
        log.close()
    records = _lines(tmp_path)
    assert sorted(r["request_id"] for r in records) == [f"r{n}" for n in range(7)]
    assert log.written == 7
    files = [f for f in _files(tmp_path) if f.is_file()]
    assert {f.parent.name for f in files} == {"dt=2026-01-03"}
    assert all(f.suffix == ".jsonl" and not f.name.startswith(".") for f in files)
    assert not log.append(_record(8))  # closed


def test_the_interval_lands_a_small_buffer(tmp_path):
    log = D.DecisionLog(tmp_path, D.Settings(flush_records=1000, flush_interval_s=0.05))
    try:
        log.append(_record(1))
        deadline = time.monotonic() + WAIT_S
        while not _lines(tmp_path) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert [r["request_id"] for r in _lines(tmp_path)] == ["r1"]
    finally:
        log.close()


def test_records_land_in_the_folder_of_their_day(tmp_path):
    log = D.DecisionLog(tmp_path, background=False)
    log.append(_record(1, "2026-01-03T23:59:59.999999Z"))
    log.append(_record(2, "2026-01-04T00:00:00.000000Z"))
    assert log.flush() == 2 and log.flush() == 0
    by_day = {f.parent.name: f.read_text() for f in _files(tmp_path) if f.is_file()}
    assert set(by_day) == {"dt=2026-01-03", "dt=2026-01-04"}
    assert '"request_id":"r2"' in by_day["dt=2026-01-04"]


def test_a_write_failure_drops_counts_and_warns_but_does_not_raise(tmp_path, caplog):
    (tmp_path / D.DATASET).write_text("not a folder")  # even root cannot mkdir under a file
    drops: list[tuple[int, str]] = []
    log = D.DecisionLog(tmp_path, on_drop=lambda n, why: drops.append((n, why)), background=False)
    assert log.append(_record(1)) and log.append(_record(2))
    with caplog.at_level(logging.WARNING, logger=D.__name__):
        assert log.flush() == 0
    assert drops == [(2, "write_error")]
    assert "2 record(s) of 2026-01-03 dropped" in caplog.text
    assert [p.name for p in tmp_path.iterdir()] == [D.DATASET]  # no temporary file left


def test_the_buffer_is_bounded(tmp_path):
    drops: list[tuple[int, str]] = []
    log = D.DecisionLog(tmp_path, max_buffer=2, on_drop=lambda n, why: drops.append((n, why)),
                        background=False)  # fmt: skip
    assert [log.append(_record(n)) for n in range(4)] == [True, True, False, False]
    assert drops == [(1, "buffer_full"), (1, "buffer_full")]
    assert log.flush() == 2


def test_an_unserializable_record_is_dropped_alone(tmp_path, caplog):
    drops: list[tuple[int, str]] = []
    log = D.DecisionLog(tmp_path, on_drop=lambda n, why: drops.append((n, why)), background=False)
    bad = _record(1)
    bad["items"][0]["score"] = float("nan")  # not JSON: ingestion would quarantine the line
    assert log.append(bad) is False and drops == [(1, "unserializable")]  # refused at once
    good = _record(2)
    assert log.append(good) is True
    good["items"][0]["score"] = float("nan")  # the line was made on append: it lands as it was
    with caplog.at_level(logging.WARNING, logger=D.__name__):
        assert log.flush() == 1 and drops == [(1, "unserializable")]
    assert "1 record(s) not JSON-serializable" in caplog.text
    assert [r["request_id"] for r in _lines(tmp_path)] == ["r2"]


def test_a_failing_metric_does_not_raise(tmp_path):
    def boom(n: int, why: str) -> None:
        raise RuntimeError("metrics down")

    log = D.DecisionLog(tmp_path, max_buffer=0, on_drop=boom, background=False)
    assert log.append(_record(1)) is False


def test_an_id_that_starts_with_a_dash_is_kept_and_traced_after_two_dashes():
    """1 nanoid in 64 starts with "-": replacing it lost the client's correlation; the lineage
    command reads it after ``--`` (``recassets lineage -- -h``)."""
    from recassets.lineage.targets import parse_target

    assert D.request_id("-h") == "-h" and parse_target("-h").kind == "request"


def test_a_flush_size_the_buffer_cannot_hold_twice_is_refused():
    """Above the buffer's bound the size trigger never fired: answers past 10,000 in one
    interval were dropped (``buffer_full``) with no word at start-up. The bound is half the
    buffer, so a second batch gathers while the first is written."""
    assert D.Settings.from_env({D.FLUSH_RECORDS_ENV: "5000"}).flush_records == 5000
    for value in ("5001", "20000"):
        with pytest.raises(ValueError, match=rf"{D.FLUSH_RECORDS_ENV}={value}: .*\b5000\b"):
            D.Settings.from_env({D.FLUSH_RECORDS_ENV: value})


def _pin_clock_and_pid(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two replicas in their own PID namespaces (both workers pid 23) flushing in the same
    microsecond, as on a shared ReadWriteMany volume."""
    import datetime as real_dt
    import os
    import types

    fixed = real_dt.datetime(2026, 1, 3, 12, 0, 0, 123456, tzinfo=real_dt.UTC)

    class Pinned(real_dt.datetime):
        @classmethod
        def now(cls, tz=None):
            return fixed

    clock = types.SimpleNamespace(datetime=Pinned, date=real_dt.date, UTC=real_dt.UTC)
    monkeypatch.setattr(D, "dt", clock)
    monkeypatch.setattr(os, "getpid", lambda: 23)


def test_two_replicas_with_the_same_pid_clock_and_sequence_both_land(tmp_path, monkeypatch):
    """The name was part-<time>-<pid>-<n>, put in place by os.replace: the second replica's
    batch replaced the first's, silently (2 records of 5 on disk, nothing counted)."""
    _pin_clock_and_pid(monkeypatch)
    drops: list[tuple[int, str]] = []
    pods = [D.DecisionLog(tmp_path, on_drop=lambda n, why: drops.append((n, why)),
                          background=False) for _ in range(2)]  # fmt: skip
    for i in range(3):
        pods[0].append(_record(i))
    for i in range(3, 5):
        pods[1].append(_record(i))
    assert pods[0].flush() == 3 and pods[1].flush() == 2
    assert sorted(r["request_id"] for r in _lines(tmp_path)) == [f"r{i}" for i in range(5)]
    assert drops == []
    names = [f.name for f in _files(tmp_path) if f.is_file()]
    assert len(names) == 2 and all(n.startswith("part-20260103T120000123456-23-") for n in names)


def test_a_name_already_taken_is_never_overwritten(tmp_path, monkeypatch):
    """Even the per-writer token the same (48 bits drawn alike): the file is created only
    where nothing is, and the batch lands under the next name."""
    import uuid

    _pin_clock_and_pid(monkeypatch)
    monkeypatch.setattr(D.uuid, "uuid4", lambda: uuid.UUID(int=7))
    first = D.DecisionLog(tmp_path, background=False)
    second = D.DecisionLog(tmp_path, background=False)
    first.append(_record(1))
    second.append(_record(2))
    assert first.flush() == 1 and second.flush() == 1
    assert sorted(r["request_id"] for r in _lines(tmp_path)) == ["r1", "r2"]
    assert not [f for f in _files(tmp_path) if f.name.startswith(".")]  # no temporary left


def test_a_volume_without_hard_links_still_lands(tmp_path, monkeypatch, caplog):
    """Exclusive creation is a hard link (``recassets.atomic``); a volume that takes none
    (EPERM) falls back to a rename, once warned: the names are unique without it."""
    import errno
    import os

    calls = []

    def no_link(src, dst):
        calls.append(dst)
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", no_link)
    drops: list[tuple[int, str]] = []
    log = D.DecisionLog(tmp_path, on_drop=lambda n, why: drops.append((n, why)), background=False)
    with caplog.at_level(logging.WARNING, logger=D.__name__):
        for n in range(2):
            log.append(_record(n))
            assert log.flush() == 1
    assert len(calls) == 1 and drops == []  # the second batch went straight to the rename
    assert caplog.text.count("takes no hard links") == 1
    assert sorted(r["request_id"] for r in _lines(tmp_path)) == ["r0", "r1"]


def test_an_answer_finishing_during_shutdown_is_landed_or_counted(tmp_path, monkeypatch):
    """close() ran while append() made the line (after its closed check): the record went into
    a buffer nothing landed again, and append said True. Now it is refused and counted."""
    import types

    drops: list[tuple[int, str]] = []
    log = D.DecisionLog(tmp_path, on_drop=lambda n, why: drops.append((n, why)), background=False)
    real = json.dumps

    def dumps_then_shut_down(*args, **kwargs):
        log.close()  # the service's on_shutdown, between the check and the append
        return real(*args, **kwargs)

    monkeypatch.setattr(D, "json", types.SimpleNamespace(dumps=dumps_then_shut_down))
    assert log.append(_record(1)) is False
    assert drops == [(1, "closed")] and log._buffer == []
    monkeypatch.setattr(D, "json", json)
    assert log.append(_record(2)) is False and drops == [(1, "closed"), (1, "closed")]


def test_temporary_files_a_killed_writer_left_are_swept_at_start(tmp_path):
    """A writer killed mid-write (SIGKILL, the OOM killer) left its ``.part-...tmp-PID`` for
    ever. The thread removes this module's temporary files older than an hour, at its start."""
    import os

    old = time.time() - 2 * 3600
    day = tmp_path / D.DATASET / "dt=2026-01-03"
    day.mkdir(parents=True)
    names = {
        "stale": ".part-20260103T100000000001-23-0a1b2c3d4e5f-000004.jsonl.tmp-23",
        "stale_old_name": ".part-20260103T100000000001-23-000004.jsonl.tmp-23",
        "fresh": ".part-20260103T115959000001-24-0a1b2c3d4e5f-000000.jsonl.tmp-24",
        "others": ".events.jsonl.tmp-23",  # another producer's: not this module's to remove
        "landed": "part-20260103T100000000001-23-0a1b2c3d4e5f-000003.jsonl",
    }
    for key, name in names.items():
        (day / name).write_text("{}\n")
        if key != "fresh":
            os.utime(day / name, (old, old))
    log = D.DecisionLog(tmp_path, D.Settings(flush_interval_s=60))
    try:
        deadline = time.monotonic() + WAIT_S
        while (day / names["stale"]).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        log.close()
    left = {p.name for p in day.iterdir()}
    assert left == {names["fresh"], names["others"], names["landed"]}


def _big_record(n: int, k: int = 200) -> dict:
    items = [{"item_id": 10_000 + i, "score": 0.123456789, "stages": ["retrieval", "ranking",
              "rules"]} for i in range(k)]  # fmt: skip
    return {**_record(n), "items": D.decision(
        request_id="r", endpoint="recommend", user_id=n, items=items, policy=None,
        features_day=None, models={}, bento=None)["items"]}  # fmt: skip


def test_the_buffer_is_bounded_in_bytes_too(tmp_path: Path):
    """10,000 records were the only bound: at k = 200 (31 KB a record) or a /rank of 1,000
    ids (104 KB) a stalled disk held 0.3 to 1 GB. Past ``max_bytes`` of JSON lines a record is
    dropped (``buffer_bytes``, a reason of its own, pre-registered with the others)."""
    size = len(json.dumps(_big_record(0), separators=(",", ":"))) + 1
    drops: list[tuple[int, str]] = []
    log = D.DecisionLog(tmp_path, D.Settings(flush_records=1000), max_bytes=3 * size,
                        on_drop=lambda n, why: drops.append((n, why)), background=False)  # fmt: skip
    assert [log.append(_big_record(n)) for n in range(5)] == [True, True, True, False, False]
    assert drops == [(1, "buffer_bytes"), (1, "buffer_bytes")]
    assert "buffer_bytes" in D.DROP_REASONS
    assert log.flush() == 3  # the count starts again with the next buffer
    assert log.append(_big_record(5)) and log.flush() == 1
    assert D.MAX_BUFFER_BYTES == 32 * 1024 * 1024


def test_large_records_are_landed_at_half_the_bytes_not_dropped(tmp_path: Path):
    """The flush fired at ``flush_records`` only: 500 records of 104 KB never reached it under
    the byte bound, and every record past the bound until the timed flush was dropped."""
    size = len(json.dumps(_big_record(0), separators=(",", ":"))) + 1
    drops: list[tuple[int, str]] = []
    log = D.DecisionLog(tmp_path, D.Settings(flush_records=1000, flush_interval_s=3600),
                        max_bytes=10 * size, on_drop=lambda n, why: drops.append((n, why)))  # fmt: skip
    try:
        for n in range(5):
            assert log.append(_big_record(n))
        deadline = time.monotonic() + WAIT_S
        while len(_lines(tmp_path)) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(_lines(tmp_path)) == 5  # landed by bytes, not by the hour's interval
    finally:
        log.close()
    assert drops == []
