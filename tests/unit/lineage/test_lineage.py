"""``recassets lineage``: a bento or a model version traces to every landing file it grew from;
``--verify`` names a file changed since; ``--json`` is OpenLineage; a hostile TARGET is a usage
error. Each with the case that must fail."""

from __future__ import annotations

import json
import shutil
import sqlite3
import uuid
from pathlib import Path

import pytest
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.serde import Serde

from recassets.features.schema import WINDOWS
from recassets.lineage import graph as G
from recassets.lineage import openlineage as OL
from recassets.lineage.records import DagsterRecords
from recassets.lineage.verify import failures, verify
from recassets.paths import Paths
from tests.conftest import run_cli

from . import home as H


@pytest.fixture(scope="module")
def home(make_home) -> Paths:
    return H.build(make_home("lineage"))


@pytest.fixture
def own_home(paths) -> Paths:
    """A home a test may change."""
    return H.build(paths)


def _landing(tree: G.Lineage) -> set[str]:
    return {n.dataset or "" for n in tree.landing_files()}


def test_the_feature_window_is_the_schemas():
    assert max(WINDOWS) == G.FEATURE_WINDOW_DAYS


def test_a_bento_traces_to_every_landing_file(home):
    tree = G.trace(home, G.parse_target("latest"))
    assert tree.root == f"bento {H.TAG}"
    assert _landing(tree) == {str(p) for p in H.landing_files(home)} and len(_landing(tree)) == 6
    for f in tree.landing_files():  # with the sha256 the ingestion recorded
        assert f.artifacts[0].sha256 and len(f.artifacts[0].sha256) == 64
    kinds = {n.kind for n in tree.nodes.values()}
    assert kinds == {
        "bento",
        "model",
        "index",
        "embeddings",
        "feature_store",
        "partition",
        "landing",
    }
    raw = tree.nodes["raw_events@0 dt=2026-01-02"]
    assert raw.run_id == H.RUN and raw.facts["rows"] == 1
    examples = tree.nodes["training_examples@0 dt=2026-01-02"]
    assert examples.facts["features_day"] == "2026-01-01"
    assert any("inferred" in note for note in examples.unrecorded)  # says what it guessed
    index = tree.nodes["index 0001"]
    assert [(c.name, c.status) for c in index.checks] == [("item_index_recall", "passed")]
    # Same tree through the tag, as typed (BentoML upper-cases nothing; lower-case it anyway).
    assert set(G.trace(home, G.parse_target(H.TAG.upper())).nodes) == set(tree.nodes)


def test_a_blend_bento_traces_its_item_similarity_to_the_training_days(home, paths):
    blend = H.build(paths, blend=True)
    tree = G.trace(blend, G.parse_target("latest"))
    node = tree.nodes["model item_similarity/0001"]
    assert node.job == "models/item_similarity" and node.facts["l2"] == 1.0
    assert node.artifacts[0].sha256 and len(node.artifacts[0].sha256) == 64
    assert sorted(node.inputs) == [f"training_examples@0 dt={d}" for d in H.DAYS]
    assert "model item_similarity/0001" in tree.nodes[tree.root].inputs
    # without the blend the bento names no similarity
    assert not any("item_similarity" in n for n in G.trace(home, G.parse_target("latest")).nodes)


def test_a_cascade_bento_traces_its_light_ranker_to_its_two_tower_and_days(home, paths):
    cascade = H.build(paths, light=True)
    tree = G.trace(cascade, G.parse_target("latest"))
    node = tree.nodes["model light_ranker/0001"]
    assert node.job == "models/light_ranker" and node.facts["holdout_auc"] == 0.75
    assert node.artifacts[0].sha256 and len(node.artifacts[0].sha256) == 64
    # it learned from the two-tower's scores of the example partitions
    assert sorted(node.inputs) == ["model two_tower/0001",
                                   *[f"training_examples@0 dt={d}" for d in H.DAYS]]  # fmt: skip
    assert "model light_ranker/0001" in tree.nodes[tree.root].inputs
    assert not any("light_ranker" in n for n in G.trace(home, G.parse_target("latest")).nodes)


def test_a_missing_manifest_is_said_not_invented(own_home):
    gone = Path(own_home.lineage) / "users" / "dt=2026-01-01.json"
    gone.unlink()
    tree = G.trace(own_home, G.parse_target("latest"))
    assert len(_landing(tree)) == 5
    assert str(Path(own_home.landing_dir("users", "2026-01-01")) / "part-00000.jsonl") not in _landing(tree)  # fmt: skip
    users = tree.nodes["users@0 dt=2026-01-01"]
    assert users.inputs == [] and any("lineage manifest is missing" in n for n in users.unrecorded)
    # and verify names it: nothing vouches for that day's landing files any more
    assert [(Path(b.path).name, b.status) for b in failures(verify(tree))] == [
        ("dt=2026-01-01.json", "missing")
    ]


