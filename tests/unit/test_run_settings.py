"""Every setting a run reads is parsed when the code location loads (``resources.check_settings``,
what ``build_resources`` and the CLI call), with the parser the run uses, so that a bad value
stops the location naming its variable. Before, ``RECASSETS_TRAIN_PROCESSES=abc``,
``RECASSETS_TRAIN_LAUNCHER=kubernetes``, ``RECASSETS_BENTO_TORCH=gpu``,
``RECASSETS_SPARK_CONF=spark.driver.memory``, ``RECASSETS_EMBEDDINGS_KEEP_BENTOS=abc`` and
``RECASSETS_TRAIN_ROW_WISE=itemid`` loaded cleanly and failed a run (``..._SERVE_EMBEDDINGS=redsi``
not even that: nothing was published). Counts and intervals have upper bounds, refused naming
the variable and the bound wherever the variable is read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from recassets.bento import preflight
from recassets.freshness import SETTLE_ENV, env_int
from resources import check_settings

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "registry.example/recassets:1"
K8S = {"RECASSETS_TRAIN_LAUNCHER": "k8s", "RECASSETS_TRAIN_IMAGE": IMAGE}

BAD = [
    ({"RECASSETS_VOLUME_BAND": "abc"}, "RECASSETS_VOLUME_BAND"),
    ({"RECASSETS_LANDING_SETTLE_SECONDS": "1.5"}, "RECASSETS_LANDING_SETTLE_SECONDS"),
    (
        {"RECASSETS_LANDING_SETTLE_TIMEOUT_SECONDS": "abc"},
        "RECASSETS_LANDING_SETTLE_TIMEOUT_SECONDS",
    ),
    ({"RECASSETS_SENSOR_INTERVAL_S": "0"}, "RECASSETS_SENSOR_INTERVAL_S"),
    ({"RECASSETS_SPARK_CONF": "spark.driver.memory"}, "RECASSETS_SPARK_CONF"),
    ({"RECASSETS_TRAIN_PROCESSES": "abc"}, "RECASSETS_TRAIN_PROCESSES"),
    ({"RECASSETS_TRAIN_PROCESSES": "0"}, "RECASSETS_TRAIN_PROCESSES"),
    ({"RECASSETS_TRAIN_ROW_WISE": "itemid"}, "RECASSETS_TRAIN_ROW_WISE"),
    ({"RECASSETS_TRAIN_LAUNCHER": "kubernetes"}, "RECASSETS_TRAIN_LAUNCHER"),
    ({"RECASSETS_TRAIN_NODES": "two"}, "RECASSETS_TRAIN_NODES"),
    ({"RECASSETS_TRAIN_KEEP": "yes"}, "RECASSETS_TRAIN_KEEP"),
    ({"RECASSETS_TRAIN_LAUNCHER": "k8s"}, "RECASSETS_TRAIN_IMAGE"),  # k8s needs an image
    ({**K8S, "RECASSETS_TRAIN_NAMESPACE": "Ml_1"}, "RECASSETS_TRAIN_NAMESPACE"),
    ({**K8S, "RECASSETS_TRAIN_TEMPLATE": "/nonexistent.yaml"}, "RECASSETS_TRAIN_TEMPLATE"),
    ({"RECASSETS_BENTO_TORCH": "gpu"}, "RECASSETS_BENTO_TORCH"),
    ({"RECASSETS_SERVE_EMBEDDINGS": "redsi"}, "RECASSETS_SERVE_EMBEDDINGS"),
    ({"RECASSETS_SERVE_EMBEDDINGS": "redis"}, "RECASSETS_REDIS_URL"),  # rows to publish nowhere
    ({"RECASSETS_EMBEDDINGS_KEEP_BENTOS": "abc"}, "RECASSETS_EMBEDDINGS_KEEP_BENTOS"),
    ({"RECASSETS_EMBEDDINGS_KEEP_HOURS": "-1"}, "RECASSETS_EMBEDDINGS_KEEP_HOURS"),
]


@pytest.mark.parametrize(("env", "variable"), BAD, ids=[f"{v}-{i}" for i, (_, v) in enumerate(BAD)])
def test_a_bad_run_setting_stops_the_code_location_naming_it(env: dict[str, str], variable: str):
    with pytest.raises(ValueError) as refused:
        check_settings(env)
    assert variable in str(refused.value)


GOOD = {
    "RECASSETS_VOLUME_BAND": "0.3",
    "RECASSETS_LANDING_SETTLE_SECONDS": "60",
    "RECASSETS_LANDING_SETTLE_TIMEOUT_SECONDS": "600",
    "RECASSETS_SENSOR_INTERVAL_S": "30",
    "RECASSETS_SPARK_CONF": "spark.driver.memory=4g, spark.jars.packages=a:b:1,c:d:2",
    "RECASSETS_TRAIN_PROCESSES": " 4 ",
    "RECASSETS_TRAIN_ROW_WISE": "item_id, user_id",
    **K8S,
    "RECASSETS_TRAIN_NAMESPACE": "ml",
    "RECASSETS_TRAIN_NODES": "4",
    "RECASSETS_TRAIN_KEEP": "1",
    "RECASSETS_BENTO_TORCH": " CPU ",
    "RECASSETS_SERVE_EMBEDDINGS": "Redis ",
    "RECASSETS_REDIS_URL": "redis://redis:6379/0",
    "RECASSETS_EMBEDDINGS_KEEP_BENTOS": "0",
    "RECASSETS_EMBEDDINGS_KEEP_HOURS": "1.5",
}


def test_the_defaults_and_good_values_pass():
    check_settings({})
    check_settings(GOOD)


def test_a_blank_value_is_unset():
    """Blank is the default, for every variable (``RECASSETS_TRAIN_LAUNCHER=" "``: local, so no
    image is needed; ``RECASSETS_SERVE_EMBEDDINGS=" "``: process, so no Redis)."""
    check_settings({name: " " for name in GOOD})
    check_settings({name: "" for name in GOOD})


# --- upper bounds --------------------------------------------------------------------------

BOUNDS = [
    ("RECASSETS_TRAIN_PROCESSES", 1024),
    ("RECASSETS_TRAIN_NODES", 1024),
    ("RECASSETS_SENSOR_INTERVAL_S", 86_400),
    ("RECASSETS_LANDING_SETTLE_SECONDS", 86_400),
]


@pytest.mark.parametrize(("variable", "bound"), BOUNDS)
def test_a_value_over_its_bound_is_refused_at_load(variable: str, bound: int):
    for over in (str(bound + 1), "99999999999999999999999"):
        with pytest.raises(ValueError) as refused:
            check_settings({variable: over})
        assert variable in str(refused.value) and f"at most {bound}" in str(refused.value)
    check_settings({variable: str(bound)})


@pytest.mark.parametrize(
    ("variable", "default", "minimum"),
    [(SETTLE_ENV, 5, 0), ("RECASSETS_SENSOR_INTERVAL_S", 30, 1)],
)
def test_the_sensor_and_the_ingestion_read_the_same_bound(
    variable: str, default: int, minimum: int
):
    """As ``sensors/landing.py`` and the ingestion step call the parser: the bound is the
    variable's wherever it is read."""
    with pytest.raises(ValueError, match=f"{variable}=86401: expected at most 86400"):
        env_int(variable, default, minimum=minimum, env={variable: "86401"})
    assert env_int(variable, default, minimum=minimum, env={variable: "86400"}) == 86_400


