"""EASE item similarity, the blend order over the union of sources, and their evaluation."""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc
import pytest

from recassets.training import evaluation as E
from recassets.training import similarity as S
from recassets.training import sources as U
from recassets.training.checkpoint import DamagedArtifactError
from recassets.training.report import BLEND, CANDIDATE, SERVED, choose_order
from support import planted

from .test_checkpoint import flipped
from .test_evaluation import lake  # noqa: F401  (the planted table and its models)

# four users over five items: 1 and 2 go together, 3 and 4 go together, 5 is alone
USERS = np.array([1, 1, 2, 2, 3, 3, 4, 4, 4, 5])
ITEMS = np.array([1, 2, 1, 2, 3, 4, 3, 4, 1, 5])


def planted_similarity(path):
    """EASE on the positives of the planted days 0..2 (the lake fixture's training days), and
    those positives."""
    rows = E.read_days(path, [planted.day(i) for i in range(3)], ("user_id", "item_id", "label"))
    pos = rows.filter(pc.equal(rows["label"], 1))
    sim = S.ItemSimilarity.fit(
        pos["user_id"].to_numpy(), pos["item_id"].to_numpy(), l2=10.0,
        meta={"partitions": [planted.day(i) for i in range(3)]},
    )  # fmt: skip
    return sim, pos


def closed_form(users, items, l2):
    ids = np.unique(items)
    x = np.zeros((len(np.unique(users)), len(ids)))
    rows, cols = np.unique(users, return_inverse=True)[1], np.searchsorted(ids, items)
    for u, i in zip(rows, cols, strict=True):
        x[u, i] = 1.0
    p = np.linalg.inv(x.T @ x + l2 * np.eye(len(ids)))
    b = -p / np.diag(p)[None, :]
    np.fill_diagonal(b, 0.0)
    return ids, b


def test_fit_is_the_closed_form_and_keeps_the_strongest_positive_weights():
    sim = S.ItemSimilarity.fit(USERS, ITEMS, l2=0.5, neighbors=5)
    ids, b = closed_form(USERS, ITEMS, 0.5)
    assert sim.item_ids.tolist() == ids.tolist()
    dense = sim.matrix().toarray()
    np.testing.assert_allclose(dense, np.where(b > 0, b, 0.0), rtol=1e-4, atol=1e-6)
    assert np.all(np.diag(dense) == 0.0)
    # items that go together vote for each other more than for the others
    assert dense[0, 1] > dense[0, 2] and dense[2, 3] > dense[2, 1]
    one = S.ItemSimilarity.fit(USERS, ITEMS, l2=0.5, neighbors=1)
    assert (np.diff(one.indptr) <= 1).all() and one.matrix().toarray()[0].argmax() == 1
    with pytest.raises(ValueError, match="positive"):
        S.ItemSimilarity.fit(USERS, ITEMS, l2=0.0)


def test_max_items_keeps_the_most_engaged_and_ignores_the_rest():
    sim = S.ItemSimilarity.fit(USERS, ITEMS, l2=0.5, max_items=2)
    assert sim.item_ids.tolist() == [1, 2]  # 1 (x3), then 2, 3 and 4 (x2) by id
    assert sim.scores_for([5, 3], np.array([1, 2, 99])).tolist() == [0.0, 0.0, 0.0]


def test_scores_three_ways_agree_and_unknown_ids_score_zero():
    sim = S.ItemSimilarity.fit(USERS, ITEMS, l2=0.5)
    hist = [1, 3, 42]  # 42 was never seen: ignored
    dense = sim.matrix().toarray()
    want = dense[0] + dense[2]
    np.testing.assert_allclose(sim.scores([hist, []])[0], want, rtol=1e-6)
    assert not sim.scores([hist, []])[1].any()
    np.testing.assert_allclose(sim.user_scores(hist), want, rtol=1e-6)
    got = sim.scores_for(hist, np.array([5, 2, 77]))
    np.testing.assert_allclose(got, [want[4], want[1], 0.0], rtol=1e-6)


