from __future__ import annotations

import io

import numpy as np
import pyarrow as pa
import pytest
import torch

from recassets.training.vocab import FeatureVocab, FeatureVocabConfig, Vocabulary, count_values


def ids(capacity=3, buckets=4, min_count=2, ttl=1) -> FeatureVocab:
    return FeatureVocab("item_id", FeatureVocabConfig("int64", capacity, buckets, min_count, ttl))


def test_ids_are_admitted_once_their_count_reaches_min_count_across_updates():
    v = ids()
    upd = v.update({10: 2, 11: 1}, now_step=0)
    assert upd.admitted.tolist() == [4]  # rows start after the 4 OOV buckets
    assert 10 in v and 11 not in v and v.num_pending == 1
    v.update({11: 1}, now_step=0)  # counts add up while waiting
    assert 11 in v
    assert v.lookup([10, 11]).tolist() == [4, 5]


def test_capacity_bounds_admission_and_the_rest_hash_to_oov_buckets():
    v = ids(capacity=2, min_count=1, ttl=None)
    v.update({1: 1, 2: 5, 3: 3}, now_step=0)  # by count: 2, 3 get the two rows
    assert sorted(v.keys().tolist()) == [2, 3] and len(v) == 2
    rows = v.lookup([1, 2, 3])
    assert rows[0] < 4 and rows[0] == v.oov_buckets([1])[0]
    assert sorted(rows[1:].tolist()) == [4, 5]
    assert v.num_rows == 6


def test_admission_order_is_deterministic_by_count_then_key():
    v = ids(capacity=2, min_count=1, ttl=None)
    v.update({9: 2, 7: 2, 8: 2}, now_step=0)
    assert v.keys().tolist() == [7, 8]


def test_stale_ids_are_evicted_and_their_rows_recycled_for_new_ids():
    v = ids(capacity=2, min_count=1, ttl=1)
    v.update({10: 1, 11: 1}, now_step=0)
    row_10 = int(v.lookup([10])[0])
    v.update({11: 1}, now_step=1)  # 10 not seen, but only 1 step ago: kept
    assert 10 in v
    upd = v.update({11: 1, 12: 1}, now_step=2)  # 10 unseen for 2 steps > ttl: evicted
    assert upd.evicted.tolist() == [row_10]
    assert upd.recycled.tolist() == [row_10]  # ... and its row went to 12: re-initialize it
    assert 10 not in v and int(v.lookup([12])[0]) == row_10
    assert v.lookup([10])[0] < v.num_oov_buckets
    fresh = v.update({13: 1}, now_step=2)  # no free row: 13 waits
    assert fresh.admitted.size == 0 and v.num_pending == 1


def test_a_row_never_owned_before_is_not_reported_as_recycled():
    v = ids(capacity=3, min_count=1, ttl=None)
    assert v.update({1: 1}, now_step=0).recycled.size == 0
    assert v.update({2: 1}, now_step=1).recycled.size == 0


def test_steps_cannot_go_backwards():
    v = ids()
    v.update({1: 1}, now_step=5)
    with pytest.raises(ValueError):
        v.update({1: 1}, now_step=4)


def test_string_keys_with_arrow_and_numpy_inputs_agree():
    v = FeatureVocab("country", FeatureVocabConfig("string", capacity=2, num_oov_buckets=3))
    v.update(count_values(["us", "fr", "us", "unitedkingdom"]), now_step=0)
    assert sorted(v.keys().tolist()) == ["fr", "us"]  # capacity 2: the most frequent, then by key
    values = ["us", "fr", "xx", "unitedkingdom", "us"]
    a = v.lookup(pa.array(values), record=False)
    b = v.lookup(np.array(values), record=False)
    c = v.lookup(values, record=False)
    assert a.tolist() == b.tolist() == c.tolist()
    assert a[0] == a[4] >= 3 and a[2] < 3 and a[3] < 3
    with pytest.raises(ValueError, match="null"):
        v.lookup(pa.array(["us", None]))


