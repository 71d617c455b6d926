"""Co-occurrence as a policy that serves: its file, its order through the blend, its evaluation
and the gate's choice of it when nothing learned passes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from recassets.training import cooccurrence as C
from recassets.training import evaluation as E
from recassets.training import policy as P
from recassets.training import similarity as S
from recassets.training import sources as U
from recassets.training.report import COOCCURRENCE_SERVED
from support import planted

from .test_evaluation import lake  # noqa: F401  (the planted table and its models)
from .test_similarity import planted_similarity

# six users over six items: 1-2-3 go together, 4-5 together, 6 alone
USERS = np.array([1, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 6])
ITEMS = np.array([1, 2, 3, 1, 2, 2, 3, 4, 5, 4, 5, 6, 1, 6])


def test_the_file_orders_every_history_as_the_baseline_does(tmp_path):
    base = C.Cooccurrence(USERS, ITEMS)
    fit = C.fit_cosine(USERS, ITEMS, neighbors=10, max_items=100, meta={"partitions": ["d"]})
    sim = S.ItemSimilarity.load(fit.save(tmp_path / "c.npz"))
    assert (sim.method, sim.gamma, sim.beta) == ("cosine", 0.0, C.TIE_BETA)
    np.testing.assert_array_equal(sim.item_ids, base.items)
    histories = [{1}, {4}, {1, 4}, {2, 3}, {6}]
    got = sim.scores(histories)
    want = base.scores(histories) - 1e-6 * base.popularity[None, :]  # without its tie-break
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
    # an EASE file keeps the towers' weight; a damaged gamma falls back to it
    ease = S.ItemSimilarity.fit(USERS, ITEMS, l2=10.0)
    assert (ease.method, ease.gamma) == ("ease", S.GAMMA)
    for bad in (None, -1.0, float("nan"), "0", True):
        fit.meta["gamma"] = bad
        assert fit.gamma == S.GAMMA, bad


def test_kept_neighbours_are_each_items_strongest():
    fit = C.fit_cosine(USERS, ITEMS, neighbors=1, max_items=100)
    full = C.Cooccurrence(USERS, ITEMS).sim.toarray()
    kept = fit.matrix().toarray()
    assert (np.count_nonzero(kept, axis=1) <= 1).all()
    for r in range(len(full)):
        if full[r].max() > 0:
            c = int(np.flatnonzero(kept[r])[0])
            assert kept[r, c] == pytest.approx(full[r].max())
            assert c == int(np.flatnonzero(full[r] == full[r].max())[0])  # ties: the lower id
    # the most engaged items only: item 6 (two users) is left out at max_items 4... and the
    # items of fewer users go first
    small = C.fit_cosine(USERS, ITEMS, neighbors=10, max_items=2)
    assert small.item_ids.tolist() == [1, 2]


def test_the_blend_of_a_cosine_file_serves_cooccurrences_order():
    fit = C.fit_cosine(USERS, ITEMS, neighbors=10, max_items=100)
    base = C.Cooccurrence(USERS, ITEMS)
    ids = fit.item_ids
    pop = np.array([9.0, 1.0, 1.0, 1.0, 2.0, 50.0])  # the week's counter: 6 trends, 1 too
    history = {1}
    got, _, _ = U.union_blend(
        ids, pop, fit.scores_for(history, ids), np.array([6, 4]), np.array([5.0, 4.0]),
        history, 10, beta=fit.beta, gamma=fit.gamma,
    )  # fmt: skip
    want = E.top_k_excluding(base.scores([history])[0], base.items, history, 10)
    # co-occurrence's order (cosines with item 1: 2 0.67, 6 0.58 through user 6, 3 0.41),
    # then the rest by the week's popularity; the towers have no say: 4, the ANN's second
    # (5 not retrieved), comes after 5
    assert got.tolist()[:3] == want[:3] == [2, 6, 3]
    assert got.tolist()[3:] == [5, 4]
    served_by_ease = U.union_blend(
        ids, pop, fit.scores_for(history, ids), np.array([6, 4]), np.array([5.0, 4.0]),
        history, 10, beta=S.BETA, gamma=S.GAMMA,
    )[0]  # fmt: skip
    assert served_by_ease.tolist()[:3] != want[:3]  # the EASE blend's weights would reorder it


def test_evaluate_scores_cooccurrence_as_it_serves(lake, tmp_path):  # noqa: F811
    path, tt, rk = lake
    _, pos = planted_similarity(path)
    days = [planted.day(i) for i in range(3)]
    fit = C.fit_cosine(pos["user_id"].to_numpy(), pos["item_id"].to_numpy(), neighbors=100,
                       max_items=10_000, meta={"partitions": days})  # fmt: skip
    report = E.evaluate(path, tt.path, rk.path, k=10, cooccurrence=fit.save(tmp_path / "c.npz"))
    co = report.retrieval[COOCCURRENCE_SERVED]
    assert co["user_days"] == report.retrieval[E.CANDIDATE]["user_days"] > 0
    assert 0.0 < co["recall@10"] <= 1.0
    assert report.checkpoints["candidate_cooccurrence"] == str(tmp_path / "c.npz")
    assert COOCCURRENCE_SERVED not in report.baselines()  # served, not a baseline to beat
    assert "| cooccurrence_served |" in report.to_markdown()
    # co-occurrence as served minus each popularity, unit by unit (its serving rule's intervals)
    assert set(report.paired_fallback) == {"popularity_all_time", "popularity_trailing_7d"}
    for name, got in report.paired_fallback.items():
        d = got["recall@10"]
        assert d["mean"] == pytest.approx(co["recall@10"] - report.retrieval[name]["recall@10"])
        assert d["lo"] <= d["mean"] <= d["hi"]
    fit.meta["partitions"] = [planted.day(i) for i in range(4)]  # it saw the eval days
    with pytest.raises(ValueError, match="co-occurrence fit"):
        E.evaluate(path, tt.path, rk.path, k=10, cooccurrence=fit)


# --- the gate's choice --------------------------------------------------------------------------

K, N = "recall@50", "ndcg@10"


def _report(co: dict[str, float] | None, current: dict[str, float] | None = None,
            users: int = 300) -> E.EvaluationReport:  # fmt: skip
    n = {"users": users, "user_days": users}
    retrieval = {
        "candidate": {K: 0.01, N: 0.01, **n},  # refused: below everything
        "popularity_all_time": {K: 0.10, N: 0.08, **n},
        "popularity_trailing_7d": {K: 0.12, N: 0.07, **n},
        "cooccurrence": {K: 0.2, N: 0.2, **n},
    }
    if co is not None:
        retrieval[COOCCURRENCE_SERVED] = {**co, **n}
    if current is not None:
        retrieval["current"] = {**current, **n}
    return E.EvaluationReport(
        k=50, train_days=["2026-01-01"], eval_days=["2026-01-02"], retrieval=retrieval,
        checkpoints={"candidate_two_tower": "new/tt.pt", "candidate_ranking": "new/rk.pt",
                     "candidate_cooccurrence": "new/co.npz"},
    )  # fmt: skip


AHEAD = {K: 0.13, N: 0.09}  # beats both popularities on both metrics


def test_cooccurrence_serves_while_nothing_learned_does(paths):
    d = P.promote(paths, _report(AHEAD))
    assert not d.passed
    pol = P.current_policy(paths)
    assert (pol["policy"], pol["fallback"], pol["order"]) == ("model", "cooccurrence", "blend")
    assert pol["item_similarity"] == "new/co.npz" and pol["two_tower"] == "new/tt.pt"
    assert any("co-occurrence serves: recall@50 0.1300" in r for r in d.reasons)
    assert "replaced" not in pol
    # the next window: a newer fit that still beats popularity replaces it
    report = _report({K: 0.14, N: 0.10}, current=AHEAD)
    report.checkpoints["candidate_cooccurrence"] = "newer/co.npz"
    P.promote(paths, report)
    assert P.current_policy(paths)["item_similarity"] == "newer/co.npz"


@pytest.mark.parametrize(
    ("co", "users"),
    [
        ({K: 0.13, N: 0.075}, 300),  # behind all-time popularity's NDCG@10
        ({K: 0.11, N: 0.09}, 300),  # behind trailing popularity's Recall@50
        (AHEAD, 9),  # ahead, on nine users: noise
        (None, 300),  # not scored (a home from before, or no file)
    ],
)
def test_popularity_serves_when_cooccurrence_does_not_beat_it(paths, co, users):
    assert P.promote(paths, _report(co, users=users)).passed is False
    pol = P.current_policy(paths)
    assert (pol["policy"], pol.get("variant")) == ("popularity", "trailing_7d")


def test_a_disagreement_with_popularity_is_settled_on_the_paired_differences(paths):
    """As the gate judges a learned candidate: co-occurrence behind all-time popularity on the
    NDCG@10 point but level with it on the paired interval, and ahead beyond it on Recall@50,
    serves; a loss beyond the interval does not."""

    def report(ndcg: tuple[float, float, float]) -> E.EvaluationReport:
        r = _report({K: 0.13, N: 0.075})  # behind all-time popularity's 0.08 on NDCG@10
        r.paired_fallback = {"popularity_all_time": {
            K: {"mean": 0.03, "lo": 0.01, "hi": 0.05, "users": 300},
            N: {"mean": ndcg[0], "lo": ndcg[1], "hi": ndcg[2], "users": 300}}}  # fmt: skip
        return r

    level = P.cooccurrence_serves(report((-0.005, -0.02, 0.01)))
    assert level is not None and "beats popularity_all_time on the paired differences" in level
    assert P.cooccurrence_serves(report((-0.005, -0.01, -0.001))) is None  # a real loss
    assert P.cooccurrence_serves(_report({K: 0.13, N: 0.075})) is None  # no intervals: points
    # where the catalog fits in the top K the Recall@50 "gain" is no evidence: NDCG@10 decides
    tiny = report((-0.005, -0.02, 0.01))
    tiny.catalog_size = 40
    assert P.cooccurrence_serves(tiny) is None


def test_popularity_beats_a_model_on_ndcg_alone_where_the_catalog_fits_in_the_top_k():
    """A model's Recall@50 of 1 on a 40-item catalog held it against popularity for good."""
    r = _report(None, current={K: 1.0, N: 0.05})
    assert P.outscored_by_popularity(r) is None  # ahead on Recall@50: holds
    r.catalog_size = 40
    variant, why = P.outscored_by_popularity(r)
    assert variant == "all_time" and why.startswith("ndcg@10 0.0500 < 0.0800")


