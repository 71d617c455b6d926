"""The guard of the retrain and stale-features sensors (``sensors.stale_features.writing``) sees
every run that writes the feature tables or ingests, however it was launched: a job launched
whole from the UI's Launchpad carries no asset selection of its own, and before 2026-12-07 an
``ingest_job`` run launched so was invisible (a retraining or a rebuild could start
mid-ingest)."""

from __future__ import annotations

from pathlib import Path

import pytest
from dagster import AssetKey, DagsterInstance, DagsterRunStatus, RunRequest, SkipReason
from dagster._core.test_utils import create_run_for_test

from assets import keys
from recassets import instance as embedded
from resources import LakeResource
from sensors import retrain as R
from sensors.stale_features import WRITER_JOBS, WRITERS, writing
from tests.dagster.test_sensors_retrain import DAYS, write_examples


@pytest.mark.parametrize("job", ["ingest_job", "stale_features_job"])
def test_a_run_of_a_writing_job_launched_whole_is_seen_by_the_guard(job: str):
    with DagsterInstance.ephemeral() as instance:
        run = create_run_for_test(instance, job_name=job, status=DagsterRunStatus.STARTED)
        assert run.asset_selection is None  # as the Launchpad launches it
        assert writing(instance) == f"run {run.run_id} ({job})"
        instance.report_run_failed(run)
        assert writing(instance) is None  # in flight only


def test_a_run_is_judged_by_the_assets_it_selected_when_it_selected_some():
    """The implicit asset job materializes what the UI or the CLI selected: a bento rebuild is
    not an ingestion, a users' day is; a retrain_job run launched whole writes none of the
    tables, nor does a whole run of the implicit job (a retraining re-executed from the UI:
    tests/dagster/test_sensors_retrain.py)."""
    with DagsterInstance.ephemeral() as instance:
        bento = {AssetKey(["serving", "recommender_bento"])}
        create_run_for_test(instance, job_name="__ASSET_JOB", status=DagsterRunStatus.STARTED,
                            asset_selection=bento)  # fmt: skip
        create_run_for_test(instance, job_name="retrain_job", status=DagsterRunStatus.STARTED)
        create_run_for_test(instance, job_name="__ASSET_JOB", status=DagsterRunStatus.STARTED)
        assert writing(instance) is None
        users = create_run_for_test(instance, job_name="__ASSET_JOB",
                                    status=DagsterRunStatus.STARTING,
                                    asset_selection={keys.USERS})  # fmt: skip
        assert writing(instance) == f"run {users.run_id} (__ASSET_JOB)"


def test_a_launchpad_ingestion_holds_the_retrain_sensor_back(tmp_path: Path):
    """The retrain guard reads the same function: a day being ingested from the Launchpad is
    waited for, then retrained with its examples."""
    write_examples(tmp_path, DAYS)
    assert embedded.write_dagster_yaml(tmp_path / "dagster")
    with DagsterInstance.from_config(str(tmp_path / "dagster")) as instance:
        paths = LakeResource(home=str(tmp_path)).paths()
        run = create_run_for_test(instance, job_name="ingest_job", status=DagsterRunStatus.STARTED)
        waiting = R.guarded_request(instance, paths, 1, "retrain_sensor", lambda _: None)
        assert isinstance(waiting, SkipReason)
        assert f"run {run.run_id} (ingest_job) writes the feature tables" in str(
            waiting.skip_message
        )
        instance.report_run_failed(run)
        after = R.guarded_request(instance, paths, 1, "retrain_sensor", lambda _: None)
        assert isinstance(after, RunRequest)


def test_every_job_of_the_definitions_that_writes_the_tables_is_named():
    """A job added later that selects an ingested or feature table is known by its name too;
    one that selects none of them (retrain_job) is not waited for when launched whole. The
    implicit asset job (every asset) is launched with a selection, which decides."""
    from definitions import defs

    implicit = defs.resolve_implicit_global_asset_job_def().name
    writers = {
        job.name
        for job in defs.get_repository_def().get_all_jobs()
        if set(job.asset_layer.executable_asset_keys) & WRITERS and job.name != implicit
    }
    assert writers == set(WRITER_JOBS) == {"ingest_job", "stale_features_job"}
