"""Run a plan of asset selections as Dagster runs, one after the other, in one process.

``recassets materialize`` and ``recassets demo`` launch this module (``python -m
assets.launch PLAN.json``, from the repo root, with ``DAGSTER_HOME`` set): each entry of the
plan becomes one real run of the definitions' asset job in the instance, recorded as a run
from the CLI would be and visible in the UI. One process for all of them, rather than a
``dagster asset materialize`` process a run: each process loads Dagster, the definitions and
then torch and torchrec again, and on the 2-core machine the demo's three runs spent about
20 s on that alone.

A plan is a JSON list of ``{"select": ["lake/raw_events", ...], "first": day|null, "last":
day|null, "tolerate": check name|null, "keep_going": bool}``: ``first``/``last`` one partition or a range in one
run (a single-run backfill), null for unpartitioned assets. A run that fails stops the plan
(exit 1), except where ``tolerate`` names a blocking check whose failure is the intended
outcome (the promotion gate refusing a model): the plan goes on, since what follows serves
the policy that stays; and where ``keep_going`` is set (the models' run), which goes on after
any failure for the same reason and exits 1 at the end. A stop signal (SIGINT, SIGTERM: the
CLI passes its own on) ends the plan after the run it interrupted, ``keep_going`` or not:
nothing more is launched, and the exit is 128 + the signal.

Each run's end is one line on stdout, ``recassets-run: <index> <SUCCESS|REFUSED|FAILURE>
<run id>``, after one ``recassets-failed: <step> <cause>`` line per failed step, which the
CLI reads; the console log (INFO) streams as it happens.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dagster import (
    AssetKey,
    DagsterInstance,
    JobDefinition,
)

from assets.partitions import PARTITION_RANGE_END_TAG, PARTITION_RANGE_START_TAG
from assets.stale_runs import held_pools, process_tags, reap
from assets.staleness import rebuild_hint, stale_features
from recassets.cli import FAILED_LINE, NOTE_LINE, RUN_LINE
from recassets.undo import UNDO_INCOMPLETE

LOG_CONFIG = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
# what the CLI sets on the runs it starts, so the UI says who launched them
LAUNCHED_BY = {"recassets/launched_by": "cli"}


def asset_job() -> JobDefinition:
    """The definitions' asset job (every asset; a run selects a subset)."""
    from definitions import defs

    return defs.resolve_implicit_global_asset_job_def()


def partition_tags(first: str | None, last: str | None) -> dict[str, str]:
    """The run tags of one partition (``dagster/partition``) or of a range in one run."""
    if first is None:
        return {}
    if first == last:
        return {"dagster/partition": first}
    return {PARTITION_RANGE_START_TAG: first, PARTITION_RANGE_END_TAG: last or first}


def refused_by(result: Any, check_name: str | None) -> bool:
    """True when the run failed because the blocking check ``check_name`` failed."""
    if not check_name:
        return False
    return any(
        e.check_name == check_name and not e.passed for e in result.get_asset_check_evaluations()
    )


def refusal_reasons(result: Any, check_name: str | None, limit: int = 8) -> list[str]:
    """The failed check ``check_name``'s ``reasons`` (a Markdown list in its metadata: the
    gate's), one line each, at most ``limit`` (the rest counted). The last line is always
    shown: the gate ends with what serves now (it was cut after 8 reasons)."""
    lines: list[str] = []
    for e in result.get_asset_check_evaluations():
        if e.check_name != check_name or e.passed:
            continue
        value = getattr(e.metadata.get("reasons"), "value", None)
        lines += [t.strip().removeprefix("- ") for t in str(value or "").splitlines() if t.strip()]
    if len(lines) <= limit:
        return lines
    more = f"... and {len(lines) - limit} more reason(s): recassets evaluate"
    return [*lines[: limit - 1], more, lines[-1]]