def test_a_learned_model_keeps_serving_unless_popularity_beats_it(paths):
    good = _report(AHEAD)
    good.retrieval["candidate"] = {K: 0.5, N: 0.5, "users": 300}
    good.retrieval["cooccurrence"] = {K: 0.1, N: 0.05}
    good.checkpoints.update(candidate_two_tower="old/tt.pt", candidate_ranking="old/rk.pt")
    assert P.promote(paths, good).passed
    before = P.pointer_path(paths).read_text()
    # refused; the learned model still beats popularity: it stays, co-occurrence or not
    P.promote(paths, _report(AHEAD, current={K: 0.2, N: 0.1}))
    assert P.pointer_path(paths).read_text() == before
    # refused, and popularity now beats the learned model: co-occurrence takes over, the
    # model it replaced recorded with why
    P.promote(paths, _report(AHEAD, current={K: 0.11, N: 0.06}))
    pol = json.loads(P.pointer_path(paths).read_text())
    assert pol["fallback"] == "cooccurrence" and pol["replaced"]["two_tower"] == "old/tt.pt"
    assert "popularity_trailing_7d" in pol["replaced"]["reasons"][0]


def test_a_serving_cooccurrence_that_popularity_beats_gives_way(paths):
    P.promote(paths, _report(AHEAD))
    # the next window: co-occurrence falls behind popularity, as served now and as fitted anew
    P.promote(paths, _report({K: 0.11, N: 0.06}, current={K: 0.11, N: 0.06}))
    pol = P.current_policy(paths)
    assert (pol["policy"], pol["variant"]) == ("popularity", "trailing_7d")
    # what it replaced says it was co-occurrence, with its file
    assert pol["replaced"]["fallback"] == "cooccurrence"
    assert pol["replaced"]["item_similarity"] == "new/co.npz"


