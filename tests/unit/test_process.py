"""recassets.process.stop_process_group on real child processes (Python one-liners)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time

import pytest

from recassets.process import group_alive, stop_process_group

# Each child prints a line once its signal disposition is set, then sleeps: reading that line
# is the handshake, so a signal never arrives before the child is ready for it.
EXITS_ON_TERM = "print('ready', flush=True); import time; time.sleep(120)"
IGNORES_TERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(120)"
)
# A leader that exits on SIGTERM and leaves behind a worker of its group that ignores it, as
# a server's workers can: printing the worker's pid once the worker is ready.
LEADER_WITH_STUBBORN_WORKER = (
    "import subprocess, sys, time; "
    f"w = subprocess.Popen([sys.executable, '-c', {IGNORES_TERM!r}], stdout=subprocess.PIPE, "
    "text=True); w.stdout.readline(); print(w.pid, flush=True); time.sleep(120)"
)


def start(code: str, *, own_group: bool = True) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=own_group
    )
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def pid_running(pid: int) -> bool:
    """Whether ``pid`` is a process that has not exited (a zombie has)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture
def cleanup():
    """Children a failing test would leave behind are killed (their whole group)."""
    procs: list[subprocess.Popen] = []
    yield procs.append
    for proc in procs:
        stop_process_group(proc, timeout_s=0)
        if proc.stdout:
            proc.stdout.close()


def test_a_child_that_exits_on_term_is_stopped_by_term(cleanup):
    proc, line = start(EXITS_ON_TERM)
    cleanup(proc)
    assert line == "ready"
    assert stop_process_group(proc, timeout_s=30) == -signal.SIGTERM
    assert proc.returncode == -signal.SIGTERM
    assert not group_alive(proc.pid)


def test_a_child_that_ignores_term_is_killed_after_the_timeout(cleanup):
    proc, line = start(IGNORES_TERM)
    cleanup(proc)
    assert line == "ready"
    assert stop_process_group(proc, timeout_s=1) == -signal.SIGKILL
    assert not group_alive(proc.pid)


def test_the_ignoring_child_does_survive_term_alone(cleanup):
    # The failing case of the test above: SIGTERM by itself leaves this child running, so the
    # -SIGKILL status there is the helper's escalation, not an accident of the child.
    proc, _ = start(IGNORES_TERM)
    cleanup(proc)
    proc.send_signal(signal.SIGTERM)
    with pytest.raises(subprocess.TimeoutExpired):
        proc.wait(1)
    assert proc.poll() is None


def test_a_worker_left_in_the_group_is_stopped_with_its_leader(cleanup):
    proc, line = start(LEADER_WITH_STUBBORN_WORKER)
    cleanup(proc)
    worker = int(line)
    assert pid_running(worker) and group_alive(proc.pid)
    # The leader exits on TERM at once; its worker ignores TERM and must be killed.
    assert stop_process_group(proc, timeout_s=1) == -signal.SIGTERM
    deadline = time.monotonic() + 30  # SIGKILLed; its new parent (init) reaps it
    while pid_running(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not pid_running(worker)
    assert not group_alive(proc.pid)


def test_stopping_the_leader_alone_leaves_the_worker_running(cleanup):
    # The failing case of the group test: what a plain proc.terminate() did before.
    proc, line = start(LEADER_WITH_STUBBORN_WORKER)
    cleanup(proc)
    worker = int(line)
    try:
        proc.terminate()
        assert proc.wait(30) == -signal.SIGTERM
        time.sleep(0.5)
        assert pid_running(worker) and group_alive(proc.pid)
        stop_process_group(proc, timeout_s=0)  # reaped already: nothing is signalled
        assert pid_running(worker)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(worker, signal.SIGKILL)  # an orphan: the cleanup fixture cannot reach it


def test_an_exited_process_is_tolerated_and_its_status_returned(cleanup):
    proc = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"], start_new_session=True)
    cleanup(proc)
    deadline = time.monotonic() + 30
    while pid_running(proc.pid) and time.monotonic() < deadline:  # exited, not reaped
        time.sleep(0.05)
    assert stop_process_group(proc, timeout_s=1) == 3
    assert stop_process_group(proc, timeout_s=1) == 3  # and again, once reaped


def test_a_child_in_the_callers_group_is_signalled_alone(cleanup):
    # Not its own group leader: the group is ours (pytest's), which must not be signalled.
    proc, line = start(EXITS_ON_TERM, own_group=False)
    cleanup(proc)
    assert line == "ready"
    assert stop_process_group(proc, timeout_s=30) == -signal.SIGTERM
