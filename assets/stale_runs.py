"""Runs left behind by a process that died, and the pool slots they hold.

Each asset that writes a Delta table takes its pool's one slot for the step
(``recassets.instance.DAGSTER_YAML``). A run whose process is killed (``kill -9``, the machine
losing power, an OOM kill) never ends in the instance: it stays STARTED and keeps its slot, and
every later run of that pool waits for it, for ever and in silence. Dagster frees such slots
only with run monitoring, which needs the daemon and a run launcher that can report on its
workers; the CLI's runs have neither (``assets/launch.py`` executes them in its own process).

So ``launch.py`` tags each run it executes with its process (``PID_TAG``, ``HOST_TAG`` and the
process's start time, ``STARTED_TAG``, so that a pid the system gave to another process since
does not pass for the run's), and, before its first run, ``reap`` looks for:

- a run still in progress whose process on this host is gone: it is marked failed, saying so,
  and its slots are freed (its half-written work is what a failed run leaves: Delta writes are
  atomic, so nothing was committed);
- a slot held by a run that has ended (a run canceled from the UI whose worker was gone, say),
  claimed or handed to one of its waiting steps: freed, as run monitoring's
  ``free_slots_after_run_end_seconds`` would.

A run of another host (a shared PostgreSQL instance) is never judged by its pid: only its
ended runs' slots are freed here. A run launched by the daemon or the UI (no tags) through
the default run launcher is a subprocess of the code server, which is where sensors run:
``reap_launched`` judges it by the pid its own "Started process for run (pid: N)" event
names, a process that started after that event being another one. ``landing_sensor`` calls
it on each tick. Before (2026-12-06), ``make dev`` killed mid-ingest left its run STARTED for
ever, holding ``lake_ingest``: every later landing waited, saying only that a run was in
flight. Marked failed, the run is re-executed by the instance's run retries.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter

PID_TAG = "recassets/pid"
HOST_TAG = "recassets/host"
STARTED_TAG = "recassets/process_started"
IN_PROGRESS = [DagsterRunStatus.STARTING, DagsterRunStatus.STARTED, DagsterRunStatus.CANCELING]


def process_started(pid: int) -> str | None:
    """The process's start time in clock ticks since boot (``/proc/<pid>/stat``, field 22), or
    None where there is no such file (not Linux, or no such process)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: split after it
    fields = stat[stat.rfind(")") + 2 :].split()
    return fields[19] if len(fields) > 19 else None


def process_tags(pid: int | None = None) -> dict[str, str]:
    """The tags ``launch.py`` sets on its runs: this process (or ``pid``) and this host."""
    pid = os.getpid() if pid is None else pid
    tags = {PID_TAG: str(pid), HOST_TAG: socket.gethostname()}
    started = process_started(pid)
    if started is not None:
        tags[STARTED_TAG] = started
    return tags


def alive(pid: int, started: str | None) -> bool:
    """Whether process ``pid`` runs, and is the one that started at ``started`` (when known)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        pass
    if started is None:
        return True
    now = process_started(pid)
    return now is None or now == started


def reap(instance: DagsterInstance, say: Callable[[str], None] = print) -> list[str]:
    """Fail this host's in-progress runs whose process is gone and free their slots, and free
    the slots of ended runs; each said in one line. The run ids acted on."""
    host = socket.gethostname()
    acted: list[str] = []
    storage = instance.event_log_storage
    for run in instance.get_runs(filters=RunsFilter(statuses=IN_PROGRESS, tags={HOST_TAG: host})):
        pid = run.tags.get(PID_TAG, "")
        if not pid.isdigit() or alive(int(pid), run.tags.get(STARTED_TAG)):
            continue
        instance.report_run_failed(
            run,
            message=f"the process that ran it (pid {pid} on {host}) is gone, killed before the "
            "run ended: marked failed, its pool slots freed",
        )
        if storage.supports_global_concurrency_limits:
            storage.free_concurrency_slots_for_run(run.run_id)
        acted.append(run.run_id)
        say(f"run {run.run_id} was left {run.status.value} by process {pid}, which is gone: "
            "marked failed and its pool slots freed")  # fmt: skip
    if not storage.supports_global_concurrency_limits:
        return acted
    for key in sorted(storage.get_concurrency_keys()):
        info = storage.get_concurrency_info(key)
        # a slot claimed, or one assigned to a waiting step (Dagster hands a freed slot to the
        # oldest waiting step, a dead run's too): either blocks every later step
        for run_id in dict.fromkeys([*(s.run_id for s in info.claimed_slots),
                                     *(p.run_id for p in info.pending_steps)]):  # fmt: skip
            if run_id in acted:
                continue
            run = instance.get_run_by_id(run_id)
            if run is None or run.is_finished:
                storage.free_concurrency_slots_for_run(run_id)
                acted.append(run_id)
                ended = "is gone" if run is None else f"ended {run.status.value}"
                say(f"pool {key}: freed the slot of run {run_id}, which {ended}")
    return acted


def launched_worker(instance: DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """(pid, when) of the run worker the default run launcher started for ``run_id``, from
    the run's "Started process for run" engine event; None when it has none (yet)."""
    from dagster import DagsterEventType

    records = instance.get_records_for_run(run_id, of_type=DagsterEventType.ENGINE_EVENT, limit=20)
    for record in records.records:
        entry = record.event_log_entry
        event = entry.dagster_event
        data = getattr(event, "engine_event_data", None)
        pid = getattr((data.metadata if data else {}).get("pid"), "value", None)
        said = (getattr(event, "message", None) or entry.user_message or "").strip()
        if said.startswith("Started process for run") and str(pid).isdigit():
            return int(str(pid)), entry.timestamp
    return None


