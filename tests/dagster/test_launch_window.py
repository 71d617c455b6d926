"""A stop signal between two runs of the CLI's plan starts no further run, wherever it comes.

``run_plan`` asked whether it was stopped once, at the top of each entry; after that came the
end of the Spark JVM (``release_spark``: up to 20 s), the pools' check, and Dagster creating the
run, before Dagster's own handlers took the signals. A signal there was only recorded, and the
whole next run went on: the serving run, which builds and publishes a bento (review,
2026-12-07). Here a plan of two runs of a tiny job, in this process, with the launcher's own
handlers (``stop_signals``), is sent SIGTERM at each point of that window. The second test also
pins the private Dagster flag the launcher sets (``stop_signals``): a Dagster that moves or
ignores it fails it."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator

import pytest
from dagster import AssetKey, DagsterInstance, Definitions, asset

import assets.launch as launch
from recassets.cli import RUN_LINE

ran: list[str] = []


@asset(key=AssetKey(["lake", "probe"]))
def lake_probe() -> None:
    ran.append("lake/probe")


@asset(key=AssetKey(["models", "probe"]))
def models_probe() -> None:
    ran.append("models/probe")


PLAN = [{"select": ["lake/probe"]}, {"select": ["models/probe"]}]  # the second: Spark done


def _sigterm() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


@pytest.fixture
def instance(monkeypatch: pytest.MonkeyPatch) -> Iterator[DagsterInstance]:
    """An ephemeral instance for ``PLAN``'s tiny job; the signal handlers, the wake-up fd and
    Dagster's interrupt flag that ``stop_signals`` sets are put back after (a process that
    took a signal between runs ends: this one goes on to other tests)."""
    from dagster._utils.interrupts import _received_interrupt

    ran.clear()
    job = Definitions(assets=[lake_probe, models_probe]).resolve_implicit_global_asset_job_def()
    monkeypatch.setattr(launch, "asset_job", lambda: job)
    monkeypatch.setattr(launch, "held_pools", lambda *_: [])  # reads the real definitions
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    wakeup = signal.set_wakeup_fd(-1)
    signal.set_wakeup_fd(wakeup)
    try:
        with DagsterInstance.ephemeral() as ephemeral:
            yield ephemeral
    finally:
        ours = signal.set_wakeup_fd(wakeup)
        if ours not in (-1, wakeup):
            os.close(ours)
        for number, handler in handlers.items():
            signal.signal(number, handler)
        _received_interrupt["received"] = False


def _run_plan(instance: DagsterInstance) -> int:
    """``PLAN`` as ``assets.launch.main`` runs it: its handlers, its record of signals."""
    return launch.run_plan(PLAN, instance, launch.stop_signals())


def test_a_signal_while_the_jvm_ends_starts_no_further_run(instance, monkeypatch, capsys):
    """Before: the signal, taken while ``release_spark`` waited for the JVM, was recorded, and
    the models' run went on whole; the plan then ended 0."""
    monkeypatch.setattr(launch, "release_spark", _sigterm)
    assert _run_plan(instance) == 128 + signal.SIGTERM
    assert ran == ["lake/probe"]
    assert len(instance.get_runs()) == 1
    said = capsys.readouterr().out
    assert "stopped by SIGTERM: not started: run 2 of 2 (models/probe)" in said


def test_a_signal_while_dagster_creates_the_run_stops_it_before_its_first_step(
    instance, monkeypatch, capsys
):
    """After ``run_plan``'s last check, Dagster creates the run before it takes the signals:
    the run still begins (recorded, failed), but no asset of it runs. Before: the models'
    asset ran, and the run was a success."""
    monkeypatch.setattr(launch, "release_spark", lambda: None)
    create = DagsterInstance.create_run_for_job
    second = {AssetKey(["models", "probe"])}

    def create_run_for_job(self, *args, **kwargs):
        if kwargs.get("asset_selection") == second:
            _sigterm()  # as the second entry's run is created
        return create(self, *args, **kwargs)

    monkeypatch.setattr(DagsterInstance, "create_run_for_job", create_run_for_job)
    assert _run_plan(instance) == 1  # the interrupted run failed: the CLI says it was stopped
    assert ran == ["lake/probe"]
    (run,) = [r for r in instance.get_runs() if r.asset_selection == second]
    assert run.is_failure
    assert f"{RUN_LINE} 1 FAILURE {run.run_id}" in capsys.readouterr().out
