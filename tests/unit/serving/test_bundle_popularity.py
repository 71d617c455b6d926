"""The popularity policy serves the order the gate scored: the bundle freezes the positives
per item of its variant (the last 7 days of ``training_examples``, or every day:
``bento.popularity``), and the item block orders by them where the online store counts every
engagement over 7 and 28 days. Before 2026-12-06 the bento served those counters."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest
from deltalake import write_deltalake
from numpy.testing import assert_array_equal

from recassets.bento import bundle as B
from recassets.bento.popularity import POPULARITY_FILE
from recassets.funnel import stages as S
from recassets.funnel.bundle import Bundle
from recassets.funnel.items import _aligned, popularity_counts
from recassets.training import policy as P
from recassets.training.checkpoint import DamagedArtifactError
from recassets.training.heldout import popularity
from tests.unit.funnel.blocks import block

# (day, item, label): item 30 has the most positives of all time (3, none this month), item
# 10 the most rows (5, two positive), item 20 one positive; item 40 three, a month before
ROWS = [
    ("2025-12-01", 40, 1), ("2025-12-01", 40, 1), ("2025-12-01", 40, 1),
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


@pytest.mark.parametrize(
    ("variant", "counted", "first"),
    [("all_time", {10: 2, 20: 1, 30: 3, 40: 3}, "2025-12-01"),
     ("trailing_7d", {10: 2, 20: 1, 30: 3}, "2026-01-01")],
)  # fmt: skip
def test_the_bundle_of_the_popularity_policy_carries_the_gates_counts(
    paths, tmp_path, variant, counted, first
):
    _examples(paths)
    P.write_policy(paths, {"policy": "popularity", "variant": variant})
    folder = B.write_bundle(paths, tmp_path / "bundle")
    bundle = Bundle.load(folder)  # its sha256 checked
    got = popularity_counts(bundle.path("popularity"))
    assert got is not None and got[2] == variant
    ids, counts, _ = got
    assert (
        list(ids) == sorted(ids)
        and dict(zip(ids.tolist(), counts.tolist(), strict=True)) == counted
    )
    days = {r[0] for r in ROWS} if variant == "all_time" else {r[0] for r in ROWS if r[0] >= first}
    rows = [r for r in ROWS if r[0] in days]
    gate_ids, gate_counts = popularity(
        pa.table({"item_id": [r[1] for r in rows], "label": [r[2] for r in rows]})
    )
    assert dict(zip(ids, counts, strict=True)) == dict(zip(gate_ids, gate_counts, strict=True))
    record = bundle.manifest["lineage"]["popularity"]
    assert record["days"] == [first, "2026-01-03"] and record["table_version"] == 0
    assert record["variant"] == variant and record["sha256"]
    assert bundle.manifest["digest"] == B.manifest_digest(bundle.manifest)


def test_without_examples_the_bundle_has_no_counts(paths, tmp_path):
    P.write_policy(paths, {"policy": "popularity", "variant": "all_time"})
    bundle = Bundle.load(B.write_bundle(paths, tmp_path / "bundle"))
    assert bundle.path("popularity") is None and popularity_counts(None) is None
    assert "popularity" not in bundle.manifest["lineage"]


def test_changed_counts_are_refused_at_load(paths, tmp_path):
    _examples(paths)
    P.write_policy(paths, {"policy": "popularity", "variant": "all_time"})
    folder = B.write_bundle(paths, tmp_path / "bundle")
    np.savez(folder / POPULARITY_FILE, item_ids=np.array([10, 20, 30]), counts=np.array([9, 1, 3]))
    with pytest.raises(DamagedArtifactError, match="popularity.npz is damaged"):
        Bundle.load(folder)


def test_the_block_orders_by_the_bundles_counts_as_the_gate_does():
    """By the counts, ties by the smaller id (as ``heldout.popularity``), whatever the online
    counters say; the items nobody rated positively after them, by the 28-day count. Only the
    counts' own variant reads them."""
    # block(): ids 10..50, 28-day counts 50, 10, 1, 70, 3; 7-day 5, 9, 1, 7, 3
    counts = _aligned(block().ids, np.array([10, 30, 40, 99]), np.array([4.0, 9.0, 4.0, 100.0]))
    for variant in ("all_time", "trailing_7d"):
        counted = replace(block(), positives=counts, positives_variant=variant)
        ids, scores = S.popularity(counted, variant, 5, set())
        assert_array_equal(ids, [30, 10, 40, 20, 50])  # 10 and 40 tie: 10 first (40 has 70)
        assert_array_equal(scores, [9.0, 4.0, 4.0, 0.0, 0.0])  # 99 is not in the block
    ids, _ = S.popularity(block(), "all_time", 2, set())  # no counts (an older bento): 28 days
    assert_array_equal(ids, [40, 10])
    other = replace(block(), positives=counts, positives_variant="all_time")
    ids, _ = S.popularity(other, "trailing_7d", 2, {20})  # another variant: the online week
    assert_array_equal(ids, S.popularity(block(), "trailing_7d", 2, {20})[0])


