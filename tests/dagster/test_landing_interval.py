"""``RECASSETS_LANDING_INTERVAL_S``, the landing sensor's interval: 1 to 86,400 seconds, or the
code location refuses to load naming it (before 2026-12-07 there was no upper bound: a typo
of a few digits more was obeyed: 50000 for 5, a tick every 14 hours); unset, 5 s, or the
sensor interval when that is shorter. Read as the code location reads it: a fresh import of
``sensors.landing`` with the variable set."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SAY = "from sensors.landing import landing_sensor; print(landing_sensor.minimum_interval_seconds)"


def landing_interval(**env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.endswith("_INTERVAL_S")}
    return subprocess.run([sys.executable, "-c", SAY], cwd=ROOT, env={**clean, **env},
                          capture_output=True, text=True, check=False)  # fmt: skip


def test_a_landing_interval_out_of_range_is_refused_naming_it():
    for value, expected in (("86401", "at most 86400 (one day, in seconds)"),
                            ("0", "at least 1"), ("5s", "expected an integer")):  # fmt: skip
        out = landing_interval(RECASSETS_LANDING_INTERVAL_S=value)
        assert out.returncode != 0, out.stdout
        last = out.stderr.strip().splitlines()[-1]
        assert "RECASSETS_LANDING_INTERVAL_S=" in last and expected in last


def test_a_landing_interval_in_range_is_taken_as_it_is_and_the_default_follows_the_sensors():
    for env, expected in (
        ({"RECASSETS_LANDING_INTERVAL_S": "86400"}, "86400"),
        # above the sensor interval: taken, nothing else waits on it
        ({"RECASSETS_LANDING_INTERVAL_S": "60", "RECASSETS_SENSOR_INTERVAL_S": "30"}, "60"),
        ({}, "5"),
        ({"RECASSETS_SENSOR_INTERVAL_S": "3"}, "3"),  # unset: never longer than the sensors'
    ):
        out = landing_interval(**env)
        assert out.returncode == 0, out.stderr[-2000:]
        assert out.stdout.strip().splitlines()[-1] == expected
