"""OnlineFeatureReader returns exactly what Feast's get_online_features returns, reading
Feast's encodings itself (checked here against Feast's own functions), and reloads its
in-memory items when a newer day is materialized."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from recassets.featurestore import (
    FOUND,
    OnlineFeatureReader,
    materialize_day,
    online_features,
    same_value,
    wire,
)
from tests.unit.featurestore.conftest import DAY1, DAY2, ITEMS, USERS
from tests.unit.featurestore.factories import item_row

ROOT = Path(__file__).resolve().parents[3]
UNKNOWN = 424242


@pytest.mark.parametrize(
    "key,value",
    [("user_id", 7), ("item_id", -3), ("item_id", 2**40 + 5), ("cohort_id", "fr|25-34|cat1")],
)
def test_entity_keys_are_serialized_as_feast_does(key, value):
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.infra.online_stores.helpers import _redis_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value

    v = Value(string_val=value) if isinstance(value, str) else Value(int64_val=value)
    entity = EntityKey(join_keys=[key], entity_values=[v])
    assert wire.serialize_entity_key(key, value) == serialize_entity_key(
        entity, entity_key_serialization_version=3
    )
    assert wire.redis_key(key, value, "recassets") == _redis_key("recassets", entity, 3)


def test_values_decode_as_feast_converts_them():
    from feast.protos.feast.types import Value_pb2 as V
    from feast.type_map import feast_value_type_to_python_type

    values = [
        V.Value(),
        V.Value(int64_val=-(2**62)),
        V.Value(int32_val=7),
        V.Value(double_val=0.1),
        V.Value(double_val=float("nan")),
        V.Value(float_val=0.1),
        V.Value(string_val="été"),
        V.Value(bool_val=True),
        V.Value(bytes_val=b"\x00\x01"),
        V.Value(int64_list_val=V.Int64List(val=[1, -2, 2**40])),
        V.Value(int64_list_val=V.Int64List(val=[])),
        V.Value(string_list_val=V.StringList(val=["a", ""])),
        V.Value(double_list_val=V.DoubleList(val=[float("nan"), 4.5])),
        V.Value(float_list_val=V.FloatList(val=[0.1, -1.1])),
    ]
    for v in values:
        ours, feasts = wire.decode_value(v.SerializeToString()), feast_value_type_to_python_type(v)
        assert same_value(ours, feasts) and type(ours) is type(feasts), v


def test_redis_fields_are_feasts_murmur_hashes():
    from feast.infra.online_stores.helpers import _mmh3

    assert wire.redis_field("user_daily_features", "clicks_7d") == _mmh3(
        "user_daily_features:clicks_7d"
    )


def assert_user_equals_feast(paths, reader: OnlineFeatureReader, features) -> None:
    feast = online_features(paths, "user", [*USERS, UNKNOWN], features)
    for row, user_id in enumerate([*USERS, UNKNOWN]):
        ours = reader.user(user_id)
        assert list(ours) == ["user_id", *reader.user_features]
        expected = {name: values[row] for name, values in feast.items()}
        assert set(ours) == set(expected)
        bad = {n: (ours[n], expected[n]) for n in expected if not same_value(ours[n], expected[n])}
        assert bad == {}, user_id


def assert_items_equal_feast(paths, reader: OnlineFeatureReader, ids, features) -> None:
    feast = online_features(paths, "item", ids, features)
    ours = reader.items(ids)
    assert set(ours) == set(feast) | {FOUND}
    assert ours[FOUND].tolist() == [v is not None for v in feast["impressions_7d"]]
    for name, values in feast.items():
        for row, expected in enumerate(values):
            if ours[FOUND][row]:
                assert same_value(ours[name][row], expected), (name, ids[row])
            elif name != "item_id":
                assert expected is None


@pytest.mark.parametrize("service", [None, "ranking_v1", "retrieval_v1"])
def test_reader_returns_what_feast_returns(materialized, service):
    paths, _, _ = materialized
    reader = OnlineFeatureReader(paths, service=service)
    assert reader.day == DAY2
    assert_user_equals_feast(paths, reader, service)
    ids = [*ITEMS, 21, UNKNOWN, 3, -1]  # unknown ids, a repeat, unsorted
    assert_items_equal_feast(paths, reader, ids, service)


def test_reader_arrays_have_model_friendly_types(materialized):
    paths, _, _ = materialized
    got = OnlineFeatureReader(paths).items([2, UNKNOWN, 9])
    assert got[FOUND].tolist() == [True, False, True]
    assert got["clicks_7d"].dtype == np.int64 and got["ctr_7d"].dtype == np.float64
    assert got["embedding"].dtype == np.float32 and got["embedding"].shape == (3, 16)
    assert (
        np.isnan(got["embedding"][1]).all()
        and np.isnan(got["ctr_7d"][1])
        and got["clicks_7d"][1] == 0
    )
    assert got["embedding"][0].tolist() == [
        float(np.float32(x)) for x in item_row(2, DAY2)["embedding"]
    ]
    assert got["category"].tolist() == ["cat2", None, None]  # item 9: null category


def test_reader_reloads_items_when_a_newer_day_is_materialized(lake_copy):
    paths = lake_copy
    materialize_day(paths, DAY1)
    reader = OnlineFeatureReader(paths, check_interval_s=0)
    before = reader.items([1, 21])
    assert reader.day == DAY1 and before[FOUND].tolist() == [True, False]
    assert before["clicks_7d"][0] == item_row(1, DAY1)["clicks_7d"]

    materialize_day(paths, DAY2)
    after = reader.items([1, 21])
    assert reader.day == DAY2 and after[FOUND].tolist() == [True, True]
    assert after["clicks_7d"].tolist() == [
        item_row(1, DAY2)["clicks_7d"],
        item_row(21, DAY2)["clicks_7d"],
    ]
    assert not reader.maybe_refresh()  # nothing new since


def test_reader_checks_the_marker_at_most_every_interval(lake_copy):
    paths = lake_copy
    materialize_day(paths, DAY1)
    reader = OnlineFeatureReader(paths, check_interval_s=3600)
    reader.items([1])
    materialize_day(paths, DAY2)
    assert reader.items([21])[FOUND].tolist() == [False] and reader.day == DAY1
    assert reader.refresh() and reader.items([21])[FOUND].tolist() == [True]


def test_a_damaged_marker_keeps_the_day_in_memory_and_says_so(lake_copy):
    """A ``materialized.json`` cut short (a disk full mid-copy, a hand edit): the reader keeps
    the items it holds and names the file; before, each check for a newer day raised into the
    request or readiness check that made it. A good marker again loads as before."""
    from recassets.featurestore import config as cfg

    paths = lake_copy
    materialize_day(paths, DAY1)
    reader = OnlineFeatureReader(paths, check_interval_s=0)
    marker = cfg.marker_path(paths)
    good = marker.read_text()
    marker.write_text(good[:20])
    assert not reader.maybe_refresh()  # no raise
    assert reader.day == DAY1 and reader.items([1])[FOUND].tolist() == [True]
    assert reader.marker_error is not None and str(marker) in reader.marker_error
    fresh = OnlineFeatureReader(paths)  # a replica starting now: empty, not dead
    assert fresh.day is None and "is damaged" in (fresh.marker_error or "")
    marker.write_text('{"note": "no day"}')
    assert not reader.maybe_refresh() and "no day in it" in (reader.marker_error or "")
    materialize_day(paths, DAY2)
    assert reader.maybe_refresh() and reader.day == DAY2 and reader.marker_error is None


def test_a_marker_gone_or_a_store_emptied_keeps_the_items_and_says_so(lake_copy):
    """The marker moved away (or a Redis without it), then a store that holds no item of the
    day its marker names (a Redis restarted without persistence, flushed): the reader keeps
    the items it serves and names the cause, which readiness reports. Both emptied the catalog
    before: empty pages, /rank a 500, and a ready service."""
    import sqlite3

    from recassets.featurestore import config as cfg

    paths = lake_copy
    materialize_day(paths, DAY1)
    reader = OnlineFeatureReader(paths, check_interval_s=0)
    marker = cfg.marker_path(paths)
    marker.rename(marker.with_suffix(".bak"))
    assert not reader.maybe_refresh()
    assert reader.day == DAY1 and reader.items([1])[FOUND].tolist() == [True]
    assert reader.marker_error == f"the marker {marker} is gone"
    marker.with_suffix(".bak").rename(marker)  # moved back: the same file, nothing to load
    assert not reader.maybe_refresh() and reader.marker_error is None
    with sqlite3.connect(reader._backend.path) as db:
        db.execute(f"DELETE FROM {reader._backend._table('item_daily_features')}")
    marker.write_text(marker.read_text())  # a new version of the marker, over no item
    assert not reader.maybe_refresh()
    assert reader.day == DAY1 and reader.items([1])[FOUND].tolist() == [True]
    assert "the online store holds no item of " + DAY1 in (reader.marker_error or "")
    materialize_day(paths, DAY2)  # filled again: loads, and the note goes
    assert reader.maybe_refresh() and reader.day == DAY2 and reader.marker_error is None


def test_reader_before_any_apply_says_what_to_do(paths):
    with pytest.raises(FileNotFoundError, match="materialize the feature_store asset"):
        OnlineFeatureReader(paths)


def test_reader_never_imports_feast(materialized):
    paths, _, _ = materialized
    code = (
        "import sys\n"
        "from recassets.featurestore.online import OnlineFeatureReader\n"
        "from tests.conftest import home_at\n"
        "from pathlib import Path\n"
        f"r = OnlineFeatureReader(home_at(Path({paths.home!r})), service='ranking_v1')\n"
        "assert r.user(1)['clicks_7d'] is not None and r.items([1])['found'].all()\n"
        "assert 'feast' not in sys.modules and 'torch' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