def test_aligned_counts_of_items_nobody_counted_are_zero():
    assert_array_equal(_aligned(np.array([1, 5, 9]), np.array([5]), np.array([7.0])), [0, 7, 0])
    assert_array_equal(_aligned(np.array([1, 2]), np.zeros(0, np.int64), np.zeros(0)), [0, 0])


def test_a_popularity_bundle_publishes_no_embedding_rows():
    """Its ``files`` name the counts only: ``RECASSETS_SERVE_EMBEDDINGS=redis`` has no model
    rows to publish (it had looked for the two-tower's file in any non-empty ``files``)."""
    from recassets.funnel.embedding_store import publish_if_asked

    env = {"RECASSETS_SERVE_EMBEDDINGS": "redis"}  # and no Redis URL: asking would fail
    assert publish_if_asked("/b", {"files": {"popularity": POPULARITY_FILE}}, env) is None
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
    counts = str(bento / "src" / "bundle" / POPULARITY_FILE)

    def status() -> list[str]:
        return [
            v.status for v in verify(G.trace(paths, G.parse_target("latest"))) if v.path == counts
        ]

    assert status() == ["ok"]
    np.savez(counts, item_ids=np.array([10, 20, 30]), counts=np.array([9, 1, 3]))
    assert status() == ["changed"]


@pytest.mark.parametrize(
    ("arrays", "says"),
    [
        ({"item_ids": [30, 10, 20], "counts": [5.0, 1.0, 2.0]}, "not sorted and distinct"),
        ({"item_ids": [10, 20, 30], "counts": [5.0, np.nan, 2.0]}, "negative or not finite"),
        ({"item_ids": [10, 20, 30], "counts": [5.0, -1.0, 2.0]}, "negative or not finite"),
        ({"item_ids": [10, 20, 30], "counts": [5.0, 1.0]}, "not 1-D of one length"),
        ({"item_ids": [10, 20], "counts": [5.0, 1.0], "variant": "weekly"}, "none of"),
        ({"item_ids": [10, 20]}, "KeyError"),
    ],
)
def test_counts_that_cannot_order_the_page_are_refused_naming_the_file(tmp_path, arrays, says):
    """Unsorted ids scored the most-rated item 0 and served it last; a NaN count dropped an
    item from the page; lengths that differ were a bare IndexError later."""
    path = tmp_path / "popularity.npz"
    np.savez(path, **{k: np.asarray(v) for k, v in arrays.items()})
    with pytest.raises(ValueError, match=f"popularity counts {path}: .*{says}"):
        popularity_counts(path)
    np.savez(path, item_ids=np.array([10, 20]), counts=np.array([5.0, 0.0]))
    assert popularity_counts(path)[2] == "all_time"  # a sound file, as the first ones were