def test_the_file_round_trips_and_a_damaged_one_is_refused(tmp_path):
    sim = S.ItemSimilarity.fit(USERS, ITEMS, l2=0.5, meta={"partitions": ["2026-01-01"]})
    path = sim.save(tmp_path / "0001.npz", exclusive=True)
    back = S.ItemSimilarity.load(path)
    assert back.meta["partitions"] == ["2026-01-01"] and back.meta["l2"] == 0.5
    np.testing.assert_array_equal(back.matrix().toarray(), sim.matrix().toarray())
    with pytest.raises(FileExistsError):
        sim.save(path, exclusive=True)  # a version is never overwritten
    bad = tmp_path / "bad.npz"
    bad.write_bytes(open(path, "rb").read()[:100])
    with pytest.raises(DamagedArtifactError, match="bad.npz"):
        S.ItemSimilarity.load(bad)
    data = open(path, "rb").read()
    weights = np.load(path)["data"].tobytes()  # 8 bytes of the weights changed, zip intact
    at = data.index(weights) + len(weights) // 2
    (tmp_path / "changed.npz").write_bytes(flipped(data, at))
    with pytest.raises(DamagedArtifactError, match="changed.npz.*CRC-32"):
        S.ItemSimilarity.load(tmp_path / "changed.npz")


def test_blend_weighs_ease_popularity_and_the_towers():
    ease = np.array([2.0, 1.0, 0.0])
    e7 = np.array([0.0, 0.0, np.e - 1.0])
    tt = np.array([0.0, 1.0, 2.0])
    got = S.blend(ease, e7, tt, beta=0.5, gamma=0.0)
    np.testing.assert_allclose(got, [1.0, 0.5, 0.5])
    z = (tt - tt.mean()) / tt.std()
    np.testing.assert_allclose(S.blend(ease, e7, tt, beta=0.5, gamma=1.0), got + z)
    np.testing.assert_allclose(S.blend(ease, e7, None, beta=0.5, gamma=1.0), got)


def test_union_blend_merges_sources_drops_seen_and_fills_missing_tower_scores():
    ids = np.array([30, 10, 20, 40, 50])  # any order
    e7 = np.array([0.0, 5.0, 0.0, 1.0, 9.0])  # 50, 10 and 40 trend
    ease = np.array([3.0, 0.0, 0.0, 1.0, 0.0])  # 30, then 40, are the user's neighbours
    out, scores, sources = U.union_blend(
        ids, e7, ease, np.array([20, 10, 50]), np.array([0.9, 0.5, 0.1]), {50}, 2,
        beta=0.1, gamma=0.1,
    )  # fmt: skip
    got = dict(zip(out.tolist(), sources, strict=True))
    assert 50 not in got  # seen: dropped from every source
    assert got[10] == ("two_tower", "trending") and got[20] == ("two_tower",)
    assert got[30] == ("similarity",) and got[40] == ("similarity", "trending")
    assert list(scores) == sorted(scores, reverse=True)
    # 30 and 40 were not retrieved: they take the lowest retrieved dot product (0.5)
    tt = np.array([0.5, 0.5, 0.9, 0.5])  # for 10, 30, 20, 40 below
    want = S.blend(np.array([0.0, 3.0, 0.0, 1.0]), np.array([5.0, 0.0, 0.0, 1.0]), tt,
                   beta=0.1, gamma=0.1)  # fmt: skip
    np.testing.assert_allclose([scores[out.tolist().index(i)] for i in (10, 30, 20, 40)], want)
    none, _, _ = U.union_blend(ids, e7 * 0, ease * 0, np.zeros(0), np.zeros(0), set(), 0)
    assert len(none) == 0