def started_at(pid: int) -> float | None:
    """When process ``pid`` started, in seconds since the epoch (Linux), or None."""
    ticks = process_started(pid)
    try:
        boot = next(
            float(line.split()[1])
            for line in Path("/proc/stat").read_text().splitlines()
            if line.startswith("btime ")
        )
    except (OSError, StopIteration, ValueError):
        return None
    return None if ticks is None else boot + int(ticks) / os.sysconf("SC_CLK_TCK")


def reap_launched(instance: DagsterInstance, say: Callable[[str], None] = print) -> list[str]:
    """Fail the untagged in-progress runs (the daemon's, the UI's) whose run worker, started
    by the default run launcher on this machine, is gone, and free their slots: what
    ``reap`` does for the CLI's runs. Another launcher's workers (a Kubernetes pod) are not
    this machine's processes: left alone. The run ids acted on."""
    from dagster import DefaultRunLauncher

    if not isinstance(instance.run_launcher, DefaultRunLauncher):
        return []
    acted = []
    for run in instance.get_runs(filters=RunsFilter(statuses=IN_PROGRESS)):
        if PID_TAG in run.tags or (worker := launched_worker(instance, run.run_id)) is None:
            continue
        pid, when = worker
        began = started_at(pid) if alive(pid, None) else None
        if began is not None and began <= when + 5:  # the worker (or a clock too coarse to tell)
            continue
        instance.report_run_failed(
            run,
            message=f"the process that ran it (pid {pid}) is gone, killed before the run ended "
            "(a `dagster dev` stopped outright, an OOM kill): marked failed, its pool slots freed",
        )
        storage = instance.event_log_storage
        if storage.supports_global_concurrency_limits:
            storage.free_concurrency_slots_for_run(run.run_id)
        acted.append(run.run_id)
        say(f"run {run.run_id} ({run.job_name}) was left {run.status.value} by its worker, pid "
            f"{pid}, which is gone: marked failed, its pool slots freed; run retries re-run it")  # fmt: skip
    return acted


def held_pools(instance: DagsterInstance, selection: list[str]) -> list[tuple[str, str]]:
    """(pool, run id) of each slot another run holds in a pool that the assets of
    ``selection`` (user strings) write: the steps that will wait for it."""
    from dagster import AssetKey

    from definitions import defs

    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return []
    graph = defs.resolve_asset_graph()
    pools = sorted({p for k in selection for p in graph.get(AssetKey.from_user_string(k)).pools})
    held = []
    for pool in pools:
        info = storage.get_concurrency_info(pool)
        assigned = [p.run_id for p in info.pending_steps if p.assigned_timestamp is not None]
        held += [(pool, r) for r in dict.fromkeys([*(s.run_id for s in info.claimed_slots),
                                                   *assigned])]  # fmt: skip
    return held


__all__ = [
    "HOST_TAG",
    "PID_TAG",
    "STARTED_TAG",
    "alive",
    "held_pools",
    "process_started",
    "process_tags",
    "reap",
    "reap_launched",
]
