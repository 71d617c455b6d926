"""``recassets lineage REQUEST_ID``: an answer of the decision log, found in the landed files or
in the ``serving_log`` table, leads to the bento that served it and on to every landing file
the bento grew from. Each with the case that must fail."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import write_deltalake

from recassets.bento import decisions as D
from recassets.events import SERVING_LOG
from recassets.lineage import graph as G
from recassets.lineage import openlineage as OL
from recassets.lineage.requests import find_request
from recassets.paths import Paths
from tests.conftest import run_cli

from . import home as H
from .test_lineage import _landing

RID = "0b6f1c2e11114a4a8b8b00000000beef"


def _decision(rid: str, bento: str | None = H.TAG, ts: str = "2026-01-05T08:00:00.000001Z"):
    return D.decision(
        request_id=rid, endpoint="recommend", user_id=3,
        items=[{"item_id": 11, "score": 0.75, "stages": ["retrieval", "ranking", "rules"]},
               {"item_id": 12, "score": 0.5, "stages": ["backfill"]}],
        policy="model", features_day=H.DAYS[1],
        models={"two_tower": "two_tower/0001", "ranking": "ranking/0001"}, bento=bento, ts=ts,
    )  # fmt: skip


def _land(paths: Paths, *records: dict) -> None:
    log = D.DecisionLog(paths.landing, background=False)
    for r in records:
        log.append(r)
    log.close()


def _ingested(paths: Paths, *records: dict) -> None:
    """The serving_log table as lake/serving_log writes it (its contract's columns)."""
    rows = []
    for r in records:
        row = {f.name: r.get(f.name) for f in SERVING_LOG.fields}
        row["ts"] = dt.datetime.fromisoformat(r["ts"].replace("Z", "+00:00"))
        row["items"] = json.dumps(r["items"])
        row["dt"] = row["ts"].date()
        rows.append(row)
    write_deltalake(paths.table("serving_log"), pa.Table.from_pylist(rows), partition_by=["dt"])


@pytest.fixture
def home(paths) -> Paths:
    return H.build(paths)


def test_a_request_id_is_a_target():
    assert G.parse_target(RID) == G.Target("request", RID)
    assert G.parse_target("client-req_42") == G.Target("request", "client-req_42")
    for hostile in ("a/b", "x" * 65, "caf\u00e9", "a b", "../../etc/passwd"):
        with pytest.raises(G.TargetError):
            G.parse_target(hostile)
    assert G.parse_target("latest").kind == "bento"  # the other forms keep their meaning
    with pytest.raises(G.TargetError, match="needs a day"):
        G.parse_target("serving_log")


def test_a_landed_request_leads_to_its_bento_and_every_landing_file(home):
    _land(home, _decision("someone-else"), _decision(RID))
    tree = G.trace(home, G.parse_target(RID))
    root = tree.nodes[tree.root]
    assert root.id == f"request {RID}" and root.kind == "request"
    assert root.inputs == [f"bento {H.TAG}"]
    assert root.facts["user_id"] == 3 and root.facts["two_tower"] == "two_tower/0001"
    assert root.facts["items"] == "2: 11 (0.75, retrieval), 12 (0.5, backfill)"
    assert "serving_log/dt=2026-01-05/part-" in root.facts["found_in"]
    assert root.facts["found_in"].endswith(" line 2")
    bento = G.trace(home, G.parse_target(H.TAG))
    assert set(tree.nodes) == set(bento.nodes) | {root.id}  # the bento's whole lineage
    grew_from = {str(p) for p in H.landing_files(home) if D.DATASET not in p.parts}
    assert _landing(tree) == grew_from != set()


def test_an_ingested_request_is_found_in_the_table(home):
    _ingested(home, _decision(RID, ts="2026-01-05T08:00:00Z"))
    found = find_request(home, RID)
    assert found is not None and found.where == "serving_log@0 dt=2026-01-05"
    assert found.record["items"][0]["item_id"] == 11
    tree = G.trace(home, G.parse_target(RID))
    # its day of the table (written here by no recassets ingestion: test_request_answer.py)
    assert tree.nodes[tree.root].inputs == [
        "serving_log dt=2026-01-05 (no commit)",
        f"bento {H.TAG}",
    ]
    # one OpenLineage run event per node, the request's first, at the time it was served
    first = json.loads(OL.to_json_lines(tree).splitlines()[0])
    assert first["job"]["name"] == "lake/serving_log"
    assert first["eventTime"].startswith("2026-01-05T08:00:00")
    assert first["outputs"][0]["name"] == "lake/serving_log/dt=2026-01-05"


def test_a_request_id_served_twice_is_the_latest_and_says_so(home):
    _land(
        home, _decision(RID, ts="2026-01-05T08:00:00Z"), _decision(RID, ts="2026-01-06T09:00:00Z")
    )
    _land(home, _decision(RID, ts="2026-01-06T10:00:00Z"))
    found = find_request(home, RID)  # the newest day, across its files
    assert found is not None and found.record["ts"] == "2026-01-06T10:00:00Z" and found.others == 1


def test_a_reused_id_answered_again_after_ingestion_is_the_newer_answer(home):
    """The table held the first answer, the landing folder a newer one not ingested yet: the
    table's was shown, with no word of the other."""
    _ingested(home, _decision(RID, ts="2026-01-05T08:00:00Z"))
    _land(home, _decision(RID, ts="2026-01-06T09:00:00Z"))
    found = find_request(home, RID)
    assert found is not None and found.record["ts"] == "2026-01-06T09:00:00Z" and found.others == 1


def test_control_characters_from_a_record_are_escaped_in_the_tree(home, monkeypatch, capsys):
    """A user id of ``"\\x1b[2J..."`` in a served record cleared the auditor's terminal."""
    record = _decision(RID)
    record["user_id"] = "\x1b[2J\x1b]0;pwned\x07RED"
    _land(home, record)
    code, out, _ = run_cli(home, monkeypatch, capsys, "lineage", RID)
    assert code == 0 and "\x1b" not in out and "\x07" not in out
    assert "\\x1b[2J\\x1b]0;pwned\\x07RED" in out


def test_a_bento_gone_is_said_not_invented(home):
    _land(home, _decision(RID, bento="recassets_recommender:gone"))
    tree = G.trace(home, G.parse_target(RID))
    root = tree.nodes[tree.root]
    assert root.inputs == [] and any("recassets_recommender:gone" in n for n in root.unrecorded)


@pytest.mark.parametrize("bento", ["../../../elsewhere/fake:b", "x" * 5000])
def test_a_records_bento_field_never_leads_out_of_the_store(home, bento):
    """The decision log is data: its ``bento`` field named a folder outside the bento store
    (``../..``), whose forged manifest was then reported as the bento that served, and 5,000
    characters failed the whole command (file name too long). Now it must be a tag."""
    forged = Path(home.home).parent / "elsewhere" / "fake" / "b" / "src" / "bundle"
    forged.mkdir(parents=True, exist_ok=True)
    (forged / "manifest.json").write_text(json.dumps({"policy": {"policy": "FORGED"}}))
    _land(home, _decision(RID, bento=bento))
    tree = G.trace(home, G.parse_target(RID))
    root = tree.nodes[tree.root]
    assert root.inputs == []
    assert any("is not a bento tag (name:version)" in n for n in root.unrecorded)
    _land(home, _decision("good-one"))  # the pass case: a tag of the store leads to it
    good = G.trace(home, G.parse_target("good-one"))
    assert good.nodes[good.root].inputs == [f"bento {H.TAG}"]


def test_an_unknown_request_is_an_error_naming_it(home, monkeypatch, capsys):
    _land(home, _decision("someone-else"))
    # a half-written file (a dot-name) holding the id is not read, as ingestion would not
    folder = Path(home.landing_dir(D.DATASET, "2026-01-05"))
    (folder / ".part-x.jsonl.tmp-1").write_text(json.dumps(_decision(RID)) + "\n")
    code, out, err = run_cli(home, monkeypatch, capsys, "lineage", RID)
    assert isinstance(code, str) and f"no request {RID} in the decision log" in code
    code, out, _ = run_cli(home, monkeypatch, capsys, "lineage", "someone-else")
    assert code == 0 and out.split("\n", 1)[1].startswith(
        "- request someone-else: "
    )  # after the note: no instance
    assert f"- bento {H.TAG}" in out
