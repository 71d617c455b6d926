"""A served answer is checked, not only its bento: an ingested answer leads to its
``serving_log`` partition (that day's manifest and landed files, each re-hashed; a commit
outside recassets fails), one not ingested yet says so and has its file hashed as read, one
served before the bento it names was built fails, and one served from a later day's online
features leads to that day's feature store too (``recassets.lineage.walk_requests``). Each with
the case that must fail."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import CommitProperties, DeltaTable, write_deltalake

from recassets.bento import decisions as D
from recassets.events import SERVING_LOG
from recassets.featurestore import config as fcfg
from recassets.ingest.files import LandedFile
from recassets.ingest.lineage import write_lineage
from recassets.ingest.results import IngestResult, PartitionResult
from recassets.lineage import graph as G
from recassets.lineage.verify import failures, verify
from recassets.paths import Paths

from . import home as H
from .test_requests import RID, _decision, _land


def served_after_build() -> str:
    """A time after the bento of ``H.build`` was built: taken when called, after the build (a
    time taken at import was long before the build when the suite reached the test)."""
    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)).isoformat().replace("+00:00", "Z")


@pytest.fixture
def home(paths: Paths) -> Paths:
    return H.build(paths)


@pytest.fixture
def served(home: Paths) -> str:
    return served_after_build()


def _ingest(paths: Paths, record: dict) -> Path:
    """The answer landed, then ingested as ``lake/serving_log`` does: one commit naming its
    day, and the day's manifest naming the landed file with its sha256."""
    _land(paths, record)
    log = next(Path(paths.landing, D.DATASET).rglob("*.jsonl"))
    day = log.parent.name.removeprefix("dt=")
    row = {f.name: record.get(f.name) for f in SERVING_LOG.fields}
    row["ts"] = dt.datetime.fromisoformat(record["ts"].replace("Z", "+00:00"))
    row["items"] = json.dumps(record["items"])
    row["dt"] = row["ts"].date()
    meta = {"run_id": H.RUN, "dataset": D.DATASET, "days": [day], "code_version": "t"}
    write_deltalake(paths.table(D.DATASET), pa.Table.from_pylist([row]), partition_by=["dt"],
                    commit_properties=CommitProperties(
                        custom_metadata={"userMetadata": json.dumps(meta)}))  # fmt: skip
    landed = LandedFile(str(log), day, log.stat().st_size,
                        hashlib.sha256(log.read_bytes()).hexdigest(), "jsonl")  # fmt: skip
    part = PartitionResult(day, rows=1, quarantined=0, files=[landed])
    write_lineage(paths, IngestResult(D.DATASET, paths.table(D.DATASET), 0, 0, {day: part},
                                      run_id=H.RUN))  # fmt: skip
    return log


def _bad(home: Paths, rid: str = RID) -> list:
    return failures(verify(G.trace(home, G.parse_target(rid))))


def test_an_ingested_answer_is_vouched_for_by_its_days_manifest_and_files(home: Paths, served: str):
    log = _ingest(home, _decision(RID, ts=served))
    tree = G.trace(home, G.parse_target(RID))
    root = tree.nodes[tree.root]
    day = served[:10]
    assert root.inputs[0] == f"serving_log@0 dt={day}"
    assert f"landing {log}" in tree.nodes[root.inputs[0]].inputs
    results = {v.path: v.status for v in verify(tree)}
    assert results[str(log)] == "ok" and failures(verify(tree)) == []
    log.write_text(log.read_text().replace('"user_id":3', '"user_id":4'))  # the log rewritten
    bad = _bad(home)
    assert [(v.path, v.status) for v in bad] == [(str(log), "changed")]


def test_an_ingested_answer_rewritten_in_the_table_fails(home: Paths, served: str):
    _ingest(home, _decision(RID, ts=served))
    assert _bad(home) == []
    DeltaTable(home.table(D.DATASET)).update(updates={"user_id": "99"},
                                             predicate=f"request_id = '{RID}'")  # fmt: skip
    bad = _bad(home)
    assert bad and "changed outside recassets at version 1 (UPDATE" in bad[0].what


def test_an_answer_in_a_table_day_no_ingestion_wrote_fails(home: Paths, served: str):
    from .test_requests import _ingested

    _ingested(home, _decision(RID, ts=served))  # no userMetadata: not recassets' commit
    bad = _bad(home)
    assert bad and "which no recassets ingestion wrote" in bad[0].what


def test_an_answer_not_ingested_yet_says_so_and_its_file_is_hashed(home: Paths, served: str):
    _land(home, _decision(RID, ts=served))
    tree = G.trace(home, G.parse_target(RID))
    root = tree.nodes[tree.root]
    assert any("the answer's record is not ingested yet" in u for u in root.unrecorded)
    log = next(Path(home.landing, D.DATASET).rglob("*.jsonl"))
    assert [(a.path, a.sha256) for a in root.artifacts] == [
        (str(log), hashlib.sha256(log.read_bytes()).hexdigest())
    ]
    assert _bad(home) == []


def test_an_answer_served_before_its_bento_was_built_fails(home: Paths, served: str):
    _land(home, _decision(RID, ts=served), _decision("too-early", ts="2020-01-01T00:00:00Z"))
    assert _bad(home) == []
    bad = _bad(home, "too-early")
    assert bad and "before the bento it names was built" in bad[0].what


def test_an_answer_served_from_a_later_features_day_leads_to_that_feature_store(
    home: Paths, served: str
):
    later = "2026-01-03"
    fcfg.write_json(
        Path(home.lineage) / "feature_store" / f"dt={later}.json",
        {"table": "feature_store", "partition": later, "wrote_online": True, "inputs": []},
    )
    _land(home, {**_decision(RID, ts=served), "features_day": later},
          _decision("same-day", ts=served))  # fmt: skip
    tree = G.trace(home, G.parse_target(RID))
    root = tree.nodes[tree.root]
    assert f"feature_store dt={later}" in root.inputs
    assert f"not the bento's build-day {H.DAYS[1]}" in root.facts["features_day_note"]
    same = G.trace(home, G.parse_target("same-day"))
    assert f"feature_store dt={later}" not in same.nodes[same.root].inputs
