"""recassets.freshness: the loop's decisions as plain functions, on tiny inputs."""

from __future__ import annotations

import hashlib
import json
import os
import time

import pytest

from recassets.freshness import (
    LandedDay,
    LandingCursor,
    env_int,
    landed_day,
    lineage_matches,
    pending_training_days,
    plan_landing,
    retrain_run_key,
)
from support.stopwatch import Stage, watch

T0 = 1_767_225_600


def land(paths, dataset, day, name="part-00000.jsonl", mtime=T0):
    folder = os.path.join(paths.landing_dir(dataset, day))
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    with open(path, "wb") as f:
        f.write(b"{}\n")
    os.utime(path, (mtime, mtime))
    return path


@pytest.mark.parametrize(
    "available, consumed, holdout, expected",
    [
        (["d1", "d2", "d3"], {"a": ["d1", "d2"], "b": ["d1", "d2"]}, 1, []),
        (["d1", "d2", "d3", "d4"], {"a": ["d1", "d2"], "b": ["d1", "d2"]}, 1, ["d3"]),
        (["d1", "d2", "d3"], {"a": None, "b": None}, 1, ["d1", "d2"]),  # no checkpoint yet
        (["d1", "d2", "d3"], {"a": ["d1", "d2"], "b": ["d1"]}, 1, ["d2"]),  # one kind behind
        (["d1", "d2", "d3"], {"a": ["d1"], "b": ["d1"]}, 0, ["d2", "d3"]),
        (["d1"], {"a": None, "b": None}, 1, []),  # only the held-out day
        ([], {"a": None}, 1, []),
    ],
)
def test_pending_training_days(available, consumed, holdout, expected):
    assert pending_training_days(available, consumed, holdout) == expected


def test_retrain_run_key_is_the_set_order_free():
    assert retrain_run_key(["2026-01-03", "2026-01-02"]) == retrain_run_key(["2026-01-02", "2026-01-03"])  # fmt: skip
    assert retrain_run_key(["2026-01-02"]) != retrain_run_key(["2026-01-02", "2026-01-03"])
    assert retrain_run_key(["2026-01-02", "2026-01-03"]).startswith("retrain:2026-01-02..2026-01-03:2:")  # fmt: skip


def test_batches_merge_consecutive_days_with_the_same_datasets(paths):
    for day in ("2026-01-01", "2026-01-02", "2026-01-04"):
        for dataset in ("events", "users", "items"):
            land(paths, dataset, day)
    land(paths, "events", "2026-01-05")  # only events that day
    plan = plan_landing(paths, None)
    assert [(b.days, b.datasets) for b in plan.batches] == [
        (("2026-01-01", "2026-01-02"), ("events", "users", "items")),
        (("2026-01-04",), ("events", "users", "items")),  # a gap splits
        (("2026-01-05",), ("events",)),  # other datasets split
    ]


def test_fingerprint_follows_name_size_and_mtime():
    a = LandedDay("events", "2026-01-01", (("p.jsonl", 3, T0),))
    assert a.fingerprint == LandedDay("events", "2026-01-01", (("p.jsonl", 3, T0),)).fingerprint
    assert a.fingerprint != LandedDay("events", "2026-01-01", (("p.jsonl", 4, T0),)).fingerprint
    assert a.fingerprint != LandedDay("events", "2026-01-01", (("p.jsonl", 3, T0 + 1),)).fingerprint
    assert a.fingerprint != LandedDay("events", "2026-01-01", (("q.jsonl", 3, T0),)).fingerprint


