"""The decision log ingested like events: files the service's writer landed
(``recassets.bento.decisions``) go into the Delta table ``serving_log``, a bad line goes to the
quarantine naming its file, line and field, and the day's lineage manifest names each file
with its sha256. One Spark ingestion for the module."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from deltalake import DeltaTable

from recassets.bento import decisions as D
from recassets.ingest import INGESTED_TABLES, QUARANTINE_TABLE, IngestResult, ingest, read_lineage
from recassets.paths import Paths

DAY = "2026-01-03"
EMPTY_DAY = "2026-01-04"  # no traffic that day: an empty partition, not a failure


def _decision(n: int, ts: str = f"{DAY}T10:00:00.000001Z") -> dict:
    return D.decision(
        request_id=f"req-{n}", endpoint="recommend" if n % 2 else "rank", user_id=n,
        items=[{"item_id": 10 + n, "score": 0.25, "stages": ["retrieval", "ranking", "rules"]},
               {"item_id": 99, "score": 0.125, "stages": ["backfill"]}],
        policy="model", features_day="2026-01-02",
        models={"two_tower": "two_tower/0001", "ranking": "ranking/0001"},
        bento="recassets_recommender:v1", ts=ts,
    )  # fmt: skip


@dataclass
class Landed:
    paths: Paths
    result: IngestResult
    bad_file: Path


@pytest.fixture(scope="module")
def landed(spark, make_home) -> Landed:
    paths = make_home("serving_log")
    log = D.DecisionLog(paths.landing, background=False)
    for n in range(1, 6):
        log.append(_decision(n))
    assert log.flush() == 5
    # a producer gone wrong, landed the same way: line 2 has no user_id, line 3 is not JSON,
    # line 4 an unknown endpoint, line 5 an answer already landed (req-1 at the same time);
    # line 6 a client's retry of req-2 with its own answer (served and charged: it lands);
    # lines 7 to 12 values of the wrong JSON type or shape, which the reader would keep as
    # their text (before 2026-12-07 all six landed)
    good = _decision(6)
    lines = [
        good,
        {k: v for k, v in _decision(7).items() if k != "user_id"},
        "{not json",
        {**_decision(8), "endpoint": "delete"},
        _decision(1),
        {**_decision(2, ts=f"{DAY}T10:00:05.000001Z"), "user_id": 22},
        {**_decision(9), "items": 42},
        {**_decision(10), "bento": {"x": 1}},
        {**_decision(11), "policy": True},
        {**_decision(12), "items": [{"item_id": 1, "score": float("nan")}]},
        {**_decision(13), "items": [1, 2, 3]},
        {**_decision(14), "two_tower": 5},
    ]
    bad_file = Path(paths.landing_dir(D.DATASET, DAY)) / "part-hand-written.jsonl"
    bad_file.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    # a file being written: a dot-name, never read
    (bad_file.parent / ".part-half.jsonl.tmp-1").write_text('{"request_id": "half')
    result = ingest(spark, paths, D.DATASET, [DAY, EMPTY_DAY], allow_missing_days=True)
    return Landed(paths, result, bad_file)


def _rows(path: str, **equal) -> list[dict]:
    rows = DeltaTable(path).to_pyarrow_table().to_pylist()
    return [r for r in rows if all(r[k] == v for k, v in equal.items())]


def test_good_lines_land_with_their_items(landed):
    table = landed.paths.table(INGESTED_TABLES[D.DATASET])
    rows = {r["request_id"]: r for r in _rows(table)}
    assert sorted(rows) == ["req-1", "req-2", "req-3", "req-4", "req-5", "req-6"]
    retried = _rows(table, request_id="req-2")  # both answers to the id, each as served
    assert sorted(r["user_id"] for r in retried) == [2, 22]
    r = rows["req-3"]
    assert (r["endpoint"], r["user_id"], r["bento"], r["two_tower"], r["policy"]) == (
        "recommend", 3, "recassets_recommender:v1", "two_tower/0001", "model",
    )  # fmt: skip
    assert str(r["dt"]) == DAY and r["ts"].isoformat().startswith(f"{DAY}T10:00:00.000001")
    # the items as the JSON the service wrote: served order, scores, stages and sources
    assert json.loads(r["items"]) == [
        {"item_id": 13, "score": 0.25, "stages": ["retrieval", "ranking", "rules"],
         "source": "retrieval"},
        {"item_id": 99, "score": 0.125, "stages": ["backfill"], "source": "backfill"},
    ]  # fmt: skip
    assert landed.result.partitions[DAY].rows == 7
    assert landed.result.partitions[EMPTY_DAY].empty


def test_bad_lines_are_quarantined_naming_file_line_and_field(landed):
    quarantined = _rows(landed.paths.table(QUARANTINE_TABLE), dataset=D.DATASET)
    by_line = {r["line"]: r for r in quarantined}
    assert set(by_line) == {2, 3, 4, 5, 7, 8, 9, 10, 11, 12}
    assert all(r["source_file"] == str(landed.bad_file) for r in quarantined)
    assert by_line[2]["field"] == "user_id" and by_line[2]["reason"] == "missing field user_id"
    assert by_line[3]["reason"].startswith("unparseable JSON") and by_line[3]["raw"] == "{not json"
    assert by_line[4]["field"] == "endpoint" and "unknown value delete" in by_line[4]["reason"]
    assert by_line[5]["field"] == "request_id"
    assert by_line[5]["reason"].startswith("duplicate request_id and ts (first at ")
    fields = {n: by_line[n]["field"] for n in range(7, 13)}
    assert fields == {7: "items", 8: "bento", 9: "policy", 10: "items", 11: "items",
                      12: "two_tower"}  # fmt: skip
    assert "not a JSON array of items" in by_line[10]["reason"]
    assert "is not of the form" in by_line[8]["reason"]
    assert landed.result.partitions[DAY].quarantined == 10


def test_the_lineage_manifest_names_every_file_with_its_sha256(landed):
    manifest = read_lineage(landed.paths, "serving_log", DAY)
    assert manifest["table"] == "serving_log" and manifest["rows"] == 7
    assert manifest["delta_version"] == landed.result.delta_version
    inputs = {Path(f["path"]).name: f for f in manifest["inputs"]}
    assert "part-hand-written.jsonl" in inputs and len(inputs) == 2  # the dot-file not read
    for f in manifest["inputs"]:
        assert f["sha256"] == hashlib.sha256(Path(f["path"]).read_bytes()).hexdigest()
    assert read_lineage(landed.paths, "serving_log", EMPTY_DAY)["empty"] is True
