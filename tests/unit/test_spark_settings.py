"""The Spark settings refused when the code location loads (``resources.check_settings``), naming
the variable, the value and the form taken. Before, ``RECASSETS_SPARK_CONF`` was checked for its
``key=value`` shape only and the master and Connect URL not at all: a bad memory size or master
loaded cleanly and failed the run's first Spark step as "Spark could not load delta-spark's
jars" (``spark.driver.memory=4gb``: the JVM's ``Invalid maximum heap size: -Xmx4gb``;
``spark.executor.memory=lots``; ``RECASSETS_SPARK_MASTER=bogus``)."""

from __future__ import annotations

import pytest

from recassets.spark_settings import JVM_FORM, MASTER_FORMS, SPARK_FORM
from resources import check_settings

CONF = "RECASSETS_SPARK_CONF"

BAD_SIZES = [
    ("spark.driver.memory", "4gb", JVM_FORM),  # Spark takes it, the driver's -Xmx does not
    ("spark.driver.memory", "-1", JVM_FORM),
    ("spark.driver.memory", "4096", JVM_FORM),  # bytes to the JVM, MiB to Spark
    ("spark.driver.memory", "4.5g", JVM_FORM),
    ("spark.driver.memory", "0g", JVM_FORM),
    ("spark.executor.memory", "lots", SPARK_FORM),
    ("spark.executor.memory", "0", SPARK_FORM),
    ("spark.executor.memoryOverhead", "1.5g", SPARK_FORM),
    ("spark.driver.maxResultSize", "2 g", SPARK_FORM),
]


@pytest.mark.parametrize(("key", "value", "form"), BAD_SIZES)
def test_a_memory_size_spark_or_the_jvm_refuses_is_refused_at_load(key: str, value: str, form: str):
    with pytest.raises(ValueError) as refused:
        check_settings({CONF: f"spark.ui.enabled=false,{key}={value}"})
    message = str(refused.value)
    assert message.startswith(f"{CONF}: {key}={value!r}")
    assert form in message


def test_the_sizes_spark_and_the_jvm_take_pass():
    """``4gb`` is refused for the driver only: Spark's own parser takes it elsewhere."""
    good = (
        "spark.driver.memory=4G,spark.executor.memory=4gb,spark.executor.memoryOverhead=512,"
        "spark.driver.memoryOverhead=1g,spark.driver.maxResultSize=0,spark.memory.offHeap.size=0"
    )
    check_settings({CONF: good})
    check_settings({CONF: "spark.driver.memory=512m"})


BAD_MASTERS = ["bogus", "spark://host", "spark://host:0", "local[0]", "local[x]", "mesos://h:5050"]


@pytest.mark.parametrize("master", BAD_MASTERS)
def test_a_master_spark_refuses_is_refused_at_load_with_the_forms_taken(master: str):
    with pytest.raises(ValueError) as refused:
        check_settings({"RECASSETS_SPARK_MASTER": master})
    message = str(refused.value)
    assert message.startswith(f"RECASSETS_SPARK_MASTER={master!r}")
    assert MASTER_FORMS in message
    with pytest.raises(ValueError, match=f"{CONF}'s spark.master='{master[:4]}"):
        check_settings({CONF: f"spark.master={master}"})  # the conf's wins over the variable


@pytest.mark.parametrize(
    "master",
    [
        "local",
        "local[4]",
        "local[*]",
        "local[4,2]",
        "local[*, 3]",
        "spark://a:7077",
        "spark://a:7077,b:7077",
        "spark://[::1]:7077",
        "k8s://https://10.0.0.1:443",
        "yarn",
        "sc://localhost",
    ],
)
def test_the_masters_spark_takes_pass(master: str):
    check_settings({"RECASSETS_SPARK_MASTER": f" {master} "})


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://h:15002", "does not start with sc://"),
        ("sc://:15002/;token=s3cr3t", "names no host"),
        ("sc://h:15002/db;token=s3cr3t", "the path '/db' must be empty"),
        ("sc://h:99999/;token=s3cr3t", "port is not a number"),
        ("sc://h:15002/;token", "not key=value"),
    ],
)
def test_a_connect_url_the_client_refuses_is_refused_at_load_without_its_token(url: str, why: str):
    with pytest.raises(ValueError) as refused:
        check_settings({"RECASSETS_SPARK_REMOTE": url})
    message = str(refused.value)
    assert message.startswith("RECASSETS_SPARK_REMOTE=") and why in message
    assert "sc://host[:port][/;param=value;...]" in message
    assert "s3cr3t" not in message


def test_the_connect_urls_the_client_takes_pass():
    for url in ("sc://h", "sc://h:15002", "sc://h:15002/;use_ssl=true;token=t", "sc://[::1]:1"):
        check_settings({"RECASSETS_SPARK_REMOTE": url})


def test_the_wait_for_a_master_or_server_is_bounded():
    for bad, said in (("0", "at least 1"), ("3601", "at most 3600"), ("soon", "an integer")):
        with pytest.raises(ValueError, match=f"RECASSETS_SPARK_CONNECT_TIMEOUT_S=.*{said}"):
            check_settings({"RECASSETS_SPARK_CONNECT_TIMEOUT_S": bad})
    check_settings({"RECASSETS_SPARK_CONNECT_TIMEOUT_S": "3600"})


def test_get_spark_refuses_a_bad_value_given_in_code_before_any_jvm_starts(
    monkeypatch: pytest.MonkeyPatch,
):
    """``SparkResource(conf=...)`` or ``get_spark`` from a notebook bypass the variables: the
    same check runs in ``get_spark``, before the launcher (which this test never reaches: a
    refusal raised later would not be this message)."""
    import recassets.spark as spark

    monkeypatch.setattr(spark, "_session", None)
    with pytest.raises(spark.SparkStartError, match="spark.driver.memory='4gb' is not a memory"):
        spark.get_spark(conf={"spark.driver.memory": "4gb"})
    with pytest.raises(spark.SparkStartError, match="RECASSETS_SPARK_MASTER='bogus'"):
        spark.get_spark(master="bogus")
    assert spark._session is None
