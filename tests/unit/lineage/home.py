"""A small home whose every link is recorded the way the pipeline records it, without Spark.

Landing files for two days; the ingest tables, the feature tables and ``training_examples`` as
Delta tables (delta-rs) whose commits carry the writers' ``userMetadata`` (run id, table,
days: ``recassets/ingest/pipeline.py``, ``recassets/features/backfill.py``,
``recassets/training/examples.py``); the ingest manifests by ``write_lineage`` itself; two tiny
checkpoints (``Checkpoint.save``) whose ``source`` names the example partitions and versions;
an index and embeddings manifest; the feature store's manifest; the bundle by
``recassets.bento.bundle.write_bundle`` itself, placed where a bento keeps it (``bentoml build``
only packages that folder: ``tests/integration/test_serving.py`` builds a real one).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
from deltalake import CommitProperties, write_deltalake

from recassets.bento import bundle as B
from recassets.featurestore import config as fcfg
from recassets.ingest.files import LandedFile
from recassets.ingest.lineage import write_lineage
from recassets.ingest.results import IngestResult, PartitionResult
from recassets.paths import Paths
from recassets.training import policy as P
from recassets.training.checkpoint import Checkpoint

DAYS = ("2026-01-01", "2026-01-02")
RUN = "0b6f1c2e-1111-4a4a-8b8b-000000000001"
TAG_VERSION = "20260103t000000-model-abc"
TAG = f"{B.BENTO_NAME}:{TAG_VERSION}"


def _commit(path: str, days: list[str], meta: dict, mode: str = "append") -> None:
    table = pa.table({"n": list(range(len(days))), "dt": [dt.date.fromisoformat(d) for d in days]})
    write_deltalake(
        path, table, mode=mode, partition_by=["dt"],
        commit_properties=CommitProperties(custom_metadata={"userMetadata": json.dumps(meta)}),
    )  # fmt: skip


def landing_files(paths: Paths) -> list[Path]:
    return sorted(Path(paths.landing).rglob("*.jsonl"))


def build(paths: Paths, *, blend: bool = False, light: bool = False, read: bool = False) -> Paths:
    """The home; ``blend``: the promoted policy serves the blend order, with an item
    similarity fitted on both example partitions at version 0; ``light``: the pair serves
    with a light ranker that read the two-tower's scores of both partitions; ``read``: the
    feature commits record the versions they read (``userMetadata["read"]``), as the
    pipeline's do, so that a trace reads no table's history to infer them."""
    # Landing files and their ingestion: one commit per dataset for both days, one manifest per day.
    for dataset, table in (("events", "raw_events"), ("users", "users"), ("items", "items")):
        parts = {}
        for day in DAYS:
            folder = Path(paths.landing_dir(dataset, day))
            folder.mkdir(parents=True)
            f = folder / "part-00000.jsonl"
            f.write_text(json.dumps({"dataset": dataset, "day": day}) + "\n")
            landed = LandedFile(str(f), day, f.stat().st_size,
                                hashlib.sha256(f.read_bytes()).hexdigest(), "jsonl")  # fmt: skip
            parts[day] = PartitionResult(day, rows=1, quarantined=0, files=[landed])
        _commit(paths.table(table), list(DAYS),
                {"run_id": RUN, "dataset": dataset, "days": list(DAYS), "code_version": "t"})  # fmt: skip
        write_lineage(paths, IngestResult(dataset, paths.table(table), 0, 0, parts, run_id=RUN))
    # Feature tables: the range path records days as [first, last].
    for table in ("user_features", "item_features", "cohort_features"):
        _commit(paths.table(table), list(DAYS),
                {"run_id": RUN, "table": table, "days": [DAYS[0], DAYS[-1]], "code_version": "t",
                 **({"read": {"raw_events": 0, "users": 0, "items": 0}} if read else {})})  # fmt: skip
    _commit(paths.table("training_examples"), list(DAYS),
            {"run_id": RUN, "days": list(DAYS), "recipe": dict.fromkeys(DAYS, "impressions"),
             "features_day": {DAYS[0]: None, DAYS[1]: DAYS[0]}, "code_version": "t",
             **({"read": {t: 0 for t in ("raw_events", "users", "items", "user_features",
                                          "item_features", "cohort_features")}} if read else {})})  # fmt: skip
    # Checkpoints that consumed both example partitions at version 0.
    ckpts = {}
    for kind in P.KINDS:
        target = P.next_checkpoint_path(paths, kind)
        target.parent.mkdir(parents=True, exist_ok=True)
        ckpt = Checkpoint(
            kind=kind, config={"train": {"seed": 0}}, state_dict={}, optimizer={}, vocab={},
            source={"table": paths.table("training_examples"),
                    "partitions": {d: {"version": 0, "rows": 1} for d in DAYS}},
            metrics={"loss": 0.5}, created_at="2026-01-03T00:00:00+00:00",
        )  # fmt: skip
        ckpts[kind] = ckpt.save(target)
    policy = {"policy": "model", **ckpts}
    if blend:
        from recassets.training.similarity import ItemSimilarity

        sim = ItemSimilarity.fit(np.array([1, 1, 2]), np.array([10, 20, 10]), l2=1.0, meta={
            "partitions": list(DAYS), "table": paths.table("training_examples"),
            "table_version": 0})  # fmt: skip
        path = Path(paths.artifacts) / "models" / "item_similarity" / "0001.npz"
        policy.update(order="blend", item_similarity=sim.save(path))
    if light:
        from recassets.training.light import FEATURES, LightRanker

        f = len(FEATURES)
        ranker = LightRanker(np.zeros(f, np.float32), np.ones(f, np.float32),
                             np.ones((f, 2), np.float32), np.zeros(2, np.float32),
                             np.ones(2, np.float32), 0.0,
                             {"two_tower": ckpts["two_tower"], "partitions": list(DAYS),
                              "table": paths.table("training_examples"), "table_version": 0,
                              "rows": 4, "holdout_auc": 0.75})  # fmt: skip
        path = Path(paths.artifacts) / "models" / "light_ranker" / "0001.npz"
        policy.update(order="dcn_v2", light_ranker=ranker.save(path))
    P.write_policy(paths, policy)
    # Embeddings and index manifests (the files themselves are not read by lineage).
    emb = B.retrieval_dir(paths, "embeddings") / "0001"
    emb.mkdir(parents=True)
    B._write_json(emb / "manifest.json", {"two_tower": ckpts["two_tower"],
                  "features_day": DAYS[1], "item_features_version": 0, "items": 2, "dim": 4})  # fmt: skip
    idx = B.retrieval_dir(paths, "index") / "0001"
    idx.mkdir(parents=True)
    (idx / "index.faiss").write_bytes(b"index")
    B._write_json(idx / "manifest.json", {"embeddings": str(emb), "two_tower": ckpts["two_tower"],
                  "features_day": DAYS[1], "item_features_version": 0,
                  "check": {"recall@100": 1.0}, "created_at": "2026-01-03T00:00:00+00:00",
                  "files": B.index_files(idx)})  # fmt: skip
    # The feature store serves DAYS[1]: its registry, marker and lineage manifest.
    fcfg.feast_dir(paths).mkdir(parents=True)
    fcfg.registry_path(paths).write_bytes(b"registry")
    fcfg.write_json(fcfg.marker_path(paths), {"day": DAYS[1]})
    fcfg.write_json(
        Path(paths.lineage) / "feature_store" / f"dt={DAYS[1]}.json",
        {"table": "feature_store", "partition": DAYS[1], "wrote_online": True,
         "inputs": [{"table": t, "day": DAYS[1], "delta_version": 0, "rows": 1, "path": "",
                     "table_path": paths.table(t)}
                    for t in ("user_features", "item_features", "cohort_features")]},
    )  # fmt: skip
    bundle = B.write_bundle(paths)
    bento = B.bento_folder(paths, TAG)
    bento.mkdir(parents=True)
    (bento / "bento.yaml").write_text(f"name: {B.BENTO_NAME}\nversion: {TAG_VERSION}\n")
    shutil.copytree(bundle, bento / "src" / "bundle")
    B.mark_built(paths, TAG)  # what build_bento does once `bentoml build` returned
    return paths
