"""Shared fixtures: one local Spark session per test run, and temporary RECASSETS homes."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from recassets.paths import Paths

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# The daily partitions are read from the landed data when the definitions load
# (recassets.paths.partition_window): pin them, so that whatever a developer's own .recassets
# holds cannot change which days the tests may materialize. Tests of the rule itself unset these.
os.environ.setdefault("RECASSETS_START_DATE", "2026-01-01")
os.environ.setdefault("RECASSETS_END_DATE", "open")

# Tiny inputs: two shuffle partitions instead of the default 8, and Delta's snapshot state in
# two partitions instead of 50 (each Delta commit rebuilds it; 50 tasks of nothing per commit
# dominated the tests' run time).
TEST_SPARK_CONF = {
    "spark.sql.shuffle.partitions": "2",
    "spark.databricks.delta.snapshotPartitions": "2",
}


# The slowest modules, slowest first (seconds of setup and calls per module in `make test` of
# 2026-12-06 on the 2-core machine, from `--junitxml`). `make test` runs the suite in worker
# processes (pytest-xdist, `--dist loadfile --no-loadscope-reorder`: a module's tests, and its
# module-scoped fixtures, in one worker), which take modules in collection order, one at a
# time as they free up: these lead, so the long ones start early and the short ones fill in at
# the end. xdist's own order (most tests first) left the 5-minute freshness loop and the
# browser test to the last minutes with the other worker idle: 33.7 minutes against 30.6 in
# this order, where the two workers' sums of module times differ by under a minute. A module
# not named keeps its place after these.
SLOWEST_MODULES = (
    "tests/unit/test_crash_recovery.py",  # 392 s (two workers: each module slower than alone)
    "tests/integration/test_freshness_loop.py",  # 321 s
    "tests/unit/features/test_backfill.py",
    "tests/integration/test_real_history.py",
    "tests/integration/test_ui_browser.py",
    "tests/unit/test_ingest_crash.py",
    "tests/unit/test_ingest.py",
    "tests/integration/test_s3_lake.py",
    "tests/unit/features/test_pipelines.py",
    "tests/integration/test_spark_connect.py",
    "tests/unit/training/test_examples.py",
    "tests/unit/training/test_examples_range.py",
    "tests/dagster/test_data_versions.py",
    "tests/dagster/test_launch.py",
    "tests/integration/test_serving.py",  # 95 s
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The modules of ``SLOWEST_MODULES`` first, in its order; a stable sort, so each module's
    tests keep theirs and the other modules follow in collection order."""
    rank = {module: i for i, module in enumerate(SLOWEST_MODULES)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


# Where the CLI finds a home besides RECASSETS_HOME: cleared so that a test's home is the one used.
_LOCATION_VARS = ("RECASSETS_LANDING", "RECASSETS_LAKE", "RECASSETS_ARTIFACTS",
                  "RECASSETS_LINEAGE", "RECASSETS_BENTOML_HOME", "DAGSTER_HOME")  # fmt: skip


def run_cli(
    home: Paths, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str
) -> tuple[int | str | None, str, str]:
    """``recassets ARGV`` in this process on ``home``: (exit code, 0 when it returned; stdout;
    stderr)."""
    from recassets import cli

    monkeypatch.setenv("RECASSETS_HOME", home.home)
    for name in _LOCATION_VARS:
        monkeypatch.delenv(name, raising=False)
    code: int | str | None = 0
    try:
        cli.main(list(argv))
    except SystemExit as e:
        code = e.code
    out = capsys.readouterr()
    return code, out.out, out.err


def home_at(root: Path) -> Paths:
    """The layout ``Paths.from_env(root)`` gives, built directly so that ``RECASSETS_*``
    variables in the developer's environment cannot redirect a test onto real data."""
    return Paths(
        home=str(root),
        landing=str(root / "landing"),
        lake=str(root / "lake"),
        artifacts=str(root / "artifacts"),
        lineage=str(root / "lineage"),
        dagster_home=str(root / "dagster"),
    )


@pytest.fixture(scope="session")
def spark() -> Iterator[SparkSession]:
    """The process's Spark session (local, Delta extensions), started once per test run."""
    from recassets.spark import get_spark, stop_spark

    session = get_spark(conf=TEST_SPARK_CONF)
    # get_spark returns an existing session unchanged: make the runtime confs hold anyway.
    for key, value in TEST_SPARK_CONF.items():
        session.conf.set(key, value)
    yield session
    stop_spark()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    """A monkeypatch for a module-scoped fixture (a home built once for a module's tests)."""
    with pytest.MonkeyPatch.context() as mp:
        yield mp


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    """A fresh, empty RECASSETS home under the test's temporary folder."""
    return home_at(tmp_path.absolute())


@pytest.fixture(scope="session")
def make_home(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Paths]:
    """A factory of fresh homes for module- or session-scoped fixtures."""
    return lambda name: home_at(tmp_path_factory.mktemp(name).absolute())