def test_a_model_version_traces_to_its_training_days(home, monkeypatch, capsys):
    tree = G.trace(home, G.parse_target("ranking/0001"))
    assert tree.root == "model ranking/0001"
    assert _landing(tree) == {str(p) for p in H.landing_files(home)}
    code, out, _ = run_cli(home, monkeypatch, capsys, "lineage", "two_tower/0001")
    assert code == 0 and "landing/events/dt=2026-01-01/part-00000.jsonl" in out
    assert "not recorded: the run that trained it" in out
    code, _, err = run_cli(home, monkeypatch, capsys, "lineage", "two_tower/0009")
    assert code != 0 and code != 2 and "no checkpoint two_tower/0009" in str(code)


def test_table_targets(home):
    tree = G.trace(home, G.parse_target("users", "2026-01-02"))
    assert _landing(tree) == {
        str(Path(home.landing_dir("users", "2026-01-02")) / "part-00000.jsonl")
    }
    commit = G.trace(home, G.parse_target("user_features@0"))
    # the range commit wrote both days, and the second day reads the first
    assert set(commit.nodes[commit.root].inputs) == {
        "user_features@0 dt=2026-01-01",
        "user_features@0 dt=2026-01-02",
    }
    with pytest.raises(LookupError, match="no Delta version 7"):
        G.trace(home, G.parse_target("users@7"))
    with pytest.raises(LookupError, match="wrote dt=2026-02-01"):
        G.trace(home, G.parse_target("users", "2026-02-01"))


def test_verify_passes_on_a_clean_home_and_names_a_changed_file(own_home, monkeypatch, capsys):
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "latest", "--verify")
    # 6 landing files, 2 checkpoints and their 2 copies in the bento, the Feast registry, the
    # bento's index copy and Feast files (lineage.contents: 4 with its registry copy), and the
    # bento's recorded lineage against its build-time digest
    assert code == 0 and "verify: 16 ok" in out
    index_copy = sorted(Path(own_home.bentoml, "bentos", *H.TAG.split(":"), "src", "bundle",
                             "index").rglob("*.*"))[0]  # fmt: skip
    kept = index_copy.read_bytes()
    index_copy.write_bytes(kept[::-1])  # reordered: other items served, every check passed
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "latest", "--verify")
    shown = index_copy.relative_to(own_home.home)
    assert isinstance(code, str) and f"verify: CHANGED {shown} (bundle copy;" in out, out[-600:]
    index_copy.write_bytes(kept)
    changed = Path(own_home.landing_dir("events", "2026-01-02")) / "part-00000.jsonl"
    changed.write_text(changed.read_text() + '{"late": "line"}\n')
    copy = Path(
        own_home.bentoml, "bentos", *H.TAG.split(":"), "src", "bundle", "models", "ranking.pt"
    )
    copy.write_bytes(copy.read_bytes() + b"x")
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert isinstance(code, str) and "2 file(s) fail (2 changed)" in code
    assert "landing/events/dt=2026-01-02/part-00000.jsonl" in code and "ranking.pt" in code
    assert "verify: CHANGED landing/events/dt=2026-01-02/part-00000.jsonl" in out
    bad = failures(verify(G.trace(own_home, G.parse_target("users", "2026-01-02"))))
    assert bad == []  # a tree that does not hold the changed file stays clean
    Path(own_home.landing_dir("users", "2026-01-02"), "part-00000.jsonl").unlink()
    bad = failures(verify(G.trace(own_home, G.parse_target("users", "2026-01-02"))))
    assert [b.status for b in bad] == ["missing"]


def test_a_bento_manifest_edited_after_its_build_fails_verify(own_home, monkeypatch, capsys):
    """A figure forged in the bento's recorded lineage (the promotion's recall@50), or a
    checkpoint copy's sha256 removed, was reported as recorded: the lineage is now checked
    against the digest the build took of it (the tag's last part)."""
    manifest = Path(own_home.bentoml, "bentos", *H.TAG.split(":"), "src", "bundle", "manifest.json")
    m = json.loads(manifest.read_text())
    m["lineage"]["forged"] = {"recall@50": 0.99}
    manifest.write_text(json.dumps(m))
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert isinstance(code, str) and "manifest.json" in code
    assert "verify: CHANGED " in out and "build-time digest" in out


