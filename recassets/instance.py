"""The embedded Dagster instance's ``dagster.yaml``: what ``recassets init``, ``make dev`` and
``recassets demo`` write into ``DAGSTER_HOME`` (a production instance is deploy/dagster.yaml)."""

from __future__ import annotations

from pathlib import Path

DAGSTER_YAML_HEADER = "# The embedded Dagster instance, written by recassets"
DAGSTER_YAML = f"""\
{DAGSTER_YAML_HEADER} (`recassets init`, `make dev`, `recassets demo`):
# SQLite storage in this folder (the default), no telemetry. A copy edited by hand (this
# header removed) is left alone.
telemetry:
  enabled: false
# Two runs never write the same Delta table at once, whoever launched them (the landing sensor,
# the automation sensor, the UI, the CLI): the assets that write a table share a pool (`pool=`
# on the asset: lake_ingest, lake_features, lake_training_examples, feast_online_store), and a
# pool admits one step at a time across every run of this instance; the other run's step waits
# for the slot. Unconfigured pools (every one of ours) take this default limit.
concurrency:
  pools:
    default_limit: 1
# Transient failures (a Spark JVM that dies, a locked SQLite file) are retried: the daemon
# re-executes a failed run launched by a sensor or the UI, at most twice. Writes are idempotent
# (replaceWhere of the run's partitions), so a retry cannot duplicate rows. Runs the CLI
# executes in its own process have no code-location origin to re-execute from: re-run them.
run_retries:
  enabled: true
  max_retries: 2
# The landing sensor ticks every 5 s: 17,280 tick rows a day, nearly all skipped. Dagster keeps
# skipped ticks 7 days and the others for ever; here skipped ones 1 day, the others 7.
retention:
  sensor:
    purge_after_days:
      skipped: 1
      success: 7
      failure: 7
      started: 7
"""

# What earlier releases wrote (recassets, then `make dev`): replaced by DAGSTER_YAML.
_OLD_DAGSTER_YAMLS = (
    "# The embedded Dagster instance: SQLite storage in this folder (the default), no telemetry.\n"
    "telemetry:\n  enabled: false\n",
    "telemetry:\n  enabled: false\n",
)


def write_dagster_yaml(dagster_home: Path) -> bool:
    """Write the instance's ``dagster.yaml`` (``DAGSTER_YAML``) where there is none or where
    it is one recassets wrote (an older one is brought up to date); a file written by hand is
    left alone. Whether it wrote."""
    target = dagster_home / "dagster.yaml"
    if target.exists():
        # a file that is no UTF-8 is no file of ours: left alone (its UnicodeDecodeError
        # named no file)
        current = target.read_bytes().decode("utf-8", errors="replace")
        if current == DAGSTER_YAML or not (
            current.startswith(DAGSTER_YAML_HEADER) or current in _OLD_DAGSTER_YAMLS
        ):
            return False
    from recassets import atomic

    dagster_home.mkdir(parents=True, exist_ok=True)
    atomic.write_text(target, DAGSTER_YAML)
    return True


__all__ = ["DAGSTER_YAML", "DAGSTER_YAML_HEADER", "write_dagster_yaml"]
