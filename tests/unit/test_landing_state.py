"""recassets.landing_state: the landing sensor's state in content-addressed files under the home,
and only a reference to it in Dagster's cursor (stored with every tick, every 5 s)."""

from __future__ import annotations

import json
import os

from recassets import landing_state as L
from recassets.landing_state import LandingCursor, load_cursor, store_cursor


def _cursor(n: int) -> LandingCursor:
    fps = {f"events/2026-01-{i:02d}": f"{i:016x}" for i in range(1, n + 1)}
    return LandingCursor(fps, {"events/2026-02-01": ("ab", 1.5)}, {"users/2026-01-01"}, {"x/y"})


def test_the_dagster_cursor_names_the_state_and_reads_it_back(tmp_path):
    state = _cursor(31)
    raw, problem = store_cursor(state, tmp_path, None)
    assert problem is None and len(raw) < 100 and json.loads(raw)["days"] == 31
    assert load_cursor(raw, tmp_path) == (state, None)
    assert store_cursor(state, tmp_path, raw) == (raw, None)  # the same state: the same file
    assert len(list(tmp_path.glob("*.json"))) == 1


def test_older_states_are_kept_for_a_daemon_restarted_from_an_older_cursor(tmp_path):
    first, _ = store_cursor(_cursor(1), tmp_path, None)
    previous = first
    for n in range(2, 2 + L.KEEP_STATE_FILES + 5):
        previous, _ = store_cursor(_cursor(n), tmp_path, previous)
    assert len(list(tmp_path.glob("*.json"))) == L.KEEP_STATE_FILES
    assert load_cursor(previous, tmp_path)[0] == _cursor(n)
    assert "cannot be read" in (load_cursor(first, tmp_path)[1] or "")  # pruned long since
    # the cursor the daemon ticks from is never pruned, however old
    os.utime(tmp_path / f"{json.loads(previous)['state']}.json", (0, 0))
    store_cursor(_cursor(99), tmp_path, previous)
    assert load_cursor(previous, tmp_path)[0] == _cursor(n)


def test_a_state_that_cannot_be_written_goes_inline(tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("")  # a file where the folder should be: nothing can be written below
    raw, problem = store_cursor(_cursor(3), blocked / "sub", None)
    assert problem is not None and "cannot be written" in problem
    assert load_cursor(raw, blocked / "sub") == (_cursor(3), None)


def test_a_tampered_or_foreign_state_is_a_problem_not_a_misreading(tmp_path):
    raw, _ = store_cursor(_cursor(2), tmp_path, None)
    path = tmp_path / f"{json.loads(raw)['state']}.json"
    path.write_text(path.read_text().replace("0000000000000001", "0000000000000009"))
    assert "does not match its digest" in (load_cursor(raw, tmp_path)[1] or "")
    assert "names no state file" in (load_cursor('{"version":2,"state":"../x"}', tmp_path)[1] or "")
    # a version 1 cursor (the whole map inline, before 2026-12-07) is still read
    old = json.dumps({"version": 1, "fingerprints": {"events/2026-01-01": "f"}})
    assert load_cursor(old, tmp_path) == (LandingCursor({"events/2026-01-01": "f"}), None)
