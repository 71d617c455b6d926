"""A run whose process was killed is failed and its pool slot freed before the next CLI plan
(``assets.stale_runs``), on the instance ``recassets init`` writes; a live run, another host's
run and an untagged (daemon or UI) run in progress are left alone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dagster import DagsterInstance, DagsterRunStatus
from dagster._core.execution.plan.instance_concurrency_context import InstanceConcurrencyContext
from dagster._core.test_utils import create_run_for_test

from assets import stale_runs as S
from recassets import instance as embedded
from recassets.cli import RUN_LINE

POOL = "lake_features"
ROOT = Path(__file__).resolve().parents[2]
DAY = "2026-01-01"
FEATURES = ["lake/user_features", "lake/item_features", "lake/cohort_features"]  # one step


@pytest.fixture
def instance(tmp_path: Path):
    assert embedded.write_dagster_yaml(tmp_path)
    with DagsterInstance.from_config(str(tmp_path)) as inst:
        yield inst


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def _holding(instance: DagsterInstance, tags: dict[str, str], step: str, pool: str = POOL) -> str:
    """A STARTED run with ``tags`` that holds ``pool``'s one slot for ``step``; its id."""
    run = create_run_for_test(
        instance, job_name="__ASSET_JOB", status=DagsterRunStatus.STARTED, tags=tags
    )
    with InstanceConcurrencyContext(instance, run) as ctx:
        assert ctx.claim(pool, step)
    return run.run_id


def _claimants(instance: DagsterInstance, pools: tuple[str, ...] = (POOL,)) -> list[str]:
    storage = instance.event_log_storage
    return [s.run_id for p in pools for s in storage.get_concurrency_info(p).claimed_slots]


def test_a_killed_runs_slot_is_freed_and_the_run_failed(instance):
    killed = _holding(instance, S.process_tags(_dead_pid()), "lake__user_features")
    said: list[str] = []
    assert S.held_pools(instance, ["lake/item_features"]) == [(POOL, killed)]  # would wait
    assert S.reap(instance, said.append) == [killed]
    assert instance.get_run_by_id(killed).status == DagsterRunStatus.FAILURE
    assert _claimants(instance) == []
    assert S.held_pools(instance, ["lake/item_features"]) == []
    assert len(said) == 1 and "which is gone: marked failed and its pool slots freed" in said[0]
    assert S.reap(instance, said.append) == []  # once


def test_live_foreign_and_untagged_runs_keep_their_slot(instance):
    live = _holding(instance, S.process_tags(os.getpid()), "a")
    dead = S.process_tags(_dead_pid())
    _holding(instance, {**dead, S.HOST_TAG: "another-host"}, "b", "lake_ingest")  # not ours
    _holding(instance, {}, "c", "lake_training_examples")  # the daemon's or the UI's: untagged
    assert S.reap(instance, lambda _: None) == []
    assert instance.get_run_by_id(live).status == DagsterRunStatus.STARTED
    assert len(_claimants(instance, (POOL, "lake_ingest", "lake_training_examples"))) == 3


def test_a_reused_pid_is_not_the_runs_process(instance):
    # our own pid, alive, but started at another time than the run's process: it was reused
    tags = {**S.process_tags(os.getpid()), S.STARTED_TAG: "1"}
    if S.process_started(os.getpid()) is None:
        pytest.skip("no /proc: the start time cannot be read here")
    run = _holding(instance, tags, "a")
    assert S.reap(instance, lambda _: None) == [run]


def test_an_ended_runs_slot_is_freed(instance):
    ended = _holding(instance, {}, "a")
    instance.report_run_canceled(instance.get_run_by_id(ended))  # its worker never freed it
    said: list[str] = []
    assert S.reap(instance, said.append) == [ended]
    assert _claimants(instance) == []
    assert said == [f"pool {POOL}: freed the slot of run {ended}, which ended CANCELED"]


