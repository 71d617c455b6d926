"""The lake on an S3 API: a real S3 server (moto's server mode, ``moto_server``) on a free
loopback port, and the whole pipeline run against it by the CLI exactly as a user runs it, with
settings only: ``RECASSETS_LAKE=s3a://<bucket>/lake`` and the standard ``AWS_*`` variables.

Three synthetic days are landed (the landing zone stays local: it is listed and hashed with
local file operations) and every asset of the demo is materialized: ingestion, the feature
tables and their checks, the Feast export, training_examples, the models, their evaluation and
gate, and the bento. Spark writes each Delta table through S3A (its settings derived from
``AWS_*`` by ``recassets.spark.s3a_conf``), and the delta-rs readers (the trainer, the
evaluation, the Feast export, lineage, the bento's catalog) read them through the same
variables. The gate refuses models trained on three tiny days, so the embeddings and the index
are then built from the promoted-by-hand pair by the assets' own functions. Checked: every
table is in the bucket and none on local disk; the trainer's reader gets the examples through
delta-rs with explicit storage options and through the environment alike; a wrong endpoint, a
missing bucket (delta-rs and Spark) and plain HTTP not allowed fail, naming the cause.

The runs start their own JVM with hadoop-aws and the AWS SDK bundle, which Ivy fetches from
Maven Central on the first start and caches under ``~/.ivy2.5.2`` (as it does delta-spark).
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from recassets.paths import Paths
from support.ports import free_port
from support.s3_server import s3_client, s3_lake_env, start_moto
from tests.conftest import TEST_SPARK_CONF, home_at

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BUCKET = "recassets-lake"
DAYS = ["2026-01-01", "2026-01-02", "2026-01-03"]
EVENTS = 600
TABLES = (
    "raw_events", "users", "items", "quarantine", "user_features", "item_features",
    "cohort_features", "training_examples",
)  # fmt: skip
SPARK_CONF = ",".join(f"{k}={v}" for k, v in TEST_SPARK_CONF.items())
CLI_TIMEOUT_S = 1500  # a bound against hanging, not a target (benchmarks/scale_s3.py times it)


def storage_options(endpoint: str) -> dict[str, str]:
    """delta-rs storage options for the server (the same names as the variables)."""
    return {k: v for k, v in s3_lake_env(endpoint, BUCKET).items() if k.startswith("AWS_")}


def cli(paths: Paths, settings: Mapping[str, str], *args: str) -> subprocess.CompletedProcess:
    """``recassets ARGS`` in a child process on ``paths``' home with ``settings`` (and no other
    RECASSETS_* or AWS_* variable of the developer's environment)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RECASSETS_", "AWS_"))}
    env |= {
        "RECASSETS_HOME": paths.home,
        "DAGSTER_HOME": paths.dagster_home,
        "RECASSETS_SPARK_CONF": SPARK_CONF,
        **settings,
    }
    return subprocess.run(
        [sys.executable, "-m", "recassets.cli", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=CLI_TIMEOUT_S,
    )  # fmt: skip


def why(out: subprocess.CompletedProcess) -> str:
    """The JVM's exception and cause lines of a failed run, then its tail."""
    text = out.stdout + out.stderr
    causes = [ln.strip() for ln in text.splitlines() if "Exception" in ln or "Caused by" in ln]
    return "\n".join(dict.fromkeys(causes[:40])) + "\n...\n" + text[-3000:]


def bucket_tables(endpoint: str, bucket: str = BUCKET) -> dict[str, int]:
    """Delta tables in the bucket under ``lake/``: table -> its number of commits."""
    found: dict[str, int] = {}
    pages = s3_client(endpoint).get_paginator("list_objects_v2")
    for page in pages.paginate(Bucket=bucket, Prefix="lake/"):
        for obj in page.get("Contents", []):
            parts = obj["Key"].split("/")
            if len(parts) == 4 and parts[2] == "_delta_log" and parts[3].endswith(".json"):
                found[parts[1]] = found.get(parts[1], 0) + 1
    return found


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The endpoint of a moto S3 server holding an empty bucket ``BUCKET``."""
    from recassets.process import stop_process_group

    proc, endpoint = start_moto(tmp_path_factory.mktemp("moto") / "moto.log")
    try:
        s3_client(endpoint).create_bucket(Bucket=BUCKET)
        yield endpoint
    finally:
        stop_process_group(proc)


@pytest.fixture(scope="module")
def lake_home(s3: str, tmp_path_factory: pytest.TempPathFactory) -> Paths:
    """A home whose lake is the bucket, every asset of the demo materialized over DAYS."""
    settings = s3_lake_env(s3, BUCKET)
    home = home_at(tmp_path_factory.mktemp("s3home").absolute())
    paths = dataclasses.replace(home, lake=settings["RECASSETS_LAKE"])
    generate = ("generate", "--days", str(len(DAYS)), "--events-per-day", str(EVENTS), "--start", DAYS[0])  # fmt: skip
    for args in (generate, ("materialize",)):
        out = cli(paths, settings, *args)
        assert out.returncode == 0, f"recassets {' '.join(args)}: {why(out)}"
    return paths


def test_every_table_is_written_to_the_bucket_and_none_to_local_disk(s3, lake_home):
    tables = bucket_tables(s3)
    assert set(TABLES) <= set(tables), tables
    assert all(n >= 1 for n in tables.values())
    assert lake_home.lake == f"s3a://{BUCKET}/lake"
    assert not Path(lake_home.home, "lake").exists()  # the default lake: never created
    assert Path(lake_home.landing, "events").is_dir()  # the landing zone stays local


def test_the_trainer_reads_the_examples_through_delta_rs_storage_options(s3, lake_home):
    """``TrainingSource.open``, the trainer's reader, with explicit storage options and with
    the environment alone (what the training assets use) gives the same snapshot; every day
    has rows."""
    from recassets.training.data import TrainingSource

    table = lake_home.table("training_examples")
    explicit = TrainingSource.open(table, storage_options(s3))
    days = {str(d) for d in explicit.dataset.to_table(columns=["dt"]).column("dt").to_pylist()}
    assert days == set(DAYS), days
    rows = {d: sum(f.count_rows() for f in explicit.fragments(d)) for d in DAYS}
    assert all(n > 0 for n in rows.values()), rows
    with pytest.MonkeyPatch.context() as mp:
        for k, v in storage_options(s3).items():
            mp.setenv(k, v)
        from_env = TrainingSource.open(table)
    assert from_env.version == explicit.version
    assert {d: sum(f.count_rows() for f in from_env.fragments(d)) for d in DAYS} == rows


def test_models_and_bento_are_built_from_the_s3_lake(lake_home):
    """Training and evaluation read the lake through delta-rs; their artifacts stay local
    (RECASSETS_ARTIFACTS, the Bento store). Each model records the S3 table and the Delta
    versions it read."""
    from recassets.training.checkpoint import Checkpoint
    from recassets.training.policy import latest_checkpoint

    for kind in ("two_tower", "ranking"):
        path = latest_checkpoint(lake_home, kind)
        assert path is not None, f"no {kind} checkpoint"
        recorded = Checkpoint.load(path)
        assert recorded.source["table"] == f"s3a://{BUCKET}/lake/training_examples", kind
        assert recorded.partitions, kind
    assert list(Path(lake_home.bentoml, "bentos").glob("*/*/bento.yaml")), "no bento"


def test_embeddings_and_index_are_built_from_the_s3_lake(s3, lake_home, monkeypatch):
    """On three tiny days the promotion gate refuses the models (popularity serves, and the
    item_embeddings and item_index assets skip), so the trained pair is promoted by hand, as an
    operator can, and the assets' library functions run here with the same settings: the item
    tower over item_features and the index's sampled users over user_features, both read from
    the bucket by delta-rs."""
    from recassets.bento import bundle as B
    from recassets.training import policy as P

    for k, v in storage_options(s3).items():
        monkeypatch.setenv(k, v)
    assert P.current_policy(lake_home).get("policy") != P.MODEL  # what the gate decided
    checkpoints = {kind: str(P.latest_checkpoint(lake_home, kind)) for kind in P.KINDS}
    P.write_policy(lake_home, {"policy": P.MODEL, **checkpoints})
    embeddings = B.compute_item_embeddings(lake_home)
    assert embeddings.folder is not None and embeddings.manifest["items"] > 0
    assert embeddings.manifest["item_features_version"] >= 0
    index = B.build_item_index(lake_home, sample_users=50, k=10)
    assert index.folder is not None and index.info is not None
    assert index.info.n == embeddings.manifest["items"]


def test_delta_rs_names_a_wrong_endpoint_a_missing_bucket_and_plain_http(s3, lake_home):
    from recassets.training.data import TrainingSource

    table = f"s3a://{BUCKET}/lake/training_examples"
    options = storage_options(s3)
    nowhere = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(OSError, match="Connection refused"):
        TrainingSource.open(table, {**options, "AWS_ENDPOINT_URL": nowhere})
    with pytest.raises(OSError, match="no-such-bucket"):
        TrainingSource.open("s3a://no-such-bucket/lake/training_examples", options)
    with pytest.raises(OSError, match="URL scheme is not allowed"):  # false is the default
        TrainingSource.open(table, {**options, "AWS_ALLOW_HTTP": "false"})


def test_spark_names_a_missing_bucket(s3, tmp_path: Path):
    """The failing case of the runs above: the same settings with a bucket that does not
    exist fail ingestion, and the run's output names the bucket."""
    paths = home_at(tmp_path / "home")
    settings = s3_lake_env(s3, "no-such-bucket")
    assert cli(paths, settings, "generate", "--days", "1", "--events-per-day", "50").returncode == 0
    out = cli(paths, settings, "materialize", "--select", "lake/raw_events,lake/users,lake/items")
    assert out.returncode != 0
    assert "no-such-bucket" in out.stdout + out.stderr + _logs(paths)
    assert "no-such-bucket" not in bucket_tables(s3)


def _logs(paths: Paths) -> str:
    return "".join(p.read_text() for p in Path(paths.home, "logs").glob("*.log"))


def test_audit_requests_and_status_read_an_object_store_lake(s3, tmp_path: Path, monkeypatch):
    """``Path("s3a://...") / "_delta_log"`` is never a folder: the audit said "nothing was ever
    quarantined" of a bucket holding quarantined rows, a served request was not found in the
    decision log, and ``recassets status`` listed no table (review, 2026-12-07)."""
    import datetime as dt

    import pyarrow as pa
    from deltalake import write_deltalake

    from recassets.cli_args import status_lines
    from recassets.lineage.audit import Ingested, _quarantine
    from recassets.lineage.requests import _in_table

    s3_client(s3).create_bucket(Bucket="audit-lake")
    env = s3_lake_env(s3, "audit-lake")
    for key, value in env.items():
        if key.startswith("AWS_"):
            monkeypatch.setenv(key, value)
    paths = dataclasses.replace(home_at(tmp_path), lake=env["RECASSETS_LAKE"])
    ingested = [Ingested("raw_events", "2026-01-01", 1, 100, 3, "n")]
    assert _quarantine(paths, ingested)[1].startswith("no quarantine table")  # none yet
    assert _in_table(paths, "r-1") is None
    day = dt.date(2026, 1, 1)
    options = {k: v for k, v in env.items() if k.startswith("AWS_")}
    write_deltalake(paths.table("quarantine"), pa.table({
        "dataset": ["events"] * 3, "dt": pa.array([day] * 3, pa.date32()),
        "reason": ["bad ts", "bad ts", "dup"]}), storage_options=options)  # fmt: skip
    write_deltalake(paths.table("serving_log"), pa.table({
        "request_id": ["r-1"], "dt": pa.array([day], pa.date32()), "items": ["[]"],
        "ts": pa.array([dt.datetime(2026, 1, 1, tzinfo=dt.UTC)], pa.timestamp("us", "UTC"))}),
        storage_options=options)  # fmt: skip
    found, _ = _quarantine(paths, ingested)
    assert [(q.dataset, q.rows, q.reasons) for q in found] == [
        ("events", 3, [("bad ts", 2), ("dup", 1)])
    ]
    record = _in_table(paths, "r-1")
    assert record is not None and record.where == "serving_log@0 dt=2026-01-01"
    lines, unread = status_lines(paths)
    assert [line.split(":")[0].strip() for line in lines if "lake/" in line] == [
        "lake/quarantine",
        "lake/serving_log",
    ] and unread == []