def test_each_source_proposes_up_to_its_quota_and_new_items_are_a_source():
    ids = np.arange(1, 11, dtype=np.int64)
    e7 = np.array([9.0, 8, 7, 6, 5, 4, 3, 0, 2, 0])  # the trending order: 1, 2, 3, ...
    ease = np.array([0.0, 0, 0, 0, 0, 0, 0, 0, 5, 4])  # neighbours: 9, then 10
    fresh = np.zeros(10, bool)
    fresh[[6, 7, 8]] = True  # 7 (3 engagements), 8 (none), 9 (2): first seen that day
    tt = np.array([4, 5, 6]), np.array([0.9, 0.8, 0.7])
    out, _, src = U.union_blend(
        ids, e7, ease, *tt, {1}, 10, fresh=fresh,
        quotas={"two_tower": 2, "similarity": 1, "trending": 2, "fresh": 2},
    )  # fmt: skip
    got = dict(zip(out.tolist(), src, strict=True))
    # two-tower: its first 2; similarity: the best 1; trending: the best 2 unseen (1 is seen)
    # fresh: the 2 most engaged new items (7, then 9)
    assert set(got) == {4, 5, 9, 2, 3, 7}
    assert got[9] == ("similarity", "fresh") and got[7] == ("fresh",)
    assert got[2] == ("trending",) and 6 not in got and 8 not in got
    # no fresh mask, or a quota of 0: no fresh source (the default quota is 0 too)
    for kwargs in ({}, {"fresh": fresh, "quotas": {"fresh": 0}}, {"fresh": fresh}):
        _, _, none = U.union_blend(ids, e7, ease, *tt, {1}, 10, **kwargs)
        assert not none.member[:, 3].any()
    with pytest.raises(ValueError, match="no candidate source"):
        U.union_blend(ids, e7, ease, *tt, set(), 10, quotas={"nearby": 5})


def test_the_cohort_source_proposes_what_trends_in_the_users_cohort():
    ids = np.arange(1, 7, dtype=np.int64)
    names, codes = U.category_codes(["a", "a", "b", "b", None, "b"])
    assert names == ["a", "b", "unknown"] and codes.tolist() == [0, 0, 1, 1, 2, 1]
    e7 = np.array([5.0, 4, 6, 3, 2, 0])  # everyone: a 9, b 9, unknown 2 (of 20); 3 trends most
    rates = {("fr", "25-34"): {"a": 30.0, "b": 10.0}, ("unknown", "unknown"): {"b": 4.0}}
    taste = U.cohort_vector(rates, "fr", "25-34", names)
    assert taste.tolist() == [30.0, 10.0, 0.0]
    cohort = U.cohort_trending(e7, taste, codes)
    # the cohort's share over everyone's: a 0.75 / 0.45, b 0.25 / 0.45, unknown 0
    np.testing.assert_allclose(cohort, e7 * np.array([5 / 3, 5 / 3, 5 / 9, 5 / 9, 0, 5 / 9]))
    only = {"two_tower": 0, "similarity": 0, "trending": 0, "cohort": 2}
    none = np.zeros(0)
    out, _, src = U.union_blend(ids, e7, e7 * 0, none, none, set(), 10, quotas=only,
                                cohort=cohort)  # fmt: skip
    assert sorted(out.tolist()) == [1, 2] and all(s == ("cohort",) for s in src)
    # global trending with the same quota proposes another pair: the sources differ
    out, _, _ = U.union_blend(ids, e7, e7 * 0, none, none, set(), 10,
                              quotas={**only, "cohort": 0, "trending": 2}, cohort=cohort)  # fmt: skip
    assert sorted(out.tolist()) == [1, 3]
    # a cohort with no engagement in the week gives no source (it would repeat trending);
    # nulls read as 'unknown', as the lake writes them
    assert U.cohort_trending(e7, U.cohort_vector(rates, "de", "18-24", names), codes) is None
    assert U.cohort_trending(e7 * 0, taste, codes) is None
    assert U.cohort_vector(rates, None, None, names).tolist() == [0.0, 4.0, 0.0]
    _, _, src = U.union_blend(ids, e7, e7 * 0, none, none, set(), 10, quotas=only)
    assert len(src) == 0


def test_cohort_rates_reads_the_lakes_day(tmp_path):
    import datetime as dt

    import pyarrow as pa
    from deltalake import write_deltalake

    day = dt.date(2026, 3, 1)
    rows = {
        "country": ["fr", "fr", "fr"], "age_bucket": ["25-34"] * 3, "category": ["a", "b", "a"],
        "engagements_7d": [3, 1, 5], "dt": [day, day, day + dt.timedelta(days=1)],
    }  # fmt: skip
    write_deltalake(str(tmp_path / "cohort_features"), pa.table(rows))
    path = str(tmp_path / "cohort_features")
    assert U.cohort_rates(path, "2026-03-01") == {("fr", "25-34"): {"a": 3.0, "b": 1.0}}
    assert U.cohort_rates(path) == {("fr", "25-34"): {"a": 5.0}}  # the latest partition
    assert U.cohort_rates(path, "2026-02-01") == {}
    assert U.cohort_rates(str(tmp_path / "absent")) == {}


