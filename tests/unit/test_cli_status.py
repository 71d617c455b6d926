"""``recassets status`` says how fresh what serves is (``recassets.cli_status``), on a crafted
home: the served models and the day each was trained through, the last gate's verdict, the
training days the served model has not consumed, a demotion, and the bento a running
``recassets serve`` of this home started beside the newest (its record:
tests/unit/serving/test_server_records.py). Before, it said only the policy's name and
the newest bento, as if the newest were what served."""

from __future__ import annotations

import json
import socket
import subprocess
import sys

import pyarrow as pa

from recassets.bento.server import records_dir
from recassets.cli_args import status_lines
from recassets.training import evaluation as E
from recassets.training import policy as P
from recassets.training.checkpoint import Checkpoint

DAYS = [f"2026-01-0{d}" for d in range(1, 7)]  # 6 days: one held out, no read to choose it
K, N = "recall@50", "ndcg@10"


def _examples(paths, days: list[str]) -> None:
    from deltalake import write_deltalake

    table = pa.table({"example_id": [f"e{i}" for i in range(len(days))], "dt": days})
    write_deltalake(paths.table("training_examples"), table, partition_by=["dt"])


def _checkpoint(paths, kind: str, consumed: list[str]) -> str:
    ckpt = Checkpoint(kind=kind, config={}, state_dict={}, optimizer={}, vocab={},
                      source={"partitions": {d: {"version": 0, "rows": 1} for d in consumed}})  # fmt: skip
    return P.save_new_version(paths, kind, ckpt)


def _refused_report(two_tower: str, ranking: str) -> E.EvaluationReport:
    n = {"users": 630, "user_days": 630}
    return E.EvaluationReport(
        k=50, train_days=DAYS[:4], eval_days=DAYS[5:],
        retrieval={"candidate": {K: 0.010, N: 0.001, **n},
                   "popularity_all_time": {K: 0.030, N: 0.002, **n},
                   "popularity_trailing_7d": {K: 0.031, N: 0.003, **n}},
        checkpoints={"candidate_two_tower": two_tower, "candidate_ranking": ranking},
    )  # fmt: skip


def _serving(paths) -> tuple[str, str]:
    """Days 1-5 built (day 6 held out); the served pair trained through day 3, promoted; a
    newer pair trained through day 4 and refused; day 5 trained by nothing yet."""
    _examples(paths, DAYS)
    served = _checkpoint(paths, "two_tower", DAYS[:3]), _checkpoint(paths, "ranking", DAYS[:3])
    _checkpoint(paths, "two_tower", DAYS[:4])
    _checkpoint(paths, "ranking", DAYS[:4])
    P.write_policy(paths, {"policy": "model", "two_tower": served[0], "ranking": served[1],
                           "promoted_at": "2026-01-04T03:00:00+00:00",
                           "reasons": ["beats every baseline"],
                           "evaluation": {"checkpoints": {"candidate_two_tower": served[0]}}})  # fmt: skip
    report = _refused_report(*(str(P.latest_checkpoint(paths, k)) for k in P.KINDS))
    report.save(P.evaluation_path(paths))
    return served


def _status(paths) -> str:
    lines, unread = status_lines(paths)
    assert unread == []
    return "\n".join(lines)


def test_status_says_what_serves_how_fresh_and_what_is_pending(paths):
    served = _serving(paths)
    said = _status(paths)
    assert (f"  served model: two_tower {served[0]} (trained through {DAYS[2]}); ranking "
            f"{served[1]} (trained through {DAYS[2]}); promoted_at 2026-01-04T03:00:00+00:00"
            in said)  # fmt: skip
    assert "  last gate: refused (evaluated " in said
    assert "recall@50" in said.split("last gate: refused")[1].splitlines()[0]
    assert (f"  training days pending: 2 built and not in the served model ({DAYS[3]} .. "
            f"{DAYS[4]}); 1 of them not trained by any checkpoint yet" in said)  # fmt: skip
    assert "  newest bento: none built" in said
    assert (
        "  served bento: no `recassets serve` of this home is running (the next one serves" in said
    )


def test_status_names_the_bento_a_recassets_serve_started_and_a_demotion(paths):
    served = _serving(paths)
    pointer = json.loads(P.pointer_path(paths).read_text())
    P.write_policy(paths, {"policy": "popularity", "variant": "trailing_7d",
                           "updated_at": "2026-01-06T03:00:00+00:00",
                           "replaced": {"two_tower": pointer["two_tower"],
                                        "promoted_at": pointer["promoted_at"],
                                        "reasons": ["recall@50 0.0150 < 0.0336"]}})  # fmt: skip
    with socket.socket() as listener:  # a running `recassets serve`: its record, its port
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        leader = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                  start_new_session=True)  # fmt: skip
        try:
            where = records_dir(paths) / f"serve-{port}.json"
            where.parent.mkdir(parents=True)
            where.write_text(json.dumps({"pid": leader.pid, "port": port,
                                         "url": f"http://127.0.0.1:{port}",
                                         "tag": "recassets_recommender:20260104t030000-model-aa",
                                         "started_at": "2026-01-04T03:01:00+00:00"}))  # fmt: skip
            said = _status(paths)
        finally:
            leader.kill()
            leader.wait()
    assert "  serving policy: popularity (trailing_7d)" in said
    assert "  served model: none, popularity serves (since 2026-01-06T03:00:00+00:00)" in said
    assert (f"  demoted at 2026-01-06T03:00:00+00:00: {served[0]} (promoted "
            "2026-01-04T03:00:00+00:00) no longer serves: recall@50 0.0150 < 0.0336" in said)  # fmt: skip
    assert ("  served bento: recassets_recommender:20260104t030000-model-aa by `recassets "
            f"serve` at http://127.0.0.1:{port} (pid {leader.pid}, since "
            "2026-01-04T03:01:00+00:00); " in said)  # fmt: skip
    assert "not the newest: a running server keeps the bento it started with" in said
