"""Sensor tick retention in the instances recassets ships (recassets/instance.py, the embedded
one; deploy/dagster.yaml and deploy/helm/values.yaml, production): the landing sensor ticks
every 5 s, and Dagster keeps skipped ticks 7 days and the others for ever."""

from __future__ import annotations

from pathlib import Path

import yaml
from dagster import DagsterInstance
from dagster._config import validate_config
from dagster._core.definitions.run_request import InstigatorType
from dagster._core.instance.config import retention_config_schema
from dagster._core.scheduler.instigation import TickStatus

from recassets import instance as embedded

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
WANTED = {"skipped": 1, "success": 7, "failure": 7, "started": 7}


def test_the_embedded_instance_purges_skipped_sensor_ticks_after_a_day(tmp_path):
    assert embedded.write_dagster_yaml(tmp_path)
    with DagsterInstance.from_config(str(tmp_path)) as instance:
        settings = instance.get_tick_retention_settings(InstigatorType.SENSOR)
    assert {status.value.lower(): days for status, days in settings.items()} == WANTED
    assert settings[TickStatus.SKIPPED] == 1


def test_the_production_instance_and_the_chart_say_the_same():
    retention = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())["retention"]
    assert validate_config(retention_config_schema().config_type, retention).success
    assert retention["sensor"]["purge_after_days"] == WANTED
    chart = yaml.safe_load((DEPLOY / "helm" / "values.yaml").read_text())["retention"]
    # the chart's model (helm/dagster/schema/.../retention.py): enabled, sensor and schedule,
    # each purgeAfterDays an int or all four statuses
    assert chart["enabled"] is True and chart["schedule"]["purgeAfterDays"] == -1
    assert chart["sensor"]["purgeAfterDays"] == WANTED