@pytest.mark.parametrize("variable", ["RECASSETS_SERVE_WORKERS", "RECASSETS_SERVE_API_THREADS"])
def test_the_servers_counts_are_bounded(variable: str):
    with pytest.raises(ValueError, match=f"{variable}=1025: expected at most 1024"):
        preflight.check({variable: "1025"})
    with pytest.raises(ValueError, match=f"{variable}=9999999999999999999.*at most 1024"):
        preflight.check({variable: "99999999999999999999999"})
    preflight.check({variable: "1024"})


def test_the_integer_parser_takes_a_maximum():
    assert env_int("X", 1, env={"X": " 10 "}, maximum=10) == 10
    with pytest.raises(ValueError, match="X=11: expected at most 10"):
        env_int("X", 1, env={"X": "11"}, maximum=10)


def test_the_definitions_refuse_to_load_with_a_bad_run_setting():
    """The whole path: ``import definitions`` (the code location) stops on it, naming it."""
    env = {**os.environ, "RECASSETS_TRAIN_PROCESSES": "abc"}
    run = [sys.executable, "-c", "import definitions"]
    out = subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert out.returncode != 0
    assert "RECASSETS_TRAIN_PROCESSES='abc'" in out.stderr.strip().splitlines()[-1]
    env["RECASSETS_TRAIN_PROCESSES"] = "2"
    subprocess.run(run, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