def test_records_edited_to_pass_or_to_another_shape_do_not(own_home, monkeypatch, capsys):
    """The records are data too. A forged landing file whose record lost its sha256 verified
    as "unverifiable", exit 0; a partition whose manifest was deleted verified "no files on
    the path", exit 0; a manifest cut short, or with ``inputs: null``, ended in a traceback."""
    day = "2026-01-02"
    manifest = Path(own_home.lineage) / "raw_events" / f"dt={day}.json"
    good = manifest.read_text()
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "raw_events", day, "--verify")
    assert code == 0 and " ok" in out  # the pass case
    landing = Path(own_home.landing_dir("events", day)) / "part-00000.jsonl"
    landing.write_text(landing.read_text() + '{"event_id": "forged"}\n')
    record = json.loads(good)
    record["inputs"][0]["sha256"] = None
    manifest.write_text(json.dumps(record))
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "raw_events", day, "--verify")
    assert isinstance(code, str) and "part-00000.jsonl" in code
    assert "verify: UNVERIFIABLE landing/events/dt=2026-01-02/part-00000.jsonl" in out
    manifest.unlink()
    code, _, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "raw_events", day, "--verify")
    assert isinstance(code, str) and f"lineage/raw_events/dt={day}.json" in code
    manifest.write_text(good[: len(good) // 2])  # cut short: named; the rest still traced
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "raw_events", day)
    assert code == 0 and f"lineage record {manifest} is damaged" in out
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert (
        isinstance(code, str) and f"(1 damaged records): lineage/raw_events/dt={day}.json" in code
    )
    assert f"verify: DAMAGED lineage/raw_events/dt={day}.json" in out and " ok" in out
    page = Path(own_home.home) / "audit.html"  # before: no page, the audit stopped at the record
    code, _, _ = run_cli(own_home, monkeypatch, capsys, "audit", "latest", "--out", str(page))
    assert isinstance(code, str) and "1 damaged records" in code
    assert '<td class="damaged">damaged</td>' in page.read_text()
    for edit, said in (({"inputs": None}, "inputs is null, not a list"),
                       ({"inputs": [{"path": 7}]}, "inputs[0].path is 7, not str"),
                       ({"delta_version": "one"}, 'delta_version is "one", not int')):  # fmt: skip
        manifest.write_text(json.dumps({**json.loads(good), **edit}))  # each hid or broke it
        code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "latest", "--verify")
        assert isinstance(code, str) and "(1 damaged records)" in code, edit
        assert f"lineage record {manifest} is not in the shape recassets writes: {said}" in out


def test_an_ingest_manifest_deleted_or_edited_fails_the_bentos_verify(
    own_home, monkeypatch, capsys
):
    """Deleted, pointed at another version, or made to call the day empty: each turned the
    day's landing files into a "not recorded" note, and ``latest --verify`` said every file on
    the path was ok while a landing file had been changed."""
    day = "2026-01-02"
    manifest = Path(own_home.lineage) / "raw_events" / f"dt={day}.json"
    good = json.loads(manifest.read_text())
    landing = Path(own_home.landing_dir("events", day)) / "part-00000.jsonl"
    landing.write_text(landing.read_text() + '{"event_id": "forged"}\n')
    edits = {
        "deleted": None,
        "another version": {**good, "delta_version": 7},
        "called empty": {**good, "inputs": [], "empty": True},
    }
    for name, edit in edits.items():
        if edit is None:
            manifest.unlink()
        else:
            manifest.write_text(json.dumps(edit))
        code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "latest", "--verify")
        assert isinstance(code, str) and f"lineage/raw_events/dt={day}.json" in code, name
        assert "lineage manifest of raw_events@0 dt=2026-01-02" in out, name
        audit = run_cli(own_home, monkeypatch, capsys, "audit", "latest", "--out", "-")
        assert isinstance(audit[0], str) and "VERIFY FAILED" in audit[1], name
    manifest.write_text(json.dumps(good))  # the record restored: only the landing file differs
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert (
        isinstance(code, str)
        and "1 file(s) fail (1 changed)" in code
        and "part-00000.jsonl" in code
    )


def test_a_manifest_behind_or_ahead_of_its_commit_is_said_as_it_happened():
    """A manifest of an earlier ingestion (the later run died between its commits and its
    manifest) is stale, one a later ingestion rewrote is superseded: neither is a forgery.
    A version that never wrote the day is."""
    from recassets.lineage.records import Commit, DeltaLog

    log, path, day = DeltaLog(), "/lake/raw_events", "2026-01-02"
    log._history[path] = tuple(Commit(v, 0, "WRITE", {"day": day}) for v in (1, 2, 3))
    log._history[path] += (Commit(4, 0, "WRITE", {"day": "2026-01-09"}),)
    c2 = log.commit(path, 2)
    assert c2 is not None
    assert log.manifest_problem(path, {"delta_version": 2}, day, c2) is None
    assert log.manifest_problem(path, {"delta_version": 1}, day, c2)[0] == "stale"
    assert log.manifest_problem(path, {"delta_version": 3}, day, c2)[0] == "superseded"
    for forged in (4, 9, "2"):  # another day's commit, none, not a version
        assert log.manifest_problem(path, {"delta_version": forged}, day, c2)[0] == "changed"
    assert log.manifest_problem(path, None, day, c2)[0] == "missing"


