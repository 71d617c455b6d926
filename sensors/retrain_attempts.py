"""The attempts at retraining one set of new days: a failed run is tried again, a refused one
is not, and every skip says which run it waits on and what to do.

``retrain_job`` does not retry failed steps (``sensors.retrain.RETRAIN_RUN_TAGS``: the gate's
refusal is a failed step, and is final). Before 2026-12-07 the run key was only the set of
days, so a run that failed for any other reason (an examples file moved aside, an object-store
blip) was never tried again: every later tick offered the same key, Dagster skipped it as
"already completed" with an empty skip reason, and nothing retrained until the next day
changed the set.

Now each request names its set (``RETRAIN_KEY_TAG``, the set's run key) and its attempt
(``ATTEMPT_TAG``); the first attempt keeps the set's key, attempt n its key plus
``:attempt<n>``. The newest run of the set decides:

- none: the first attempt;
- queued or running: wait for it;
- failed by the promotion gate (its blocking check ``model_evaluation_promotion_gate``
  evaluated and did not pass: an ``ASSET_CHECK_EVALUATION`` with ``passed`` false in that run):
  final, not retried, the gate's first reason said;
- failed with an error a retry cannot mend (``assets.failures.FINAL``: its config out of its
  bounds, a day never ingested, no landing folder, a FAISS factory FAISS does not read; the
  failure hook's judgement): final, not retried, the step and the error said, and what to do
  once it is mended;
- failed otherwise (a step error, a crash the daemon's own retries did not cure): the next
  attempt, once ``RETRY_WAITS_S`` has passed since it ended (10 min after the first, 1 h after
  the second: a blip is over in minutes, an outage gets an hour); after ``MAX_ATTEMPTS`` (3),
  no more, and the skip reason names the last run and how to run it again once the cause is
  fixed;
- canceled: someone stopped it on purpose: not retried, said.

The final errors are read from the run's step failures (each error and the errors it was
raised from, by class name: an event stores no class), not from the
``dagster/retry_on_asset_or_op_failure: false`` tag the failure hook sets: every
``retrain_job`` run carries that tag from its job (``sensors.retrain.RETRAIN_RUN_TAGS``), so
it cannot tell a final error from a blip here.

The daemon's own retries of a crashed run (``run_retries``) copy the parent's tags, so they
count as the same attempt. A run launched before these tags is found by its run key (Dagster's
``dagster/run_key`` tag) as the first attempt. Times are the instance's (the run's end), read
against this machine's clock: the wait is minutes, so a skew of seconds does not matter.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

from dagster import (
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    RunRecord,
    RunRequest,
    RunsFilter,
    SkipReason,
)

from assets.failures import FINAL
from sensors.landing import IN_FLIGHT

RETRAIN_KEY_TAG = "recassets/retrain_key"  # the set's run key, on every attempt at it
ATTEMPT_TAG = "recassets/retrain_attempt"  # 1, 2, 3
RUN_KEY_TAG = "dagster/run_key"  # Dagster's, on the runs an instigator launched
GATE_CHECK = "model_evaluation_promotion_gate"
# The wait after failed attempt n before attempt n+1 (seconds); one more attempt than waits.
RETRY_WAITS_S = (10 * 60, 60 * 60)
MAX_ATTEMPTS = len(RETRY_WAITS_S) + 1
RELAUNCH = (
    "re-execute run {run} from the Dagster UI (Runs > {run} > Re-execute > All steps), or "
    "`dagster job launch -w workspace.yaml -j retrain_job` with this DAGSTER_HOME"
)


def attempt_key(key: str, attempt: int) -> str:
    """The run key of attempt ``attempt`` at the set whose key is ``key``."""
    return key if attempt == 1 else f"{key}:attempt{attempt}"


def set_runs(instance: DagsterInstance, key: str) -> list[RunRecord]:
    """The run records of the set ``key``, newest first: tagged with it, or launched before
    the tag with its key as their run key."""
    found: dict[str, RunRecord] = {}
    for tags in ({RETRAIN_KEY_TAG: key}, {RUN_KEY_TAG: key}):
        for record in instance.get_run_records(filters=RunsFilter(tags=tags), limit=50):
            found[record.dagster_run.run_id] = record
    return sorted(found.values(), key=lambda r: r.storage_id, reverse=True)


def gate_refusal(instance: DagsterInstance, run_id: str) -> str | None:
    """The promotion gate's first reason when it evaluated in run ``run_id`` and did not pass
    ("refused" when it gave none); None when it passed or did not evaluate."""
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION, limit=50
    ).records
    for record in records:
        event = record.event_log_entry.dagster_event
        data = event.event_specific_data if event else None
        if getattr(data, "check_name", None) != GATE_CHECK or getattr(data, "passed", True):
            continue
        reasons = getattr(data, "metadata", {}).get("reasons")
        text = str(getattr(reasons, "value", reasons) or "")
        first = next((ln.lstrip("- ").strip() for ln in text.splitlines() if ln.strip()), "")
        return first[:300] or "refused"
    return None


def _step_failures(instance: DagsterInstance, run_id: str) -> list[tuple[str, Any]]:
    """(step, its serialized error or None) of each step failure of run ``run_id``, in order."""
    records = instance.get_records_for_run(
        run_id, of_type=DagsterEventType.STEP_FAILURE, limit=50
    ).records
    out = []
    for record in records:
        entry, event = record.event_log_entry, record.event_log_entry.dagster_event
        step = entry.step_key or getattr(event, "step_key", None) or "?"
        out.append((step, getattr(getattr(event, "event_specific_data", None), "error", None)))
    return out


def failed_steps(instance: DagsterInstance, run_id: str) -> list[str]:
    """The steps that failed in run ``run_id``, in order."""
    return list(dict.fromkeys(step for step, _ in _step_failures(instance, run_id)))


FINAL_NAMES = frozenset(cls.__name__ for cls in FINAL)
# a stored error keeps its class's name, not the class: its message starts with the class's
# module-qualified name (traceback.format_exception_only), which tells pydantic's
# ValidationError from jsonschema's or marshmallow's, as the failure hook's isinstance does
FINAL_QUALIFIED = tuple(f"{cls.__module__}.{cls.__qualname__}: " for cls in FINAL)


def final_failure(instance: DagsterInstance, run_id: str) -> str | None:
    """``step: Error: its first line`` for the first step of run ``run_id`` that failed with an
    error a retry cannot mend (``assets.failures.FINAL``, in the error or one it was raised
    from, as ``is_final`` walks it); None when no step did."""
    for step, error in _step_failures(instance, run_id):
        if (said := final_error(error)) is not None:
            return f"{step}: {said}"[:300]
    return None


def final_error(error: Any) -> str | None:
    """``Error: its first line`` when ``error`` (a stored ``SerializableErrorInfo``) or one of
    its causes is of a ``FINAL`` class, by its module-qualified name; else None."""
    seen = 0
    while error is not None and seen < 8:  # Dagster's wrapper first, then the causes
        message = str(error.message or "")
        if error.cls_name in FINAL_NAMES and message.startswith(FINAL_QUALIFIED):
            # its message is "module.Class: text": the text's first line
            lines = [ln for ln in message.splitlines() if ln.strip()]
            _, said, text = (lines[0] if lines else "").partition(f"{error.cls_name}: ")
            return error.cls_name + (f": {text.strip()}" if said else "")
        error, seen = error.cause, seen + 1
    return None


def _ended(record: RunRecord) -> float:
    """When the run ended, by the instance: its end time, else its last update."""
    if record.end_time is not None:
        return float(record.end_time)
    updated = record.update_timestamp
    return (updated if updated.tzinfo else updated.replace(tzinfo=dt.UTC)).timestamp()


def next_attempt(
    instance: DagsterInstance, request: RunRequest, days: str, now: float | None = None
) -> RunRequest | SkipReason:
    """``request`` (a set's first attempt, its run key the set's; ``days`` names the set) as
    the attempt the set's runs call for, or why none (module docstring)."""
    key = str(request.run_key)
    records = set_runs(instance, key)

    def attempt(n: int) -> RunRequest:
        tags = {**(request.tags or {}), RETRAIN_KEY_TAG: key, ATTEMPT_TAG: str(n)}
        return request.with_replaced_attrs(run_key=attempt_key(key, n), tags=tags)

    if not records:
        return attempt(1)
    last = records[0]
    run = last.dagster_run
    tried = max(int(r.dagster_run.tags.get(ATTEMPT_TAG, "1")) for r in records)
    relaunch = RELAUNCH.format(run=run.run_id)
    if run.status in IN_FLIGHT:
        return SkipReason(f"run {run.run_id} retrains {days}: waiting for it")
    if run.status == DagsterRunStatus.SUCCESS:
        return SkipReason(
            f"run {run.run_id} retrained {days} and succeeded, yet the latest checkpoints do "
            f"not hold these days: not launched again; to train them, {relaunch}"
        )
    if run.status == DagsterRunStatus.CANCELED:
        return SkipReason(
            f"run {run.run_id} (attempt {tried} at {days}) was canceled: not retried; to run "
            f"it, {relaunch}"
        )
    if refused := gate_refusal(instance, run.run_id):
        return SkipReason(
            f"run {run.run_id}: the promotion gate refused the candidate trained on {days} "
            f"({refused}): final, not retried; the current policy keeps serving, and the next "
            "trainable day retrains"
        )
    if final := final_failure(instance, run.run_id):
        return SkipReason(
            f"run {run.run_id} (attempt {tried} at {days}) failed with an error a retry cannot "
            f"mend ({final}): final, not retried; mend what it names, then {relaunch}"
        )
    steps = ", ".join(failed_steps(instance, run.run_id)) or "no step failed: the run did"
    if tried >= MAX_ATTEMPTS:
        return SkipReason(
            f"run {run.run_id}, attempt {tried} of {MAX_ATTEMPTS} at {days}, failed ({steps}): "
            f"no more automatic attempts; fix the cause (its log), then {relaunch}"
        )
    wait = RETRY_WAITS_S[tried - 1]
    due = _ended(last) + wait
    now = time.time() if now is None else now
    if now < due:
        at = dt.datetime.fromtimestamp(due, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return SkipReason(
            f"run {run.run_id}, attempt {tried} of {MAX_ATTEMPTS} at {days}, failed ({steps}): "
            f"attempt {tried + 1} at {at} ({wait // 60} min after it ended); sooner: {relaunch}"
        )
    return attempt(tried + 1)


__all__ = [
    "ATTEMPT_TAG",
    "MAX_ATTEMPTS",
    "RETRAIN_KEY_TAG",
    "RETRY_WAITS_S",
    "attempt_key",
    "final_failure",
    "gate_refusal",
    "next_attempt",
]
