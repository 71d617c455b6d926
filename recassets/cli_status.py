"""``recassets status``: how fresh what serves is. The policy and the models it names (their
checkpoints, the last training day each consumed, when they were promoted), the last gate
result, the training days the served model has not consumed, and the newest bento beside the
ones the running ``recassets serve`` servers of this home serve.

Why the bento lines: a running ``bentoml serve`` (``recassets serve``) keeps the bento it
started with; a promotion builds a new bento but does not restart the server (measured: after
two promotions and five newer bentos, ``/info`` still named the first). Each ``recassets
serve`` of this home that runs now is named, with its port and bento, from the record it
leaves while it runs (``recassets.bento.server.running``: its process alive and its port
answering); a stopped one is not named. Those of other machines sharing the home are named
"not checked" (``server.elsewhere``): their processes are not this machine's to judge. The logs were read before: the newest
``logs/bentoml-serve-<port>.log`` named a second server stopped while the first still served,
or the demo's sample server, which no ``recassets serve`` ran.

The policy is read through ``recassets.training.policy``'s public functions; each part that
cannot be read is said on its line, and the others are still printed.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any


def serving_lines(paths: Any) -> list[str]:
    """The serving lines of ``recassets status``, two spaces in."""
    lines: list[str] = []
    policy = _part(lines, "serving policy", lambda: _policy(paths))
    if policy is not None:
        _part(lines, "served model", lambda: _served_model(paths, policy))
        _part(lines, "last gate", lambda: _last_gate(paths, policy))
        _part(lines, "training days pending", lambda: _pending(paths, policy))
    _part(lines, "newest bento", lambda: _bentos(paths))
    return lines


def _part(lines: list[str], name: str, make: Callable[[], Any]) -> Any:
    """Append what ``make`` returns (lines, or (lines, value)); on an error, one line naming
    it, and None."""
    try:
        got = make()
    except Exception as e:  # noqa: BLE001 - a damaged part is said, not the status ended
        from recassets.cli_args import plain

        lines.append(f"  {name}: unknown ({plain(e)[:200]})")
        return None
    said, value = got if isinstance(got, tuple) else (got, None)
    lines += said
    return value


def _when(stamp: float) -> str:
    return dt.datetime.fromtimestamp(stamp, dt.UTC).isoformat(timespec="seconds")


def _policy(paths: Any) -> tuple[list[str], dict[str, Any]]:
    from recassets.training.policy import current_policy

    policy = current_policy(paths)
    what = str(policy.get("policy"))
    if policy.get("order") or policy.get("fallback"):
        what += (
            f" ({', '.join(f'{k} {policy[k]}' for k in ('order', 'fallback') if policy.get(k))})"
        )
    if policy.get("variant"):
        what += f" ({policy['variant']})"
    return [f"  serving policy: {what}"], policy


def _trained_through(path: str) -> str:
    from recassets.training.checkpoint import Checkpoint

    days = Checkpoint.load(path).partitions
    return f"trained through {days[-1]}" if days else "trained on no day"


def _served_model(paths: Any, policy: dict[str, Any]) -> list[str]:
    from recassets.training.policy import KINDS, MODEL

    if policy.get("policy") != MODEL:
        since = policy.get("updated_at")
        return ["  served model: none, popularity serves" + (f" (since {since})" if since else "")]
    parts = [f"{kind} {policy[kind]} ({_trained_through(policy[kind])})"
             for kind in KINDS if policy.get(kind)]  # fmt: skip
    return [f"  served model: {'; '.join(parts)}; promoted_at {policy.get('promoted_at', '?')}"]


def _one_line(reasons: Any, limit: int = 240) -> str:
    text = "; ".join(str(r) for r in reasons) if isinstance(reasons, list) else str(reasons or "")
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _last_gate(paths: Any, policy: dict[str, Any]) -> list[str]:
    """The last evaluation's verdict: promoted when the pointer names its checkpoints (the
    co-occurrence fallback is a refusal that still rewrote it), refused otherwise (the gate
    recomputed on the saved report: the check records it only in the Dagster instance)."""
    from recassets.training.policy import evaluation_path, gate_report
    from recassets.training.report import EvaluationReport

    lines = []
    where = evaluation_path(paths)
    if not Path(where).exists():
        lines.append("  last gate: none yet (no evaluation)")
    else:
        report = EvaluationReport.load(where)
        served = (policy.get("evaluation") or {}).get("checkpoints")
        if served == report.checkpoints and policy.get("fallback"):
            lines.append(f"  last gate: refused at {policy.get('promoted_at', '?')}, "
                         f"{policy['fallback']} serves: {_one_line(policy.get('reasons'))}")  # fmt: skip
        elif served == report.checkpoints:
            lines.append(f"  last gate: promoted at {policy.get('promoted_at', '?')}: "
                         f"{_one_line(policy.get('reasons'))}")  # fmt: skip
        else:
            decision = gate_report(report)
            verdict = "passed, not promoted" if decision.passed else "refused"
            lines.append(f"  last gate: {verdict} (evaluated {_when(Path(where).stat().st_mtime)}"
                         f"): {_one_line(decision.reasons)}")  # fmt: skip
    replaced = policy.get("replaced")
    if isinstance(replaced, dict):
        at = policy.get("updated_at") or policy.get("promoted_at") or "?"
        lines.append(f"  demoted at {at}: {replaced.get('two_tower', 'the model')} "
                     f"(promoted {replaced.get('promoted_at', '?')}) no longer serves: "
                     f"{_one_line(replaced.get('reasons'))}")  # fmt: skip
    return lines


def _pending(paths: Any, policy: dict[str, Any]) -> list[str]:
    """The trainable days (examples built, less the held-out ones) the served models did not
    consume, and which of them no checkpoint consumed yet (the next retraining's)."""
    from recassets.freshness import consumed_partitions, pending_training_days
    from recassets.training.checkpoint import Checkpoint
    from recassets.training.examples import available_days, choose_holdout
    from recassets.training.policy import KINDS, MODEL

    available = available_days(paths)
    if not available:
        return ["  training days pending: none (no training examples built)"]
    holdout = choose_holdout(paths, None).days
    model = policy.get("policy") == MODEL
    served = {k: (sorted(Checkpoint.load(policy[k]).partitions) if model and policy.get(k)
                  else None) for k in KINDS}  # fmt: skip
    behind = pending_training_days(available, served, holdout)
    untrained = pending_training_days(
        available, {k: consumed_partitions(paths, k) for k in KINDS}, holdout
    )
    span = f" ({behind[0]} .. {behind[-1]})" if behind else ""
    return [f"  training days pending: {len(behind)} built and not in the served model{span}; "
            f"{len(untrained)} of them not trained by any checkpoint yet (the next "
            f"retraining's); {holdout} newest held out for evaluation"]  # fmt: skip


def _bentos(paths: Any) -> list[str]:
    from recassets.bento.code import REBUILD, bento_differs, installed_files
    from recassets.bento.server import elsewhere, running
    from recassets.bento.store import latest_bento

    newest = latest_bento(paths)
    lines = [f"  newest bento: {newest or 'none built'}"]
    try:
        installed: dict[str, str] | None = installed_files()
    except OSError as e:  # a packaged install without serving/: said; the servers still named
        installed = None  # and bento_differs, reading it again, says nothing
        if newest:
            lines.append(f"    its code: not compared (this install's serving code cannot be "
                         f"read: {type(e).__name__}: {e})")  # fmt: skip
    if newest and (why := bento_differs(paths, newest, installed)):  # an upgraded install
        lines.append(f"    its code: {why}; to serve this install's: `{REBUILD}`, then restart "
                     "the server")  # fmt: skip
    servers, others = running(paths), elsewhere(paths)
    if not servers and not others:
        lines.append("  served bento: no `recassets serve` of this home is running (the next "
                     "one serves the newest bento)")  # fmt: skip
    for srv in servers:
        tag = srv.get("tag")
        note = ("the newest" if tag == newest else "not the newest: a running server keeps the "
                "bento it started with; restart it (Ctrl-C, then `recassets serve`) to serve "
                "the newest")  # fmt: skip
        lines.append(f"  served bento: {tag} by `recassets serve` at {srv.get('url')} (pid "
                     f"{srv.get('pid')}, since {srv.get('started_at', '?')}); {note}")  # fmt: skip
        if tag and tag != newest and (why := bento_differs(paths, str(tag), installed)):
            lines.append(f"    its code: {why}")
    for srv in others:  # a home shared by machines: their processes are not this one's to judge
        lines.append(f"  served bento: {srv.get('tag')} by `recassets serve` on host "
                     f"{srv.get('hostname')}, not checked (pid {srv.get('pid')} there, at "
                     f"{srv.get('url')}, since {srv.get('started_at', '?')})")  # fmt: skip
    return lines


__all__ = ["serving_lines"]
