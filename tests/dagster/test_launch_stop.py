"""A stop signal ends the CLI's plan: no further run starts, ``keep_going`` or not.

Stopping ``recassets materialize`` (or ``demo``) with SIGTERM during the models' run, an entry
with ``keep_going``, still launched the serving run, which built and published a new bento, and
only then said "stopped by SIGTERM" (review, 2026-12-07): the launcher took the interrupted run
for an ordinary failure. Here the CLI's own ``_launch`` runs a plan of two entries, the first
with ``keep_going``, and is stopped inside the first run's step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from dagster import DagsterInstance

from recassets.synthetic import SyntheticConfig, generate
from tests.conftest import home_at

ROOT = Path(__file__).resolve().parents[2]
DAY1 = "2026-01-01"
PLAN = [
    {"select": ["lake/raw_events"], "first": DAY1, "last": DAY1, "keep_going": True},
    {"select": ["lake/users"], "first": DAY1, "last": DAY1},
]
LAUNCH = (
    "import json, sys\n"
    "from recassets.cli import _launch\n"
    "from recassets.paths import Paths\n"
    "_launch(Paths.from_env(), json.loads(sys.argv[1]))\n"
)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_a_stop_in_a_keep_going_run_starts_no_further_run(tmp_path, signum):
    home = tmp_path / "home"
    generate(home_at(home), SyntheticConfig(days=1, events_per_day=200, initial_users=30))
    env = {**os.environ, "RECASSETS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    for name in ("RECASSETS_LANDING", "RECASSETS_LAKE", "RECASSETS_ARTIFACTS", "RECASSETS_LINEAGE"):
        env.pop(name, None)
    # SIGINT as a terminal's: not left ignored by the process running the tests
    cli = subprocess.Popen([sys.executable, "-c", LAUNCH, json.dumps(PLAN)], cwd=ROOT, env=env,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # fmt: skip
    timer = threading.Timer(240, cli.kill)
    timer.start()
    said: list[str] = []
    try:
        assert cli.stdout is not None
        for line in cli.stdout:  # stopped inside the first run's step, as the review did
            said.append(line)
            if "landing file(s)" in line:
                break
        timer.cancel()
        assert said and "landing file(s)" in said[-1], "the run never reached its step"
        cli.send_signal(signum)
        out, err = cli.communicate(timeout=240)
    finally:
        if cli.poll() is None:
            cli.kill()
    out = "".join(said) + out
    assert cli.returncode == 128 + signum, out[-2000:] + err[-2000:]
    assert "materializing lake/users" not in out  # the next entry is neither announced...
    assert f"stopped by {signal.Signals(signum).name}: not started: run 2 of 2 (lake/users)" in out
    with DagsterInstance.from_config(str(home / "dagster")) as instance:
        runs = instance.get_runs()
    assert len(runs) == 1 and not runs[0].is_success, [r.status for r in runs]  # ...nor run
    assert f"stopped by {signal.Signals(signum).name}: the run was interrupted" in err
