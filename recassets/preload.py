"""Import slow libraries in the background while the process waits on Spark.

A landing run (``ingest_job``) spends its first minute in the JVM: Spark starts, then small
Delta jobs whose wall time is mostly scheduling and code generation, with the Python driver
idle and a core often free. The steps that follow in the same run then import Great
Expectations (the blocking checks) and Feast (the online store), about 10 s each on the
2-core machine, one after the other, on the path from landing to online. ``preload`` starts
those imports in a daemon thread at the beginning of the run, so they overlap the Spark work.

Safety: Python's per-module import locks make a concurrent import of the same module wait for
the first one; only an import cycle entered from both threads at once could see a module half
initialized. So code that uses a preloaded library calls ``settle()`` first: it waits for
the background imports, and the library is never imported by two threads at once. A failed
background import is ignored: ``settle()`` returns, and the real import raises its own error
where the library is used.
"""

from __future__ import annotations

import importlib
import sys
import threading

_lock = threading.Lock()
_threads: list[threading.Thread] = []
_requested: set[str] = set()


def preload(*modules: str) -> threading.Thread | None:
    """Import ``modules``, in order, in a background thread; those already imported or already
    requested are skipped. Returns the thread, or None when there was nothing to do."""
    with _lock:
        todo = [m for m in modules if m not in _requested and m not in sys.modules]
        _requested.update(todo)
        if not todo:
            return None

        def run() -> None:
            for name in todo:
                try:
                    importlib.import_module(name)
                except Exception:  # reported by the real import, where the module is used
                    pass

        thread = threading.Thread(target=run, name="recassets-preload", daemon=True)
        _threads.append(thread)
    thread.start()
    return thread


def settle(timeout: float | None = None) -> None:
    """Wait for every background import started by ``preload`` (a no-op when none was)."""
    with _lock:
        threads = list(_threads)
    for thread in threads:
        thread.join(timeout)