def test_a_slot_handed_to_a_dead_runs_waiting_step_is_freed_once_that_run_ended(instance):
    """Dagster gives a freed slot to the oldest waiting step: to a dead run's, it is lost to
    every later step (seen after a probe's kill -9 of a waiting run). Once that run has ended
    (its termination forced in the UI), the next CLI plan frees it, and the pool is named as
    held until then."""
    holder = _holding(instance, {}, "a")
    waiting = create_run_for_test(instance, job_name="__ASSET_JOB", status=DagsterRunStatus.STARTED)
    killed = InstanceConcurrencyContext(instance, waiting).__enter__()  # never left: killed
    assert not killed.claim(POOL, "b")  # waits: a pending step of its own
    instance.event_log_storage.free_concurrency_slots_for_run(holder)  # the slot goes to b
    assert S.held_pools(instance, ["lake/item_features"]) == [(POOL, waiting.run_id)]
    assert S.reap(instance, lambda _: None) == []  # still in progress, untagged: not judged
    instance.report_run_canceled(waiting)
    assert S.reap(instance, lambda _: None) == [waiting.run_id]
    assert S.held_pools(instance, ["lake/item_features"]) == []
    later = create_run_for_test(instance, job_name="__ASSET_JOB", status=DagsterRunStatus.STARTED)
    with InstanceConcurrencyContext(instance, later) as ctx:
        assert ctx.claim(POOL, "c")


def _started_by_launcher(instance: DagsterInstance, pid: int, step: str, pool: str = POOL) -> str:
    """An untagged STARTED run (the daemon's or the UI's) holding ``pool``, whose worker the
    default run launcher reported as ``pid``, as the code server does."""
    from dagster._core.events import EngineEventData

    run_id = _holding(instance, {}, step, pool)
    run = instance.get_run_by_id(run_id)
    assert run is not None
    instance.report_engine_event(
        f"Started process for run (pid: {pid}).", run, EngineEventData.in_process(pid)
    )
    return run_id


def _no_proc() -> bool:
    return S.process_started(os.getpid()) is None


def _worker(*args: str) -> subprocess.Popen:
    """A run worker as the code server starts one: a child of this process."""
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", *args])


def test_a_launched_run_whose_worker_is_gone_is_failed_and_its_slot_freed(instance):
    """`make dev` stopped outright mid-ingest: its run stayed STARTED for ever, holding
    lake_ingest, and every later landing waited. Judged by the pid of its own start event."""
    if _no_proc():
        pytest.skip("no /proc: a live pid is always taken for the worker here")
    gone = _started_by_launcher(instance, _dead_pid(), "lake__raw_events", "lake_ingest")
    worker = _worker()
    try:
        running = _started_by_launcher(instance, worker.pid, "b", "lake_training_examples")
        said: list[str] = []
        assert S.reap_launched(instance, said.append) == [gone]
        assert len(said) == 1 and "which is gone: marked failed, its pool slots freed" in said[0]
        assert S.reap_launched(instance, lambda _: None) == []  # once; the worker still runs
    finally:
        worker.kill()
        worker.wait()
    assert S.reap_launched(instance, lambda _: None) == [running]  # killed: now it is gone
    assert instance.get_run_by_id(gone).status == DagsterRunStatus.FAILURE
    assert _claimants(instance, ("lake_ingest", "lake_training_examples")) == []
    # a pid the system gave to another process after the run's worker died: this test's own
    # process, alive, but neither launched by this process nor a run worker
    reused = _started_by_launcher(instance, os.getpid(), "c", "feast_online_store")
    assert S.reap_launched(instance, lambda _: None) == [reused]
    tagged = _holding(instance, S.process_tags(_dead_pid()), "d", "lake_features")
    assert tagged not in S.reap_launched(instance, lambda _: None)  # the CLI's: reap judges it


real_time = time.time


def test_a_wall_clock_step_does_not_fail_a_live_workers_run(instance, monkeypatch):
    """The worker's start was computed as /proc/stat btime plus its start ticks and compared
    with the wall-clock time of its start event; btime moves with each step of the wall clock
    (NTP, a VM resumed): after a step of 30 s a live worker passed for a reused pid, its run was
    failed and its pool slot freed under it. No clock is read now."""
    if _no_proc():
        pytest.skip("no /proc here")
    worker = _worker()
    try:
        run = _started_by_launcher(instance, worker.pid, "a", "lake_ingest")
        real = Path.read_text

        def stepped(self, *args, **kwargs):  # what /proc/stat says once the clock stepped +30 s
            text = real(self, *args, **kwargs)
            if str(self) == "/proc/stat":
                return "\n".join(f"btime {int(line.split()[1]) + 30}" if line.startswith("btime ")
                                 else line for line in text.splitlines())  # fmt: skip
            return text

        monkeypatch.setattr(Path, "read_text", stepped)
        monkeypatch.setattr(time, "time", lambda: real_time() + 30)
        assert S.reap_launched(instance, lambda _: None) == []
        assert instance.get_run_by_id(run).status == DagsterRunStatus.STARTED
        assert _claimants(instance, ("lake_ingest",)) == [run]
    finally:
        worker.kill()
        worker.wait()


