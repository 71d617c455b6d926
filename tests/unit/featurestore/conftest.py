"""Feature-store fixtures: one tiny lake (two days of user, item and cohort features written
by Spark as Delta) per test session, materialized once; tests that change a store copy the
lake into a home of their own."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import home_at
from tests.unit.featurestore.factories import day_rows, write_day

DAY1, DAY2 = "2026-01-01", "2026-01-02"
USERS, ITEMS = range(1, 13), range(1, 21)


@pytest.fixture(scope="session", autouse=True)
def _sqlite_online_store():
    """These tests use the embedded default: a developer's RECASSETS_REDIS_URL must not send
    them to a real Redis (tests/integration/test_redis_online_store.py covers Redis)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("RECASSETS_REDIS_URL", raising=False)
        yield


@pytest.fixture(scope="session")
def feature_lake(make_home, spark):
    """Two days of feature tables; DAY2 written twice, so its Delta folder holds tombstoned
    files of the first write (the second write's values differ: items 1..20 plus 21)."""
    paths = make_home("feature_lake")
    write_day(spark, paths, DAY1, day_rows(DAY1, USERS, ITEMS))
    write_day(spark, paths, DAY2, day_rows(DAY2, USERS, [*ITEMS, 999]))  # replaced below
    write_day(spark, paths, DAY2, day_rows(DAY2, USERS, [*ITEMS, 21]))
    return paths


@pytest.fixture(scope="session")
def materialized(feature_lake):
    """The lake's home with DAY1 then DAY2 materialized into the SQLite online store."""
    from recassets.featurestore import materialize_day

    first = materialize_day(feature_lake, DAY1)
    second = materialize_day(feature_lake, DAY2)
    return feature_lake, first, second


@pytest.fixture
def lake_copy(feature_lake, tmp_path):
    """A fresh home holding a copy of the lake (no feature store yet)."""
    paths = home_at(tmp_path.absolute())
    shutil.copytree(feature_lake.lake, paths.lake)
    Path(paths.artifacts).mkdir(parents=True)
    return paths