def _sha(path) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def test_lineage_matches_by_name_size_and_content_never_by_clocks(paths):
    """The lineage fallback compared names, sizes and "file mtime <= manifest mtime": a
    same-size correction written before the manifest counted as ingested, and a landing
    machine whose clock ran ahead had every day re-ingested on a cursor rebuild. Now the bytes
    decide (the sha256 ingestion records), and no clock is compared with another."""
    path = land(paths, "events", "2026-01-01")
    manifest = os.path.join(paths.lineage, "raw_events", "dt=2026-01-01.json")
    os.makedirs(os.path.dirname(manifest))
    with open(manifest, "w") as f:  # what ingestion records of each file: path, size, sha256
        json.dump({"inputs": [{"path": "/elsewhere/part-00000.jsonl", "size": 3, "sha256": _sha(path)}]}, f)  # fmt: skip
    os.utime(manifest, (T0 - 3600, T0 - 3600))  # "older" than the file: clocks differ, no matter
    scan = plan_landing(paths, None)
    assert scan.batches == [] and list(scan.unchanged) == ["events/2026-01-01"]
    with open(path, "wb") as f:
        f.write(b"[]\n")  # a correction of the same size, its mtime put back as it was
    os.utime(path, (T0, T0))
    assert [c.reason for b in plan_landing(paths, None).batches for c in b.changes] == [
        "files changed since the lake read them"
    ]
    # a cursor that never launched the day (the CLI ingested it) says the same, not "new day"
    other_day = LandingCursor({"events/2026-01-09": "x"}).to_json()
    assert [c.reason for b in plan_landing(paths, other_day).batches for c in b.changes] == [
        "files changed since the lake read them"
    ]
    with open(path, "wb") as f:
        f.write(b"{}\n")  # the bytes the lake read, touched an hour later: still the lake's
    os.utime(path, (T0 + 3600, T0 + 3600))
    assert plan_landing(paths, other_day).batches == []
    land(paths, "events", "2026-01-02")
    assert [c.reason for b in plan_landing(paths, other_day).batches for c in b.changes] == [
        "new day"
    ]
    assert lineage_matches(paths, landed_day(paths, "events", "2026-01-01"))
    land(paths, "events", "2026-01-01", name="late.jsonl")  # a file the lake never read
    assert not lineage_matches(paths, landed_day(paths, "events", "2026-01-01"))
    os.remove(os.path.join(paths.landing_dir("events", "2026-01-01"), "late.jsonl"))
    with open(manifest, "w") as f:  # a manifest that records no sha256 cannot vouch for a file
        json.dump({"inputs": [{"path": "/elsewhere/part-00000.jsonl", "size": 3}]}, f)
    assert not lineage_matches(paths, landed_day(paths, "events", "2026-01-01"))


def test_watch_records_each_stage_and_names_what_is_pending():
    start = time.time()
    flags = {"a": True, "b": False}
    stages = [Stage("a", lambda: flags["a"]), Stage("b", lambda: flags["b"])]
    with pytest.raises(TimeoutError, match=r"pending \['b'\], reached \(s\) \{'a'"):
        watch(stages, started=start, timeout_s=0.2, poll_s=0.05)
    flags["b"] = True
    reached = watch(stages, started=start, timeout_s=5, poll_s=0.05)
    assert set(reached) == {"a", "b"} and reached["a"] <= reached["b"]


def test_watch_stops_when_told_the_server_died():
    with pytest.raises(TimeoutError, match="server died"):
        watch([Stage("x", lambda: False)], started=time.time(), timeout_s=60, alive=lambda: "server died")  # fmt: skip


def test_env_int(monkeypatch):
    monkeypatch.delenv("RECASSETS_X", raising=False)
    assert env_int("RECASSETS_X", 3) == 3
    monkeypatch.setenv("RECASSETS_X", "5")
    assert env_int("RECASSETS_X", 3) == 5
    monkeypatch.setenv("RECASSETS_X", "five")
    with pytest.raises(ValueError, match="RECASSETS_X='five': expected an integer"):
        env_int("RECASSETS_X", 3)
    monkeypatch.setenv("RECASSETS_X", "0")
    with pytest.raises(ValueError, match="expected at least 1"):
        env_int("RECASSETS_X", 3, minimum=1)