def test_a_worker_that_is_not_this_processs_child_is_known_by_what_it_runs(instance, monkeypatch):
    """After a reload of the code location, the run's worker is another server process's child:
    it is still known, by its command line (the run id, or a multiprocessing spawn child)."""
    from dagster._core.events import EngineEventData

    if _no_proc():
        pytest.skip("no /proc here")
    named, spawned, other = (_holding(instance, {}, "a", pool) for pool in
                             ("lake_ingest", "lake_features", "feast_online_store"))  # fmt: skip
    workers = {named: _worker(named), spawned: _worker("--multiprocessing-fork"), other: _worker()}
    try:
        for run_id, worker in workers.items():
            instance.report_engine_event(
                f"Started process for run (pid: {worker.pid}).",
                instance.get_run_by_id(run_id),
                EngineEventData.in_process(worker.pid),
            )
        monkeypatch.setattr(os, "getpid", lambda: 1)  # this process launched none of them
        assert S.is_run_worker(workers[named].pid, named)
        assert S.is_run_worker(workers[spawned].pid, spawned)
        assert not S.is_run_worker(workers[other].pid, other)
        assert S.reap_launched(instance, lambda _: None) == [other]
    finally:
        for worker in workers.values():
            worker.kill()
            worker.wait()


def test_a_stop_signal_ends_a_run_that_waits_for_a_pool_slot(tmp_path: Path):
    """Dagster's in-process loop only slept while every step waited for a slot another run
    held: the SIGTERM of a stopped ``recassets materialize`` was taken as a flag and ignored
    until that run let go, and only a second signal (SIGKILL) ended it, its run left STARTED
    (``launch.interruptible_waits``). Stopped, the run fails and waits for nothing more."""
    home = tmp_path / "home"
    dagster_home = home / "dagster"
    assert embedded.write_dagster_yaml(dagster_home)
    with DagsterInstance.from_config(str(dagster_home)) as inst:  # a live run holds the pool
        holder = _holding(inst, S.process_tags(os.getpid()), "other_step")
    plan = tmp_path / "plan.json"
    plan.write_text(json.dumps([{"select": FEATURES, "first": DAY, "last": DAY}]))
    env = {**os.environ, "RECASSETS_HOME": str(home), "DAGSTER_HOME": str(dagster_home)}
    proc = subprocess.Popen([sys.executable, "-m", "assets.launch", str(plan)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    try:
        assert proc.stdout is not None
        note = f"pool {POOL} is held by run {holder}"  # said before its run starts
        said = next((line for line in proc.stdout if note in line), "")
        assert said, "the launch never said that the pool is held"
        with DagsterInstance.from_config(str(dagster_home)) as inst:
            waiting = _waiting(inst, holder, within_s=120)  # its step's claim is pending
            proc.send_signal(signal.SIGTERM)
            out, _ = proc.communicate(timeout=60)  # not for as long as the pool is held
            (ended,) = [line.split() for line in out.splitlines() if line.startswith(RUN_LINE)]
            assert proc.returncode == 1 and ended[2] == "FAILURE" and ended[3] == waiting, out
            run = inst.get_run_by_id(waiting)
            assert run is not None and run.is_failure
            pending = inst.event_log_storage.get_concurrency_info(POOL).pending_steps
            assert [p.run_id for p in pending if p.run_id != holder] == []  # its claim given back
            assert _claimants(inst) == [holder]  # the holder's slot untouched
    finally:
        if proc.poll() is None:
            proc.kill()


def _waiting(instance: DagsterInstance, holder: str, within_s: float) -> str:
    """The id of the run whose step waits in ``POOL`` beside ``holder``, once there is one."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        pending = instance.event_log_storage.get_concurrency_info(POOL).pending_steps
        if found := [p.run_id for p in pending if p.run_id != holder]:
            return found[0]
        time.sleep(0.5)
    raise AssertionError(f"no run waited in pool {POOL} within {within_s} s")