def failures(result: Any) -> list[tuple[str, str]]:
    """(step, the one-line cause) of each failed step of ``result``: the innermost error's
    first line (the asset's own exception, not Dagster's wrapper around it), with the lines
    after it when it ends in ':' (Dagster's "1 blocking asset check failed with ERROR
    severity:" names the checks on the lines below: alone, it said nothing). An undo that did
    not complete (``recassets.undo.UNDO_INCOMPLETE``: the error itself, or a note on an
    interrupt) follows, whole: the run's error alone hid a table left ahead of Dagster."""
    out = []
    for event in result.get_step_failure_events():
        err = getattr(event.event_specific_data, "error", None)
        chain = []
        while err is not None:
            chain.append(err)
            err = err.cause
        undo = _undo_statement(chain)
        if undo is not None:  # the run's error is said from the errors the undo was raised from
            chain = [e for e in chain if UNDO_INCOMPLETE not in _first_line(e)] or chain
        own = [e for e in chain if not str(getattr(e, "cls_name", "") or "").startswith("Dagster")]
        # the asset's own error (the outermost one not Dagster's: it names the file or the
        # table), and the innermost's first line where that is another error (its cause)
        main, root = (own or chain or [None])[0], (chain or [None])[-1]
        line = _first_line(main)
        if root is not main and (cause := _first_line(root)) != "failed" and cause not in line:
            line = f"{line} (cause: {cause})"
        line = (line + _hint(chain))[:500]
        out.append((event.step_key or "?", line if undo is None else f"{line}; {undo}"))
    return out


def _undo_statement(chain: Sequence[Any]) -> str | None:
    """The statement of an undo that did not complete, from the first error of ``chain``
    whose message has one (on any of its lines: a note follows the error's own line)."""
    for err in chain:
        for text in (getattr(err, "message", "") or "").splitlines():
            if UNDO_INCOMPLETE in text:
                return text[text.index(UNDO_INCOMPLETE) :].strip()
    return None


def _first_line(err: Any) -> str:
    """An error's first line (with the lines after it when it ends in ':'); for a Java error
    passed through py4j ("An error occurred while calling o615.save."), the Java error's own
    line: its last ``Caused by:``, the root of what failed (``Operation not permitted``)."""
    text = [t.strip() for t in (err.message if err is not None else "").splitlines()]
    text = [t for t in text if t]
    line = text[0] if text else "failed"
    if "An error occurred while calling" in line:
        caused = [t[len("Caused by:") :].strip() for t in text if t.startswith("Caused by:")]
        java = caused[-1:] or [t.lstrip(": ") for t in text[1:] if t.startswith(":")][:1]
        if java:
            line = f"{line} {java[0]}"
    elif line.endswith(":") and len(text) > 1:
        line = f"{line} {'; '.join(text[1:])}"
    return line


# What py4j raises once the Spark JVM behind a session is gone (killed; the OOM killer).
_JVM_GONE = ("ConnectionRefusedError", "Py4JNetworkError", "Answer from Java side is empty")


def _hint(chain: Sequence[Any]) -> str:
    """What to do, where the error alone does not say it: Spark's JVM gone."""
    text = " ".join(getattr(e, "message", "") or "" for e in chain)
    if any(mark in text for mark in _JVM_GONE):
        return (" (the Spark JVM is gone: killed, or out of memory? Delta tables hold whole "
                "commits only; run the command again)")  # fmt: skip
    return ""


def stop_signals() -> Callable[[], int | None]:
    """From here on, record each SIGINT and SIGTERM this process receives. Returns a function
    that gives the first of them (None: none yet).

    A stopped ``recassets materialize`` went on: the signal interrupted the models' run, which
    failed, and its entry's ``keep_going`` launched the serving run, which built and published
    a bento after the operator had stopped the command (review, 2026-12-07). A run's result
    cannot say it was stopped: Dagster's handlers take the signal during a run, and one that
    comes as its last step ends is dropped with the run a success. So the record is the
    signal wake-up fd (``signal.set_wakeup_fd``), to which the interpreter writes the number of
    every signal a Python handler takes, whoever's handler it is (Dagster's, ``recassets.undo``
    deferring one, this module's). Between runs the signals are taken here and recorded: the
    plan ends at its next entry, not with a ``KeyboardInterrupt`` traceback.

    Between runs is not only between ``run_plan``'s checks: a signal after its last check and
    before Dagster takes the signals over (the run being created in the instance) was recorded
    and the whole run went on. So the handler here also sets the flag Dagster's own handler
    sets during a run (``dagster._utils.interrupts._received_interrupt``): the run Dagster
    starts next raises it at its first step (the resources' set-up), before any asset's code,
    and ends failed. Dagster has no public hook for this: the lock pins Dagster, and
    tests/dagster/test_launch_window.py fails should a new version move or ignore the flag.
    Main thread only (set_wakeup_fd's rule), as ``main`` calls it."""
    from dagster._utils.interrupts import _received_interrupt

    def take(_signum: int, _frame: Any) -> None:  # the number: written to the wake-up fd
        _received_interrupt["received"] = True

    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    signal.set_wakeup_fd(write, warn_on_full_buffer=False)
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, take)
    got: list[int] = []

    def first() -> int | None:
        while True:
            try:
                data = os.read(read, 512)
            except BlockingIOError:
                break
            got.extend(b for b in data if b in (signal.SIGINT, signal.SIGTERM))
            if not data:
                break
        return got[0] if got else None

    return first


