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
names. ``landing_sensor`` calls it on each tick. Before (2026-12-06), ``make dev`` killed
mid-ingest left its run STARTED for ever, holding ``lake_ingest``: every later landing waited,
saying only that a run was in flight. Marked failed, the run is re-executed by the instance's
run retries.

Whether that pid is still the run's worker, or a process the system gave the pid to since, is
told by what the process is, never by when it started (``is_run_worker``, decision of
2026-12-07): a child of this process (the code server launched it), a process whose command
line holds the run id (``dagster api execute_run``), or a multiprocessing spawn child (the gRPC
server's run workers, also after a reload of the code location). Before, its start
(``/proc/stat`` btime plus its start ticks: the wall clock at boot) was compared with the wall
clock time of the event; btime moves with every step of the wall clock (NTP, a VM resumed), and
after a step of a few seconds a live worker passed for a reused pid: its run was failed and its
pool slot freed under it. Where ``/proc`` cannot be read (not Linux), a live pid is taken for the
worker: a run is never failed under a live process.
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


def _proc(pid: int, name: str) -> str | None:
    try:
        return Path(f"/proc/{pid}/{name}").read_text(errors="replace")
    except OSError:
        return None


def _stat_fields(pid: int) -> list[str] | None:
    """``/proc/<pid>/stat`` from field 3 (state) on, or None."""
    stat = _proc(pid, "stat")
    # the command name (field 2) is in parentheses and may hold spaces: split after it
    return None if stat is None else stat[stat.rfind(")") + 2 :].split()


def is_run_worker(pid: int, run_id: str) -> bool:
    """Whether process ``pid`` is (still) the run worker of ``run_id``, by what it is, not by
    when it started (module docstring): alive and not a zombie, and a child of this process, or
    a process whose command line names the run, or a multiprocessing spawn child (what the gRPC
    server's run workers are). Without ``/proc``, any live process is taken for it.

    What it cannot tell: a pid reused by another run's worker. That run's worker holds the pid
    only while it runs, so the dead run is failed when it ends: late, never wrongly."""
    if not alive(pid, None):
        return False
    fields = _stat_fields(pid)
    cmdline = _proc(pid, "cmdline")
    if fields is None or cmdline is None:  # no /proc here (or it ended this instant)
        return alive(pid, None)
    if not fields or fields[0] == "Z":  # ended, not yet waited for by its parent
        return False
    parent = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else None
    if parent == os.getpid():
        return True
    args = cmdline.split("\0")
    if any(run_id in arg for arg in args):
        return True
    # the gRPC server's run workers are multiprocessing spawn children: after a reload of the
    # code location (another server process) or the server's death (reparented), still one
    return "--multiprocessing-fork" in args


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
        pid, _when = worker
        if is_run_worker(pid, run.run_id):
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
    nodes = [graph.get(AssetKey.from_user_string(k)) for k in selection]
    pools = sorted({p for node in nodes for p in node.pools or ()})
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
    "is_run_worker",
    "process_started",
    "process_tags",
    "reap",
    "reap_launched",
]
