"""Loopback servers a test or benchmark starts: a free port, and the wait until it listens."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_listening(
    proc: subprocess.Popen, port: int, log: Path, name: str, timeout_s: float
) -> None:
    """Return once 127.0.0.1:``port`` accepts a connection; raise with the tail of ``log``
    when ``proc`` exits first or ``timeout_s`` passes (the caller stops the process)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{name} exited: {log.read_text()[-3000:]}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{name} not up in {timeout_s:.0f} s: {log.read_text()[-3000:]}")
