from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
import torch

from recassets.training import data as D
from recassets.training.loop import build_vocab
from recassets.training.read_errors import UnreadableTrainingDayError
from recassets.training.vocab import FeatureVocabConfig
from support import planted

from .torch_threads import one_torch_thread  # noqa: F401


@pytest.fixture(scope="module")
def table(tmp_path_factory) -> str:
    path = str(tmp_path_factory.mktemp("lake") / "training_examples")
    planted.write_days(path, [0, 1], n_users=12, n_items=30, impressions_per_user=5)
    return path


@pytest.fixture(scope="module")
def vocab():
    voc = build_vocab(
        {
            "user_id": FeatureVocabConfig("int64", 20, 4, min_count=1),
            "item_id": FeatureVocabConfig("int64", 40, 4, min_count=1),
        }
    )
    day0 = planted.make_day(0, n_users=12, n_items=30, impressions_per_user=5)
    counts = {}
    for feature in D.SPARSE_FEATURES:
        col = day0.column(feature).combine_chunks()
        if feature in D.LIST_FEATURES:
            col = pc.list_flatten(col)
        vc = pc.value_counts(col.drop_null())
        counts.setdefault(D.FEATURE_VOCAB[feature], []).append(vc)
    voc.update(
        {
            name: (
                pa.concat_arrays([vc.field("values") for vc in vcs]),
                np.concatenate([vc.field("counts").to_numpy() for vc in vcs]),
            )
            for name, vcs in counts.items()
        },
        now_step=0,
    )
    return voc


def test_streams_one_partition_in_exact_batches(table):
    source = D.TrainingSource.open(table)
    assert source.version == 1  # two appends
    tables = list(D.stream_batches(source, planted.day(1), batch_size=16))
    assert [t.num_rows for t in tables] == [16, 16, 16, 12]
    all_rows = pa.concat_tables(tables)
    assert set(all_rows.column("label").to_pylist()) <= {0, 1}
    expected = planted.make_day(1, n_users=12, n_items=30, impressions_per_user=5)
    assert all_rows.column("item_id").to_pylist() == expected.column("item_id").to_pylist()
    assert "dt" not in all_rows.column_names and "example_id" not in all_rows.column_names


def test_positives_only_and_seeded_shuffle(table):
    source = D.TrainingSource.open(table)
    day = planted.day(0)
    pos = pa.concat_tables(D.stream_batches(source, day, batch_size=8, positives_only=True))
    assert pos.num_rows > 0 and pc.all(pc.equal(pos.column("label"), 1)).as_py()

    def order(seed):
        ts = D.stream_batches(source, day, batch_size=8, shuffle_rows=32, seed=seed)
        return pa.concat_tables(ts).column("item_id").to_pylist()

    plain = (
        pa.concat_tables(D.stream_batches(source, day, batch_size=8)).column("item_id").to_pylist()
    )
    assert order(1) == order(1) != order(2)
    assert sorted(order(1)) == sorted(plain) and order(1) != plain


def test_counts_cover_every_vocabulary_and_positive_frequencies(table):
    source = D.TrainingSource.open(table)
    counts = D.count_partition(source, planted.day(0))
    day0 = planted.make_day(0, n_users=12, n_items=30, impressions_per_user=5)
    assert counts.rows == day0.num_rows == 60
    keys, cnt = counts.ids["item_id"]
    n_hist = sum(len(h) for h in day0.column("history_item_ids").to_pylist())
    assert int(cnt.sum()) == 60 + n_hist  # item ids and history ids share the vocabulary
    keys, cnt = counts.ids["device"]
    assert int(cnt.sum()) == 60 - day0.column("device").null_count  # nulls are not counted
    freq = counts.positives
    assert freq.total == int(pc.sum(day0.column("label")).as_py())
    some = int(freq.keys[0])
    assert freq.log_q(np.array([some]))[0] == pytest.approx(np.log(freq.counts[0] / freq.total))