def run_plan(
    plan: Sequence[Mapping[str, Any]],
    instance: DagsterInstance,
    stopped: Callable[[], int | None] = lambda: None,
) -> int:
    """Each entry in order; exit 1 on a failed run, which stops the plan unless the entry says
    ``keep_going`` (the models' run: a model that cannot train leaves the served policy as it
    is, and what follows builds from it). Each failed step is one ``FAILED_LINE``. Once
    ``stopped`` names a signal (``stop_signals``) no further entry starts: a note names those
    left, and the exit is 128 + the signal. It is asked at the top of each entry and again
    just before the run: ending the JVM (``release_spark``) can take 20 s, and a signal then
    was recorded while the next run (the serving run, which publishes a bento) went on whole
    (review, 2026-12-07)."""
    # In process, with the definitions' own job: execute_job would rebuild the job from a
    # pointer, and Dagster has no public pointer to its implicit asset job.
    job = asset_job()

    def note(line: str) -> None:
        print(f"{NOTE_LINE} {line}", flush=True)

    def stop_before(i: int) -> int | None:
        """128 + the signal that stopped the plan, the entries from ``i`` on named; None
        while none came."""
        if (stop := stopped()) is None:
            return None
        left = "; ".join(f"run {j + 1} of {len(plan)} ({', '.join(e['select'])})"
                         for j, e in enumerate(plan[i:], start=i))  # fmt: skip
        note(f"stopped by {signal.Signals(stop).name}: not started: {left}")
        return 128 + stop

    reap(instance, note)  # a run killed earlier would hold its pool's slot for ever: freed
    ours = {**LAUNCHED_BY, **process_tags()}  # the process, for a later reap should it die
    code = 0
    for i, entry in enumerate(plan):
        if (stop_code := stop_before(i)) is not None:
            return stop_code
        if spark_done(plan, i):
            release_spark()
        for pool, run in held_pools(instance, entry["select"]):  # its steps wait: say so
            note(f"pool {pool} is held by run {run}: this run's step waits for it to end "
                 f"(if no process runs it any more, force its termination in the UI)")  # fmt: skip
        if (stop_code := stop_before(i)) is not None:  # one while the JVM ended, or pools read
            return stop_code
        result = job.execute_in_process(
            instance=instance,
            run_config=LOG_CONFIG,
            tags={**ours, **partition_tags(entry.get("first"), entry.get("last"))},
            asset_selection=[AssetKey.from_user_string(k) for k in entry["select"]],
            raise_on_error=False,
        )
        if result.success:
            status = "SUCCESS"
        elif refused_by(result, entry.get("tolerate")):
            status = "REFUSED"
            for why in refusal_reasons(result, entry.get("tolerate")):
                note(f"gate: {why}")  # said before the refusal's line, not only in the UI
        else:
            status = "FAILURE"
        if status == "FAILURE":
            for step, cause in failures(result):
                print(f"{FAILED_LINE} {step} {cause}", flush=True)
        print(f"{RUN_LINE} {i} {status} {result.run_id}", flush=True)
        if status == "FAILURE":
            code = 1
            if not entry.get("keep_going") and stopped() is None:
                return code
    say_stale(instance, note)
    return code  # a signal after the last run stopped nothing: the CLI says so


def spark_done(plan: Sequence[Mapping[str, Any]], i: int) -> bool:
    """Whether entries before ``i`` may have used Spark and none from ``i`` on will: no
    ``lake/`` asset is selected from there (the models, the index and the bento read the lake
    through delta-rs, not Spark)."""
    return i > 0 and not any(k.startswith("lake/") for e in plan[i:] for k in e["select"])


def release_spark() -> None:
    """End this process's Spark session and its driver JVM (``spark.release_jvm``) when the
    rest of the plan needs neither: an idle local JVM kept its 3.75 GB through the models'
    run, which needed 5 GB of its own (review at volume, 2026-12-07). Nothing when this
    process holds neither a session nor a gateway (``spark.started``): the definitions import
    ``recassets.spark`` in every process, so its import said nothing, and a plan of models and
    serving runs imported pyspark only to find no JVM to end."""
    from recassets.spark import release_jvm, started

    if started():
        release_jvm()


