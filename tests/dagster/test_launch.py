"""assets/launch.py: the CLI's plan of runs, executed in one process against a real instance.

One subprocess, as the CLI starts it: a run that succeeds, a run that fails and stops the plan,
and an entry after it that never runs. The tag and gate rules are plain functions, tested on
their own with a passing and a failing case each."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from dagster import DagsterInstance, RunsFilter

from assets.launch import LAUNCHED_BY, failures, partition_tags, refusal_reasons, refused_by
from assets.partitions import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from recassets.cli import RUN_LINE
from recassets.synthetic import SyntheticConfig, generate
from tests.conftest import home_at

ROOT = Path(__file__).resolve().parents[2]
DAY1, MISSING = "2026-01-01", "2026-01-05"


def test_partition_tags_one_day_a_range_or_none():
    assert partition_tags(None, None) == {}
    assert partition_tags(DAY1, DAY1) == {"dagster/partition": DAY1}
    assert partition_tags(DAY1, "2026-01-03") == {
        PARTITION_RANGE_START_TAG: DAY1,
        PARTITION_RANGE_END_TAG: "2026-01-03",
    }


@dataclass
class _Evaluation:
    check_name: str
    passed: bool
    metadata: dict = field(default_factory=dict)


class _Result:
    def __init__(self, *evaluations: _Evaluation) -> None:
        self.evaluations = list(evaluations)

    def get_asset_check_evaluations(self) -> list[_Evaluation]:
        return self.evaluations


def test_refused_only_when_the_tolerated_check_failed():
    gate = "model_evaluation_promotion_gate"
    assert refused_by(_Result(_Evaluation(gate, False)), gate)
    assert not refused_by(_Result(_Evaluation(gate, True)), gate)  # it passed: not a refusal
    assert not refused_by(_Result(_Evaluation("other_check", False)), gate)
    assert not refused_by(_Result(), gate)  # the run failed before the gate ran
    assert not refused_by(_Result(_Evaluation(gate, False)), None)  # nothing tolerated


def test_a_refusal_says_the_gates_reasons_one_line_each():
    """The demo said only that the gate refused; its reasons were in the UI, or 2 minutes of
    `recassets evaluate` away."""
    from dagster import MetadataValue

    gate = "model_evaluation_promotion_gate"
    reasons = MetadataValue.md("- beaten by popularity_all_time: ndcg@10\n- 293 users")
    refused = _Result(_Evaluation(gate, False, {"reasons": reasons}))
    assert refusal_reasons(refused, gate) == ["beaten by popularity_all_time: ndcg@10", "293 users"]
    passed = _Result(_Evaluation(gate, True, {"reasons": reasons}))
    assert refusal_reasons(passed, gate) == [] and refusal_reasons(refused, "other") == []
    # many: the first 7, the count, and the last, which says what serves now (it was cut)
    many = MetadataValue.md("\n".join(f"- r{i}" for i in range(9)) + "\n- co-occurrence serves")
    got = refusal_reasons(_Result(_Evaluation(gate, False, {"reasons": many})), gate)
    assert got == [*(f"r{i}" for i in range(7)), "... and 2 more reason(s): recassets evaluate",
                   "co-occurrence serves"]  # fmt: skip


@dataclass
class _Error:
    message: str
    cause: _Error | None = None
    cls_name: str = "DagsterExecutionStepExecutionError"


@dataclass
class _Data:
    error: _Error


@dataclass
class _Failure:
    step_key: str
    event_specific_data: _Data


class _Failed:
    def __init__(self, *events: _Failure) -> None:
        self.events = list(events)

    def get_step_failure_events(self) -> list[_Failure]:
        return self.events


def test_a_failed_step_is_said_in_one_line_with_what_a_colon_announces():
    check = "1 blocking asset check failed with ERROR severity:\nlake/raw_events: has_events\n"
    own = _Error("ValueError: no positive\n  File x.py, line 3", None, "ValueError")
    got = failures(_Failed(_Failure("lake__raw_events", _Data(_Error(check))),
                           _Failure("models__x", _Data(_Error("wrapper", own))),
                           _Failure("y", _Data(_Error("")))))  # fmt: skip
    assert got == [
        ("lake__raw_events",
         "1 blocking asset check failed with ERROR severity: lake/raw_events: has_events"),
        ("models__x", "ValueError: no positive"),  # the asset's own error, its first line
        ("y", "failed"),
    ]  # fmt: skip


def test_a_failed_steps_line_names_the_files_error_the_java_cause_and_a_gone_jvm():
    """Probe, 2026-12-06: a damaged checkpoint said only the CRC error (the error naming the
    file wrapped it); a table folder that could not be written said "Py4JJavaError: An error
    occurred while calling o615.save." (the cause 140 lines into the log); a killed Spark JVM
    said "Connection refused" of every step."""
    crc = _Error("ValueError: its member archive/data/1 fails its CRC-32 check", None, "ValueError")
    damaged = _Error("DamagedArtifactError: checkpoint models/two_tower/0001.pt is damaged", crc,
                     "DamagedArtifactError")  # fmt: skip
    java = _Error(
        "py4j.protocol.Py4JJavaError: An error occurred while calling o615.save.\n"
        ": org.apache.spark.SparkException: Job aborted.\n\tat org.apache.spark.X(X.scala:1)\n"
        "Caused by: java.io.IOException: Mkdirs failed\n\tat y\n"
        "Caused by: java.nio.file.AccessDeniedException: Operation not permitted\n\tat z",
        None, "Py4JJavaError",
    )  # fmt: skip
    bare = _Error("py4j.protocol.Py4JJavaError: An error occurred while calling o9.count.\n"
                  ": java.lang.OutOfMemoryError: Java heap space", None, "Py4JJavaError")  # fmt: skip
    gone = _Error("ConnectionRefusedError: [Errno 111] Connection refused", None,
                  "ConnectionRefusedError")  # fmt: skip
    got = dict(failures(_Failed(*[_Failure(k, _Data(_Error("wrapper", e)))
                                  for k, e in (("a", damaged), ("b", java), ("c", bare), ("d", gone))])))  # fmt: skip
    assert got["a"] == ("DamagedArtifactError: checkpoint models/two_tower/0001.pt is damaged "
                        "(cause: ValueError: its member archive/data/1 fails its CRC-32 check)")  # fmt: skip
    assert got["b"] == ("py4j.protocol.Py4JJavaError: An error occurred while calling o615.save. "
                        "java.nio.file.AccessDeniedException: Operation not permitted")  # fmt: skip
    assert got["c"].endswith("o9.count. java.lang.OutOfMemoryError: Java heap space")
    assert got["d"].startswith("ConnectionRefusedError: [Errno 111] Connection refused (the "
                               "Spark JVM is gone")  # fmt: skip
    assert "JVM" not in got["a"] + got["b"]  # the hint only where py4j lost its JVM


def test_a_plan_runs_in_one_process_and_stops_at_the_first_failure(tmp_path):
    home = tmp_path / "home"
    generate(home_at(home), SyntheticConfig(days=1, events_per_day=200, initial_users=30))
    plan = [
        {"select": ["lake/users"], "first": DAY1, "last": DAY1},
        {"select": ["lake/raw_events"], "first": MISSING, "last": MISSING},  # no landing files
        {"select": ["lake/users"], "first": DAY1, "last": DAY1},  # never reached
    ]
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan))
    env = {
        **os.environ,
        "RECASSETS_HOME": str(home),
        "DAGSTER_HOME": str(home / "dagster"),
    }
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    (home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    proc = subprocess.run(
        [sys.executable, "-m", "assets.launch", str(plan_path)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    ends = [line.split() for line in proc.stdout.splitlines() if line.startswith(RUN_LINE)]
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert [(e[1], e[2]) for e in ends] == [("0", "SUCCESS"), ("1", "FAILURE")]

    with DagsterInstance.from_config(str(home / "dagster")) as instance:
        runs = {r.run_id: r for r in instance.get_runs(RunsFilter(run_ids=[e[3] for e in ends]))}
    assert len(runs) == 2
    ok, failed = runs[ends[0][3]], runs[ends[1][3]]
    assert ok.tags["dagster/partition"] == DAY1 and failed.tags["dagster/partition"] == MISSING
    assert all(r.tags[k] == v for r in runs.values() for k, v in LAUNCHED_BY.items())
    assert ok.is_success and failed.is_failure


def test_a_keep_going_entry_fails_goes_on_and_says_each_failed_step_in_one_line(tmp_path):
    """The models' entry of the CLI's plan: its failure (here: a day with no landing files)
    does not stop what follows, each failed step is one line with the asset's own error, and
    the plan still exits 1. Without ``keep_going`` the same failure stops the plan (above)."""
    from recassets.cli import FAILED_LINE

    home = tmp_path / "home"
    generate(home_at(home), SyntheticConfig(days=1, events_per_day=200, initial_users=30))
    plan = [
        {"select": ["lake/raw_events"], "first": MISSING, "last": MISSING, "keep_going": True},
        {"select": ["lake/users"], "first": DAY1, "last": DAY1},  # still runs
    ]
    plan_path = tmp_path / "plan.json"
    plan_path.write_text(json.dumps(plan))
    (home / "dagster").mkdir(parents=True, exist_ok=True)
    (home / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {**os.environ, "RECASSETS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    proc = subprocess.run([sys.executable, "-m", "assets.launch", str(plan_path)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    lines = proc.stdout.splitlines()
    ends = [line.split() for line in lines if line.startswith(RUN_LINE)]
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert [(e[1], e[2]) for e in ends] == [("0", "FAILURE"), ("1", "SUCCESS")]
    failed = [line for line in lines if line.startswith(FAILED_LINE)]
    assert len(failed) == 1 and failed[0].split()[1] == "lake__raw_events", failed
    # the asset's own error, one line, naming the folder it looked in (not Dagster's wrapper)
    assert MISSING in failed[0] and "\n" not in failed[0] and "Error occurred" not in failed[0]


def test_spark_is_prewarmed_only_for_a_plan_that_starts_with_lake_assets(monkeypatch):
    import recassets.spark as S
    from assets.launch import prewarm_spark

    class Session:
        def __init__(self, master):
            self.conf = {"spark.master": master}

    calls, warmed = [], []
    master = {"now": "local[*]"}

    def get_spark(*a, **k):
        calls.append((a, k))
        return Session(master["now"])

    monkeypatch.setattr(S, "get_spark", get_spark)
    monkeypatch.setattr(S, "warm_up", warmed.append)
    monkeypatch.setenv("RECASSETS_SPARK_CONF", "spark.sql.shuffle.partitions=3")
    monkeypatch.delenv("RECASSETS_SPARK_MASTER", raising=False)
    models_first = [{"select": ["models/two_tower_model"]}, {"select": ["lake/raw_events"]}]
    assert prewarm_spark(models_first) is None and prewarm_spark([]) is None
    thread = prewarm_spark([{"select": ["lake/raw_events", "lake/users"]}])
    assert thread is not None
    thread.join(timeout=30)
    # the settings the run's SparkResource reads from the same variables
    assert calls == [
        (
            (S.DEFAULT_MASTER, {"spark.sql.shuffle.partitions": "3"}),
            {"jars": None, "remote": None},
        )
    ]
    # a local JVM is warmed up (spark.warm_up); a cluster's master is not this machine's
    assert [w.conf["spark.master"] for w in warmed] == ["local[*]"]
    master["now"] = "spark://cluster:7077"
    thread = prewarm_spark([{"select": ["lake/raw_events"]}])
    assert thread is not None
    thread.join(timeout=30)
    assert len(calls) == 2 and len(warmed) == 1


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (from /proc)."""
    out = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat.parent.name))
    return out