def test_arrow_rows_become_a_kjt_through_the_vocabulary(vocab):
    day0 = planted.make_day(0, n_users=12, n_items=30, impressions_per_user=5)
    sliced = day0.slice(7, 9)  # a slice: list offsets do not start at 0
    batch = D.to_batch(sliced, vocab, record=False)
    assert len(batch) == 9
    kjt = batch.features.sparse
    assert kjt.keys() == list(D.SPARSE_FEATURES) and kjt.stride() == 9
    jts = kjt.to_dict()
    hist = sliced.column("history_item_ids").to_pylist()
    assert jts["history_item_ids"].lengths().tolist() == [len(h) for h in hist]
    flat = [i for h in hist for i in h]
    assert (
        jts["history_item_ids"].values().tolist()
        == vocab["item_id"].lookup(flat, record=False).tolist()
    )
    devices = sliced.column("device").to_pylist()
    assert jts["device"].lengths().tolist() == [
        0 if d is None else 1 for d in devices
    ]  # null: empty bag
    assert (
        jts["device"].values().tolist()
        == vocab["device"].lookup([d for d in devices if d], record=False).tolist()
    )
    assert (
        jts["item_id"].values().tolist()
        == vocab["item_id"].lookup(sliced.column("item_id"), record=False).tolist()
    )
    f = batch.features
    assert f.user_dense.shape == (9, len(D.USER_DENSE)) and f.item_dense.shape == (
        9,
        len(D.ITEM_DENSE),
    )
    assert f.cross_dense.shape == (9, 1) and f.user_dense.dtype == torch.float32
    assert batch.labels.tolist() == [float(x) for x in sliced.column("label").to_pylist()]
    assert batch.item_log_q is None


def test_feature_table_column_names_are_accepted(vocab):
    day0 = planted.make_day(0, n_users=12, n_items=30, impressions_per_user=5)
    items = day0.select(["item_id", "category", "creator", *D.ITEM_DENSE])
    renamed = items.rename_columns([c[2:] if c.startswith("i_") else c for c in items.column_names])
    a, b = D.item_features(items, vocab), D.item_features(renamed, vocab)
    torch.testing.assert_close(a.item_dense, b.item_dense)
    assert a.sparse.values().tolist() == b.sparse.values().tolist()
    with pytest.raises(KeyError, match="i_ctr_7d"):
        D.item_features(items.drop_columns(["i_ctr_7d"]), vocab)


def test_same_day_history_appends_the_earlier_positives_of_the_day():
    """Row history = the d-1 history, then the user's positives of the day strictly before the
    row (the last ``limit`` of both, oldest first); other users' and later positives never."""
    import datetime as dt

    from recassets.training.data import SameDayHistory

    t = lambda h: dt.datetime(2026, 1, 5, h)  # noqa: E731
    pos = pa.table(
        {"user_id": [1, 1, 1, 2], "item_id": [10, 11, 12, 20], "ts": [t(1), t(2), t(3), t(1)]}
    )
    rows = pa.table(
        {
            "user_id": [1, 1, 2, 3, 1],
            "ts": [t(1), t(3), t(5), t(5), t(9)],
            "history_item_ids": pa.array([[7], [7, 8], [], [9], [1, 2, 3]], pa.list_(pa.int64())),
        }
    )
    out = SameDayHistory.from_table(pos, limit=3).apply(rows)["history_item_ids"].to_pylist()
    assert out == [[7], [8, 10, 11], [20], [9], [10, 11, 12]]
    assert SameDayHistory.from_table(None).apply(rows).equals(rows)


def test_shuffled_negatives_pair_users_with_other_positives_items():
    """Each round adds, per positive, the user's side with another positive's item side,
    labelled 0; a pair landing on the row's own item is dropped; rounds=0 adds nothing."""
    from recassets.training.data import shuffled_negatives

    t = pa.table(
        {
            "user_id": [1, 2, 3, 4],
            "item_id": [10, 20, 30, 40],
            "category": ["a", "b", "c", "d"],
            "label": pa.array([1, 1, 1, 0], pa.int32()),
        }
    )
    out = shuffled_negatives(t, 2, np.random.default_rng(0))
    extra = out.slice(t.num_rows)
    assert out.slice(0, t.num_rows).equals(t)
    assert 0 < extra.num_rows <= 6 and set(extra["label"].to_pylist()) == {0}
    item_of = {10: "a", 20: "b", 30: "c"}
    for row in extra.to_pylist():
        assert row["user_id"] in (1, 2, 3) and row["item_id"] in item_of
        assert row["item_id"] != row["user_id"] * 10  # never the user's own positive
        assert row["category"] == item_of[row["item_id"]]  # the item side moves together
    assert shuffled_negatives(t, 0, np.random.default_rng(0)).equals(t)


