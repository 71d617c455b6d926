"""recassets.preload: slow imports in a background thread, and settle() waiting for them."""

from __future__ import annotations

import importlib
import sys
import time
from pathlib import Path

import pytest

from recassets import preload as P

SLOW_MODULE = """
import os, time
while not os.path.exists({gate!r}):  # the test opens the gate when it has looked
    time.sleep(0.01)
LOADED = True
"""


@pytest.fixture
def module_dir(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in [m for m in sys.modules if m.startswith("recassets_preload_probe")]:
        del sys.modules[name]


def test_preload_imports_in_the_background_and_settle_waits_for_it(module_dir):
    gate = module_dir / "gate"
    (module_dir / "recassets_preload_probe_a.py").write_text(SLOW_MODULE.format(gate=str(gate)))
    thread = P.preload("recassets_preload_probe_a")
    assert thread is not None and thread.daemon
    time.sleep(0.05)
    # still importing: the caller was not blocked, and the module is not there yet
    assert thread.is_alive()
    assert "recassets_preload_probe_a" not in sys.modules or not hasattr(
        sys.modules["recassets_preload_probe_a"], "LOADED"
    )
    gate.write_text("")
    P.settle(timeout=30)
    assert sys.modules["recassets_preload_probe_a"].LOADED is True
    assert not thread.is_alive()


def test_a_module_already_imported_or_requested_is_not_imported_again(module_dir):
    assert P.preload("json") is None  # imported long ago
    (module_dir / "recassets_preload_probe_b.py").write_text("LOADED = True\n")
    first = P.preload("recassets_preload_probe_b")
    assert first is not None
    assert P.preload("recassets_preload_probe_b") is None
    P.settle(timeout=30)


def test_a_failing_preload_is_silent_and_the_real_import_reports_it(module_dir):
    (module_dir / "recassets_preload_probe_c.py").write_text("raise RuntimeError('broken')\n")
    assert P.preload("recassets_preload_probe_c", "recassets_preload_probe_missing") is not None
    P.settle(timeout=30)  # returns: the errors are left to the code that needs the modules
    with pytest.raises(RuntimeError, match="broken"):
        importlib.import_module("recassets_preload_probe_c")
    with pytest.raises(ModuleNotFoundError):
        importlib.import_module("recassets_preload_probe_missing")


def test_settle_without_preload_returns_at_once():
    start = time.perf_counter()
    P.settle()
    assert time.perf_counter() - start < 5  # joins nothing (generous: not a timing test)


def test_the_library_settles_before_importing_what_a_run_preloads():
    # Every import site of Great Expectations and Feast in the library waits for a background
    # import first; a new site without it could race the preload thread.
    root = Path(P.__file__).parent
    sites = []
    for path in root.rglob("*.py"):
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            stripped = line.strip()
            if stripped.startswith(
                (
                    "import great_expectations",
                    "from feast",
                    "from recassets.featurestore import repo",
                )
            ):
                indented = line.startswith(" ")
                under_type_checking = any("if TYPE_CHECKING" in p for p in lines[max(0, i - 3) : i])
                if indented and not under_type_checking:
                    sites.append((path.name, i, "settle()" in lines[i - 1]))
    assert sites, "no import site found: the probe is broken"
    assert [s for s in sites if not s[2]] == []
