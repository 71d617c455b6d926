"""The FAISS item index: the size-based choice, nprobe tuning, -1 slots, save/load, recall."""

from __future__ import annotations

import numpy as np
import pytest

from recassets.retrieval import index as I


def clustered(n: int, dim: int = 16, clusters: int = 64, seed: int = 0) -> np.ndarray:
    """Unit vectors around ``clusters`` centres: the shape trained item embeddings have."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.3 * rng.normal(size=(n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (10, "Flat"),
        (I.EXACT_MAX, "Flat"),
        (I.EXACT_MAX + 1, "IVF512,Flat"),
        (1_000_000, "IVF2048,Flat"),
        (I.PQ_MIN, "IVF8192,SQ8"),
    ],
)
def test_choose_index_by_catalog_size(n, expected):
    assert I.choose_index(n, 64) == expected


def test_flat_index_is_exact_and_round_trips(tmp_path):
    vecs = clustered(500)
    ids = np.arange(1000, 1500, dtype=np.int64)
    index, info = I.build_index(vecs)
    assert info.factory == "Flat" and info.nprobe is None and info.n == 500
    item_index = I.ItemIndex(index, ids, info)
    item_index.save(tmp_path / "ix")
    loaded = I.ItemIndex.load(tmp_path / "ix")
    queries = clustered(20, seed=1)
    _, pos = loaded.search(queries, 10)
    assert (pos == I.exact_search(vecs, queries, 10)).all()
    assert loaded.ids_of(pos[0]).min() >= 1000
    # k above the index size is capped, not an error
    _, pos = loaded.search(queries[:1], 10_000)
    assert pos.shape == (1, 500)


def test_ivf_tunes_nprobe_to_the_target_recall():
    vecs = clustered(20_000, clusters=256)
    queries = clustered(200, clusters=256, seed=7)
    index, info = I.build_index(
        vecs, factory="IVF256,Flat", queries=queries, k=50, target_recall=0.95
    )
    assert info.nprobe is not None and 1 <= info.nprobe <= 256
    assert info.build_recall >= 0.95
    item_index = I.ItemIndex(index, np.arange(len(vecs)), info)
    held_out = clustered(200, clusters=256, seed=8)
    m = I.measure_recall(item_index, vecs, held_out, 50)
    assert m["recall@50"] >= 0.9
    # nprobe 1 is measurably worse: the tuning is not a no-op
    I.set_nprobe(index, 1)
    _, pos = index.search(held_out, 50)
    assert I.recall_at_k(pos, I.exact_search(vecs, held_out, 50)) < m["recall@50"]


def test_minus_one_slots_are_dropped():
    vecs = clustered(2_000, clusters=64)
    index, info = I.build_index(vecs, factory="IVF64,Flat", k=10)
    I.set_nprobe(index, 1)  # one list of ~30 items cannot fill k = 200
    item_index = I.ItemIndex(index, np.arange(2_000, dtype=np.int64) + 7, info)
    _, pos = item_index.search(vecs[:1], 200)
    assert (pos[0] == -1).any()
    ids = item_index.ids_of(pos[0])
    assert len(ids) == int((pos[0] >= 0).sum()) and (ids >= 7).all()


def test_recall_counts_overlap():
    exact = np.array([[1, 2, 3, 4]])
    assert I.recall_at_k(np.array([[1, 2, 3, 4]]), exact) == 1.0
    assert I.recall_at_k(np.array([[4, 9, -1, -1]]), exact) == 0.25


def test_load_refuses_mismatched_files(tmp_path):
    vecs = clustered(100)
    index, info = I.build_index(vecs)
    I.ItemIndex(index, np.arange(100), info).save(tmp_path)
    np.save(tmp_path / I.IDS_FILE, np.arange(99))
    with pytest.raises(ValueError, match="100 vectors but 99 item ids"):
        I.ItemIndex.load(tmp_path)
    (tmp_path / I.INDEX_FILE).unlink()
    with pytest.raises(FileNotFoundError, match="index.faiss is missing"):
        I.ItemIndex.load(tmp_path)


def test_empty_catalog_is_a_clear_error():
    with pytest.raises(ValueError, match="catalog is empty"):
        I.build_index(np.zeros((0, 8), np.float32))


def test_a_damaged_index_file_is_refused_naming_the_folder(tmp_path):
    vecs = clustered(200)
    index, info = I.build_index(vecs)
    I.ItemIndex(index, np.arange(200), info).save(tmp_path / "ix")
    assert I.ItemIndex.load(tmp_path / "ix").size == 200  # whole: it loads
    data = (tmp_path / "ix" / I.INDEX_FILE).read_bytes()
    (tmp_path / "ix" / I.INDEX_FILE).write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match=r"index .*ix is damaged"):
        I.ItemIndex.load(tmp_path / "ix")


def test_the_largest_catalogs_layout_reaches_the_served_recall_where_pq_could_not():
    """The layout beyond PQ_MIN must be able to pass the recall check at serving's depth: with
    PQ codes (the layout before 2026-12-07) recall stayed near 0.55 with every list probed, so
    every index of a 10M catalog was refused and the bento never rebuilt."""
    layout = I.choose_index(I.PQ_MIN, 16).split(",", 1)[1]  # the codes, on a smaller IVF
    vecs = clustered(20_000, clusters=256)
    tune, held_out = clustered(200, clusters=256, seed=7), clustered(200, clusters=256, seed=8)

    def held_out_recall(factory: str) -> float:
        index, info = I.build_index(vecs, factory=factory, queries=tune, k=600)
        return I.measure_recall(
            I.ItemIndex(index, np.arange(len(vecs)), info), vecs, held_out, 600
        )["recall@600"]

    assert held_out_recall(f"IVF64,{layout}") >= I.MIN_RECALL
    assert held_out_recall("IVF64,PQ4") < I.MIN_RECALL  # the former codes, tuned the same way


def test_vectors_that_are_not_finite_are_refused_naming_their_positions():
    vecs = clustered(300)
    vecs[17] = np.nan
    vecs[40, 3] = np.inf
    for factory in ("Flat", "IVF16,Flat"):  # Flat dropped the row from every answer silently
        with pytest.raises(ValueError, match=r"2 of 300 item vectors are not finite .*\[17, 40\]"):
            I.build_index(vecs, factory=factory)
    assert I.build_index(clustered(300))[1].n == 300


@pytest.mark.parametrize(
    ("factory", "n", "says"),
    [
        ("HNSW32", 3_000, "neither Flat nor an IVF index"),  # built, then failed tuning in FAISS
        ("PQ4", 3_000, "neither Flat nor an IVF index"),
        ("Bogus12", 3_000, "not one FAISS reads"),
        ("IVF16,PQ4", 200, "cannot be trained on 200 vectors"),  # 8-bit codes need 256 points
        ("IVF512,Flat", 200, "needs at least 512 vectors"),
    ],
)
def test_a_factory_that_cannot_be_built_is_refused_naming_it(factory, n, says):
    with pytest.raises(ValueError, match=says) as raised:
        I.build_index(clustered(n), factory=factory)
    assert factory in str(raised.value)


def test_load_refuses_ids_and_metadata_that_do_not_fit_the_index(tmp_path):
    vecs = clustered(300)
    index, info = I.build_index(vecs)

    def saved(ids, **meta) -> object:
        folder = tmp_path / f"ix{len(list(tmp_path.iterdir()))}"
        I.ItemIndex(index, ids, I.IndexInfo(**{**info.__dict__, **meta})).save(folder)
        np.save(folder / I.IDS_FILE, ids)  # as given, not cast by save
        return folder

    assert I.ItemIndex.load(saved(np.arange(300, dtype=np.int64))).size == 300
    with pytest.raises(ValueError, match="not one column of integers"):
        I.ItemIndex.load(saved(np.arange(300) * 1.5))
    with pytest.raises(ValueError, match="299 item ids appear more than once"):
        I.ItemIndex.load(saved(np.zeros(300, dtype=np.int64)))
    with pytest.raises(ValueError, match="16-dimensional vectors, index.json says 32"):
        I.ItemIndex.load(saved(np.arange(300, dtype=np.int64), dim=32))
    with pytest.raises(ValueError, match=r"index .*ix\d is damaged"):  # nprobe on a Flat index
        I.ItemIndex.load(saved(np.arange(300, dtype=np.int64), nprobe=4))
