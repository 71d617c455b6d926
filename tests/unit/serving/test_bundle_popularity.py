"""The ``all_time`` popularity policy serves the order the gate scored: the bundle freezes the
positives per item of every ``training_examples`` day (``bundle._all_time_counts``), and the
item block orders by them where the online store only counts 7 and 28 days of every
engagement. Before 2026-12-06 the bento served the 28-day counter under that name."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest
from deltalake import write_deltalake
from numpy.testing import assert_array_equal

from recassets.bento import bundle as B
from recassets.funnel import stages as S
from recassets.funnel.bundle import Bundle
from recassets.funnel.items import _aligned, all_time_counts
from recassets.training import policy as P
from recassets.training.checkpoint import DamagedArtifactError
from recassets.training.heldout import popularity
from tests.unit.funnel.blocks import block

# (day, item, label): item 30 has the most positives of all time (3, none this month), item
# 10 the most rows (5, two positive), item 20 one positive
ROWS = [
    ("2026-01-01", 30, 1), ("2026-01-01", 30, 1), ("2026-01-02", 30, 1),
    ("2026-01-02", 10, 1), ("2026-01-02", 10, 0), ("2026-01-03", 10, 1),
    ("2026-01-03", 10, 0), ("2026-01-03", 10, 0), ("2026-01-03", 20, 1),
]  # fmt: skip


def _examples(paths, rows=ROWS) -> None:
    days, items, labels = zip(*rows, strict=True)
    table = pa.table(
        {
            "user_id": pa.array(range(len(rows)), pa.int64()),
            "item_id": pa.array(items, pa.int64()),
            "label": pa.array(labels, pa.int32()),
            "dt": pa.array([dt.date.fromisoformat(d) for d in days], pa.date32()),
        }
    )
    write_deltalake(paths.table("training_examples"), table, partition_by=["dt"])


def test_the_bundle_of_the_all_time_policy_carries_the_gates_counts(paths, tmp_path):
    _examples(paths)
    P.write_policy(paths, {"policy": "popularity", "variant": "all_time"})
    folder = B.write_bundle(paths, tmp_path / "bundle")
    bundle = Bundle.load(folder)  # its sha256 checked
    ids, counts = all_time_counts(bundle.path("popularity"))
    assert_array_equal(ids, [10, 20, 30])  # sorted by id for the look-up
    assert_array_equal(counts, [2, 1, 3])
    gate_ids, gate_counts = popularity(
        pa.table({"item_id": [r[1] for r in ROWS], "label": [r[2] for r in ROWS]})
    )
    assert dict(zip(ids, counts, strict=True)) == dict(zip(gate_ids, gate_counts, strict=True))
    record = bundle.manifest["lineage"]["popularity"]
    assert record["days"] == ["2026-01-01", "2026-01-03"] and record["table_version"] == 0
    assert record["sha256"] and bundle.manifest["digest"] == B.lineage_digest(
        bundle.manifest["lineage"]
    )


def test_other_policies_carry_no_counts(paths, tmp_path):
    _examples(paths)
    P.write_policy(paths, {"policy": "popularity", "variant": "trailing_7d"})
    bundle = Bundle.load(B.write_bundle(paths, tmp_path / "bundle"))
    assert bundle.path("popularity") is None and all_time_counts(None) is None
    assert "popularity" not in bundle.manifest["lineage"]


def test_without_examples_the_all_time_bundle_has_no_counts(paths, tmp_path):
    P.write_policy(paths, {"policy": "popularity", "variant": "all_time"})
    bundle = Bundle.load(B.write_bundle(paths, tmp_path / "bundle"))
    assert bundle.path("popularity") is None


def test_changed_counts_are_refused_at_load(paths, tmp_path):
    _examples(paths)
    P.write_policy(paths, {"policy": "popularity", "variant": "all_time"})
    folder = B.write_bundle(paths, tmp_path / "bundle")
    np.savez(
        folder / B.POPULARITY_FILE, item_ids=np.array([10, 20, 30]), counts=np.array([9, 1, 3])
    )
    with pytest.raises(DamagedArtifactError, match="popularity.npz is damaged"):
        Bundle.load(folder)


def test_the_block_orders_all_time_as_the_gate_does():
    """By the counts, ties by the smaller id (as ``heldout.popularity``), whatever the online
    counters say; the items nobody rated positively after them, by the 28-day count."""
    # block(): ids 10..50, 28-day counts 50, 10, 1, 70, 3
    counts = _aligned(block().ids, np.array([10, 30, 40, 99]), np.array([4.0, 9.0, 4.0, 100.0]))
    counted = replace(block(), positives_all=counts)
    ids, scores = S.popularity(counted, "all_time", 5, set())
    assert_array_equal(ids, [30, 10, 40, 20, 50])  # 10 and 40 tie: 10 first, though 40 has 70
    assert_array_equal(scores, [9.0, 4.0, 4.0, 0.0, 0.0])  # 99 is not in the block
    ids, _ = S.popularity(block(), "all_time", 2, set())  # no counts (an older bento): 28 days
    assert_array_equal(ids, [40, 10])
    ids, _ = S.popularity(counted, "trailing_7d", 2, {20})  # the week's order is not touched
    assert_array_equal(ids, S.popularity(block(), "trailing_7d", 2, {20})[0])


def test_aligned_counts_of_items_nobody_counted_are_zero():
    assert_array_equal(_aligned(np.array([1, 5, 9]), np.array([5]), np.array([7.0])), [0, 7, 0])
    assert_array_equal(_aligned(np.array([1, 2]), np.zeros(0, np.int64), np.zeros(0)), [0, 0])


def test_a_popularity_bundle_publishes_no_embedding_rows():
    """Its ``files`` name the counts only: ``RECASSETS_SERVE_EMBEDDINGS=redis`` has no model
    rows to publish (it had looked for the two-tower's file in any non-empty ``files``)."""
    from recassets.funnel.embedding_store import publish_if_asked

    env = {"RECASSETS_SERVE_EMBEDDINGS": "redis"}  # and no Redis URL: asking would fail
    assert publish_if_asked("/b", {"files": {"popularity": B.POPULARITY_FILE}}, env) is None
    model = {"files": {"two_tower": "models/two_tower.pt", "ranking": "models/ranking.pt"}}
    with pytest.raises(ValueError, match="needs RECASSETS_REDIS_URL"):
        publish_if_asked("/b", model, env)


def test_the_bentos_lineage_verifies_its_counts(paths, tmp_path):
    """``recassets lineage --verify`` hashes the counts the bento serves: intact, then
    changed after the build (the manifest's digest still matches: only the file moved)."""
    import shutil

    from recassets.lineage import graph as G
    from recassets.lineage.verify import verify
    from tests.unit.lineage import home as H

    _examples(paths)
    P.write_policy(paths, {"policy": "popularity", "variant": "all_time"})
    bento = B.bento_folder(paths, H.TAG)
    bento.mkdir(parents=True)
    (bento / "bento.yaml").write_text(f"name: {B.BENTO_NAME}\nversion: {H.TAG_VERSION}\n")
    shutil.copytree(B.write_bundle(paths, tmp_path / "bundle"), bento / "src" / "bundle")
    B.mark_built(paths, H.TAG)
    counts = str(bento / "src" / "bundle" / B.POPULARITY_FILE)

    def status() -> list[str]:
        return [
            v.status for v in verify(G.trace(paths, G.parse_target("latest"))) if v.path == counts
        ]

    assert status() == ["ok"]
    np.savez(counts, item_ids=np.array([10, 20, 30]), counts=np.array([9, 1, 3]))
    assert status() == ["changed"]
