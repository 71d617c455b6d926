"""What we rely on that ``dagster`` does not export, checked against Dagster itself: the run
tags of a partition-range run and the tags of a materialization's data version (spelled in
``assets.partitions``), and the target record of a check evaluation (imported privately in
``assets.check_targets``), and the in-process executor's wait for a pool slot (``ActiveExecution``
in ``assets.launch.interruptible_waits``, checked by tests/dagster/test_stale_runs.py's stopped
wait), and the flag of a captured interrupt (``assets.launch.stop_signals``, checked by
tests/dagster/test_launch_window.py): the only such imports outside tests. A Dagster upgrade that moves or changes any of them
fails here, not in production."""

# No `from __future__ import annotations`: Dagster reads the `context` annotation.
import ast
import tempfile
from pathlib import Path

from dagster import (
    AssetCheckEvaluation,
    AssetCheckKey,
    BackfillPolicy,
    DagsterInstance,
    DailyPartitionsDefinition,
    Output,
    asset,
    asset_check,
    materialize,
)

from assets.check_targets import latest_materialization
from assets.partitions import (
    DATA_VERSION_IS_USER_PROVIDED_TAG,
    DATA_VERSION_TAG,
    PARTITION_RANGE_END_TAG,
    PARTITION_RANGE_START_TAG,
)

ROOT = Path(__file__).resolve().parents[2]


def test_the_partition_range_tags_are_dagsters():
    from dagster._core.storage import tags

    assert PARTITION_RANGE_START_TAG == tags.ASSET_PARTITION_RANGE_START_TAG
    assert PARTITION_RANGE_END_TAG == tags.ASSET_PARTITION_RANGE_END_TAG


def test_the_data_version_tags_are_dagsters():
    from dagster._core.definitions import data_version

    assert DATA_VERSION_TAG == data_version.DATA_VERSION_TAG
    assert DATA_VERSION_IS_USER_PROVIDED_TAG == data_version.DATA_VERSION_IS_USER_PROVIDED_TAG


def test_the_tags_make_one_run_over_the_range():
    days = DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-05")

    seen = []

    @asset(partitions_def=days, backfill_policy=BackfillPolicy.single_run())
    def ranged(context) -> None:
        seen.append(list(context.partition_keys))

    tags = {PARTITION_RANGE_START_TAG: "2026-01-02", PARTITION_RANGE_END_TAG: "2026-01-04"}
    assert materialize([ranged], tags=tags, instance=DagsterInstance.ephemeral()).success
    assert seen == [["2026-01-02", "2026-01-03", "2026-01-04"]]


def test_an_evaluation_targeting_its_materialization_is_current_and_one_without_is_not():
    """The record ``latest_materialization`` builds is what Dagster needs to show a
    per-partition evaluation's status: without it the partition has no current status."""
    days = DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-03")

    @asset(partitions_def=days)
    def probe(context):
        return None

    def run(with_target: bool) -> list[bool]:
        @asset_check(asset=probe, partitions_def=days)
        def probe_ok(context):
            for day in context.partition_keys:
                yield AssetCheckEvaluation(
                    asset_key=probe.key, check_name="probe_ok", passed=True, partition=day,
                    target_materialization_data=latest_materialization(context.instance, probe.key, day)
                    if with_target else None,
                )  # fmt: skip
            yield Output(None, output_name="result")

        instance = DagsterInstance.local_temp(tempfile.mkdtemp())
        materialize([probe, probe_ok], instance=instance, partition_key="2026-01-02")
        infos = instance.event_log_storage.get_asset_check_partition_info(
            [AssetCheckKey(probe.key, "probe_ok")]
        )
        return [i.is_current for i in infos]

    assert run(with_target=True) == [True]
    assert run(with_target=False) == [False]
    assert latest_materialization(DagsterInstance.ephemeral(), probe.key, "2026-01-01") is None


def test_the_target_is_the_checks_own_runs_materialization_when_another_wrote_since():
    """A run that wrote the same day while a check ran took that check's verdict: the target
    is the check's own run's materialization when there is one, else the latest."""
    days = DailyPartitionsDefinition(start_date="2026-01-01", end_date="2026-01-03")

    @asset(partitions_def=days)
    def probe(context):
        return None

    instance = DagsterInstance.ephemeral()
    first = materialize([probe], instance=instance, partition_key="2026-01-02")
    second = materialize([probe], instance=instance, partition_key="2026-01-02")
    assert (
        latest_materialization(instance, probe.key, "2026-01-02", first.run_id).run_id
        == first.run_id
    )
    assert latest_materialization(instance, probe.key, "2026-01-02").run_id == second.run_id
    other = latest_materialization(instance, probe.key, "2026-01-02", "a-run-that-wrote-nothing")
    assert other is not None and other.run_id == second.run_id


def private_imports(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        found += [n for n in names if n.startswith("dagster._")]
    return found


def test_the_private_import_lives_in_one_module():
    sources = [ROOT / "definitions.py"]
    for package in ("assets", "sensors", "resources", "serving", "recassets"):
        sources += sorted((ROOT / package).rglob("*.py"))
    offenders = {str(p.relative_to(ROOT)): bad for p in sources if (bad := private_imports(p))}
    assert offenders == {
        "assets/check_targets.py": [
            "dagster._core.definitions.asset_checks.asset_check_evaluation"
        ],
        "assets/launch.py": ["dagster._utils.interrupts", "dagster._core.execution.plan.active"],
    }


def test_the_in_process_wait_for_a_slot_is_the_loop_launch_patches():
    """``launch.interruptible_waits`` replaces ``ActiveExecution.sleep_til_ready``: the loop of
    the in-process executor must still be where a step that waits for a slot sleeps."""
    import inspect

    from dagster._core.execution.plan import execute_plan
    from dagster._core.execution.plan.active import ActiveExecution

    assert "active_execution.sleep_til_ready()" in inspect.getsource(execute_plan)
    assert callable(ActiveExecution.check_for_interrupts)
