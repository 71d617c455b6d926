"""What the next training continues: the served checkpoint while a learned model serves, so
that a refused candidate's days are trained again and its weights are no base; the latest
checkpoint while nothing learned serves."""

from __future__ import annotations

from pathlib import Path

import pytest

from recassets.freshness import consumed_partitions, pending_training_days
from recassets.training import evaluation as E
from recassets.training import policy as P
from support import planted

from .tiny import TINY
from .torch_threads import one_torch_thread  # noqa: F401


def _serve(paths, two_tower: str, ranking: str = "rk.pt", **more) -> None:
    """A learned model promoted: the pointer names it."""
    P.write_policy(paths, {"policy": "model", "two_tower": two_tower, "ranking": ranking, **more})


def test_after_a_refusal_the_next_training_continues_the_served_model(paths):
    table = paths.table("training_examples")
    planted.write_days(table, range(3))
    served = P.train_next(paths, "two_tower", TINY, holdout_days=1)  # days 0-1, day 2 held out
    _serve(paths, served.path)
    planted.write_days(table, [3])
    refused = P.train_next(paths, "two_tower", TINY, holdout_days=1)  # day 2, from the served
    assert refused.partitions == [planted.day(2)]
    # the gate refused it: the pointer still names the served model. Its day stays pending.
    days = E.available_days(paths)
    assert consumed_partitions(paths, "two_tower") == [planted.day(i) for i in range(3)]
    base = consumed_partitions(paths, "two_tower", base=True)
    assert base == [planted.day(0), planted.day(1)]
    assert pending_training_days(days, {"two_tower": base}, 1) == [planted.day(2)]

    planted.write_days(table, [4])
    after = P.train_next(paths, "two_tower", TINY, holdout_days=1)
    # the refused day again with the new one, warm from the served weights (its runs: the
    # served model's one and this one, not the refused candidate's)
    assert after.warm_start and after.partitions == [planted.day(2), planted.day(3)]
    assert after.checkpoint.partitions == [planted.day(i) for i in range(4)]
    assert len(after.checkpoint.runs) == len(served.checkpoint.runs) + 1
    assert Path(after.path).name == "0003.pt"  # a new version: none is overwritten
    assert P.training_base(paths, "two_tower") == Path(served.path)


def test_while_no_learned_model_serves_training_continues_the_latest(paths):
    """Never promoted (popularity serves on a history where it wins), or the served model taken
    down: the latest checkpoint is the base, as before; nothing is trained twice."""
    table = paths.table("training_examples")
    planted.write_days(table, range(3))
    first = P.train_next(paths, "two_tower", TINY, holdout_days=1)
    planted.write_days(table, [3])
    second = P.train_next(paths, "two_tower", TINY, holdout_days=1)
    assert second.partitions == [planted.day(2)]  # no pointer: continued the latest
    P.write_policy(paths, {"policy": "popularity", "variant": "trailing_7d",
                           "replaced": {"two_tower": first.path, "reasons": ["..."]}})  # fmt: skip
    planted.write_days(table, [4])
    third = P.train_next(paths, "two_tower", TINY, holdout_days=1)
    assert third.partitions == [planted.day(3)]  # demoted: not from the replaced model
    assert len(third.checkpoint.runs) == len(second.checkpoint.runs) + 1


def _store(paths, kind: str, n: int) -> str:
    f = P.models_dir(paths) / kind / f"{n:04d}.pt"
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_bytes(b"")
    return str(f)


@pytest.mark.parametrize("ranker", ["dcn_v2", "sequence"])
def test_each_store_continues_the_checkpoint_promoted_with_the_served_pair(paths, ranker):
    """The pointer names one ranker; the other store's base is the one its promotion evaluated
    beside it, not a newer refused one."""
    tt, dcn, seq = _store(paths, "two_tower", 1), _store(paths, "ranking", 1), _store(paths, "sequence_ranking", 1)  # fmt: skip
    for store in ("two_tower", "ranking", "sequence_ranking"):
        _store(paths, store, 2)  # the refused candidates
    evaluated = {"candidate_ranking_dcn_v2": dcn, "candidate_ranking_sequence": seq,
                 "current_ranking": _store(paths, "ranking", 3)}  # fmt: skip
    _serve(paths, tt, dcn if ranker == "dcn_v2" else seq, evaluation={"checkpoints": evaluated})
    assert P.training_base(paths, "two_tower") == Path(tt)
    assert P.training_base(paths, "ranking") == Path(dcn)
    assert P.training_base(paths, "sequence_ranking") == Path(seq)


def test_co_occurrence_serving_or_a_missing_file_falls_back_to_the_latest(paths):
    tt = _store(paths, "two_tower", 1)
    latest = Path(_store(paths, "two_tower", 2))
    _serve(paths, tt, fallback="cooccurrence")  # the towers only retrieve: nothing learned
    assert P.training_base(paths, "two_tower") == latest
    _serve(paths, str(P.models_dir(paths) / "two_tower" / "0009.pt"))  # named, not there
    assert P.training_base(paths, "two_tower") == latest
    _serve(paths, tt)
    assert P.training_base(paths, "two_tower") == Path(tt)
