"""Figures the lineage prints that were outside every digest: an ingest manifest's run id,
quarantine version and code version (manifest digest version 2, with its manifests of before
checked as then), a bento's build time (against BentoML's own ``bento.yaml``), the Feast
registry (rewritten by every feature-store run: said, never a failure), and a feature store's
manifest (it must name each feature table at a version that wrote its day). Each with the
case that must fail."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import CommitProperties, write_deltalake

from recassets.bento import bundle as B
from recassets.featurestore import config as fcfg
from recassets.ingest.files import LandedFile
from recassets.ingest.lineage import lineage_path, manifest_digest, partition_facts, write_lineage
from recassets.ingest.results import IngestResult, PartitionResult
from recassets.lineage import graph as G
from recassets.lineage.store_inputs import written_tables
from recassets.lineage.verify import failures, verify
from recassets.paths import Paths

from . import home as H

DAY = "2026-01-02"
RUN = "run-0001"


def _ingested(paths: Paths, *, old: bool = False) -> Path:
    """A day ingested as ``ingest.pipeline`` does: the quarantine commit, then the table's,
    both tagged with the run, the days and each day's manifest digest; then the manifest.
    ``old``: as written before digest version 2."""
    f = Path(paths.landing_dir("events", DAY)) / "part-00000.jsonl"
    f.parent.mkdir(parents=True)
    f.write_text('{"e": 1}\n')
    landed = LandedFile(str(f), DAY, f.stat().st_size, hashlib.sha256(f.read_bytes()).hexdigest(),
                        "jsonl")  # fmt: skip
    part = PartitionResult(DAY, rows=1, quarantined=0, files=[landed])
    facts = partition_facts(part)
    if old:
        facts = {k: v for k, v in facts.items() if k not in ("digest_version", "code_version")}
    meta = json.dumps({"run_id": RUN, "dataset": "events", "days": [DAY], "code_version": "t",
                       "manifests": {DAY: manifest_digest(facts)}})  # fmt: skip
    props = CommitProperties(custom_metadata={"userMetadata": meta})
    q = pa.table({"dataset": ["other"], "n": [0]})
    write_deltalake(paths.table("quarantine"), q, partition_by=["dataset"])  # version 0
    write_deltalake(paths.table("quarantine"), q, mode="append", commit_properties=props)  # 1
    rows = pa.table({"n": [1], "dt": [DAY]})
    write_deltalake(paths.table("raw_events"), rows, partition_by=["dt"], commit_properties=props)
    write_lineage(paths, IngestResult("events", paths.table("raw_events"), 0, 1, {DAY: part},
                                      run_id=RUN))  # fmt: skip
    manifest = Path(lineage_path(paths, "raw_events", DAY))
    if old:
        m = json.loads(manifest.read_text())
        del m["digest_version"]
        manifest.write_text(json.dumps(m))
    return manifest


def _edit(manifest: Path, **changes: object) -> None:
    m = json.loads(manifest.read_text())
    for k, v in changes.items():
        if v is None:
            m.pop(k, None)
        else:
            m[k] = v
    manifest.write_text(json.dumps(m))


def _bad(paths: Paths, target: str = "raw_events", day: str | None = DAY) -> list:
    return failures(verify(G.trace(paths, G.parse_target(target, day))))


@pytest.mark.parametrize(
    "edit",
    [
        {"run_id": "forged"},
        {"quarantine_version": 0},
        {"code_version": "9.9"},
        {"digest_version": None},
    ],  # fmt: skip
    ids=["run_id", "quarantine_version", "code_version", "digest_version removed"],
)
def test_a_manifests_run_quarantine_and_code_version_are_checked(paths: Paths, edit: dict):
    manifest = _ingested(paths)
    assert json.loads(manifest.read_text())["digest_version"] == 2
    assert _bad(paths) == []
    _edit(manifest, **edit)
    bad = _bad(paths)
    assert [(v.path, v.status) for v in bad] == [(str(manifest), "changed")]


def test_a_manifest_written_before_digest_version_2_is_checked_as_then(paths: Paths):
    manifest = _ingested(paths, old=True)
    tree = G.trace(paths, G.parse_target("raw_events", DAY))
    assert failures(verify(tree)) == []
    node = tree.nodes[tree.root]
    assert any("recorded before that check" in u for u in node.unrecorded)
    _edit(manifest, run_id="forged")  # not checked then: said, as before
    assert _bad(paths) == []
    _edit(manifest, rows=5)  # what its digest covered still is
    assert _bad(paths)


def test_a_bentos_build_time_is_checked_against_bentomls(paths: Paths):
    home = H.build(paths)
    folder = B.bento_folder(home, H.TAG)
    manifest = folder / "src" / "bundle" / "manifest.json"
    built = json.loads(manifest.read_text())["created_at"]
    yaml = folder / "bento.yaml"
    yaml.write_text(yaml.read_text() + f"creation_time: '{built}'\n")
    assert failures(verify(G.trace(home, G.parse_target("latest")))) == []
    m = json.loads(manifest.read_text())
    m["created_at"] = "2020-01-01T00:00:00+00:00"  # outside the lineage digest
    manifest.write_text(json.dumps(m))
    bad = failures(verify(G.trace(home, G.parse_target("latest"))))
    assert [(Path(v.path).name, v.status) for v in bad] == [("bento.yaml", "changed")]


def test_the_feast_registry_rewritten_since_the_build_is_said_not_failed(paths: Paths):
    home = H.build(paths)
    fcfg.registry_path(home).write_bytes(b"registry of a later day")
    results = verify(G.trace(home, G.parse_target("latest")))
    assert failures(results) == []
    registry = [v for v in results if v.path == str(fcfg.registry_path(home))]
    assert registry[0].status == "rewritten" and "not evidence of the data" in registry[0].what
    bundle = Path(B.bento_folder(home, H.TAG), "src", "bundle")
    # the bento's own copy of the registry at its build: strict, as every other file
    assert (bundle / "feast" / "registry.db").read_bytes() == b"registry"
    (bundle / "feast" / "registry.db").write_bytes(b"registry of a later day")
    assert [v.path for v in failures(verify(G.trace(home, G.parse_target("latest"))))] == [
        str(bundle / "feast" / "registry.db")
    ]
    (bundle / "feast" / "registry.db").write_bytes(b"registry")
    copy = next((bundle / "models").glob("*.pt"))
    copy.write_bytes(b"other")  # every other file stays strict
    assert [v.path for v in failures(verify(G.trace(home, G.parse_target("latest"))))] == [
        str(copy)
    ]


def _store_manifest(home: Paths) -> Path:
    return Path(home.lineage) / "feature_store" / f"dt={H.DAYS[1]}.json"


def test_the_feature_store_manifest_must_name_each_feature_table(paths: Paths):
    home = H.build(paths)
    assert written_tables() == ("user_features", "item_features", "cohort_features")
    assert failures(verify(G.trace(home, G.parse_target("latest")))) == []
    path = _store_manifest(home)
    m = json.loads(path.read_text())
    path.write_text(json.dumps({**m, "inputs": m["inputs"][:1]}))
    bad = failures(verify(G.trace(home, G.parse_target("latest"))))
    assert [v.path for v in bad] == [str(path)]
    assert "does not name item_features" in bad[0].what
    assert "does not name cohort_features" in bad[0].what


def test_the_feature_store_manifest_must_name_a_version_that_wrote_its_day(paths: Paths):
    home = H.build(paths)
    table = home.table("item_features")  # made again: version 0 writes DAYS[0], 1 DAYS[1]
    shutil.rmtree(table)
    for day in H.DAYS:
        H._commit(table, [day], {"run_id": H.RUN, "table": "item_features", "days": [day, day]})
    path = _store_manifest(home)
    m = json.loads(path.read_text())
    m["inputs"][1]["delta_version"] = 1
    path.write_text(json.dumps(m))
    assert failures(verify(G.trace(home, G.parse_target("latest")))) == []
    m["inputs"][1]["delta_version"] = 0  # it showed "(no commit)" and passed
    path.write_text(json.dumps(m))
    bad = failures(verify(G.trace(home, G.parse_target("latest"))))
    assert [v.path for v in bad] == [str(path)]
    assert "item_features at version 0, at which no recassets commit had written" in bad[0].what