def _gone(pid: int, within_s: float) -> bool:
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return True  # a zombie: it has exited, its parent (init) not yet reaped it
        time.sleep(0.5)
    return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads processes from /proc")
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGKILL])
def test_a_stopped_cli_stops_its_run(tmp_path, signum):
    """A signal to ``recassets materialize`` stopped the CLI alone: its run went on in an
    orphan, committed tables and built a bento after the operator had stopped it (probe,
    2026-12-06). SIGTERM is passed on to the run's process group (``stopping_with``) and the
    CLI exits 128 + 15 saying so; after SIGKILL, which cannot be passed on, the orphan stops
    itself (``stop_with_parent``). Either way the run process ends and its run is not a
    success."""
    home = tmp_path / "home"
    generate(home_at(home), SyntheticConfig(days=1, events_per_day=200, initial_users=30))
    env = {**os.environ, "RECASSETS_HOME": str(home), "DAGSTER_HOME": str(home / "dagster")}
    for name in ("RECASSETS_LANDING", "RECASSETS_LAKE", "RECASSETS_ARTIFACTS", "RECASSETS_LINEAGE"):
        env.pop(name, None)
    cli = subprocess.Popen(
        [sys.executable, "-m", "recassets.cli", "materialize", "--select",
         "lake/users,lake/items,lake/raw_events", "--first", DAY1, "--last", DAY1],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # stop it once its run is inside its first step (of three): that step's first progress
    # line (the instance is not opened here meanwhile: a second process opening it while the
    # run creates its schema can race the migration)
    timer = threading.Timer(240, cli.kill)
    timer.start()
    try:
        assert cli.stdout is not None
        started = any("landing file(s)" in line for line in cli.stdout)
        timer.cancel()
        assert started, "the run never reached its step"
        (launcher,) = _children(cli.pid)
        cli.send_signal(signum)
        _out, err = cli.communicate(timeout=240)
        assert _gone(launcher, within_s=120), "the run's process went on after the CLI stopped"
    finally:
        if cli.poll() is None:
            cli.kill()
    if signum == signal.SIGTERM:
        assert cli.returncode == 128 + signal.SIGTERM, err[-2000:]
        assert "stopped by SIGTERM: the run was interrupted" in err
    with DagsterInstance.from_config(str(home / "dagster")) as instance:
        (run,) = instance.get_runs()
    assert not run.is_success, run.status