def test_oov_hashing_is_stable_across_instances_and_processes():
    a = ids(capacity=0, buckets=97, min_count=1, ttl=None)
    b = ids(capacity=0, buckets=97, min_count=1, ttl=None)
    keys = np.arange(1000, 1100, dtype=np.int64)
    assert a.lookup(keys).tolist() == b.lookup(keys).tolist()
    # pinned values: a salted hash (Python's hash of str) would change them between runs
    s = FeatureVocab("c", FeatureVocabConfig("string", capacity=0, num_oov_buckets=1000))
    assert s.lookup(["fr", "us"]).tolist() == s.oov_buckets(["fr", "us"]).tolist()
    assert s.lookup(["fr", "us"]).tolist() == _pinned_string_buckets()


def _pinned_string_buckets():
    import hashlib

    from recassets.training.vocab import _splitmix64

    fps = np.array(
        [
            int.from_bytes(hashlib.blake2b(k.encode(), digest_size=8).digest(), "little")
            for k in ("fr", "us")
        ],
        dtype=np.uint64,
    )
    return (_splitmix64(fps) % np.uint64(1000)).astype(np.int64).tolist()


def test_oov_and_collision_rates():
    v = ids(capacity=1, buckets=1, min_count=1, ttl=None)
    v.update({5: 1}, now_step=0)
    v.lookup([5, 5, 6, 7, 6])  # 3 of 5 lookups are OOV; 6 and 7 share the only bucket
    st = v.stats()
    assert st["oov_lookups"] == 3 and st["oov_rate"] == pytest.approx(0.6)
    assert st["oov_buckets_used"] == 1 and st["oov_buckets_shared"] == 1
    assert st["collision_rate"] == 1.0
    v.reset_stats()
    v.lookup([6, 6])  # one distinct id in the bucket: not a collision
    assert v.stats()["oov_buckets_shared"] == 0 and v.stats()["oov_rate"] == 1.0
    v.lookup([5], record=False)
    assert v.stats()["lookups"] == 2


def test_weighted_lookups_count_occurrences():
    v = ids(capacity=1, buckets=2, min_count=1, ttl=None)
    v.update({5: 1}, now_step=0)
    v.lookup([5, 6], weights=[3, 1])
    assert v.stats()["lookups"] == 4 and v.stats()["oov_lookups"] == 1


def test_state_round_trips_through_torch_load_weights_only():
    voc = Vocabulary(
        {
            "item_id": ids(capacity=3, min_count=2, ttl=2),
            "country": FeatureVocab(
                "country", FeatureVocabConfig("string", 2, 3, min_count=1, ttl=None)
            ),
        }
    )
    voc.update({"item_id": {1: 2, 2: 1, 3: 5}, "country": {"fr": 1, "de": 2, "it": 1}}, now_step=0)
    voc.lookup("item_id", [1, 2, 99])
    voc.lookup("country", ["fr", "zz", "yy"])
    buf = io.BytesIO()
    torch.save(voc.state_dict(), buf)
    buf.seek(0)
    back = Vocabulary.from_state_dict(torch.load(buf, weights_only=True))
    for name in ("item_id", "country"):
        assert back[name].keys().tolist() == voc[name].keys().tolist()
        assert back[name].stats() == voc[name].stats()
        assert back[name].config == voc[name].config
    probe = {"item_id": [1, 2, 3, 99, -4], "country": ["fr", "de", "it", "zz"]}
    for name, keys in probe.items():
        assert (
            back.lookup(name, keys, record=False).tolist()
            == voc.lookup(name, keys, record=False).tolist()
        )
    # and they keep evolving identically (pending counts, last-seen steps survived)
    u1 = voc.update({"item_id": {2: 1, 4: 2}}, now_step=3)
    u2 = back.update({"item_id": {2: 1, 4: 2}}, now_step=3)
    for name in u1:
        assert u1[name].recycled.tolist() == u2[name].recycled.tolist()
        assert u1[name].admitted.tolist() == u2[name].admitted.tolist()
    assert back["item_id"].keys().tolist() == voc["item_id"].keys().tolist()


def test_unknown_vocabulary_names_are_rejected():
    voc = Vocabulary({"item_id": ids()})
    with pytest.raises(KeyError):
        voc.update({"nope": {1: 1}}, now_step=0)