def test_choose_order_serves_the_blend_only_when_it_is_at_least_as_good():
    pair = {"ndcg@10": 0.2, "recall@50": 0.3}
    better = {"ndcg@10": 0.25, "recall@50": 0.3}
    worse = {"ndcg@10": 0.25 - 0.1, "recall@50": 0.4}
    assert choose_order({SERVED: pair, BLEND: better}, "ndcg@10", "recall@50")[0] == "blend"
    order, why = choose_order({SERVED: pair, BLEND: worse}, "ndcg@10", "recall@50")
    assert order == "dcn_v2" and "<" in why
    assert choose_order({CANDIDATE: pair}, "ndcg@10", "recall@50")[0] == "two_tower"


def test_evaluate_scores_the_blend_and_refuses_a_fit_that_saw_the_eval_days(lake, tmp_path):  # noqa: F811
    path, tt, rk = lake
    sim, pos = planted_similarity(path)
    sim.save(tmp_path / "sim.npz")
    report = E.evaluate(path, tt.path, rk.path, k=10, similarity=str(tmp_path / "sim.npz"))
    blend = report.retrieval[BLEND]
    assert blend["user_days"] == report.retrieval[CANDIDATE]["user_days"] > 0
    assert 0.0 <= blend["recall@10"] <= 1.0
    assert report.order in ("blend", "dcn_v2") and report.order_reason
    assert report.served_key == (BLEND if report.order == "blend" else SERVED)
    assert report.checkpoints["candidate_similarity"] == str(tmp_path / "sim.npz")
    # the funnel stage by stage: the top 10 keeps no more than the union, the union no less
    # than any source; the same recall as the blend's row, on the same units
    st = report.stages
    assert st["units"] == blend["user_days"] and st["union_size"] > 10
    assert st["blend@10"] <= st["union"] and max(st[s] for s in U.SOURCES) <= st["union"]
    assert st["blend@10"] == pytest.approx(blend["recall@10"])
    md = report.to_markdown()
    assert "blend stage" in md and md.index("| trending |") < md.index("| union |") < md.index(
        "| blend@10 |"
    )
    leaked = S.ItemSimilarity.fit(
        pos["user_id"].to_numpy(), pos["item_id"].to_numpy(),
        meta={"partitions": [planted.day(i) for i in range(4)]},
    )  # fmt: skip
    with pytest.raises(ValueError, match="item similarity"):
        E.evaluate(path, tt.path, rk.path, k=10, similarity=leaked)
    no_sim = E.evaluate(path, tt.path, rk.path, k=10, bootstrap=0)
    assert BLEND not in no_sim.retrieval and no_sim.order == "dcn_v2"


class Rows:
    """(user, item) positives on day offsets of 2026-01-01, as ``choose_weights`` reads them."""

    def __init__(self) -> None:
        self.rows: dict[str, list] = {"user_id": [], "item_id": [], "label": [], "dt": [],
                                      "source": []}  # fmt: skip

    def add(self, u: int, i: int, day: int) -> None:
        import datetime as dt

        start = dt.date(2026, 1, 1)
        for k, v in zip(self.rows, (u, i, 1, start + dt.timedelta(days=day), "click"), strict=True):
            self.rows[k].append(v)

    def table(self):
        import pyarrow as pa

        return pa.table(self.rows).cast(
            pa.schema([("user_id", pa.int64()), ("item_id", pa.int64()), ("label", pa.int32()),
                       ("dt", pa.date32()), ("source", pa.string())])
        )  # fmt: skip


