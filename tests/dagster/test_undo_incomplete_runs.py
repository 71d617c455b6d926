"""A run failing after its commit while its undo cannot write either (the disk full for the
RESTORE commit as for the run): the step's one-line cause, as the CLI prints it
(``assets.launch.failures``), says the run's error and then which table stays ahead of Dagster,
at which version, at which it should be, and what to do.

Before, the CLI said only ``lake__raw_events failed: OSError: [Errno 28] No space left on
device`` while ``raw_events`` stayed a version ahead of its manifest and of Dagster's
materialization (review, 2026-12-07). raw_events materialized by Dagster on a temporary home
(real Spark and Delta), then its second day again with the failure injected after the commit
(in the asset's preview) and every Delta RESTORE refused with ENOSPC."""

# No `from __future__ import annotations`: Dagster reads the `context` annotation.
import errno
import os

import pytest
from dagster import DagsterInstance, materialize
from dagster._core.errors import DagsterExecutionInterruptedError

from assets import ingest
from assets.launch import failures
from assets.partitions import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from recassets import undo
from recassets.freshness import SETTLE_ENV
from recassets.lake import latest_version
from recassets.synthetic import SyntheticConfig, generate
from resources import LakeResource, SparkResource

D1, D2 = "2026-01-01", "2026-01-02"


def _run(paths, instance, first, last):
    return materialize(
        [ingest.raw_events],
        resources={"spark": SparkResource(), "lake": LakeResource(home=paths.home)},
        instance=instance,
        tags={PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last} if first != last else {},
        partition_key=first if first == last else None,
        raise_on_error=False,
    )  # fmt: skip


@pytest.fixture(scope="module")
def built(make_home, spark, monkeypatch_module):
    monkeypatch_module.setenv(SETTLE_ENV, "0")
    paths = make_home("undo_incomplete_runs")
    generate(paths, SyntheticConfig(days=2, events_per_day=300, initial_users=40, initial_items=30))
    instance = DagsterInstance.ephemeral()
    assert _run(paths, instance, D1, D2).success
    return paths, instance


def _no_space(*_args, **_kwargs):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def _interrupted(*_args, **_kwargs):
    raise DagsterExecutionInterruptedError()


@pytest.mark.parametrize(
    ("error", "said"),
    [
        (_no_space, "OSError: [Errno 28] No space left on device"),
        # the Terminate keeps its type (the run ends as any interrupted run); the note is said
        (_interrupted, "dagster._core.errors.DagsterExecutionInterruptedError"),
    ],
)
def test_a_run_failing_after_its_commit_with_a_full_disk_says_what_stays_ahead(
    built, spark, monkeypatch, error, said
):
    paths, instance = built
    tables = [paths.table("quarantine"), paths.table("raw_events")]
    before = {t: latest_version(spark, t) for t in tables}
    monkeypatch.setattr(ingest, "_preview", error)  # after the commit, before the hand-off
    monkeypatch.setattr(undo, "restore_version", _no_space)

    result = _run(paths, instance, D2, D2)

    assert not result.success
    after = {t: latest_version(spark, t) for t in tables}
    assert after[tables[1]] == before[tables[1]] + 1  # what the statement must say: ahead
    left = "; ".join(
        f"{t} at Delta version {after[t]}, it should be at version {before[t]} (before this run)"
        for t in tables
        if after[t] != before[t]
    )
    assert failures(result) == [
        (
            "lake__raw_events",
            f"{said}; {undo.UNDO_INCOMPLETE}, which stay ahead of what Dagster recorded: {left}; "
            "free space or fix the cause, then run the same command again: the re-run replaces "
            "the partitions",
        )
    ]