def say_stale(instance: DagsterInstance, note: Callable[[str], None]) -> None:
    """One note when the days this plan wrote left later feature days stale (a day or a
    user row corrected after the days that read it): without the daemon nothing else says it,
    and those days went on serving lists and attributes from before the correction."""
    if (stale := stale_features(instance)) is not None:
        note(rebuild_hint(stale))


def prewarm_spark(plan: Sequence[Mapping[str, Any]]) -> threading.Thread | None:
    """Start the process's Spark session in the background when the plan's first run selects a
    lake asset: the JVM starts (another process, the other core) while this one imports the
    definitions (Dagster, torch, torchrec: the first ~15 s of the demo, on one core), and the
    first Spark step finds the session up. The same settings the run's ``SparkResource``
    reads from the environment (``resources.SPARK_ENV``); ``get_spark`` keeps one session per
    process, so the step gets this one. With a local master it then runs ``spark.warm_up`` (the
    lake's code paths on a few rows), so the first step does not pay for compiling them. A
    failure here is left to that step to report."""
    if not plan or not any(k.startswith("lake/") for k in plan[0].get("select", [])):
        return None

    def start() -> None:
        from recassets.spark import DEFAULT_MASTER, get_spark, parse_conf, warm_up

        env = os.environ
        try:
            session = get_spark(
                env.get("RECASSETS_SPARK_MASTER") or DEFAULT_MASTER,
                parse_conf(env.get("RECASSETS_SPARK_CONF")),
                jars=env.get("RECASSETS_SPARK_JARS") or None,
                remote=env.get("RECASSETS_SPARK_REMOTE") or None,
            )
            if session.conf.get("spark.master", "").startswith("local"):
                warm_up(session)  # the JVM is this machine's: compile the lake's paths now
        except Exception:  # noqa: BLE001 - the step starting it again says what is wrong
            pass

    thread = threading.Thread(target=start, name="spark-prewarm", daemon=True)
    thread.start()
    return thread


def stop_with_parent(every_s: float = 1.0) -> threading.Thread:
    """Interrupt this process (SIGTERM: its Dagster run is marked failed) once the process
    that started it is gone: the CLI killed with SIGKILL, which it cannot pass on
    (``cli_args.stopping_with`` passes on the others). Such an orphan had gone on committing
    tables and building a bento nobody was waiting for, and died at its next line of output
    (a broken pipe), in the middle of its plan (probe, 2026-12-06)."""
    # the CLI's pid as it passed it: a CLI killed before this line ran has already left us
    # to init (or a subreaper), whose pid would never change again
    said = os.environ.get("RECASSETS_CLI_PID", "")
    parent = int(said) if said.isdigit() else os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every_s)
        os.kill(os.getpid(), signal.SIGTERM)

    thread = threading.Thread(target=watch, name="stop-with-parent", daemon=True)
    thread.start()
    return thread


def interruptible_waits() -> None:
    """Let a stop signal end a run whose steps wait for a pool slot.

    Dagster's in-process executor takes SIGINT and SIGTERM as a flag between steps and raises
    it when the next step's code starts; while every step waits for a slot another run holds,
    its loop only sleeps, so a stopped ``recassets materialize`` went on waiting for as long
    as that run held the pool, and only the CLI's second signal (SIGKILL) ended it, leaving
    the run STARTED for a later reap (probe, 2026-12-06). The multiprocess executor checks the
    flag in that loop (``check_for_interrupts``); here the in-process loop's sleep does the
    same, and the run fails as any interrupted run does, its waiting claims given back. Dagster
    has no public hook for this: the lock pins Dagster, and tests/dagster/test_launch.py fails
    should a new version move the loop."""
    from dagster import DagsterExecutionInterruptedError
    from dagster._core.execution.plan.active import ActiveExecution

    sleep = ActiveExecution.sleep_til_ready
    if getattr(sleep, "stops_on_interrupt", False):
        return

    def sleep_til_ready(self: ActiveExecution) -> None:
        if self.check_for_interrupts():
            raise DagsterExecutionInterruptedError(
                "stopped while its steps waited for a pool slot held by another run"
            )
        sleep(self)

    sleep_til_ready.stops_on_interrupt = True  # type: ignore[attr-defined]
    ActiveExecution.sleep_til_ready = sleep_til_ready  # type: ignore[method-assign]


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1:
        print("usage: python -m assets.launch PLAN.json", file=sys.stderr)
        return 2
    with open(argv[0]) as f:
        plan = json.load(f)
    stopped = stop_signals()
    stop_with_parent()
    interruptible_waits()
    prewarm_spark(plan)
    with DagsterInstance.get() as instance:
        return run_plan(plan, instance, stopped)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