def pair_world(days: int = 28, users: int = 240):
    """Items 2p and 2p+1 go together (60 pairs); items 1000..1009 are engaged by everyone.
    Even users engage both items of their pair early; odd users engage 2p early and 2p+1 in
    the last 7 days: scoring them needs a λ small enough to explain the popular items away."""
    rows = Rows()
    for u in range(users):
        p = (u // 2) % 60
        rows.add(u, 2 * p, u % 10)
        for j, pop in enumerate(range(1000, 1010)):
            rows.add(u, pop, (u + j) % 20)
        rows.add(u, 2 * p + 1, 21 + u % 7 if u % 2 else (u + 3) % 20)
    return rows.table()


def test_choose_weights_picks_the_l2_the_held_out_days_prefer():
    rows = pair_world()
    l2, beta, facts = S.choose_weights(rows, grid=(0.5, 10_000.0), betas=(0.1,))
    assert (l2, beta) == (0.5, 0.1) and facts["chosen"] == 0.5 and facts["users"] == 120
    small, large = facts["measured"]["0.5/0.1"], facts["measured"]["10000.0/0.1"]
    assert small["recall_50"] == 1.0 and large["recall_50"] < 0.5, facts
    # the same grid in the other order: the choice follows the measure, not the position
    assert S.choose_weights(rows, grid=(10_000.0, 0.5), betas=(0.1,))[0] == 0.5


def hot_world(follow_popularity: bool, users: int = 240):
    """Pairs as in ``pair_world`` (even users engage 2p and 2p+1 early, odd users 2p early);
    other users (10,000 + ...) make items 500..509 the last week's hottest just before the
    last 7 days. In those 7 days each odd user engages either the pair's other item (EASE's
    answer) or, with ``follow_popularity``, a hot item (popularity's answer)."""
    rows = Rows()
    for u in range(users):
        p = (u // 2) % 60
        rows.add(u, 2 * p, u % 10)
        if u % 2 == 0:
            rows.add(u, 2 * p + 1, (u + 3) % 10)
        else:
            rows.add(u, 500 + u % 10 if follow_popularity else 2 * p + 1, 21 + u % 7)
    for v in range(200):  # the hot items' week
        rows.add(10_000 + v, 500 + v % 10, 14 + v % 7)
    return rows.table()


@pytest.mark.parametrize(("follow", "want"), [(True, 5.0), (False, 0.0)])
def test_choose_weights_picks_the_popularity_weight_the_held_out_days_prefer(follow, want):
    l2, beta, facts = S.choose_weights(hot_world(follow), grid=(1.0,), betas=(0.0, 5.0))
    assert beta == want and facts["beta"] == want, facts["measured"]
    other = 5.0 if want == 0.0 else 0.0
    got, lost = facts["measured"][f"1.0/{want}"], facts["measured"][f"1.0/{other}"]
    assert got["ndcg_10"] > lost["ndcg_10"], facts["measured"]


def test_choose_weights_keeps_the_defaults_on_too_little_data():
    rows = pair_world()
    short = rows.filter(pc.less(rows["dt"], rows["dt"][0].as_py().replace(day=6)))
    l2, beta, facts = S.choose_weights(short)
    assert (l2, beta) == (S.L2, S.BETA) and "too few to hold out" in facts["reason"]
    few = pair_world(users=20)  # 10 users to score
    l2, beta, facts = S.choose_weights(few)
    assert (l2, beta) == (S.L2, S.BETA) and facts["users"] == 10 and "too few" in facts["reason"]
    with pytest.raises(ValueError, match="one β"):
        S.choose_weights(rows, betas=())


def test_the_files_beta_is_the_blends_weight_and_a_bad_one_falls_back(tmp_path):
    sim = S.ItemSimilarity.fit(np.array([1, 1, 2]), np.array([5, 6, 5]), meta={"beta": 0.3})
    assert S.ItemSimilarity.load(sim.save(tmp_path / "s.npz")).beta == 0.3
    for bad in (None, -1.0, float("nan"), "0.3", True):
        sim.meta["beta"] = bad
        assert sim.beta == S.BETA, bad
    del sim.meta["beta"]
    assert sim.beta == S.BETA  # a file from before the choice


def test_stage_recall_follows_each_item_through_the_funnel():
    ids = np.array([5, 6, 7, 8])
    member = np.array(
        [[1, 0, 0, 0, 0], [0, 1, 1, 0, 0], [1, 1, 0, 0, 1], [0, 0, 1, 1, 0]], dtype=bool
    )
    st = U.stage_recall(
        [{6, 8, 99}, {5}, set()], [(ids, member), (ids[::-1], member[::-1]), None], 2
    )
    # unit 1: 6 and 8 of {6, 8, 99} reached the union, 6 the top 2; unit 2: 5, last of 4
    assert st["units"] == 2 and st["union_size"] == 4.0
    assert st["union"] == pytest.approx((2 / 3 + 1) / 2)
    assert st["blend@2"] == pytest.approx((1 / 3 + 0) / 2)
    assert st["two_tower"] == pytest.approx((0 + 1) / 2)
    assert st["similarity"] == pytest.approx((1 / 3 + 0) / 2)
    assert st["trending"] == pytest.approx((2 / 3 + 0) / 2)
    assert st["fresh"] == pytest.approx((1 / 3 + 0) / 2)
    assert st["cohort"] == 0.0  # it proposed 7 alone, never engaged
    assert U.stage_recall([], [], 2)["units"] == 0


def test_evaluate_scores_the_blend_page_under_each_rule_set(lake, tmp_path):  # noqa: F811
    from recassets.funnel.config import FunnelConfig

    path, tt, rk = lake
    sim, _ = planted_similarity(path)
    rules = {
        "none": FunnelConfig(max_per_category=0),
        "cap1": FunnelConfig(max_per_category=1, category_share=0),
        "mmr0": FunnelConfig(max_per_category=0, mmr_lambda=0.0),
    }
    report = E.evaluate(path, tt.path, rk.path, k=10, similarity=sim, rules=rules, bootstrap=0)
    got = report.retrieval
    blend = got[BLEND]
    # no rule on: the page is the blend's top k, metric for metric
    keys = ("recall@10", "ndcg@10", "hit_rate@10", "user_days")
    assert [got[f"{BLEND}+none"][m] for m in keys] == [blend[m] for m in keys]
    # one item per category (relaxed only to fill the page), pure diversity: other pages
    for name in ("cap1", "mmr0"):
        assert got[f"{BLEND}+{name}"]["user_days"] == blend["user_days"]
        assert got[f"{BLEND}+{name}"]["ndcg@10"] != blend["ndcg@10"], name


def test_train_next_records_the_weights_keeps_a_given_one_and_refits_a_file_without_beta(
    tmp_path,
):
    """The asset's fit: too few days to choose, so β is the default and a given λ stays as
    given (not the default); the same settings again are not refitted; a given β is kept; a
    file from before β was chosen is fitted again."""
    from recassets.paths import Paths

    paths = Paths.at(tmp_path)
    planted.write_days(paths.table("training_examples"), range(4))
    sim, path, new = S.train_next(paths, holdout_days=1, l2=5.0)
    assert new and sim.meta["l2"] == 5.0 and sim.beta == S.BETA
    assert sim.meta["beta_asked"] == "auto" and "too few" in sim.meta["l2_choice"]["reason"]
    again, same, new = S.train_next(paths, holdout_days=1, l2=5.0)
    assert not new and same == path
    fixed, path2, new = S.train_next(paths, holdout_days=1, l2=5.0, beta=0.4)
    assert new and fixed.beta == 0.4 and S.ItemSimilarity.load(path2).beta == 0.4
    old = S.ItemSimilarity.load(path2)
    del old.meta["beta_asked"], old.meta["beta"]  # as written before β was chosen
    old.save(path2)
    _, path3, new = S.train_next(paths, holdout_days=1, l2=5.0, beta=0.4)
    assert new and path3 != path2
    with pytest.raises(ValueError, match="beta"):
        S.train_next(paths, holdout_days=1, beta=-1.0)


def test_standing_orders_break_ties_by_the_lower_id_and_are_used_only_for_their_catalog():
    ids = np.array([50, 30, 10, 20, 40], dtype=np.int64)  # not ascending: the sort is kept
    e7 = np.array([2.0, 2.0, 2.0, 2.0, 0.0])  # four items tie on the week's volume
    fresh = np.array([True, False, True, True, False])
    none = np.zeros(0)
    only = {"two_tower": 0, "similarity": 0, "trending": 2, "fresh": 1}
    out, _, src = U.union_blend(ids, e7, e7 * 0, none, none, {10}, 10, quotas=only, fresh=fresh)
    got = dict(zip(out.tolist(), src, strict=True))
    # trending: 10 is seen, so 20 and 30 of the tied four; fresh: 20 (50 ties, the higher id)
    assert got == {20: ("trending", "fresh"), 30: ("trending",)}
    orders = U.CatalogOrders.of(ids, e7, fresh)
    assert orders.sorter is not None and orders.trending.tolist() == [2, 3, 1, 0]
    assert U.CatalogOrders.of(np.sort(ids), e7, fresh).sorter is None
    same = U.union_blend(ids, e7, e7 * 0, none, none, {10}, 10, quotas=only, fresh=fresh,
                         orders=orders)  # fmt: skip
    assert same[0].tolist() == out.tolist()
    # orders of other arrays (a later day's counters) are not used: made again for these
    stale = U.CatalogOrders.of(ids, np.array([0.0, 0.0, 0.0, 0.0, 9.0]), fresh)
    again = U.union_blend(ids, e7, e7 * 0, none, none, {10}, 10, quotas=only, fresh=fresh,
                          orders=stale)  # fmt: skip
    assert again[0].tolist() == out.tolist() and 40 not in again[0].tolist()


def test_an_excluded_retrieved_id_the_catalog_lacks_still_leaves_the_two_tower_quota():
    ids = np.array([1, 2, 3], dtype=np.int64)
    zeros = np.zeros(3)
    # 99 is not in the catalog: kept, it takes a place in the quota (and never joins the
    # union); excluded, it gives its place to the next retrieved id
    tt = np.array([99, 1, 2]), np.array([0.9, 0.8, 0.7])
    kept, _, _ = U.union_blend(ids, zeros, zeros, *tt, set(), 2, quotas={"two_tower": 2})
    dropped, _, _ = U.union_blend(ids, zeros, zeros, *tt, {99}, 2, quotas={"two_tower": 2})
    assert kept.tolist() == [1] and dropped.tolist() == [1, 2]


def month_world(follow_month: bool, users: int = 60):
    """No histories to speak of: items 600..609 were the month's hottest (days 0..13) and
    items 500..509 the last week's (days 14..20); users new in the last 7 days (21..27)
    engage either the month's items or the week's."""
    rows = Rows()
    for v in range(300):
        rows.add(20_000 + v, 600 + v % 10, v % 14)
    for v in range(100):
        rows.add(10_000 + v, 500 + v % 10, 14 + v % 7)
    for u in range(users):
        rows.add(30_000 + u, (600 if follow_month else 500) + u % 10, 21 + u % 7)
    return rows.table()


@pytest.mark.parametrize(("follow_month", "want"), [(True, 28), (False, 7)])
def test_choose_weights_picks_the_popularity_window_new_users_follow(follow_month, want):
    l2, beta, facts = S.choose_weights(month_world(follow_month), grid=(1.0,), betas=(0.1,))
    assert facts["popularity_days"] == want and facts["new_users"] == 60, facts
    week, month = facts["measured"]["1.0/0.1"], facts["measured"]["1.0/0.1/28d"]
    wins, loses = (month, week) if want == 28 else (week, month)
    assert wins["ndcg_10"] > loses["ndcg_10"], facts["measured"]
    # offered one window, that is the one
    assert S.choose_weights(month_world(True), grid=(1.0,), betas=(0.1,),
                            windows=(7,))[2]["popularity_days"] == 7  # fmt: skip


def test_the_files_popularity_window_is_read_back_and_an_unknown_one_is_the_week(tmp_path):
    sim = S.ItemSimilarity.fit(np.array([1, 1, 2]), np.array([5, 6, 5]),
                               meta={"popularity_days": 28})  # fmt: skip
    back = S.ItemSimilarity.load(sim.save(tmp_path / "s.npz"))
    assert back.popularity_days == 28 and back.popularity_column == "i_engagements_28d"
    for bad in (None, 14, "28", 28.0, True):
        sim.meta["popularity_days"] = bad
        assert sim.popularity_days == 7 and sim.popularity_column == "i_engagements_7d", bad


@pytest.mark.parametrize(
    ("days", "per_day", "want"),
    [(200, 100, 7), (200, 30, 10), (40, 5, 10), (20, 1, 7)],
    ids=["dense: a week", "sparse: until 300 users", "a quarter of the days", "at least 7"],
)
def test_the_tuning_days_grow_until_they_hold_enough_users(days, per_day, want):
    rows = Rows()
    for d in range(days):
        for j in range(per_day):
            rows.add(d * per_day + j, j % 7, d)  # each user on one day only
    assert S.tune_window(rows.table()) == want
    # a given number is taken as given
    assert S.choose_weights(rows.table(), grid=(1.0,), betas=(0.1,),
                            tune_days=3)[2]["tune_days"] == 3  # fmt: skip