def test_day_reads_read_each_day_once_when_kept_and_stay_within_their_bound(table, monkeypatch):
    from recassets.training import day_reads as R

    calls = {"counts": 0, "history": 0}
    real_counts, real_read = R.count_partition, R.SameDayHistory.read

    def counting(source, day):
        calls["counts"] += 1
        return real_counts(source, day)

    def reading(source, day):
        calls["history"] += 1
        return real_read(source, day)

    monkeypatch.setattr(R, "count_partition", counting)
    monkeypatch.setattr(R.SameDayHistory, "read", staticmethod(reading))
    source = D.TrainingSource.open(table)
    day = planted.day(0)
    kept = R.DayReads(source, True, keep=True)
    first = kept.counts(day), kept.history(day)
    assert kept.counts(day) is first[0] and kept.history(day) is first[1]
    assert calls == {"counts": 1, "history": 1}
    assert first[1] is not None and len(first[1].items) > 0  # the day has positives
    # one pass (keep=False) and a bound smaller than the day: read every time
    for reads in (
        R.DayReads(source, True, keep=False),
        R.DayReads(source, True, keep=True, max_rows=1),
    ):
        calls.update(counts=0, history=0)
        reads.history(day), reads.history(day)
        assert calls["history"] == 2
    assert R.DayReads(source, False, keep=True).history(day) is None
    assert source.fragments(day) is source.fragments(day)  # listed once per day


def test_day_reads_keep_the_training_batches_within_their_byte_bound(table, monkeypatch):
    from recassets.training import day_reads as R

    reads = {"n": 0}
    real = R.day_batches

    def counting(*args, **kwargs):
        reads["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(R, "day_batches", counting)
    source = D.TrainingSource.open(table)
    day = planted.day(1)
    cols = D.TRAINING_COLUMNS

    def passes(day_reads):
        reads["n"] = 0
        out = [
            pa.concat_tables(
                D.stream_batches(source, day, batch_size=16, shuffle_rows=32, seed=[0, epoch],
                                 batches=day_reads.batches(day, 16, cols, False))
            )
            for epoch in range(3)
        ]  # fmt: skip
        return out, reads["n"]

    kept, n_kept = passes(R.DayReads(source, False, keep=True))
    again, n_again = passes(R.DayReads(source, False, keep=False))
    small, n_small = passes(R.DayReads(source, False, keep=True, max_bytes=1))
    assert (n_kept, n_again, n_small) == (1, 3, 3)  # kept: one read; else one a pass
    # whether kept or read again, each pass yields the same tables as a plain read
    plain = [
        pa.concat_tables(D.stream_batches(source, day, batch_size=16, shuffle_rows=32,
                                          seed=[0, epoch]))
        for epoch in range(3)
    ]  # fmt: skip
    for got in (kept, again, small):
        assert all(a.equals(b) for a, b in zip(got, plain, strict=True))
    assert not plain[0].equals(plain[1])  # the passes differ (their shuffles), so equal means equal
    assert plain[0].num_rows > 16  # more than one batch a pass


@pytest.mark.parametrize("damage", ["garbled", "removed"])
def test_an_unreadable_training_file_names_its_table_day_and_file(tmp_path, damage):
    """pyarrow said "Parquet magic bytes not found" of a relative file name, or (a file the
    run may not read) "OSError: Generic LocalFileSystem error" with delta-rs's colour codes:
    no day, no table, no next step."""
    path = str(tmp_path / "training_examples")
    planted.write_days(path, [0, 1], n_users=6, n_items=10, impressions_per_user=3)
    source = D.TrainingSource.open(path)
    day0 = D.count_partition(source, planted.day(0))  # a readable day reads as before
    assert day0.rows == 6 * 3
    victim = Path(path) / source.fragments(planted.day(1))[0].path
    if damage == "garbled":
        victim.write_bytes(b"not parquet" * 8)
    else:
        victim.unlink()
    with pytest.raises(UnreadableTrainingDayError) as caught:
        D.count_partition(D.TrainingSource.open(path), planted.day(1))
    said = str(caught.value)
    assert f"day {planted.day(1)}" in said and path in said and victim.name in said
    assert "\x1b" not in said and "nothing was trained" in said
    assert D.count_partition(D.TrainingSource.open(path), planted.day(0)).rows == day0.rows
