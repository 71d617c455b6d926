"""Stopping a child process together with the processes it started: the one way servers are
stopped here, whether the library launched them (``bentoml serve``) or a test or benchmark did
(``dagster dev``, ``redis-server``).

Why the whole group: a server's workers (BentoML's API workers, ``dagster dev``'s daemon and
code server) outlive a signal sent to their parent alone, and keep its port, its files and its
memory. Servers are therefore started with ``start_new_session=True`` (their own process group,
whose id is the server's pid) and stopped by signalling that group.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path


def stop_process_group(
    proc: subprocess.Popen, timeout_s: float = 20.0, *, kill_timeout_s: float = 10.0
) -> int:
    """Stop ``proc`` and its process group; return ``proc``'s exit status (``-N``: signal N).

    SIGTERM to the group, then up to ``timeout_s`` for ``proc`` to exit and the rest of the
    group to follow; whatever is still running then gets SIGKILL, and ``proc`` is reaped
    (within ``kill_timeout_s``, else ``subprocess.TimeoutExpired``).

    Tolerant of a process that already exited: its status is returned, and when it exited
    without being reaped the group it leaves behind is still stopped. A process that is not the
    leader of its own group (started without ``start_new_session=True``) is signalled alone,
    so the caller's own group is never signalled.
    """
    if proc.returncode is not None:
        # Reaped before: its pid may already belong to an unrelated process.
        return proc.returncode
    group = _own_group(proc)
    deadline = time.monotonic() + timeout_s
    _signal(proc, group, signal.SIGTERM)
    while not (proc.poll() is not None and (group is None or not group_alive(group))):
        if time.monotonic() >= deadline:
            _signal(proc, group, signal.SIGKILL)
            break
        time.sleep(0.05)
    return proc.wait(kill_timeout_s)


def group_alive(pgid: int) -> bool:
    """Whether process group ``pgid`` still has a running member (zombies, which are exited
    processes waiting for their parent, do not count)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    proc_dir = Path("/proc")
    if not proc_dir.is_dir():  # not Linux: the signal probe is all there is
        return True
    for stat in proc_dir.glob("[0-9]*/stat"):
        try:
            # "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses.
            state, _ppid, pgrp = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, ValueError):
            continue  # exited while we looked
        if int(pgrp) == pgid and state != "Z":
            return True
    return False


def _own_group(proc: subprocess.Popen) -> int | None:
    """``proc``'s group id when ``proc`` leads its own group (not the caller's), else None.
    Read while ``proc`` is unreaped (running or a zombie), so its pid is still its own."""
    try:
        pgid = os.getpgid(proc.pid)
    except ProcessLookupError:  # reaped behind Popen's back (os.wait elsewhere)
        return None
    return pgid if pgid == proc.pid and pgid != os.getpgrp() else None


def _signal(proc: subprocess.Popen, group: int | None, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        if group is not None:
            os.killpg(group, sig)
        else:
            proc.send_signal(sig)  # a no-op once Popen has reaped it


__all__ = ["group_alive", "stop_process_group"]
