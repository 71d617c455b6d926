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


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    """A fresh, empty RECASSETS home under the test's temporary folder."""
    return home_at(tmp_path.absolute())


@pytest.fixture(scope="session")
def make_home(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Paths]:
    """A factory of fresh homes for module- or session-scoped fixtures."""
    return lambda name: home_at(tmp_path_factory.mktemp(name).absolute())
