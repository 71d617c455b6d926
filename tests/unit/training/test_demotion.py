"""Taking a served model down after a refused candidate: only on a loss to popularity beyond
its 95 % interval (the evidence a candidate needs to be promoted), and said where the gate's
result and ``recassets evaluate`` show it."""

from __future__ import annotations

import json

from recassets.training import evaluation as E
from recassets.training import policy as P

K, N = "recall@50", "ndcg@10"


def _refused(current: dict[str, float], users: int = 630) -> E.EvaluationReport:
    """The reviewer's window (a day of permuted item ids): a refused candidate beside the
    served model and popularity, each with its bootstrap interval."""
    n = {"users": users, "user_days": users}
    pop = {
        "popularity_all_time": {K: 0.0300, f"{K}_lo": 0.020, f"{K}_hi": 0.041,
                                N: 0.0024, f"{N}_lo": 0.0010, f"{N}_hi": 0.0041, **n},
        "popularity_trailing_7d": {K: 0.0336, f"{K}_lo": 0.023, f"{K}_hi": 0.046,
                                   N: 0.0027, f"{N}_lo": 0.0012, f"{N}_hi": 0.0045, **n},
    }  # fmt: skip
    return E.EvaluationReport(
        k=50, train_days=["2026-01-16"], eval_days=["2026-01-19"],
        retrieval={"candidate": {K: 0.0260, f"{K}_lo": 0.016, f"{K}_hi": 0.037, N: 0.0020, **n},
                   **pop, "current": {**current, **n}},
        checkpoints={"candidate_two_tower": "new/tt.pt", "candidate_ranking": "new/rk.pt"},
    )  # fmt: skip


def _served(paths) -> str:
    """A learned model serving (promoted on an earlier window): the pointer's text."""
    P.write_policy(paths, {"policy": "model", "two_tower": "old/tt.pt", "ranking": "old/rk.pt"})
    return P.pointer_path(paths).read_text()


def test_noise_within_popularitys_interval_keeps_the_served_model(paths):
    """Behind popularity on both points, inside its interval on both: noise. Before, both
    points below were enough, and popularity replaced a promoted model on one noisy day."""
    before = _served(paths)
    d = P.promote(paths, _refused({K: 0.0266, N: 0.0022}))
    assert not d.passed  # the candidate is refused, as it was
    assert P.pointer_path(paths).read_text() == before  # and the served model stays
    assert d.replaced == "" and not any("replaced" in r for r in d.reasons)
    assert P.outscored_by_popularity(_refused({K: 0.0266, N: 0.0022})) is None


def test_a_loss_beyond_popularitys_interval_takes_the_model_down_and_says_so(paths):
    _served(paths)
    d = P.promote(paths, _refused({K: 0.0150, N: 0.0020}))  # below popularity's [0.023, 0.046]
    pointer = json.loads(P.pointer_path(paths).read_text())
    assert (pointer["policy"], pointer["variant"]) == ("popularity", "trailing_7d")
    assert pointer["replaced"]["two_tower"] == "old/tt.pt"
    assert d.replaced.startswith(
        "the served model was replaced by popularity (trailing_7d) because the current model "
        "no longer beats popularity: recall@50 0.0150 < 0.0336 [0.0230, 0.0460] (behind beyond "
        "the interval), ndcg@10 0.0020 vs 0.0027 [0.0012, 0.0045] (within the interval)"
    )
    assert d.replaced in d.reasons  # the gate check's reasons and description name it
    # recassets evaluate, which changes nothing, says what the gate would do
    dry = P.replaced_by(_refused({K: 0.0150, N: 0.0020}), True, False, dry=True)
    assert dry is not None and dry.startswith("the served model would be replaced by popularity")


def test_ahead_beyond_the_interval_on_one_metric_keeps_the_model():
    """As a candidate behind beyond the interval on one metric is not promoted, a served model
    ahead beyond it on one is not taken down, whatever the other says."""
    assert P.outscored_by_popularity(_refused({K: 0.0150, N: 0.0060})) is None
    # and a loss beyond the interval on NDCG@10 alone is enough, as a gain on one promotes
    variant, why = P.outscored_by_popularity(_refused({K: 0.0300, N: 0.0005}))
    assert variant == "trailing_7d" and "ndcg@10 0.0005 < 0.0027" in why


def test_a_loss_to_either_variant_beyond_its_interval_counts():
    """The variant best on Recall@K is tried first; the other still takes the model down when
    the model is behind it beyond its own interval."""
    r = _refused({K: 0.0180, N: 0.0020})
    assert P.outscored_by_popularity(r)[0] == "trailing_7d"  # below its [0.023, 0.046]
    r.retrieval["popularity_trailing_7d"][f"{K}_lo"] = 0.010  # trailing: a wider interval
    variant, why = P.outscored_by_popularity(r)
    assert variant == "all_time" and why.startswith("recall@50 0.0180 < 0.0300 [0.0200")


def test_without_intervals_the_points_decide_on_both_metrics():
    """An evaluation without bootstrap (``bootstrap=0``) has no interval to judge noise by: the
    points decide, on both metrics, as before."""
    r = _refused({K: 0.0266, N: 0.0022})
    for name in ("popularity_all_time", "popularity_trailing_7d"):
        r.retrieval[name] = {m: v for m, v in r.retrieval[name].items() if "_lo" not in m
                             and "_hi" not in m}  # fmt: skip
    variant, why = P.outscored_by_popularity(r)
    assert variant == "trailing_7d" and why.startswith("recall@50 0.0266 < 0.0336, ndcg@10")
    r.retrieval["current"][N] = 0.0030  # ahead on NDCG@10's point: holds
    assert P.outscored_by_popularity(r) is None


def test_few_users_never_take_a_model_down():
    assert P.outscored_by_popularity(_refused({K: 0.0010, N: 0.0001}, users=9)) is None