def test_the_fit_judged_is_the_one_of_the_candidates_days(tmp_path):
    from recassets.paths import Paths

    paths = Paths.at(tmp_path)
    ease = S.ItemSimilarity.fit(USERS, ITEMS, l2=10.0, meta={"partitions": ["a", "b"]})
    ease_path = ease.save(tmp_path / "ease.npz")
    assert C.fit_of(paths, ease_path) is None  # none fitted yet
    folder = tmp_path / "artifacts" / "models" / "cooccurrence"
    folder.mkdir(parents=True)
    same = C.fit_cosine(USERS, ITEMS, neighbors=5, max_items=10, meta={"partitions": ["a", "b"]})
    same.save(folder / "0001.npz")
    assert C.fit_of(paths, ease_path) == str(folder / "0001.npz")
    older = C.fit_cosine(USERS, ITEMS, neighbors=5, max_items=10, meta={"partitions": ["a"]})
    older.save(folder / "0002.npz")  # the newest file is of other days: not the candidate's
    assert C.fit_of(paths, ease_path) is None
    assert C.fit_of(paths, None) is None


def test_without_the_files_a_bento_needs_popularity_serves(paths):
    report = _report(AHEAD)
    report.checkpoints["candidate_ranking"] = None  # the L2 prices the ads: the bento needs it
    P.promote(paths, report)
    assert P.current_policy(paths)["policy"] == "popularity"
    assert P.cooccurrence_serves(_report(AHEAD)) is not None


def test_a_serving_cooccurrence_takes_its_newer_fit_when_it_holds_up(paths):
    """A newer fit that no longer beats popularity on both metrics, but scores at least as
    well as the serving one, takes its place (new items get neighbours); a worse one does not."""
    P.promote(paths, _report(AHEAD))
    level = {K: 0.12, N: 0.09}  # level with trailing popularity's Recall@50: not a clear win
    newer = _report(level, current={K: 0.12, N: 0.085})
    newer.checkpoints["candidate_cooccurrence"] = "newer/co.npz"
    P.promote(paths, newer)
    assert P.current_policy(paths)["item_similarity"] == "newer/co.npz"
    worse = _report({K: 0.12, N: 0.08}, current=level)
    worse.checkpoints["candidate_cooccurrence"] = "worse/co.npz"
    P.promote(paths, worse)
    assert P.current_policy(paths)["item_similarity"] == "newer/co.npz"