def test_a_bento_whose_digest_or_served_policy_was_forged_fails_verify(
    own_home, monkeypatch, capsys
):
    """The digest was checked against the manifest's own ``digest`` field, which a forger
    rewrites with the figures; and the ``policy`` block the service reads was not checked."""
    from recassets.bento import bundle as B
    from recassets.bento.bundle import manifest_digest

    built = Path(own_home.bentoml, "bentos", *H.TAG.split(":"))
    good = json.loads((built / "src" / "bundle" / "manifest.json").read_text())
    tag = f"{B.BENTO_NAME}:20260103t000000-model-{good['digest']}"  # as a build names it
    bento = Path(own_home.bentoml, "bentos", *tag.split(":"))
    shutil.copytree(built, bento)
    B.mark_built(own_home, tag)
    manifest = bento / "src" / "bundle" / "manifest.json"
    forged = json.loads(manifest.read_text())
    forged["lineage"]["forged"] = {"recall@50": 0.99}
    forged["digest"] = manifest_digest(forged)  # as the build computes it (home, code)
    served = json.loads(manifest.read_text())
    served["policy"]["reasons"] = ["FORGED"]
    for name, edit in (("digest", forged), ("served policy", served)):
        manifest.write_text(json.dumps(edit))
        code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", tag, "--verify")
        assert isinstance(code, str) and "manifest.json" in code, name
        assert "verify: CHANGED " in out, name
    manifest.write_text(json.dumps(good))
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", tag, "--verify")
    assert code == 0, out


