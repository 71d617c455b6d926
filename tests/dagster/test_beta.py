"""Loading the code location is quiet: Dagster's BetaWarnings for the deliberate beta uses
(``assets.beta.accept_beta``) and the deprecated ``partitions_def`` of the landing job were
logged nine and one times per load, in every process that loads the definitions."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from dagster import BackfillPolicy, BetaWarning, asset

from assets.beta import accept_beta

ROOT = Path(__file__).resolve().parents[2]


def test_loading_the_definitions_warns_of_no_beta_or_deprecated_use(tmp_path: Path):
    env = {**os.environ, "RECASSETS_HOME": str(tmp_path / "home"), "PYTHONWARNINGS": "always"}
    proc = subprocess.run(
        [sys.executable, "-c", "import definitions; print(len(definitions.defs.assets))"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    noisy = [line for line in proc.stderr.splitlines() if "BetaWarning" in line
             or "DeprecationWarning: Parameter `partitions_def`" in line]  # fmt: skip
    assert noisy == []


def test_accept_beta_silences_its_call_only():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")

        @accept_beta(asset)(backfill_policy=BackfillPolicy.single_run())
        def quiet() -> None: ...

        assert not [w for w in caught if issubclass(w.category, BetaWarning)]
        with pytest.warns(BetaWarning, match="backfill_policy"):

            @asset(backfill_policy=BackfillPolicy.single_run())
            def loud() -> None: ...