def test_verify_in_a_copied_home_checks_its_own_files_never_the_originals(
    own_home, tmp_path, monkeypatch, capsys
):
    """A home copied or restored elsewhere keeps the original's absolute paths in its records.
    --verify once re-hashed the original's files and said "ok" for the copy; then it called
    them all "outside", so a restored home could never pass an audit. Each is now checked at
    the same place in this home: the copy's own bytes against the recorded sha256."""
    copy = Paths.at(tmp_path / "copied")
    shutil.copytree(own_home.home, copy.home)
    code, out, _ = run_cli(copy, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert code == 0 and out.splitlines()[-1] == "verify: 16 ok, 1 unchecked", out
    # this fixture's bento predates the code record: said, and a failure only when asked
    assert "verify: UNCHECKED bentoml/bentos/" in out and "service.py" in out
    code, out, _ = run_cli(copy, monkeypatch, capsys, "lineage", "latest", "--verify", "--strict")
    assert isinstance(code, str) and "1 bento code never recorded" in code, code
    code, _, err = run_cli(copy, monkeypatch, capsys, "lineage", "latest", "--strict")
    assert code == 2 and "--strict goes with --verify" in err
    # a model's training table, recorded as the original home's (the home its checkpoint's
    # record names): traced in this home's lake to its days and landing files (it stopped at
    # the model, "outside"); its checkpoint read at this home's place, not the original's
    tree = G.trace(copy, G.parse_target("latest"))
    model = tree.nodes["model two_tower/0001"]
    assert any(n.startswith("training_examples@0 dt=") for n in model.inputs), model.unrecorded
    assert any("traced in this home's lake" in u for u in model.unrecorded)
    assert any(f"read at {Path(copy.artifacts).resolve()}" in u for u in model.unrecorded)
    assert len(tree.landing_files()) == 6  # the two days' events, users and items
    # asked for by name here, the version's own record names a table of another home: no
    # record ties that home to this one, so it stays outside (a staging lake is not this lake)
    named = G.trace(copy, G.parse_target("two_tower/0001"))
    assert any("lies outside this home's lake" in u for u in named.nodes[named.root].unrecorded)
    assert not named.landing_files()
    # the copy's landing file changed, the original's not: the copy fails, naming its own file
    changed = Path(copy.landing_dir("events", "2026-01-02")) / "part-00000.jsonl"
    changed.write_text(changed.read_text() + '{"late": "line"}\n')
    code, out, _ = run_cli(copy, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert isinstance(code, str) and "1 file(s) fail (1 changed)" in code, code
    assert "verify: CHANGED landing/events/dt=2026-01-02/part-00000.jsonl" in out
    # removed from the copy: its place here is known and empty
    changed.unlink()
    code, out, _ = run_cli(copy, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert isinstance(code, str) and "1 file(s) fail (1 missing)" in code, code
    assert "verify: MISSING landing/events/dt=2026-01-02/part-00000.jsonl" in out, out
    # where no part of a recorded path names a folder of this home, or it climbs out with
    # "..", the record is another home's: never matched to a file here by its tail
    from recassets.lineage.verify import _in_this_home

    roots = [Path(copy.landing).resolve()]
    tail = ("events", "dt=2026-01-02", "part-00001.jsonl")
    assert _in_this_home(str(Path("/old/landing", *tail)), roots) == roots[0].joinpath(*tail)
    for forged in ("/old/elsewhere/events/dt=2026-01-02/part-00001.jsonl",
                   "/old/landing/../../etc/passwd", "/old/landing/"):  # fmt: skip
        assert _in_this_home(forged, roots) is None, forged
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert code == 0 and "verify: 16 ok" in out


def test_a_checkpoint_a_retention_job_deleted_is_vouched_for_by_the_bentos_copy(
    own_home, monkeypatch, capsys
):
    """Old checkpoints are what a retention job deletes first. The bento that serves a model
    holds a copy of its checkpoint; when that copy holds the recorded bytes, the deleted one
    is said ``COPIED`` and the trace passes (it failed as missing). A copy that does not hold
    them vouches for nothing: missing, and the copy changed."""
    models = Path(own_home.artifacts, "models")
    (kept,) = (models / "ranking").glob("*.pt")
    kept.unlink()
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert code == 0 and out.splitlines()[-1] == "verify: 1 copied, 15 ok, 1 unchecked", out
    copy = f"bentoml/bentos/{H.TAG.replace(':', '/')}/src/bundle/models/ranking.pt"
    line = f"verify: COPIED artifacts/models/ranking/{kept.name} (ranking checkpoint; gone from"
    assert line in out and f"the bento's copy {copy} holds its bytes)" in out, out
    assert f"file artifacts/models/ranking/{kept.name} sha256 " in out
    assert out.count("[copied]") == 1
    # the trace goes on through the copy to the version's training days (it stopped there)
    tree = G.trace(own_home, G.parse_target("latest"))
    node = tree.nodes[f"model ranking/{kept.stem}"]
    assert node.facts.get("created_at") and node.inputs, node.unrecorded
    assert any("read from the bento's copy" in u for u in node.unrecorded)
    version = f"ranking/{kept.stem}"  # asked for by name: found through the copy too
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", version, "--verify")
    assert code == 0 and "read from the bento's copy" in out and "verify: 1 copied" in out
    # a bento whose record was edited vouches for nothing, its copy's bytes as recorded or not
    manifest = Path(own_home.home, copy).parents[1] / "manifest.json"
    intact = manifest.read_text()
    m = json.loads(intact)
    m["lineage"]["forged"] = {"recall@50": 0.99}
    manifest.write_text(json.dumps(m))
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert isinstance(code, str) and "(1 changed, 1 missing)" in code and "[copied]" not in out
    manifest.write_text(intact)
    served = Path(own_home.home, copy)
    served.write_bytes(served.read_bytes() + b"x")
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert isinstance(code, str) and "2 file(s) fail (1 changed, 1 missing)" in code, code
    assert f"verify: MISSING artifacts/models/ranking/{kept.name}" in out
    code, _, _ = run_cli(own_home, monkeypatch, capsys, "lineage", version)
    assert isinstance(code, str) and "nor a bento's copy" in code, code


def _parse_event(line: str) -> RunEvent:
    """An event rebuilt with the OpenLineage model (whose validators check the run id and the
    time), and its JSON again equal to the line."""
    d = json.loads(line)
    event = RunEvent(
        eventType=RunState(d["eventType"]),
        eventTime=d["eventTime"],
        run=Run(runId=d["run"]["runId"]),
        job=Job(namespace=d["job"]["namespace"], name=d["job"]["name"]),
        inputs=[InputDataset(i["namespace"], i["name"]) for i in d["inputs"]],
        outputs=[OutputDataset(o["namespace"], o["name"]) for o in d["outputs"]],
        producer=d["producer"],
    )
    assert d["schemaURL"].startswith("https://openlineage.io/spec/")
    return event


def test_json_is_openlineage_run_events(home, monkeypatch, capsys):
    code, out, _ = run_cli(home, monkeypatch, capsys, "lineage", "latest", "--json")
    lines = out.splitlines()
    assert code == 0 and lines
    events = [_parse_event(line) for line in lines]
    tree = G.trace(home, G.parse_target("latest"))
    non_landing = [n for n in tree.nodes.values() if n.kind != "landing"]
    assert len(events) == len(non_landing)  # one per run node
    assert events[0].job.name == "serving/recommender_bento"
    raw = next(e for e in events if e.job.name == "lake/raw_events"
               and e.outputs and e.outputs[0].name.endswith("dt=2026-01-01"))  # fmt: skip
    assert {i.namespace for i in raw.inputs or []} == {"file"}
    parent = json.loads(lines[events.index(raw)])["run"]["facets"]["parent"]
    assert parent["run"]["runId"] == H.RUN
    assert Serde.to_json(OL.events(tree)[0]) == lines[0]
    # the failing case: the model refuses what is not OpenLineage
    broken = json.loads(lines[0])
    broken["run"]["runId"] = "run-42"
    with pytest.raises(ValueError):
        _parse_event(json.dumps(broken))
    broken = json.loads(lines[0])
    broken["eventTime"] = "2026-01-03"
    with pytest.raises(ValueError):
        _parse_event(json.dumps(broken))
    uuid.UUID(json.loads(lines[0])["run"]["runId"])


@pytest.mark.parametrize(
    "argv, message",
    [
        (["../../etc/passwd"], "not a lineage target"),
        (["raw_events", "2026-13-01"], "expected a date as YYYY-MM-DD"),
        (["raw_events", "../../etc/passwd"], "expected a date as YYYY-MM-DD"),
        (["passwd", "2026-01-01"], "unknown table 'passwd'"),
        (["../lake/users", "2026-01-01"], "unknown table"),
        (["quarantine@1"], "unknown table 'quarantine'"),
        (["recassets_recommender:../../x"], "not a lineage target"),
        (["two_tower/../../0001"], "not a lineage target"),
        (["raw_events"], "needs a day"),
    ],
)
def test_a_hostile_target_is_a_usage_error(home, monkeypatch, capsys, argv, message):
    code, out, err = run_cli(home, monkeypatch, capsys, "lineage", *argv)
    assert code == 2 and message in err and out == ""


def test_the_accepted_forms(home, monkeypatch, capsys):
    assert G.parse_target("two_tower/0003") == G.Target("model", "two_tower/0003")
    assert G.parse_target("sequence_ranking/0001") == G.Target("model", "sequence_ranking/0001")
    with pytest.raises(G.TargetError):
        G.parse_target("light/0001")  # no such model store
    assert G.parse_target("items@12") == G.Target("commit", "items", version=12)
    assert G.parse_target("items", "2026-01-02") == G.Target("partition", "items", day="2026-01-02")
    code, out, _ = run_cli(home, monkeypatch, capsys, "lineage", "raw_events", "2026-01-01")
    assert code == 0 and out.split("\n", 1)[1].startswith(
        "- raw_events@0 dt=2026-01-01"
    )  # after the note: no instance
    code, out, _ = run_cli(
        home, monkeypatch, capsys, "lineage", "raw_events", "2026-01-01", "--manifest"
    )
    assert code == 0 and json.loads(out)["run_id"] == H.RUN
    for flag in ("--verify", "--json"):  # were dropped in silence: a verify that checked nothing
        code, _, err = run_cli(
            home, monkeypatch, capsys, "lineage", "raw_events", "2026-01-01", "--manifest", flag
        )
        assert code == 2 and "--manifest prints one record as written" in err


def test_a_damaged_manifest_asked_for_is_named(own_home, monkeypatch, capsys):
    manifest = Path(own_home.lineage) / "raw_events" / "dt=2026-01-01.json"
    for damage in (b'{"rows": ', b"\xff\xfe not utf-8"):
        manifest.write_bytes(damage)
        code, _, _ = run_cli(
            own_home, monkeypatch, capsys, "lineage", "raw_events", "2026-01-01", "--manifest"
        )
        assert isinstance(code, str) and f"lineage record {manifest} is damaged" in code


def test_runs_and_checks_come_from_the_dagster_instance(paths):
    """The instance's own tables (Dagster 1.13's SQLite layout), read read-only."""
    history = Path(paths.dagster_home) / "history"
    (history / "runs").mkdir(parents=True)
    with sqlite3.connect(history / "runs.db") as db:
        db.execute("CREATE TABLE runs (run_id TEXT, status TEXT)")
        db.execute("CREATE TABLE run_tags (run_id TEXT, key TEXT, value TEXT)")
        db.execute("INSERT INTO runs VALUES (?, 'SUCCESS')", (H.RUN,))
        db.execute(
            "INSERT INTO run_tags VALUES (?, 'dagster/sensor_name', 'landing_sensor')", (H.RUN,)
        )
    event = {"dagster_event": {"event_specific_data": {
        "success": False, "severity": {"__enum__": "AssetCheckSeverity.WARN"},
        "metadata": {"rows": {"__class__": "IntMetadataEntryData", "value": 0}}}}}  # fmt: skip
    with sqlite3.connect(history / "runs" / "index.db") as db:
        db.execute("CREATE TABLE asset_check_executions (id INTEGER PRIMARY KEY, asset_key TEXT, "
                   "check_name TEXT, partition TEXT, run_id TEXT, execution_status TEXT, "
                   "evaluation_event TEXT)")  # fmt: skip
        db.execute("INSERT INTO asset_check_executions VALUES (1, ?, 'raw_events_has_events', "
                   "'2026-01-01', ?, 'SUCCEEDED', ?)",
                   ('["lake", "raw_events"]', H.RUN, json.dumps(event)))  # fmt: skip
        db.execute("CREATE TABLE event_logs (id INTEGER PRIMARY KEY, run_id TEXT, event TEXT, "
                   "dagster_event_type TEXT, asset_key TEXT, partition TEXT)")  # fmt: skip
        # a third run found 0002 up to date and named it again: not the run that wrote it
        for i, ckpt in enumerate(("/m/two_tower/0001.pt", "/m/two_tower/0002.pt",
                                  "/m/two_tower/0002.pt")):  # fmt: skip
            mat = {"dagster_event": {"event_specific_data": {"materialization": {
                "metadata_entries": [{"label": "checkpoint", "entry_data": {"path": ckpt}}]}}}}  # fmt: skip
            db.execute("INSERT INTO event_logs VALUES (?, ?, ?, 'ASSET_MATERIALIZATION', ?, NULL)",
                       (i, f"run-{i}", json.dumps(mat), '["models", "two_tower_model"]'))  # fmt: skip
    records = DagsterRecords(paths.dagster_home)
    try:
        key = "models/two_tower_model"
        assert records.materialization_run(key, "checkpoint", "/m/two_tower/0002.pt") == "run-1"
        assert records.materialization_run(key, "checkpoint", "/m/two_tower/0003.pt") is None
        run = records.run(H.RUN)
        assert run is not None and run.launched_by == "sensor landing_sensor"
        assert records.run("f" * 32) is None
        (check,) = records.checks("lake/raw_events", "2026-01-01", H.RUN)
        assert (check["status"], check["severity"], check["figures"]) == (
            "failed",
            "WARN",
            {"rows": 0},
        )
        assert records.checks("lake/raw_events", "2026-01-02", H.RUN) == []
    finally:
        records.close()
    assert DagsterRecords(str(Path(paths.home) / "none")).run(H.RUN) is None


def test_a_restored_day_is_the_restored_versions(paths):
    """The ingest's all-or-none undo (a RESTORE commit) brings back the older content: the day
    was written by the commit before the undone one, not by the undone one."""
    from deltalake import DeltaTable

    from recassets.lineage.records import DeltaLog

    path = paths.table("users")
    H._commit(path, ["2026-01-01"], {"run_id": "a", "days": ["2026-01-01"]})
    H._commit(path, ["2026-01-01"], {"run_id": "b", "days": ["2026-01-01"]}, mode="overwrite")
    assert DeltaLog().writer(path, "2026-01-01", None, ranges=False).meta["run_id"] == "b"  # type: ignore[union-attr]
    DeltaTable(path).restore(0)
    found = DeltaLog().writer(path, "2026-01-01", None, ranges=False)
    assert found is not None and (found.version, found.meta["run_id"]) == (0, "a")


def test_a_long_day_by_day_chain_needs_no_deep_recursion(paths):
    """Each user_features day reads the day before: 300 days walk (and print) in bounded stack
    depth, not one frame per day."""
    import datetime as dt
    import inspect
    import sys

    from recassets.lineage.render import render

    days = [(dt.date(2025, 1, 1) + dt.timedelta(n)).isoformat() for n in range(300)]
    H._commit(paths.table("user_features"), days,
              {"run_id": H.RUN, "table": "user_features", "days": [days[0], days[-1]]})  # fmt: skip
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(len(inspect.stack()) + 120)
    try:
        tree = G.trace(paths, G.parse_target("user_features", days[-1]))
        text = render(tree)
    finally:
        sys.setrecursionlimit(limit)
    assert len(tree.nodes) == 300 and f"[299] - user_features@0 dt={days[0]}" in text


def test_recorded_read_versions_are_followed_not_inferred(paths):
    """A feature commit that records the versions it read (userMetadata.read, as the feature
    writers do) is traced at those versions; one without them is inferred, and says so."""
    day = "2026-01-01"
    for version in range(2):  # raw_events@0 and @1, users@0, items@0
        H._commit(paths.table("raw_events"), [day], {"run_id": f"r{version}", "days": [day]},
                  mode="overwrite")  # fmt: skip
    for dim in ("users", "items"):
        H._commit(paths.table(dim), [day], {"run_id": "d", "days": [day]})
    H._commit(paths.table("user_features"), [day],
              {"run_id": "f", "table": "user_features", "days": [day, day],
               "read": {"raw_events": 0, "users": 0, "items": 0}})  # fmt: skip
    H._commit(paths.table("item_features"), [day],
              {"run_id": "g", "table": "item_features", "days": [day, day]})  # fmt: skip

    recorded = G.trace(paths, G.parse_target("user_features", day))
    root = recorded.nodes[recorded.root]
    assert "raw_events@0 dt=2026-01-01" in root.inputs  # as recorded, not the later @1
    assert not any("inferred" in note for note in root.unrecorded)
    inferred = G.trace(paths, G.parse_target("item_features", day))
    root = inferred.nodes[inferred.root]
    assert "raw_events@1 dt=2026-01-01" in root.inputs  # current at its commit
    assert any("inferred" in note for note in root.unrecorded)


def test_training_examples_commits_are_traced_at_the_versions_they_recorded(paths):
    """training_examples' commits record the versions they read (userMetadata.read): the
    trace follows them; a commit from before that is inferred from commit times, and says so."""
    day, fday = "2026-01-02", "2026-01-01"
    for version in range(2):  # raw_events@0 and @1
        H._commit(paths.table("raw_events"), [day], {"run_id": f"r{version}", "days": [day]},
                  mode="overwrite")  # fmt: skip
    for dim in ("users", "items"):
        H._commit(paths.table(dim), [fday, day], {"run_id": "d", "days": [fday, day]})
    for table in ("user_features", "item_features", "cohort_features"):
        for version in range(2):  # @0 read by the recorded commit, @1 current at both commits
            H._commit(paths.table(table), [fday], {"run_id": f"f{version}", "table": table,
                      "days": [fday, fday]}, mode="overwrite")  # fmt: skip
    read = {"raw_events": 0, "users": 0, "items": 0, "user_features": 0, "item_features": 0,
            "cohort_features": 0}  # fmt: skip
    H._commit(paths.table("training_examples"), [day],
              {"run_id": "e", "day": day, "recipe": "impressions", "features_day": fday, "read": read})  # fmt: skip
    recorded = G.trace(paths, G.parse_target("training_examples", day))
    root = recorded.nodes[recorded.root]
    assert {"raw_events@0 dt=2026-01-02", "user_features@0 dt=2026-01-01"} <= set(root.inputs)
    assert not any("inferred" in note for note in root.unrecorded)
    H._commit(paths.table("training_examples"), [day],
              {"run_id": "e2", "day": day, "recipe": "impressions", "features_day": fday},
              mode="overwrite")  # fmt: skip
    inferred = G.trace(paths, G.parse_target("training_examples", day))
    root = inferred.nodes[inferred.root]
    assert {"raw_events@1 dt=2026-01-02", "user_features@1 dt=2026-01-01"} <= set(root.inputs)
    assert any("inferred" in note for note in root.unrecorded)


def test_a_landing_file_archived_beside_its_place_is_checked_inside_its_archive(
    own_home, monkeypatch, capsys
):
    """An archiving job gzipped a landed file: "missing" said nothing of where it went. Its
    decompressed bytes are checked against the record: intact passes as ARCHIVED (alone on a
    path too: it vouches as an intact file does), a changed or damaged one fails, and a file
    gone with no archive is MISSING."""
    import gzip

    day = "2026-01-02"
    landing = Path(own_home.landing_dir("events", day)) / "part-00000.jsonl"
    shown = f"landing/events/dt={day}/part-00000.jsonl"
    body = landing.read_bytes()
    packed = landing.with_name(landing.name + ".gz")
    packed.write_bytes(gzip.compress(body))
    landing.unlink()
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert code == 0, code
    assert f"verify: ARCHIVED {shown} (landing file; compressed beside its place as " in out
    marks = [ln for ln in out.splitlines() if ln.strip().startswith(f"- landing {shown}")]
    assert marks and all(ln.endswith("[archived]") for ln in marks)  # marked as an ok one is
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "raw_events", day, "--verify")
    assert code == 0 and "verify: 1 archived" in out  # the only file on the path
    packed.write_bytes(gzip.compress(body + b'{"event_id": "forged"}\n'))
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert isinstance(code, str) and f"(1 changed): {shown}" in code
    damaged = bytearray(gzip.compress(body))
    damaged[30:60] = bytes(b ^ 0xFF for b in damaged[30:60])  # the header intact, the body not
    packed.write_bytes(bytes(damaged))
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert (
        isinstance(code, str) and "which cannot be read" in out and f"(1 changed): {shown}" in code
    )
    packed.unlink()
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert isinstance(code, str) and f"(1 missing): {shown}" in code


def test_a_damaged_delta_log_fails_verify_naming_it_never_drops_its_branch(
    paths, monkeypatch, capsys
):
    """A table whose Delta log cannot be read was read as holding no partition where a
    feature commit recorded the version it read: the trace went on without its branch, and
    --verify said "ok" of what was left, exit 0."""
    own_home = H.build(paths, read=True)
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert code == 0 and "verify: 16 ok" in out
    log = Path(own_home.table("users")) / "_delta_log" / "00000000000000000000.json"
    log.write_text(log.read_text() + "garbage{\n")
    code, out, _ = run_cli(own_home, monkeypatch, capsys, "lineage", "latest", "--verify")
    assert isinstance(code, str) and "users" in code and "damaged" in (code + out)
    assert "_delta_log" in code + out
